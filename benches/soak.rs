//! The abuse/soak run: `cargo bench --bench soak` (issue 11, "Proof").
//!
//! Starts the real `switchboard run` (the release build cargo made for this
//! bench) on 127.0.0.1 with a temporary SQLite database, the bundled
//! knowledge base, a slow OpenAI-compatible fake model (tests/fakes/openai_fake.rs,
//! counting concurrent calls) and Telegram in polling mode against
//! tests/fakes/telegram_fake.rs. Then, all at once:
//!
//! - `SOAK_CUSTOMERS` web customers ask questions from the knowledge base on
//!   `POST /api/chat/messages`, one message at a time, each with a unique
//!   client `id`; some messages are sent again with the same `id`, after the
//!   answer or at the same moment;
//! - `SOAK_SLOW_CONNECTIONS` connections send a request line and headers one
//!   byte every two seconds and never finish (reopened when the server
//!   closes them);
//! - oversized inputs (1.5 MB `id`, 10 MB body, 100 KB text) and random
//!   Unicode texts (Kelvin sign, RTL, NUL, combining marks, a lone
//!   surrogate) from other sessions;
//! - Telegram customers whose updates are delivered twice in a batch or
//!   replayed after they were confirmed, and a group message starting with
//!   the Kelvin sign;
//! - a `/healthz` probe every 50 ms on a fresh connection.
//!
//! After `SOAK_KILL_AT` confirmed messages the server is killed with SIGKILL
//! and started again on the same database; clients retry what failed with
//! the same ids. After `SOAK_WARMUP` more, the server's resident memory is
//! read, and again after `SOAK_MESSAGES` more; then the attack stops, the
//! server is stopped with SIGTERM and the database is read.
//!
//! Counting: in each conversation (in `seq` order) every bot message answers
//! the oldest customer message still unanswered; a bot message with none
//! left is a duplicate answer. A message is *lost* when the server confirmed
//! it (HTTP 200, or a Telegram offset past the update) and no bot message
//! answers it.
//!
//! Everything is bounded: counts above, `SOAK_MAX_SECS` for the whole
//! attack, deadlines on every wait. Exit code 1 when a target fails, 2 when
//! the run itself could not be done.

use switchboard_fakes::{openai_fake, telegram_fake};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// How long a client keeps retrying one message (covers the restart).
const RETRY_FOR: Duration = Duration::from_secs(120);
/// A `/healthz` probe slower than this counts as failed (and as this long).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The limit variable, read here and passed to the server.
const LIMIT_VAR: &str = "SWITCHBOARD_LLM__MAX_CONCURRENCY";

/// Sizes and durations, from `SOAK_*` environment variables.
struct Options {
    customers: usize,
    messages: u64,
    warmup: u64,
    kill_at: u64,
    slow_connections: usize,
    llm_delay: Duration,
    turns_per_session: usize,
    telegram_users: usize,
    telegram_messages: usize,
    max_secs: u64,
    server_nofile: u64,
    llm_limit: usize,
    seed: u64,
    keep: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("soak: {name}={v} is not valid; using the default");
            default
        }),
        Err(_) => default,
    }
}

impl Options {
    fn from_env() -> Self {
        Self {
            customers: env_or("SOAK_CUSTOMERS", 50),
            messages: env_or("SOAK_MESSAGES", 10_000),
            warmup: env_or("SOAK_WARMUP", 1_000),
            kill_at: env_or("SOAK_KILL_AT", 1_000),
            slow_connections: env_or("SOAK_SLOW_CONNECTIONS", 500),
            llm_delay: Duration::from_millis(env_or("SOAK_LLM_DELAY_MS", 200)),
            turns_per_session: env_or("SOAK_TURNS_PER_SESSION", 10).max(1),
            telegram_users: env_or("SOAK_TELEGRAM_USERS", 10),
            telegram_messages: env_or("SOAK_TELEGRAM_MESSAGES", 12),
            max_secs: env_or("SOAK_MAX_SECS", 900),
            server_nofile: env_or("SOAK_SERVER_NOFILE", 1024),
            llm_limit: env_or(LIMIT_VAR, 4),
            seed: env_or("SOAK_SEED", 11),
            keep: std::env::var("SOAK_KEEP").is_ok_and(|v| !v.is_empty() && v != "0"),
        }
    }
}

/// What the clients saw, for the final block.
#[derive(Default)]
struct Tally {
    /// HTTP requests to `/api/chat/messages` (every attempt).
    web_requests: u64,
    /// Attempts that failed at the transport (refused, reset, timed out).
    transport_errors: u64,
    /// Responses by status.
    statuses: BTreeMap<u16, u64>,
    /// Sends of an already confirmed `id` (after the answer or at once).
    duplicate_sends: u64,
    /// Messages given up after [`RETRY_FOR`].
    gave_up: u64,
    /// Messages confirmed with 200, as `(channel, platform_message_id)`.
    confirmed: HashSet<(String, String)>,
    /// Hostile inputs: kind → status (0: transport error) → count.
    hostile: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    /// Telegram updates pushed, duplicates in a batch, replays.
    telegram_pushed: Vec<i64>,
    telegram_duplicates: u64,
    telegram_replays: u64,
    /// Slow connections closed by the server.
    slow_closed: u64,
    /// `/healthz` latencies while up (failed probes count as [`PROBE_TIMEOUT`]).
    probes: Vec<Duration>,
    probe_failures: u64,
    /// Open slow connections seen by the probes: sum (for the mean), min, max.
    slow_open_sum: u64,
    slow_open_min: Option<usize>,
    slow_open_max: usize,
}

/// Shared by every task of the run.
struct Shared {
    base: String,
    /// The server is (believed to be) serving; probes only count then.
    up: AtomicBool,
    /// The attack is over.
    stop: AtomicBool,
    /// The healthz window is open (slow connections opened, attack running).
    measuring: AtomicBool,
    /// Customer messages the server has confirmed.
    confirmed: AtomicU64,
    slow_open: AtomicUsize,
    tally: Mutex<Tally>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Options::from_env()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

/// The server process and how to start it again.
struct Server {
    bin: &'static str,
    config: PathBuf,
    log: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    nofile: u64,
    child: Option<Child>,
}

impl Server {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("server log {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        // The descriptor limit of a typical service (systemd's default soft
        // limit is 1024), so exhausting it shows; `exec` keeps the pid.
        let mut command = if self.nofile > 0 {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {} && exec \"$0\" \"$@\"", self.nofile))
                .arg(self.bin);
            c
        } else {
            Command::new(self.bin)
        };
        command
            .args(["--config", &self.config.to_string_lossy(), "run"])
            .current_dir(&self.dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("OPENAI_API_KEY")
            .env_remove("DISCORD_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true);
        self.child = Some(
            command
                .spawn()
                .map_err(|e| format!("starting {}: {e}", self.bin))?,
        );
        Ok(())
    }

    /// Waits until `/healthz` answers 200; `Err` with the log's tail when
    /// the process exits first or 120 s pass.
    async fn ready(&mut self, client: &reqwest::Client, base: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "switchboard run exited ({status}) before serving:\n{}",
                    self.log_tail(20)
                ));
            }
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "switchboard run did not serve /healthz within 120 s:\n{}",
            self.log_tail(20)
        ))
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill(); // SIGKILL
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, up to 20 s for a clean exit, then SIGKILL.
    async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                eprintln!("soak: server did not stop within 20 s of SIGTERM; killing it");
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    }

    /// The soft limit on open files of the running server.
    fn open_files_limit(&self) -> Option<String> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid()?)).ok()?;
        limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_string)
    }

    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Questions a customer might ask, from the bundled articles' titles.
fn questions(kb: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md")
                && let Ok(text) = std::fs::read_to_string(&path)
                && let Some(title) = text.lines().find_map(|l| l.strip_prefix("title:"))
            {
                out.push(title.trim().trim_matches('"').to_lowercase());
            }
        }
    }
    let mut titles = Vec::new();
    walk(kb, &mut titles);
    titles.sort();
    // Titles that read as "it does not work" or "a person, please" lead to a
    // hand-off, after which the bot rightly stays silent.
    titles.retain(|t| !t.contains("not working") && !t.contains("support"));
    let forms = [
        "How do I {}?",
        "Can you explain {}",
        "I have a question about {}",
        "Where do I find {} in the app?",
    ];
    let mut out = Vec::new();
    for form in forms {
        for t in &titles {
            out.push(form.replace("{}", t));
        }
    }
    out
}

/// A text built to trip anything that cuts, lower-cases or renders text.
fn hostile_text(rng: &mut StdRng, questions: &[String]) -> String {
    const PIECES: &[&str] = &[
        "\u{212A}",
        "\u{0130}",
        "ß",
        "\u{FB03}",
        "\u{202E}",
        "\u{200F}",
        "שלום",
        "مرحبا",
        "\0",
        "\u{0301}",
        "e\u{0301}\u{0302}\u{0303}",
        "\u{0336}\u{0336}\u{0336}",
        "👩\u{200D}👩\u{200D}👧",
        "\u{FEFF}",
        "\u{FFFD}",
        "ǅ",
        "Σ",
        "𝔘𝔫𝔦",
        "\r\n",
        "<b>",
        "&amp;",
        "@switchboard_bot",
        "</question>",
        "\u{212A}@switchboard_bot",
    ];
    let mut text = String::new();
    if rng.random_bool(0.5) {
        text.push_str(PIECES.choose(rng).unwrap());
    }
    text.push_str(questions.choose(rng).unwrap());
    for _ in 0..rng.random_range(1..30) {
        text.push_str(PIECES.choose(rng).unwrap());
        if rng.random_bool(0.3) {
            text.push(' ');
        }
    }
    text
}

enum Sent {
    /// HTTP 200 and its body.
    Confirmed(Value),
    /// A status the client should not retry.
    Rejected,
    /// Retried for [`RETRY_FOR`] (or `attempts`) without an answer.
    GaveUp,
}

/// POSTs one message, retrying (same body, same `id`) on transport errors,
/// 5xx and 429 until confirmed, rejected or out of time/attempts.
async fn send(
    sh: &Shared,
    client: &reqwest::Client,
    body: &[u8],
    attempts: usize,
    hostile: Option<&'static str>,
) -> Sent {
    let started = Instant::now();
    let url = format!("{}/api/chat/messages", sh.base);
    for _ in 0..attempts {
        if started.elapsed() > RETRY_FOR {
            break;
        }
        sh.tally().web_requests += 1;
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(_) => {
                sh.tally().transport_errors += 1;
                if let Some(kind) = hostile {
                    *sh.tally()
                        .hostile
                        .entry(kind)
                        .or_default()
                        .entry(0)
                        .or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        {
            let mut t = sh.tally();
            *t.statuses.entry(status).or_default() += 1;
            if let Some(kind) = hostile {
                *t.hostile
                    .entry(kind)
                    .or_default()
                    .entry(status)
                    .or_default() += 1;
            }
        }
        match status {
            200 => {
                return match response.json::<Value>().await {
                    Ok(v) => Sent::Confirmed(v),
                    // A 200 whose body broke off: the server took the message.
                    Err(_) => Sent::Confirmed(Value::Null),
                };
            }
            429 | 503 => {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(Duration::from_millis(500), |s| {
                        Duration::from_secs(s.clamp(1, 10))
                    });
                tokio::time::sleep(wait).await;
            }
            500..=599 => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => return Sent::Rejected,
        }
    }
    sh.tally().gave_up += 1;
    Sent::GaveUp
}

fn confirm(sh: &Shared, channel: &str, platform_id: String) {
    if sh
        .tally()
        .confirmed
        .insert((channel.to_string(), platform_id))
    {
        sh.confirmed.fetch_add(1, Ordering::SeqCst);
    }
}

/// One web customer after another on this worker, until the attack stops.
async fn customer(
    sh: Arc<Shared>,
    client: reqwest::Client,
    worker: usize,
    questions: Arc<Vec<String>>,
    turns: usize,
) {
    let mut n = 0usize;
    let mut sent = 0usize;
    while !sh.stopped() {
        let session = format!("soak{worker:03}x{n:06}");
        n += 1;
        for turn in 0..turns {
            if sh.stopped() {
                return;
            }
            sent += 1;
            // Consecutive questions differ (the same one three times in a row
            // is a hand-off by design).
            let q = &questions[(worker * 7 + n * 3 + turn) % questions.len()];
            let id = format!("m{turn}");
            let body =
                serde_json::to_vec(&json!({"session": session, "text": q, "id": id})).unwrap();
            let concurrent_duplicate = sent % 10 == 7;
            let outcome = if concurrent_duplicate {
                let (a, b) = tokio::join!(
                    send(&sh, &client, &body, usize::MAX, None),
                    send(&sh, &client, &body, usize::MAX, None)
                );
                sh.tally().duplicate_sends += 1;
                match (a, b) {
                    (Sent::Confirmed(v), _) | (_, Sent::Confirmed(v)) => Sent::Confirmed(v),
                    (a, _) => a,
                }
            } else {
                send(&sh, &client, &body, usize::MAX, None).await
            };
            let Sent::Confirmed(reply) = outcome else {
                continue;
            };
            confirm(&sh, "web", format!("{session}:{id}"));
            if sent % 10 == 3 {
                // The client did not see the answer and sends again.
                sh.tally().duplicate_sends += 1;
                let _ = send(&sh, &client, &body, usize::MAX, None).await;
            }
            if reply["reply"]["handoff"] == json!(true) {
                break; // with a person now; the next customer starts
            }
        }
    }
}

/// Oversized and random-Unicode inputs, each from a new session, until the
/// attack stops (oversized ones at most `rounds` times).
async fn hostile(
    sh: Arc<Shared>,
    client: reqwest::Client,
    questions: Arc<Vec<String>>,
    seed: u64,
    rounds: usize,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0usize;
    let mut round = 0usize;
    while !sh.stopped() {
        n += 1;
        let session = format!("hostile{n:07}");
        let id = format!("h{n}");
        let oversized = n.is_multiple_of(20) && round < rounds;
        let cases: Vec<(&'static str, Vec<u8>, String)> = if oversized {
            round += 1;
            let big_id = "i".repeat(1_500_000);
            let big_text = "how do I export my notes ".repeat(100_000 / 25);
            vec![
                (
                    "1.5 MB id",
                    serde_json::to_vec(&json!({"session": session, "text": "How do I reset my password?", "id": big_id})).unwrap(),
                    big_id.clone(),
                ),
                (
                    "10 MB body",
                    serde_json::to_vec(&json!({"session": format!("{session}b"), "text": "a".repeat(10 << 20), "id": id})).unwrap(),
                    id.clone(),
                ),
                (
                    "100 KB text",
                    serde_json::to_vec(&json!({"session": format!("{session}c"), "text": big_text, "id": id})).unwrap(),
                    id.clone(),
                ),
            ]
        } else if n % 20 == 10 {
            // A lone surrogate: not valid UTF-16, so not valid JSON text.
            let raw = format!(
                r#"{{"session": "{session}", "text": "\ud800 how do I sync?", "id": "{id}"}}"#
            );
            vec![("lone surrogate", raw.into_bytes(), id.clone())]
        } else {
            let text = hostile_text(&mut rng, &questions);
            vec![(
                "random Unicode",
                serde_json::to_vec(&json!({"session": session, "text": text, "id": id})).unwrap(),
                id.clone(),
            )]
        };
        for (i, (kind, body, id)) in cases.into_iter().enumerate() {
            let session = match i {
                0 => session.clone(),
                1 => format!("{session}b"),
                _ => format!("{session}c"),
            };
            if let Sent::Confirmed(_) = send(&sh, &client, &body, 3, Some(kind)).await {
                confirm(&sh, "web", format!("{session}:{id}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One slow-header connection, reopened when the server closes it.
async fn slow_connection(sh: Arc<Shared>, addr: String, start_after: Duration) {
    tokio::time::sleep(start_after).await;
    const REQUEST: &[u8] = b"POST /api/chat/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ";
    while !sh.stopped() {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        sh.slow_open.fetch_add(1, Ordering::SeqCst);
        let mut sent = 0usize;
        let mut buf = [0u8; 256];
        let closed = loop {
            if sh.stopped() {
                break false;
            }
            // The request line and headers one byte at a time, never the
            // blank line that ends them.
            let byte = if sent < REQUEST.len() {
                REQUEST[sent]
            } else {
                b'a'
            };
            if stream.write_all(&[byte]).await.is_err() {
                break true;
            }
            sent += 1;
            tokio::select! {
                read = stream.read(&mut buf) => {
                    // EOF, an error, or a response (408/400) ends it.
                    let _ = read;
                    break true;
                }
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        };
        sh.slow_open.fetch_sub(1, Ordering::SeqCst);
        if closed {
            // Closed by the server itself, not by the kill -9.
            if sh.up.load(Ordering::SeqCst) {
                sh.tally().slow_closed += 1;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `/healthz` every 50 ms on a fresh connection, counted while the server
/// is up and the attack runs.
async fn prober(sh: Arc<Shared>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(PROBE_TIMEOUT)
        .build()
        .unwrap();
    let url = format!("{}/healthz", sh.base);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !sh.stopped() {
        tick.tick().await;
        let counted = || sh.up.load(Ordering::SeqCst) && sh.measuring.load(Ordering::SeqCst);
        if !counted() {
            continue;
        }
        let open = sh.slow_open.load(Ordering::SeqCst);
        let started = Instant::now();
        let ok = matches!(client.get(&url).send().await, Ok(r) if r.status() == 200);
        let took = if ok { started.elapsed() } else { PROBE_TIMEOUT };
        if counted() {
            let mut t = sh.tally();
            t.probes.push(took);
            if !ok {
                t.probe_failures += 1;
            }
            t.slow_open_sum += open as u64;
            t.slow_open_min = Some(t.slow_open_min.map_or(open, |m| m.min(open)));
            t.slow_open_max = t.slow_open_max.max(open);
        }
    }
}

/// One Telegram customer in a private chat: a message, then waits (at most
/// 60 s) for the bot to start answering before the next. Some updates are
/// delivered twice in one batch, some replayed after confirmation.
async fn telegram_user(
    sh: Arc<Shared>,
    fake: Arc<telegram_fake::Fake>,
    next_update: Arc<AtomicI64>,
    user: usize,
    count: usize,
    questions: Arc<Vec<String>>,
) {
    let chat = 7_000_000 + user as i64;
    let sends_to_chat = |fake: &telegram_fake::Fake| {
        fake.calls_of("sendmessage")
            .iter()
            .filter(|p| p["chat_id"].as_i64() == Some(chat))
            .count()
    };
    for k in 0..count {
        if sh.stopped() {
            return;
        }
        let update_id = next_update.fetch_add(1, Ordering::SeqCst);
        let text = &questions[(user * 5 + k) % questions.len()];
        let update = telegram_fake::message_update(
            update_id,
            telegram_fake::message(
                k as i64 + 1,
                telegram_fake::private_chat(chat),
                telegram_fake::user(chat, "Soak"),
                text,
            ),
        );
        let before = sends_to_chat(&fake);
        fake.push(update.clone());
        {
            let mut t = sh.tally();
            t.telegram_pushed.push(update_id);
            if k % 3 == 0 {
                t.telegram_duplicates += 1;
            }
        }
        if k % 3 == 0 {
            fake.push(update.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while sends_to_chat(&fake) <= before && Instant::now() < deadline && !sh.stopped() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if k % 4 == 1 {
            fake.replay(update);
            sh.tally().telegram_replays += 1;
        }
    }
}

/// Reads every message and matches answers to questions (see the module
/// documentation); `confirmed` are the `(channel, platform_message_id)`
/// the server confirmed.
async fn count(db: &Path, confirmed: &HashSet<(String, String)>) -> Result<Counts, String> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .map_err(|e| format!("opening {}: {e}", db.display()))?;
    let rows = sqlx::query(
        "SELECT conversation_id, role, channel, platform_message_id FROM messages ORDER BY conversation_id, seq",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| format!("reading messages: {e}"))?;
    pool.close().await;
    let mut c = Counts::default();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut unanswered: Vec<Option<(String, String)>> = Vec::new();
    let mut pending: std::collections::VecDeque<Option<(String, String)>> = Default::default();
    let mut current = String::new();
    let mut flush = |pending: &mut std::collections::VecDeque<Option<(String, String)>>| {
        unanswered.extend(pending.drain(..));
    };
    for row in rows {
        let conversation: String = row.get(0);
        let role: String = row.get(1);
        let channel: String = row.get(2);
        let platform: Option<String> = row.get(3);
        if conversation != current {
            flush(&mut pending);
            current = conversation;
        }
        match role.as_str() {
            "customer" => {
                c.customer += 1;
                let key = platform.map(|p| (channel, p));
                if let Some(key) = &key {
                    *seen.entry(key.clone()).or_default() += 1;
                }
                pending.push_back(key);
            }
            "bot" => {
                c.bot += 1;
                match pending.pop_front() {
                    Some(_) => c.answered += 1,
                    None => c.extra_answers += 1,
                }
            }
            _ => {}
        }
    }
    flush(&mut pending);
    c.stored_twice = seen.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    let unanswered: HashSet<(String, String)> = unanswered.into_iter().flatten().collect();
    for key in confirmed {
        match seen.get(key) {
            None => c.lost_not_stored += 1,
            Some(_) if unanswered.contains(key) => c.lost_unanswered += 1,
            Some(_) => {}
        }
    }
    Ok(c)
}

/// What the database holds.
#[derive(Default)]
struct Counts {
    /// Customer messages stored.
    customer: u64,
    /// Bot messages stored.
    bot: u64,
    /// Customer messages a bot message answers.
    answered: u64,
    /// Bot messages with no customer message left to answer.
    extra_answers: u64,
    /// Customer messages stored more than once (same platform id).
    stored_twice: u64,
    /// Confirmed messages that are not in the database.
    lost_not_stored: u64,
    /// Confirmed messages stored but never answered.
    lost_unanswered: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

async fn run(o: Options) -> Result<bool, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let questions = Arc::new(questions(&repo.join("knowledge-base")));
    if questions.is_empty() {
        return Err("no article titles found in knowledge-base/".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("switchboard-soak-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?;
    let path = dir.path().to_path_buf();
    let db = path.join("soak.db");

    // The fakes, in this process.
    let (llm, llm_url) = openai_fake::start().await;
    let chunks = [
        "To do that, open ",
        "Settings, choose the option ",
        "and confirm. ",
        "It takes effect at once.",
    ];
    llm.script([openai_fake::Script::Slow(
        chunks.iter().map(|c| c.to_string()).collect(),
        o.llm_delay / chunks.len() as u32,
    )]);
    let (telegram, telegram_url) = telegram_fake::start().await;

    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let config = path.join("soak.toml");
    std::fs::write(
        &config,
        "# Empty: the soak run configures switchboard with SWITCHBOARD_* variables.\n",
    )
    .map_err(|e| format!("writing {}: {e}", config.display()))?;
    let mut env: Vec<(String, String)> = [
        (
            "SWITCHBOARD_DATABASE__URL",
            format!("sqlite://{}", db.display()),
        ),
        (
            "SWITCHBOARD_KNOWLEDGE_BASE__PATH",
            repo.join("knowledge-base").display().to_string(),
        ),
        (
            "SWITCHBOARD_KNOWLEDGE_BASE__INDEX_PATH",
            path.join("index").display().to_string(),
        ),
        ("SWITCHBOARD_KNOWLEDGE_BASE__WATCH", "false".into()),
        (
            "SWITCHBOARD_PROMPTS__PATH",
            repo.join("prompts").display().to_string(),
        ),
        ("SWITCHBOARD_WEB__LISTEN", format!("127.0.0.1:{port}")),
        // Every simulated customer comes from 127.0.0.1, as behind a proxy:
        // the per-IP limit would otherwise hold the whole run to ~2 msg/s.
        ("SWITCHBOARD_WEB__IP_REQUESTS_PER_MINUTE", "1000000".into()),
        ("SWITCHBOARD_WEB__IP_BURST", "100000".into()),
        ("SWITCHBOARD_LLM__BASE_URL", llm_url),
        ("SWITCHBOARD_LLM__MODEL", "soak-model".into()),
        ("SWITCHBOARD_TELEGRAM__ENABLED", "true".into()),
        ("SWITCHBOARD_TELEGRAM__API_URL", telegram_url),
        ("SWITCHBOARD_DISCORD__ENABLED", "false".into()),
        ("TELEGRAM_BOT_TOKEN", telegram_fake::TOKEN.into()),
        (LIMIT_VAR, o.llm_limit.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let mut server = Server {
        bin: env!("CARGO_BIN_EXE_switchboard"),
        config,
        log: path.join("server.log"),
        dir: path.clone(),
        env: env.clone(),
        nofile: o.server_nofile,
        child: None,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(o.customers + 8)
        .build()
        .map_err(|e| e.to_string())?;

    eprintln!(
        "soak: starting {} (log: {})",
        server.bin,
        server.log.display()
    );
    server.spawn()?;
    let mut limit_known = true;
    if let Err(e) = server.ready(&client, &base).await {
        if e.contains("llm.max_concurrency") {
            eprintln!(
                "soak: this build does not know llm.max_concurrency; running without {LIMIT_VAR} (its target fails)"
            );
            limit_known = false;
            env.retain(|(k, _)| k != LIMIT_VAR);
            server.env = env.clone();
            server.spawn()?;
            server.ready(&client, &base).await?;
        } else {
            return Err(e);
        }
    }

    let sh = Arc::new(Shared {
        base: base.clone(),
        up: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(false),
        confirmed: AtomicU64::new(0),
        slow_open: AtomicUsize::new(0),
        tally: Mutex::new(Tally::default()),
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.max_secs);

    // The attack.
    let mut tasks = Vec::new();
    let addr = format!("127.0.0.1:{port}");
    let mut slow = Vec::new();
    for i in 0..o.slow_connections {
        // Opened over the first second.
        let after =
            Duration::from_micros((i as u64 * 1_000_000) / o.slow_connections.max(1) as u64);
        slow.push(tokio::spawn(slow_connection(
            sh.clone(),
            addr.clone(),
            after,
        )));
    }
    let probe = tokio::spawn(prober(sh.clone()));
    for w in 0..o.customers {
        tasks.push(tokio::spawn(customer(
            sh.clone(),
            client.clone(),
            w,
            questions.clone(),
            o.turns_per_session,
        )));
    }
    let hostile_task = tokio::spawn(hostile(
        sh.clone(),
        client.clone(),
        questions.clone(),
        o.seed,
        20,
    ));
    let next_update = Arc::new(AtomicI64::new(1));
    let mut telegram_tasks = Vec::new();
    for u in 0..o.telegram_users {
        telegram_tasks.push(tokio::spawn(telegram_user(
            sh.clone(),
            telegram.clone(),
            next_update.clone(),
            u,
            o.telegram_messages,
            questions.clone(),
        )));
    }
    // Healthz counts once the slow connections are open.
    let open_deadline = Instant::now() + Duration::from_secs(10);
    while sh.slow_open.load(Ordering::SeqCst) < o.slow_connections && Instant::now() < open_deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "soak: {} slow connections open; {} customers, {} Telegram users, hostile inputs running",
        sh.slow_open.load(Ordering::SeqCst),
        o.customers,
        o.telegram_users
    );
    sh.measuring.store(true, Ordering::SeqCst);

    let wait_for = |target: u64| {
        let sh = sh.clone();
        async move {
            while sh.confirmed.load(Ordering::SeqCst) < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sh.confirmed.load(Ordering::SeqCst) >= target
        }
    };

    // kill -9 in the middle of traffic, restart on the same database.
    let mut killed_at = None;
    let mut restart_took = None;
    if wait_for(o.kill_at).await {
        let in_flight = llm.in_flight.load(Ordering::SeqCst);
        sh.up.store(false, Ordering::SeqCst);
        server.kill9().await;
        killed_at = Some((sh.confirmed.load(Ordering::SeqCst), in_flight));
        eprintln!(
            "soak: killed the server with SIGKILL after {} confirmed messages ({in_flight} model calls in flight); restarting",
            killed_at.unwrap().0
        );
        let t = Instant::now();
        server.spawn()?;
        server.ready(&client, &base).await?;
        restart_took = Some(t.elapsed());
        sh.up.store(true, Ordering::SeqCst);
    }

    // RSS after warm-up, then after `messages` more.
    let warm = sh.confirmed.load(Ordering::SeqCst) + o.warmup;
    let mut rss_start = None;
    let mut rss_end = None;
    let mut measured = 0;
    let mut rss_samples = Vec::new();
    let nofile = server.open_files_limit();
    if wait_for(warm).await {
        rss_start = server.rss_kb();
        let from = sh.confirmed.load(Ordering::SeqCst);
        eprintln!(
            "soak: warmed up; RSS {} kB; now {} messages",
            rss_start.unwrap_or(0),
            o.messages
        );
        // Samples on the way show a trend (a leak grows steadily).
        for quarter in 1..=4 {
            wait_for(from + o.messages * quarter / 4).await;
            if let Some(kb) = server.rss_kb() {
                rss_samples.push(kb);
            }
        }
        rss_end = server.rss_kb();
        measured = sh.confirmed.load(Ordering::SeqCst) - from;
    }
    let timed_out = Instant::now() >= deadline;
    if timed_out {
        eprintln!(
            "soak: SOAK_MAX_SECS ({}) reached; stopping the attack",
            o.max_secs
        );
    }
    sh.measuring.store(false, Ordering::SeqCst);
    let slow_open_at_end = sh.slow_open.load(Ordering::SeqCst);

    // The Kelvin-sign group message, last (on 26c94df it stops the Telegram
    // channel for good).
    let kelvin_id = next_update.fetch_add(1, Ordering::SeqCst);
    telegram.push(telegram_fake::message_update(
        kelvin_id,
        telegram_fake::message(
            1,
            telegram_fake::group_chat(-100_777, false),
            telegram_fake::user(8_000_001, "Kelvin"),
            "\u{212A}@switchboard_bot how do I export my notes?",
        ),
    ));
    sh.tally().telegram_pushed.push(kelvin_id);

    // Stop: customers finish the message in hand (bounded by RETRY_FOR).
    sh.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let _ = hostile_task.await;
    for t in telegram_tasks {
        let _ = t.await;
    }
    for t in slow {
        t.abort();
    }
    probe.abort();
    // Telegram answers come asynchronously: wait (bounded) until the server
    // confirmed everything pushed and the model is idle.
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        let confirmed = telegram.confirmed_below.load(Ordering::SeqCst);
        if confirmed > kelvin_id && llm.in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exit = server.stop().await;
    let elapsed = started.elapsed();

    // Telegram updates the server confirmed.
    let confirmed_below = telegram.confirmed_below.load(Ordering::SeqCst);
    let tally = std::mem::take(&mut *sh.tally());
    let mut confirmed = tally.confirmed.clone();
    let mut telegram_unconfirmed = 0;
    for id in &tally.telegram_pushed {
        if *id < confirmed_below {
            confirmed.insert(("telegram".into(), format!("update:{id}")));
        } else {
            telegram_unconfirmed += 1;
        }
    }
    let c = count(&db, &confirmed).await?;

    let mut probes = tally.probes.clone();
    probes.sort();
    let p50 = percentile(&probes, 50.0);
    let p99 = percentile(&probes, 99.0);
    let peak = llm.peak.load(Ordering::SeqCst);
    let lost = c.lost_not_stored + c.lost_unanswered;
    let duplicated = c.extra_answers + c.stored_twice;
    let growth_kb = match (rss_start, rss_end) {
        (Some(a), Some(b)) => Some(b as i64 - a as i64),
        _ => None,
    };
    let ms = |d: Option<Duration>| {
        d.map_or("n/a".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1000.0)
        })
    };
    let mb = |kb: Option<u64>| {
        kb.map_or("n/a".to_string(), |kb| {
            format!("{:.1} MB", kb as f64 / 1024.0)
        })
    };

    let lost_ok = lost == 0;
    let dup_ok = duplicated == 0;
    let llm_ok = limit_known && peak <= o.llm_limit;
    let rss_ok = measured >= o.messages && growth_kb.is_some_and(|g| g < 10 * 1024);
    // A server that closes slow connections is defending itself: the
    // attackers reopen them, and the figure above shows how many stay open.
    let health_ok = p99.is_some_and(|p| p < Duration::from_millis(100));

    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("== switchboard soak ==".into());
    line(format!(
        "run: {:.0} s; {} customers, {} slow connections, model {} ms per answer, server open-files limit {}, {LIMIT_VAR}={}{}",
        elapsed.as_secs_f64(),
        o.customers,
        o.slow_connections,
        o.llm_delay.as_millis(),
        nofile.as_deref().unwrap_or("unknown"),
        o.llm_limit,
        if limit_known {
            ""
        } else {
            " (unknown to this build: not passed)"
        }
    ));
    line(format!(
        "requests sent: {} web (statuses {:?}; {} transport errors; {} sends of an id already sent; {} given up), {} Telegram updates (+{} duplicated in a batch, +{} replayed)",
        tally.web_requests,
        tally.statuses,
        tally.transport_errors,
        tally.duplicate_sends,
        tally.gave_up,
        tally.telegram_pushed.len(),
        tally.telegram_duplicates,
        tally.telegram_replays,
    ));
    line(format!(
        "confirmed by the server: {} messages ({} web, {} Telegram); {} Telegram updates never confirmed",
        confirmed.len(),
        tally.confirmed.len(),
        confirmed.len() - tally.confirmed.len(),
        telegram_unconfirmed
    ));
    line(format!(
        "answers stored: {} of {} customer messages stored ({} bot messages)",
        c.answered, c.customer, c.bot
    ));
    line(format!(
        "lost: {lost} ({} confirmed but not stored, {} stored but never answered)",
        c.lost_not_stored, c.lost_unanswered
    ));
    line(format!(
        "duplicated: {duplicated} ({} extra answers, {} messages stored twice)",
        c.extra_answers, c.stored_twice
    ));
    line(format!("peak concurrent LLM calls: {peak}"));
    line(format!(
        "RSS: {} after warm-up, {} after {measured} more messages ({}; at each quarter: {})",
        mb(rss_start),
        mb(rss_end),
        growth_kb.map_or("n/a".into(), |g| format!("{:+.1} MB", g as f64 / 1024.0)),
        rss_samples
            .iter()
            .map(|kb| mb(Some(*kb)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    line(format!(
        "/healthz during the attack: p50 {}, p99 {} over {} probes ({} failed or over {} s); slow connections open at the probes: mean {}, min {}, max {} (closed by the server: {}; open at the end: {slow_open_at_end})",
        ms(p50),
        ms(p99),
        probes.len(),
        tally.probe_failures,
        PROBE_TIMEOUT.as_secs(),
        tally.slow_open_sum / (probes.len().max(1) as u64),
        tally.slow_open_min.unwrap_or(0),
        tally.slow_open_max,
        tally.slow_closed,
    ));
    let hostile: Vec<String> = tally
        .hostile
        .iter()
        .map(|(k, v)| {
            let v: Vec<String> = v
                .iter()
                .map(|(s, n)| {
                    if *s == 0 {
                        format!("transport error ×{n}")
                    } else {
                        format!("{s} ×{n}")
                    }
                })
                .collect();
            format!("{k}: {}", v.join(", "))
        })
        .collect();
    line(format!("hostile inputs: {}", hostile.join("; ")));
    if let Some((at, in_flight)) = killed_at {
        line(format!(
            "kill -9: after {at} confirmed messages with {in_flight} model calls in flight; serving again after {}",
            ms(restart_took)
        ));
    } else {
        line("kill -9: not reached (SOAK_MAX_SECS)".into());
    }
    line(format!(
        "server exit after SIGTERM: {}",
        exit.map_or("unknown".into(), |s| s.to_string())
    ));
    line(format!("target 0 lost: {}", verdict(lost_ok)));
    line(format!("target 0 duplicated: {}", verdict(dup_ok)));
    line(format!(
        "target peak LLM calls <= llm.max_concurrency ({}): {}{}",
        o.llm_limit,
        verdict(llm_ok),
        if limit_known {
            ""
        } else {
            " (llm.max_concurrency is not a key of this build)"
        }
    ));
    line(format!(
        "target RSS growth < 10 MB over {} messages after warm-up: {}{}",
        o.messages,
        verdict(rss_ok),
        if measured < o.messages {
            format!(" (only {measured} messages measured)")
        } else {
            String::new()
        }
    ));
    line(format!(
        "target /healthz p99 < 100 ms with {} slow connections open: {}",
        o.slow_connections,
        verdict(health_ok)
    ));
    print!("{out}");
    let _ = std::io::stdout().flush();

    let pass = lost_ok && dup_ok && llm_ok && rss_ok && health_ok;
    if o.keep {
        let kept = dir.keep();
        eprintln!("soak: kept {} (database, server.log)", kept.display());
    } else if !pass {
        eprintln!("soak: server log tail:\n{}", server.log_tail(15));
    }
    Ok(pass)
}
