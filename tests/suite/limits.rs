//! Limits, web durability and security headers, against the running app
//! (real HTTP, the real async-openai client and the local fake model).

use crate::common;

use std::sync::Once;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Kb, Options, Screen, TestApp, openai_fake, spawn_app};
use openai_fake::Script;
use switchboard::assistant::{Action, Turn};
use switchboard::clock::{ManualClock, SharedClock};
use switchboard::conversation::Status;
use switchboard::store::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "limits-agent-token";
const START: i64 = 1_795_000_000_000;
const QUESTION: &str = "How do I get a refund?";

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        // SAFETY: every test calls this first, before anything reads this
        // variable.
        unsafe { std::env::set_var("LIMITS_AGENT_TOKEN", TOKEN) };
    });
}

/// The warnings one test's app logs, kept apart from every other test's:
/// its subscriber is the default on the threads of the test's own runtime
/// only, not installed for the whole process (the tests of every area
/// share one process).
struct Log(Screen);

impl Log {
    /// Runs `test` on a runtime whose threads log warnings to the
    /// returned log.
    fn capture<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> Log {
        let screen = Screen::default();
        let writer = screen.clone();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_env_filter("warn")
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        let on_start = dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // For the thread's life: the runtime's threads end with it.
                std::mem::forget(tracing::dispatcher::set_default(&on_start));
            })
            .build()
            .unwrap();
        let _here = tracing::dispatcher::set_default(&dispatch);
        runtime.block_on(test());
        drop(runtime);
        Log(screen)
    }

    /// How many lines hold `needle`.
    fn lines(&self, needle: &str) -> usize {
        self.0.text().lines().filter(|l| l.contains(needle)).count()
    }
}

/// Sets up the environment; [`Scratch::settings`] describes an app.
struct Scratch;

impl Scratch {
    fn new() -> Self {
        init();
        Scratch
    }

    /// The harness's app with `llm` and `web` as keys of those tables,
    /// `extra` more tables, and agent Alice.
    fn settings(&self, llm: &str, web: &str, extra: &str) -> Options {
        Options::new()
            .kb(Kb::Empty)
            .article(common::REFUNDS_PATH, common::REFUNDS)
            .settings(format!(
                "[llm]\n{llm}\n[web]\n{web}\n[[agents]]\nname = \"alice\"\ntoken_env = \"LIMITS_AGENT_TOKEN\"\n"
            ))
            .settings(extra)
    }
}

/// `[llm]` keys for the fake model at `base`.
fn model(base: &str) -> String {
    format!("base_url = \"{base}\"\nmodel = \"gpt-test\"\n")
}

/// Per-IP limits no test client reaches (every client is 127.0.0.1).
const ROOMY: &str = "ip_burst = 10000\nip_requests_per_minute = 60000\n";

async fn start(options: Options, clock: SharedClock) -> TestApp {
    spawn_app(options.clock(clock)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn post(base: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{base}/api/chat/messages"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn turn(customer: &str, thread: &str, text: &str) -> Turn {
    Turn {
        channel: "test".into(),
        customer_id: customer.into(),
        customer_name: None,
        thread: thread.into(),
        platform_message_id: None,
        text: text.into(),
    }
}

fn busy_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/busy.md"))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_calls_in_flight_never_exceed_max_concurrency() {
    let scratch = Scratch::new();
    let (fake, base) = openai_fake::start().await;
    let pause = Duration::from_millis(400);
    fake.script([Script::Slow(
        vec![
            "Open Settings → Billing → Refund ".into(),
            "within 14 days [1].".into(),
        ],
        pause,
    )]);
    let settings = scratch.settings(
        &format!("{}max_concurrency = 2\nmax_queue = 3\n", model(&base)),
        ROOMY,
        "",
    );
    let app = start(settings, switchboard::clock::system()).await;

    let customers = 12;
    let mut asks = Vec::new();
    for i in 0..customers {
        let base = app.base().to_string();
        asks.push(tokio::spawn(async move {
            post(
                &base,
                serde_json::json!({"session": format!("crowd-session-{i:03}"), "text": QUESTION, "id": "q1"}),
            )
            .await
        }));
    }
    let busy = busy_text();
    let (mut answered, mut told_busy) = (0, 0);
    for ask in asks {
        let (status, json) = ask.await.unwrap();
        assert_eq!(status, 200, "{json}");
        let text = json["reply"]["text"].as_str().expect("a reply").to_string();
        if text == busy {
            told_busy += 1;
        } else {
            assert_eq!(json["reply"]["mode"], "llm", "{json}");
            answered += 1;
        }
    }
    let peak = fake.peak.load(Ordering::SeqCst);
    assert!(peak <= 2, "{peak} model calls at once; the limit is 2");
    assert!(answered >= 2, "answered {answered}");
    assert!(
        told_busy >= 1,
        "nobody was told to wait (answered {answered})"
    );
    assert_eq!(answered + told_busy, customers);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_over_the_message_rate_is_told_once_and_nothing_more_is_stored() {
    let scratch = Scratch::new();
    let clock = ManualClock::new(START);
    let app = start(
        scratch.settings("", ROOMY, "[assistant]\nmax_messages_per_minute = 3\n"),
        clock.clone(),
    )
    .await;
    let assistant = app.core.assistant.clone();
    let mut replies = Vec::new();
    for i in 0..6 {
        replies.push(
            assistant
                .handle(turn("flooder", "t", &format!("hello number {i}")), None)
                .await
                .unwrap(),
        );
    }
    let slow_down =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/slow_down.md"))
            .unwrap();
    assert!(replies[..3].iter().all(|r| !r.is_silent()));
    assert_eq!(replies[3].answer, slow_down.trim());
    assert!(
        replies[4..]
            .iter()
            .all(|r| r.action == Action::Limited && r.is_silent())
    );
    let conversation = &replies[0].conversation_id;
    let stored = app.core.store.messages(conversation).await.unwrap();
    let customer = stored.iter().filter(|m| m.role == Role::Customer).count();
    assert_eq!(customer, 3, "only messages within the limit are stored");
    // Someone else is not limited; and a minute later the flooder neither.
    let other = assistant
        .handle(turn("calm", "t", "hello"), None)
        .await
        .unwrap();
    assert!(!other.is_silent());
    clock.advance(60_000);
    let later = assistant
        .handle(turn("flooder", "t", "hello again"), None)
        .await
        .unwrap();
    assert!(!later.is_silent() && later.answer != slow_down.trim());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_holds_one_place_in_the_queue() {
    let scratch = Scratch::new();
    let app = start(scratch.settings("", ROOMY, ""), ManualClock::new(START)).await;
    let assistant = app.core.assistant.clone();
    let first = assistant
        .handle(turn("twice", "thread-a", "/human"), None)
        .await
        .unwrap();
    assert!(matches!(first.action, Action::HandOff(_)));
    let second = assistant
        .handle(turn("twice", "thread-b", "/human"), None)
        .await
        .unwrap();
    assert!(!matches!(second.action, Action::HandOff(_)), "{second:?}");
    let already = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/prompts/already_waiting.md"
    ))
    .unwrap();
    assert_eq!(second.answer, already.trim());
    let store = &app.core.store;
    assert_eq!(
        store
            .conversation(&second.conversation_id)
            .await
            .unwrap()
            .status,
        Status::Bot
    );
    let queue = app.core.desk.queue().await.unwrap();
    assert_eq!(
        serde_json::to_value(&queue)
            .unwrap()
            .as_array()
            .map(Vec::len),
        Some(1),
        "one waiting conversation: {}",
        serde_json::to_value(&queue).unwrap()
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_web_handoffs_are_rate_limited() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings("", &format!("{ROOMY}handoffs_per_minute = 3\n"), ""),
        ManualClock::new(START),
    )
    .await;
    let mut handed = 0;
    let mut refused = 0;
    let busy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/prompts/handoff_busy.md"
    ))
    .unwrap();
    for i in 0..8 {
        let (status, json) = post(
            app.base(),
            serde_json::json!({"session": format!("anon-session-{i}"), "text": "/human"}),
        )
        .await;
        assert_eq!(status, 200);
        if json["reply"]["handoff"] == true {
            handed += 1;
        } else {
            assert_eq!(json["reply"]["text"], busy.trim(), "{json}");
            refused += 1;
        }
    }
    assert_eq!((handed, refused), (3, 5));
    let queue = serde_json::to_value(app.core.desk.queue().await.unwrap()).unwrap();
    assert_eq!(queue.as_array().map(Vec::len), Some(3), "{queue}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_answer_429_with_json_and_count_the_agent_api_apart() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings("", "ip_burst = 5\nip_requests_per_minute = 1\n", ""),
        ManualClock::new(START),
    )
    .await;
    let http = client();
    let url = format!("{}/api/chat/updates?session=ip-limited-1", app.base());
    let mut limited = None;
    for _ in 0..10 {
        let r = http.get(&url).send().await.unwrap();
        if r.status() == 429 {
            let retry = r.headers().get("retry-after").cloned();
            let json: serde_json::Value = r.json().await.unwrap();
            limited = Some((retry, json));
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let (retry, json) = limited.expect("the sixth request within a minute is refused");
    assert!(retry.is_some(), "Retry-After is set");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{json}"
    );
    // The agent API and the health check are not limited by the chat's use.
    let r = http
        .get(format!("{}/api/agent/queue", app.base()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/healthz", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_ids_and_bodies_are_refused_and_nothing_is_stored() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings("", &format!("{ROOMY}max_body_bytes = 65536\n"), ""),
        ManualClock::new(START),
    )
    .await;
    let (status, json) = post(
        app.base(),
        serde_json::json!({"session": "long-id-session", "text": "hello", "id": "x".repeat(129)}),
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"].as_str().unwrap().contains("`id`"));
    let (status, _) = post(
        app.base(),
        serde_json::json!({"session": "long-id-session", "text": "hello", "id": "x".repeat(128)}),
    )
    .await;
    assert_eq!(status, 200, "128 bytes are fine");
    let r = client()
        .post(format!("{}/api/chat/messages", app.base()))
        .json(&serde_json::json!({"session": "big-body-session", "text": "y".repeat(70_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = client()
        .post(format!("{}/api/chat/press", app.base()))
        .json(&serde_json::json!({"session": "long-id-session", "data": "d".repeat(600)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(format!(
            "{}/api/chat/updates?session=long-id-session&after={}",
            app.base(),
            "a".repeat(200)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let messages = app.core.store.messages_since(None).await.unwrap();
    let customer: Vec<_> = messages
        .iter()
        .filter(|m| m.role == Role::Customer)
        .collect();
    assert_eq!(customer.len(), 1, "only the acceptable message is stored");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_and_healthz_still_answers() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings(
            "",
            &format!("{ROOMY}header_read_timeout_secs = 1\nmax_connections = 8\n"),
            "",
        ),
        ManualClock::new(START),
    )
    .await;
    let addr = app.base().trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for i in 0..30 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Half send part of a request and stop; half send nothing.
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                .await
                .unwrap();
        }
        slow.push(socket);
    }
    // More slow clients than connections allowed: the health check still
    // gets its turn because slow clients are cut.
    let r = client()
        .get(format!("{}/healthz", app.base()))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(r.status(), 200);
    // And every slow client was cut (end of stream, or a 408 then the end).
    for mut socket in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut buf))
            .await
            .expect("the server closed the slow connection");
        assert!(read.is_ok() || buf.is_empty());
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_finished_and_replayed_when_the_client_goes_away() {
    let scratch = Scratch::new();
    let (fake, base) = openai_fake::start().await;
    let chunks = vec![
        "To get a refund, ".to_string(),
        "open Settings → Billing → Refund ".to_string(),
        "within 14 days [1].".to_string(),
    ];
    fake.script([Script::Slow(chunks.clone(), Duration::from_millis(300))]);
    let app = start(
        scratch.settings(&model(&base), ROOMY, ""),
        switchboard::clock::system(),
    )
    .await;
    let body = serde_json::json!({"session": "leaving-session", "text": QUESTION, "id": "m-1"});
    // The client gives up while the model is still writing.
    let gone = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/api/chat/messages", app.base()))
        .json(&body)
        .send()
        .await;
    assert!(gone.is_err(), "the first request must be cut mid-answer");
    // A retry while the answer is still being made waits for it…
    let (status, json) = post(app.base(), body.clone()).await;
    assert_eq!(status, 200);
    let full = chunks.concat();
    assert_eq!(json["reply"]["text"], full.as_str(), "{json}");
    assert_eq!(json["reply"]["mode"], "llm");
    // …and one after it was stored gets it from the log.
    let store = app.core.store.clone();
    common::wait_for_async("the answer is stored", || {
        let store = store.clone();
        async move {
            store
                .messages_since(None)
                .await
                .unwrap()
                .iter()
                .any(|m| m.role == Role::Bot)
        }
    })
    .await;
    let (status, again) = post(app.base(), body).await;
    assert_eq!(status, 200);
    assert_eq!(again["reply"]["text"], full.as_str(), "{again}");
    assert!(!again["reply"]["buttons"].as_array().unwrap().is_empty());
    let messages = store.messages_since(None).await.unwrap();
    assert_eq!(messages.iter().filter(|m| m.role == Role::Bot).count(), 1);
    assert_eq!(
        messages.iter().filter(|m| m.role == Role::Customer).count(),
        1
    );
    assert_eq!(fake.requests().len(), 1, "the model was asked once");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings(
            "",
            &format!("{ROOMY}allowed_origins = [\"https://shop.example\"]\n"),
            "",
        ),
        ManualClock::new(START),
    )
    .await;
    let http = client();
    for path in [
        "/",
        "/static/widget.js",
        "/static/widget.css",
        "/agent",
        "/static/agent.js",
        "/healthz",
        "/metrics",
        "/api/chat/updates?session=headers-session",
        "/api/agent/queue",
        "/no-such-page",
    ] {
        let r = http
            .get(format!("{}{path}", app.base()))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(
            csp.contains("frame-ancestors 'self' https://shop.example"),
            "{path}: {csp}"
        );
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert!(h.get("referrer-policy").is_some(), "{path}");
    }
    for page in ["/", "/agent"] {
        let html = http
            .get(format!("{}{page}", app.base()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<style>"),
            "{page}"
        );
        assert!(html.contains("<script src=\"/static/"), "{page}");
    }
    let js = http
        .get(format!("{}/static/widget.js", app.base()))
        .send()
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_agent_api_can_live_on_the_admin_address() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings("", &format!("{ROOMY}admin_listen = \"127.0.0.1:0\"\n"), ""),
        ManualClock::new(START),
    )
    .await;
    let admin = app.admin.clone().expect("admin listener");
    let http = client();
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(format!("{}/metrics", app.base())).await, 404);
    assert_eq!(get(format!("{}/api/agent/queue", app.base())).await, 404);
    assert_eq!(get(format!("{}/agent", app.base())).await, 404);
    assert_eq!(get(format!("{}/healthz", app.base())).await, 200);
    assert_eq!(get(format!("{}/", app.base())).await, 200);
    assert_eq!(get(format!("{admin}/metrics")).await, 200);
    assert_eq!(get(format!("{admin}/api/agent/queue")).await, 200);
    assert_eq!(get(format!("{admin}/agent")).await, 200);
    assert_eq!(
        get(format!("{admin}/api/chat/updates?session=admin-session")).await,
        404
    );
    app.shutdown().await;
}

#[test]
fn refused_agent_tokens_are_logged_once_per_address_per_minute() {
    let scratch = Scratch::new();
    let log = Log::capture(|| async {
        let app = start(
            scratch.settings(
                "",
                "agent_burst = 1000\nagent_requests_per_minute = 60000\n",
                "",
            ),
            ManualClock::new(START),
        )
        .await;
        let http = client();
        for _ in 0..60 {
            let r = http
                .get(format!("{}/api/agent/queue", app.base()))
                .bearer_auth("not-a-token")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        app.shutdown().await;
    });
    assert_eq!(log.lines("agent API: refused an unknown token"), 1);
}

#[test]
fn wrong_telegram_webhook_secrets_are_logged_once_per_address_per_minute() {
    let scratch = Scratch::new();
    let log = Log::capture(|| async {
        let app = start(
            scratch
                .settings(
                    "",
                    ROOMY,
                    "[telegram]\nwebhook_url = \"https://bot.example/telegram/webhook\"\nwebhook_secret = \"s3cret\"\n",
                )
                .telegram(),
            ManualClock::new(START),
        )
        .await;
        let http = client();
        for i in 0..40 {
            let r = http
                .post(format!("{}/telegram/webhook", app.base()))
                .header("X-Telegram-Bot-Api-Secret-Token", "wrong")
                .json(&serde_json::json!({"update_id": i}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        app.shutdown().await;
    });
    assert_eq!(
        log.lines("telegram webhook: refused a request with a wrong secret token"),
        1
    );
}

/// Found by the browser test on a faster machine: the console page's
/// scripts were counted with the agent API, so a busy console (or agents
/// sharing one address) got its own page half loaded, every script 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_loads_when_the_agent_api_limit_is_spent() {
    let scratch = Scratch::new();
    let app = start(
        scratch.settings("", "agent_burst = 3\nagent_requests_per_minute = 1\n", ""),
        ManualClock::new(START),
    )
    .await;
    let http = client();
    let mut limited = false;
    for _ in 0..10 {
        let r = http
            .get(format!("{}/api/agent/queue", app.base()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the agent API limit is spent");
    for path in [
        "/agent",
        "/static/agent.js",
        "/static/agent.css",
        "/static/console/inbox.js",
        "/static/console/kb.js",
    ] {
        let r = http
            .get(format!("{}{path}", app.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    app.shutdown().await;
}
