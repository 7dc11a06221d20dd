//! Benchmarks that print figures (no assertions): `cargo bench --bench core`.
//!
//! 1. index build time for a generated 10,000-article knowledge base;
//! 2. retrieval latency p50/p99 through `KnowledgeBase::search` against raw
//!    tantivy (the same index, a plain boolean query of the same terms over
//!    the same fields, top 12 with stored documents loaded);
//! 3. the full pipeline (store + retrieval + prompt + an in-process model
//!    that streams a fixed answer with zero delay) in messages per second on
//!    SQLite;
//! 4. resident memory of `switchboard run`, idle, with the bundled knowledge
//!    base.
//!
//! Set `BENCH_ARTICLES` to change the size of the generated knowledge base
//! and `BENCH_CONCURRENCY` the number of conversations answered at once in
//! the pipeline (default 8).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::app::Core;
use switchboard::assistant::semantic::Semantic;
use switchboard::clock::system;
use switchboard::config::{KnowledgeBaseSettings, Settings};
use switchboard::embed::Embedder;
use switchboard::kb::KnowledgeBase;
use switchboard::llm::{ChatMessage, ChatModel, Delta, DeltaStream, Error, Usage};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, TantivyDocument};
use tantivy::{Index, Term};

const WORDS: &[&str] = &[
    "account",
    "billing",
    "invoice",
    "refund",
    "password",
    "sync",
    "device",
    "notebook",
    "share",
    "export",
    "import",
    "template",
    "search",
    "offline",
    "upload",
    "attachment",
    "team",
    "workspace",
    "member",
    "role",
    "admin",
    "plan",
    "upgrade",
    "downgrade",
    "cancel",
    "payment",
    "card",
    "receipt",
    "tax",
    "discount",
    "error",
    "crash",
    "slow",
    "version",
    "history",
    "restore",
    "trash",
    "delete",
    "email",
    "security",
    "login",
    "session",
    "token",
    "api",
    "integration",
    "calendar",
    "slack",
    "shortcut",
    "markdown",
    "table",
    "image",
    "pdf",
    "mobile",
    "desktop",
    "web",
    "browser",
    "extension",
    "notification",
    "reminder",
    "tag",
    "folder",
    "link",
    "permission",
    "guest",
    "owner",
    "storage",
    "limit",
    "quota",
    "backup",
    "encryption",
    "privacy",
    "gdpr",
    "region",
    "server",
    "network",
    "proxy",
];

/// A deterministic pseudo-random generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.next() % WORDS.len()]
    }
    fn sentence(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

fn generate(root: &Path, articles: usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..articles {
        let dir = root.join(format!("section-{}", i % 50));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = format!(
            "---\ntitle: {} {} guide {i}\ntags: [{}]\n---\n# Guide {i}\n\n{}.\n",
            rng.word(),
            rng.word(),
            rng.word(),
            rng.sentence(30)
        );
        for s in 0..3 {
            text.push_str(&format!(
                "\n## {} {} {s}\n\n{}.\n",
                rng.word(),
                rng.word(),
                rng.sentence(60)
            ));
        }
        std::fs::write(dir.join(format!("article-{i}.md")), text).unwrap();
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Raw tantivy on the same index: the same terms, fields and boosts, top 12,
/// stored documents loaded; no snippets, no coverage, no confidence.
fn raw_search(index: &Index, reader: &tantivy::IndexReader, query: &str) -> usize {
    let schema = index.schema();
    let fields: Vec<_> = ["title", "heading", "body", "tags"]
        .iter()
        .map(|f| schema.get_field(f).unwrap())
        .collect();
    let boosts = [2.5f32, 1.5, 1.0, 1.0];
    let mut analyzer = switchboard::kb::analyzer();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for t in switchboard::kb::terms(&mut analyzer, query) {
        for (field, boost) in fields.iter().zip(boosts) {
            let q: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(*field, &t),
                IndexRecordOption::WithFreqs,
            ));
            clauses.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
        }
    }
    let searcher = reader.searcher();
    let top = searcher
        .search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(12).order_by_score(),
        )
        .unwrap();
    for (_, address) in &top {
        let _: TantivyDocument = searcher.doc(*address).unwrap();
    }
    top.len()
}

/// A model that streams a fixed cited answer at once.
struct InstantModel;

#[async_trait::async_trait]
impl ChatModel for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }
    async fn stream(&self, _messages: &[ChatMessage]) -> Result<DeltaStream, Error> {
        let items = vec![
            Ok(Delta::Text("Open Settings, then Billing ".into())),
            Ok(Delta::Text("and choose Refund [1].".into())),
            Ok(Delta::Usage(Usage {
                prompt: 300,
                completion: 12,
            })),
        ];
        Ok(Box::pin(futures::stream::iter(items)))
    }
    async fn embed(&self, _inputs: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        Err(Error::Request("no embeddings".into()))
    }
}

/// An in-process "embedding model": 384 pseudo-random dimensions seeded
/// by the text, so the dense side is measured without a network.
struct HashEmbedder;

#[async_trait::async_trait]
impl Embedder for HashEmbedder {
    fn identity(&self) -> &str {
        "bench-384"
    }
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, switchboard::embed::Error> {
        Ok(inputs
            .iter()
            .map(|text| {
                let mut rng = Rng(text
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b))
                    | 1);
                (0..384)
                    .map(|_| (rng.next() % 1000) as f32 / 1000.0 - 0.5)
                    .collect()
            })
            .collect())
    }
}

/// The full pipeline on the bundled knowledge base: SQLite in `dir`, or
/// the database at `BENCH_DATABASE_URL` (e.g. PostgreSQL), which the bench
/// fills with its own customers and leaves behind.
fn pipeline(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let repo = env!("CARGO_MANIFEST_DIR");
        let connections: u32 = std::env::var("BENCH_DB_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
        let url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.join("bench.db").display()));
        let backend = if url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" };
        let toml = format!(
            "[database]\nurl = \"{url}\"\nmax_connections = {connections}\n[knowledge_base]\npath = \"{repo}/knowledge-base\"\nindex_path = \"{}\"\nwatch = false\n[prompts]\npath = \"{repo}/prompts\"\n",
            dir.join("sample-index").display(),
        );
        // Ids unique to this run, so a database reused between runs
        // (PostgreSQL) does not take the messages for retries.
        let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let core = Core::build(Settings::from_toml_str(&toml).unwrap(), system(), &|_, _| {}).await.unwrap();
        let assistant = switchboard::assistant::Assistant::new(
            core.kb.clone(),
            core.store.clone(),
            core.assistant.prompts().clone(),
            Some(Arc::new(InstantModel)),
            core.settings.assistant.clone(),
            Duration::from_secs(5),
            switchboard::handoff::Rules::default(),
        );
        let questions = [
            "how do I get a refund",
            "I forgot my password",
            "sync is not working",
            "how do I export my notes",
            "how much does the team plan cost",
            "my account is locked",
            "how do I change my email address",
            "can I delete my account",
            "how does two-factor authentication work",
            "can I sign in with SSO",
            "how do I cancel my subscription",
            "my payment failed",
            "where do I find my invoices",
            "is there a student discount",
            "do you charge VAT",
            "how do I update my card",
            "which integrations do you have",
            "what are the keyboard shortcuts",
            "can I share a notebook with my team",
            "how do I restore an old version of a note",
        ];
        let total: usize = std::env::var("BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
        let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
        let round = move |label: &'static str, total: usize| {
            let assistant = assistant.clone();
            async move {
                let started = Instant::now();
                let mut tasks = Vec::new();
                for worker in 0..concurrency {
                    let assistant = assistant.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(total / concurrency);
                        // Enough conversations that none gets more than
                        // 15 messages (fewer than there are questions).
                        let threads = (total / concurrency / 15).max(50);
                        for i in 0..total / concurrency {
                            let turn = switchboard::assistant::Turn {
                                channel: "bench".into(),
                                customer_id: format!("{run}-customer-{worker}-{}", i % threads),
                                customer_name: None,
                                thread: format!("thread-{worker}-{}", i % threads),
                                platform_message_id: Some(format!("{run}-{label}-{worker}-{i}")),
                                // Each conversation goes through the
                                // questions in turn (the same question
                                // over and over would be handed off as
                                // frustration, and the bot then stays
                                // silent: not the path measured here).
                                text: questions[(i / threads + worker) % questions.len()].into(),
                            };
                            let t = Instant::now();
                            let received = assistant.receive(turn).await.unwrap();
                            let stored = t.elapsed();
                            let reply = assistant.answer(received, None).await.unwrap();
                            latencies.push((t.elapsed(), stored, format!("{:?}", reply.action)));
                            std::hint::black_box(reply);
                        }
                        latencies
                    }));
                }
                let mut latencies = Vec::new();
                for t in tasks {
                    latencies.extend(t.await.unwrap());
                }
                (started.elapsed(), latencies)
            }
        };
        // Warm-up: the first messages create customers and conversations.
        round("warm", concurrency * 50).await;
        let (elapsed, both) = round("run", total).await;
        let total = both.len();
        let mut latencies: Vec<Duration> = both.iter().map(|b| b.0).collect();
        let mut stored: Vec<Duration> = both.iter().map(|b| b.1).collect();
        let mut actions = std::collections::BTreeMap::<&str, usize>::new();
        for b in &both {
            *actions.entry(b.2.as_str()).or_default() += 1;
        }
        println!("  replies: {actions:?}");
        println!(
            "pipeline (store + retrieval + prompt + instant model, {backend}, {concurrency} concurrent, {connections} connections): {total} messages in {:.2} s = {:.0} messages/s; per message p50 {}  p99 {}",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            ms(percentile(&mut latencies, 0.5)),
            ms(percentile(&mut latencies, 0.99)),
        );
        println!(
            "  of which storing the customer's message (before it may be confirmed): p50 {}  p99 {}",
            ms(percentile(&mut stored, 0.5)),
            ms(percentile(&mut stored, 0.99)),
        );
    });
}

fn main() {
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pipeline") {
        let dir = tempfile::tempdir().unwrap();
        pipeline(dir.path());
        return;
    }
    let articles: usize = std::env::var("BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    println!("generating {articles} articles…");
    generate(&root, articles);
    let settings = KnowledgeBaseSettings {
        path: root.clone(),
        index_path: dir.path().join("index"),
        watch: false,
        base_url: String::new(),
    };

    // 1. Index build.
    let started = Instant::now();
    let kb = KnowledgeBase::open(&settings, &|_, _| {}).unwrap();
    let build = started.elapsed();
    println!(
        "index build: {articles} articles, {} passages in {:.2} s",
        kb.passages(),
        build.as_secs_f64()
    );
    let started = Instant::now();
    kb.reload().unwrap();
    println!(
        "re-sync with nothing changed: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 2. Retrieval.
    let mut rng = Rng(42);
    let queries: Vec<String> = (0..2_000)
        .map(|i| {
            format!(
                "how do I {} my {} {}",
                rng.word(),
                rng.word(),
                if i % 3 == 0 { rng.word() } else { "" }
            )
        })
        .collect();
    let index = Index::open_in_dir(&settings.index_path).unwrap();
    index
        .tokenizers()
        .register("en_stem", switchboard::kb::analyzer());
    let reader = index.reader().unwrap();
    for q in queries.iter().take(200) {
        kb.retrieve(q, 12).unwrap();
        raw_search(&index, &reader, q);
    }
    let mut ours = Vec::with_capacity(queries.len());
    let mut raw = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        std::hint::black_box(kb.retrieve(q, 12).unwrap());
        ours.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(raw_search(&index, &reader, q));
        raw.push(t.elapsed());
    }
    let (o50, o99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let (r50, r99) = (percentile(&mut raw, 0.5), percentile(&mut raw, 0.99));
    println!(
        "retrieval (KnowledgeBase::retrieve, top 12, with coverage): p50 {}  p99 {}",
        ms(o50),
        ms(o99)
    );
    println!(
        "raw tantivy (same query, top 12 + docs):   p50 {}  p99 {}",
        ms(r50),
        ms(r99)
    );
    println!(
        "ratio: p50 {:.2}x  p99 {:.2}x",
        o50.as_secs_f64() / r50.as_secs_f64(),
        o99.as_secs_f64() / r99.as_secs_f64()
    );

    // 2b. Dense retrieval: vectors for every passage, exact cosine search.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let semantic = Semantic::open(
        Arc::new(HashEmbedder),
        Some(dir.path()),
        Duration::from_secs(60),
    );
    let started = Instant::now();
    let embedded = runtime.block_on(semantic.sync(&kb)).unwrap();
    println!(
        "dense index: {embedded} passage vectors (384-d, in-process embedder) stored in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let semantic = Semantic::open(
        Arc::new(HashEmbedder),
        Some(dir.path()),
        Duration::from_secs(60),
    );
    let again = runtime.block_on(semantic.sync(&kb)).unwrap();
    println!(
        "dense index reopened: {again} re-embedded, loaded in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut dense = Vec::with_capacity(500);
    for q in queries.iter().take(500) {
        let t = Instant::now();
        std::hint::black_box(runtime.block_on(semantic.nearest(q, 12)).unwrap());
        dense.push(t.elapsed());
    }
    println!(
        "dense nearest 12 of {} passages: p50 {}  p99 {}",
        semantic.len(),
        ms(percentile(&mut dense, 0.5)),
        ms(percentile(&mut dense, 0.99))
    );
    drop(runtime);
    drop(kb);

    // 3. Pipeline on SQLite with the bundled knowledge base.
    pipeline(dir.path());

    // 4. Idle RSS of `switchboard run`.
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = env!("CARGO_MANIFEST_DIR");
    let config = dir.path().join("run.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "[database]\nurl = \"sqlite://{}\"\n[knowledge_base]\npath = \"{repo}/knowledge-base\"\nindex_path = \"{}\"\n[prompts]\npath = \"{repo}/prompts\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
        dir.path().join("run.db").display(),
        dir.path().join("run-index").display(),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: unknown");
    println!(
        "switchboard run, idle with the bundled knowledge base (up: {up}): {}",
        rss.trim()
    );
    let _ = child.kill();
    let _ = child.wait();
}
