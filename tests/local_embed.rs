//! The in-process embedding model (`embeddings.provider = "local"`) on the
//! real all-MiniLM-L6-v2 files, as `scripts/local-embed.sh fetch` downloads
//! and verifies them: the similarities sentence-transformers publishes for
//! this model, the vectors of the numpy encoder it replaces, and hybrid
//! retrieval on the bundled knowledge base.
//!
//! The model folder is `SWITCHBOARD_TEST_EMBED_MODEL`, else the script's
//! cache (`.cache/llm/all-MiniLM-L6-v2`). These tests are ignored by
//! default; `.ci/run` fetches the model and runs them with `--ignored`,
//! where a missing model fails them.

use std::path::PathBuf;

use switchboard::app::Core;
use switchboard::assistant::Assessment;
use switchboard::clock::system;
use switchboard::config::Settings;
use switchboard::embed::Embedder;
use switchboard::embed::local::LocalEmbedder;

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_TEST_EMBED_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/llm/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} has no model.safetensors: run scripts/local-embed.sh fetch or set SWITCHBOARD_TEST_EMBED_MODEL",
        dir.display()
    );
    dir
}

fn model() -> LocalEmbedder {
    LocalEmbedder::load(&model_dir()).expect("the model loads")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// sentence-transformers' published example for all-MiniLM-L6-v2 (its
/// README's similarity matrix), to 4 decimals.
#[test]
#[ignore = "needs the MiniLM model: scripts/local-embed.sh fetch"]
fn published_similarities_match_to_four_decimals() {
    let model = model();
    let v = model
        .embed_blocking(&texts(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ]))
        .unwrap();
    for (i, j, want) in [(0, 1, 0.6660f32), (0, 2, 0.1046), (1, 2, 0.1411)] {
        let got = cosine(&v[i], &v[j]);
        assert_eq!(
            format!("{got:.4}"),
            format!("{want:.4}"),
            "pair {i}/{j}: {got}"
        );
    }
    for row in &v {
        assert_eq!(row.len(), 384);
        let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length: {norm}");
    }
    // The looser pairs scripts/local_embed_server.py --selftest checks.
    let v = model
        .embed_blocking(&texts(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "A monkey is playing drums.",
        ]))
        .unwrap();
    assert!((cosine(&v[0], &v[1]) - 0.75).abs() < 0.1);
    assert!((cosine(&v[0], &v[2]) - 0.05).abs() < 0.1);
}

/// The same vectors as the numpy encoder (tests/fixtures, written by
/// scripts/local_embed_server.py from the same files), including a text
/// past the 256-token limit and one mixing scripts, emoji and markup.
#[test]
#[ignore = "needs the MiniLM model: scripts/local-embed.sh fetch"]
fn vectors_equal_the_numpy_encoder() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_numpy_vectors.json")).unwrap();
    let inputs: Vec<String> = fixture["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let want: Vec<Vec<f32>> = fixture["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let model = model();
    assert_eq!(model.max_tokens(), 256);
    // All at once (one padded batch), and each alone: padding changes nothing.
    let together = model.embed_blocking(&inputs).unwrap();
    for (i, text) in inputs.iter().enumerate() {
        let alone = model.embed_blocking(std::slice::from_ref(text)).unwrap();
        for (k, (got, want)) in together[i].iter().zip(&want[i]).enumerate() {
            assert!(
                (got - want).abs() <= 1e-4,
                "text {i} dimension {k}: {got} vs numpy {want}"
            );
            assert!(
                (got - alone[0][k]).abs() <= 1e-5,
                "padding changed text {i}"
            );
        }
    }
}

/// Through the [`Embedder`] trait on the async runtime, and the whole
/// service: `embeddings.provider = "local"` gives every passage of the
/// bundled knowledge base a vector, and a question in other words than the
/// article's finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the MiniLM model: scripts/local-embed.sh fetch"]
async fn the_service_uses_the_local_model_for_hybrid_retrieval() {
    let dir = model_dir();
    let tmp = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let toml = format!(
        "[database]\nurl = \"sqlite://{db}\"\n[knowledge_base]\npath = \"{root}/knowledge-base\"\nindex_path = \"{index}\"\nwatch = false\n[prompts]\npath = \"{root}/prompts\"\n[embeddings]\nprovider = \"local\"\npath = \"{model}\"\n",
        db = tmp.path().join("t.db").display(),
        index = tmp.path().join("index").display(),
        model = dir.display(),
    );
    let settings = Settings::from_toml_str(&toml).unwrap();
    let core = Core::build(settings, system(), &|_, _| {}).await.unwrap();
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

    // The decision is calibrated on BM25 and the model together: the
    // paraphrase is covered, and off-topic questions that are not in the
    // shipped calibration list are not.
    assert!(semantic.joint().is_some(), "the joint calibration is made");
    let covered = core
        .assistant
        .assess("the app shuts itself down as soon as I launch it")
        .await
        .unwrap();
    assert!(matches!(covered, Assessment::Answer(_)), "{covered:?}");
    for off_topic in [
        "Which planet has the most moons?",
        "What is a good recipe for lemon cake?",
        "What year did the Berlin Wall fall?",
    ] {
        let a = core.assistant.assess(off_topic).await.unwrap();
        assert!(matches!(a, Assessment::NotCovered(_)), "{off_topic}: {a:?}");
    }

    // The vectors file names the model folder's identity; a second start
    // embeds nothing again.
    let header = std::fs::read(tmp.path().join("index/vectors.bin")).unwrap();
    let first_line = String::from_utf8_lossy(header.split(|b| *b == b'\n').next().unwrap());
    let embedder = LocalEmbedder::load(&dir).unwrap();
    assert!(
        embedder.identity().starts_with("local:"),
        "{}",
        embedder.identity()
    );
    assert!(first_line.contains(embedder.identity()), "{first_line}");
    let reopened = switchboard::assistant::semantic::Semantic::open(
        std::sync::Arc::new(embedder.clone()),
        Some(&tmp.path().join("index")),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        reopened.sync(&core.kb).await.unwrap(),
        0,
        "nothing embedded again"
    );

    // Many questions at once: each gets its vector, none blocks the runtime.
    let asks: Vec<_> = (0..8)
        .map(|i| {
            let e = embedder.clone();
            tokio::spawn(async move { e.embed(&[format!("question number {i}")]).await })
        })
        .collect();
    for ask in asks {
        assert_eq!(ask.await.unwrap().unwrap()[0].len(), 384);
    }
}
