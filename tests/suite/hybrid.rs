//! Hybrid retrieval: passage embeddings through the real async-openai
//! client against a local `/v1/embeddings`, fused with BM25.

use crate::common;

use std::sync::atomic::Ordering;

use common::{Deployment, Options, REFUNDS_PATH, openai_fake};
use switchboard::app::Core;
use switchboard::assistant::Assessment;

/// The refunds article in two sections (two passages), so that an edit to
/// one re-embeds one passage.
const REFUNDS: &str = "---\ntitle: Refunds\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge.\n\n## How long refunds take\nRefunds reach your card in 5–10 business days.\n";

/// The fixture knowledge base with [`REFUNDS`] in two sections.
async fn deployment() -> Deployment {
    Deployment::new(&Options::new().article(REFUNDS_PATH, REFUNDS)).await
}

/// A core on `deployment` answering through `base`, with or without
/// embeddings.
async fn core(deployment: &Deployment, base: &str, embeddings: bool) -> Core {
    let embedding = if embeddings {
        "embedding_model = \"fake-embed\"\n"
    } else {
        ""
    };
    let options = Options::new()
        .llm(base)
        .settings(format!("[llm]\ntimeout_secs = 2\n{embedding}"));
    deployment.core(&options).await
}

fn top_slug(a: &Assessment) -> Option<&str> {
    match a {
        Assessment::Answer(r) => r.hits.first().map(|h| h.slug.as_str()),
        _ => None,
    }
}

#[tokio::test]
async fn embeddings_find_the_article_that_shares_no_word_with_the_question() {
    let (_fake, base) = openai_fake::start().await;
    let dir = deployment().await;
    let question = "Could I be reimbursed?";

    let plain = core(&dir, &base, false).await;
    let without = plain.assistant.assess(question).await.unwrap();
    assert!(
        matches!(without, Assessment::NotCovered(_)),
        "BM25 alone has nothing: {without:?}"
    );
    drop(plain);

    let hybrid = core(&dir, &base, true).await;
    let with = hybrid.assistant.assess(question).await.unwrap();
    assert_eq!(top_slug(&with), Some("billing/refunds"), "{with:?}");
    if let Assessment::Answer(r) = &with {
        assert!(r.similarity.unwrap() >= 0.5);
        assert_eq!(r.hits[0].heading, "How to get a refund");
    }
    // A question about something else entirely is still not covered.
    let other = hybrid
        .assistant
        .assess("What is the weather on Mars today?")
        .await
        .unwrap();
    assert!(matches!(other, Assessment::NotCovered(_)), "{other:?}");
}

#[tokio::test]
async fn vectors_are_kept_and_only_changed_passages_are_embedded_again() {
    let (fake, base) = openai_fake::start().await;
    let dir = deployment().await;
    // Passages' texts (a title, a line break, the text); the rest are the
    // decision's calibration questions.
    let passage_texts = || -> Vec<String> {
        fake.embedded
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.contains('\n'))
            .cloned()
            .collect()
    };
    let passages_embedded = || passage_texts().len();
    let embedded = || fake.embedded.lock().unwrap().len();

    let first = core(&dir, &base, true).await;
    let passages = first.assistant.semantic().unwrap().len();
    assert_eq!(passages, 3, "every passage has a vector");
    assert_eq!(passages_embedded(), 3);
    let at_start = embedded();
    assert!(at_start > 3, "and the calibration questions");
    assert!(first.assistant.semantic().unwrap().joint().is_some());
    drop(first);

    // A restart reads the vectors (passages' and questions') from the
    // index folder.
    let second = core(&dir, &base, true).await;
    assert_eq!(embedded(), at_start, "nothing embedded again");
    assert!(second.assistant.semantic().unwrap().joint().is_some());
    assert_eq!(second.assistant.semantic().unwrap().len(), 3);

    // One section edited: one passage embedded.
    std::fs::write(
        dir.kb_path().join(REFUNDS_PATH),
        REFUNDS.replace("5–10 business days", "3 business days"),
    )
    .unwrap();
    second.kb.reload().unwrap();
    let n = second
        .assistant
        .semantic()
        .unwrap()
        .sync(&second.kb)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(passages_embedded(), 4);
    assert!(
        passage_texts()[3].contains("3 business days"),
        "the edited passage"
    );

    // An article removed: its vectors go.
    std::fs::remove_file(dir.kb_path().join(common::PASSWORD_PATH)).unwrap();
    second.kb.reload().unwrap();
    second
        .assistant
        .semantic()
        .unwrap()
        .sync(&second.kb)
        .await
        .unwrap();
    assert_eq!(second.assistant.semantic().unwrap().len(), 2);
}

#[tokio::test]
async fn an_embedding_outage_falls_back_to_bm25() {
    let (fake, base) = openai_fake::start().await;
    fake.embeddings_down.store(true, Ordering::SeqCst);
    let dir = deployment().await;
    // Starts even though nothing can be embedded.
    let core = core(&dir, &base, true).await;
    assert!(core.assistant.semantic().unwrap().is_empty());
    let a = core
        .assistant
        .assess("how do I get a refund")
        .await
        .unwrap();
    assert_eq!(top_slug(&a), Some("billing/refunds"), "{a:?}");

    // Back up: the next sync embeds everything, and questions use it.
    fake.embeddings_down.store(false, Ordering::SeqCst);
    core.assistant
        .semantic()
        .unwrap()
        .sync(&core.kb)
        .await
        .unwrap();
    fake.embeddings_down.store(true, Ordering::SeqCst);
    let a = core
        .assistant
        .assess("how do I get a refund")
        .await
        .unwrap();
    assert_eq!(
        top_slug(&a),
        Some("billing/refunds"),
        "question embedding down: BM25 still answers"
    );
}

#[tokio::test]
async fn a_stalled_embedding_endpoint_does_not_hold_up_answers() {
    let (fake, base) = openai_fake::start().await;
    let dir = deployment().await;
    let core = core(&dir, &base, true).await;
    fake.embeddings_stall.store(true, Ordering::SeqCst);
    // llm.timeout_secs is 2; the endpoint would answer after 60 s. The
    // guard only turns a hang into a failure.
    let a = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        core.assistant.assess("how do I get a refund"),
    )
    .await
    .expect("retrieval gave up on the embedding endpoint")
    .unwrap();
    assert_eq!(top_slug(&a), Some("billing/refunds"), "{a:?}");
}

/// With embeddings on, a message more like one of the examples in
/// `prompts/handoff_examples.md` than like any passage is a request for a
/// person, although no phrase pattern knows it; a question the knowledge
/// base answers is still answered, and without embeddings (or with the
/// endpoint down) the phrases alone decide.
#[tokio::test]
async fn requests_for_a_person_are_recognised_by_meaning_with_embeddings() {
    // "Your staff" shares its words with the example "I would like to talk
    // to your staff" and none with the knowledge base.
    let request = "your staff";
    assert!(!switchboard::handoff::asks_for_person(request));
    let (fake, base) = openai_fake::start().await;
    let dir = deployment().await;

    let hybrid = core(&dir, &base, true).await;
    let a = hybrid.assistant.assess(request).await.unwrap();
    match &a {
        Assessment::HandOff(reason, Some(detail)) => {
            assert_eq!(*reason, switchboard::handoff::Reason::CustomerRequest);
            assert!(detail.contains("talk to your staff"), "{detail}");
        }
        other => panic!("not handed off: {other:?}"),
    }
    let answered = hybrid
        .assistant
        .assess("how long do refunds take")
        .await
        .unwrap();
    assert_eq!(top_slug(&answered), Some("billing/refunds"), "{answered:?}");
    // The message was embedded once, for the check and for retrieval.
    let embedded = fake.embedded.lock().unwrap().clone();
    assert_eq!(
        embedded
            .iter()
            .filter(|t| *t == "how long do refunds take")
            .count(),
        1,
        "{embedded:?}"
    );
    // The endpoint down: the phrases still apply, nothing fails.
    fake.embeddings_down.store(true, Ordering::SeqCst);
    let down = hybrid.assistant.assess("their staff").await.unwrap();
    assert!(!matches!(down, Assessment::HandOff(..)), "{down:?}");
    fake.embeddings_down.store(false, Ordering::SeqCst);
    drop(hybrid);

    let plain = core(&dir, &base, false).await;
    let a = plain.assistant.assess(request).await.unwrap();
    assert!(!matches!(a, Assessment::HandOff(..)), "{a:?}");
}
