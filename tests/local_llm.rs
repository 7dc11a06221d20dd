//! End to end with a real model: the bundled knowledge base, the real
//! async-openai client, and llama.cpp's own OpenAI-compatible server
//! serving SmolLM2-135M (`scripts/local-llm.sh start`).
//!
//! Ignored unless asked for: `SWITCHBOARD_TEST_LLM_URL` (and
//! `SWITCHBOARD_TEST_EMBED_URL`) name those servers and
//! `cargo test --test local_llm -- --ignored` runs them (CI starts the
//! servers and does this).

mod common;

use common::{Deployment, Kb, Options};
use switchboard::app::Core;
use switchboard::assistant::{Action, Mode, Turn};
use switchboard::store::Role;

/// The bundled knowledge base and prompts with these `[llm]` lines, on a
/// fresh SQLite file and index.
async fn bundled_core(llm: &str) -> (Deployment, Core) {
    let options = Options::new().kb(Kb::Bundled).settings(format!(
        "[llm]\napi_key = \"local\"\ntimeout_secs = 120\n{llm}"
    ));
    let deployment = Deployment::new(&options).await;
    let core = deployment.core(&options).await;
    (deployment, core)
}

/// The variable naming a local server, for a test run with `--ignored`.
fn server(variable: &str, script: &str) -> String {
    std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run {script} start and set it"))
}

#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_LLM_URL (a local model: scripts/local-llm.sh)"]
async fn a_real_local_model_streams_a_cited_answer() {
    let base = server("SWITCHBOARD_TEST_LLM_URL", "scripts/local-llm.sh");
    let model = std::env::var("SWITCHBOARD_TEST_LLM_MODEL").unwrap_or_else(|_| "smollm2".into());
    let (_dir, core) = bundled_core(&format!(
        "base_url = \"{base}\"\nmodel = \"{model}\"\ntemperature = 0.0\nmax_tokens = 120\n"
    ))
    .await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let turn = Turn {
        channel: "test".into(),
        customer_id: "c1".into(),
        customer_name: None,
        thread: "t1".into(),
        platform_message_id: None,
        text: "How do I export my notes?".into(),
    };
    let reply = core.assistant.handle(turn, Some(tx)).await.unwrap();
    let mut pieces = Vec::new();
    while let Ok(piece) = rx.try_recv() {
        pieces.push(piece);
    }

    assert_eq!(reply.action, Action::Answer, "{reply:?}");
    assert_eq!(reply.mode, Mode::Llm, "generated, not quoted: {reply:?}");
    assert!(
        pieces.len() > 1,
        "the answer arrived as a stream of pieces: {pieces:?}"
    );
    assert_eq!(pieces.concat().trim(), reply.answer.trim());
    assert!(!reply.answer.trim().is_empty());
    assert!(
        reply
            .sources
            .iter()
            .any(|s| s.slug == "account/export-data"),
        "the export article is among the sources: {:?}",
        reply.sources
    );

    let messages = core.store.messages(&reply.conversation_id).await.unwrap();
    let bot = messages.iter().find(|m| m.role == Role::Bot).unwrap();
    assert_eq!(bot.mode, Some(switchboard::store::MessageMode::Llm));
    assert_eq!(bot.model.as_deref(), Some(model.as_str()));
    assert!(bot.completion_tokens.unwrap_or(0) > 0, "usage was recorded");
}

/// Hybrid retrieval with a real embedding model (all-MiniLM-L6-v2 served by
/// `scripts/local-embed.sh`): every passage of the bundled knowledge base
/// gets a vector, and a question in other words than the article's finds it.
/// Needs `SWITCHBOARD_TEST_EMBED_URL` naming that server.
#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_EMBED_URL (a local embedding model: scripts/local-embed.sh)"]
async fn a_real_embedding_model_finds_a_paraphrased_question() {
    let base = server("SWITCHBOARD_TEST_EMBED_URL", "scripts/local-embed.sh");
    let (_dir, core) = bundled_core(&format!(
        "base_url = \"{base}\"\nmodel = \"smollm2\"\nembedding_model = \"minilm\"\n"
    ))
    .await;
    let semantic = core.assistant.semantic().expect("embeddings are on");
    assert_eq!(
        semantic.len() as u64,
        core.kb.passages(),
        "every passage has a vector"
    );
    let retrieval = core
        .assistant
        .retrieve("the app shuts itself down as soon as I launch it")
        .await
        .unwrap();
    assert!(
        retrieval.similarity.unwrap_or(0.0) >= 0.4,
        "{:?}",
        retrieval.similarity
    );
    let top: Vec<&str> = retrieval
        .hits
        .iter()
        .take(3)
        .map(|h| h.slug.as_str())
        .collect();
    assert!(
        top.contains(&"troubleshooting/app-crashes-on-start"),
        "{top:?}"
    );
}
