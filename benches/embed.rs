//! Embedding figures (no assertions): `cargo bench --bench embed`.
//!
//! 1. time to embed one question (p50/p99 over 200 support questions, one
//!    at a time, through the async [`Embedder`] as the service calls it);
//! 2. time to embed every passage of each knowledge base named in
//!    `BENCH_EMBED_KBS` (colon-separated folders; default the bundled one),
//!    from nothing, through [`Semantic::sync`].
//!
//! The embedder is the in-process model at `BENCH_EMBED_MODEL` (default
//! `.cache/llm/all-MiniLM-L6-v2`, from `scripts/local-embed.sh fetch`), or,
//! with `BENCH_EMBED_URL` set (e.g. `http://127.0.0.1:8082/v1` from
//! `scripts/local-embed.sh start`), that `/v1/embeddings` endpoint with the
//! model `minilm`, for comparison.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::assistant::semantic::Semantic;
use switchboard::config::{KnowledgeBaseSettings, LlmSettings};
use switchboard::embed::local::LocalEmbedder;
use switchboard::embed::{Embedder, Endpoint};
use switchboard::kb::KnowledgeBase;
use switchboard::llm::OpenAiModel;

const QUESTIONS: &[&str] = &[
    "How do I get a refund for my annual plan?",
    "the app shuts itself down as soon as I launch it",
    "Can I change the email address on my account?",
    "why was my card charged twice this month",
    "How do I export all my notes to PDF?",
    "I forgot my password and the reset email never arrives",
    "Is there a way to share a notebook with my team?",
    "what happens to my data if I cancel",
    "sync stopped working on my phone after the update",
    "Do you offer a discount for students or non-profits?",
];

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let embedder: Arc<dyn Embedder> = match std::env::var("BENCH_EMBED_URL") {
        Ok(url) => {
            let settings = LlmSettings {
                base_url: Some(url.clone()),
                embedding_model: Some("minilm".into()),
                ..LlmSettings::default()
            };
            Arc::new(Endpoint::new(
                Arc::new(OpenAiModel::new(&settings, &url)),
                "minilm",
                &url,
            ))
        }
        Err(_) => {
            let dir = std::env::var_os("BENCH_EMBED_MODEL")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".cache/llm/all-MiniLM-L6-v2"));
            let started = Instant::now();
            let model = LocalEmbedder::load(&dir).expect("scripts/local-embed.sh fetch first");
            println!("model loaded in {}", ms(started.elapsed()));
            Arc::new(model)
        }
    };
    println!("embedder: {}", embedder.identity());

    // 1. One question at a time.
    for q in QUESTIONS {
        runtime.block_on(embedder.embed(&[q.to_string()])).unwrap();
    }
    let mut samples = Vec::new();
    for i in 0..200 {
        let q = format!("{} ({i})", QUESTIONS[i % QUESTIONS.len()]);
        let t = Instant::now();
        runtime.block_on(embedder.embed(&[q])).unwrap();
        samples.push(t.elapsed());
    }
    println!(
        "question embedding (200, one at a time): p50 {}  p99 {}",
        ms(percentile(&mut samples, 0.5)),
        ms(percentile(&mut samples, 0.99))
    );

    // 2. Whole knowledge bases, from nothing.
    let kbs = std::env::var("BENCH_EMBED_KBS")
        .unwrap_or_else(|_| root.join("knowledge-base").display().to_string());
    for folder in kbs.split(':').filter(|f| !f.is_empty()) {
        let scratch = tempfile::tempdir().unwrap();
        let settings = KnowledgeBaseSettings {
            path: folder.into(),
            index_path: scratch.path().join("index"),
            watch: false,
            base_url: String::new(),
        };
        let kb = KnowledgeBase::open(&settings, &|_, _| {}).unwrap();
        let semantic = Semantic::open(
            embedder.clone(),
            Some(scratch.path()),
            Duration::from_secs(600),
        );
        let started = Instant::now();
        let n = runtime.block_on(semantic.sync(&kb)).unwrap();
        let took = started.elapsed();
        println!(
            "{folder}: {} articles, {n} passages embedded in {:.1} s ({:.1} passages/s)",
            kb.articles().len(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
}
