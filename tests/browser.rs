//! The embeddable widget in a real browser: Debian's `chromium` driven over
//! WebDriver (`chromedriver`, fantoccini) against a running app whose model
//! is the OpenAI-compatible fake. A host page on another port embeds
//! `/widget.js`. Screenshots of each step go to `target/browser/`.
//!
//! The console test signs an admin in at `/agent`, edits an article with
//! its live preview, saves it (the bot then answers from the new text), is
//! refused a stale save with a diff, works two chats in the inbox, and
//! sees the CSAT left on them on the dashboard, as `report --json` has it,
//! and a down-voted answer's question on the knowledge-gap page.
//!
//! The learning-loop test turns a knowledge-gap hand-off into an article:
//! the customer takes the offer of a person, an agent answers, resolves and
//! suggests an article, an admin edits and publishes it from the review
//! queue, and the bot answers the same question from it.
//!
//! The stream test cuts the widget's event stream (a proxy in front of the
//! app drops it) while an answer is being written: the browser reconnects
//! with its last event id and the answer goes on, no word lost or twice.
//!
//! Ignored by default (it needs `chromium` and `chromium-driver`); CI
//! installs them and runs it with `cargo test --test browser -- --ignored`.

use switchboard_fakes::openai_fake;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use switchboard::app::App;
use switchboard::clock::system;
use switchboard::config::Settings;

const AGENT_TOKEN: &str = "alice-token-browser";
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    // Ready when it answers /status.
    let http = reqwest::Client::new();
    for attempt in 0.. {
        if http.get(format!("{url}/status")).send().await.is_ok() {
            break;
        }
        assert!(attempt < 200, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver) -> Client {
    // Several rustls back ends are linked in; WebDriver runs on loopback.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/lib/chromium/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900",
                     // Host names other than localhost: plain HTTP there is
                     // not a secure context (no crypto.randomUUID), as on a
                     // real site without TLS.
                     "--host-resolver-rules=MAP *.test 127.0.0.1"],
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// One chromium at a time: the machine running the tests is small, and
/// the agent token's variable is set once for both tests.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The knowledge base, prompts and settings of one run (`extra` TOML
/// appended).
fn settings(dir: &std::path::Path, llm: &str, host_origin: &str, extra: &str) -> Settings {
    let kb = dir.join("kb");
    std::fs::create_dir_all(kb.join("billing")).unwrap();
    std::fs::write(
        kb.join("billing/refunds.md"),
        "---\ntitle: Refunds\nurl: https://help.example/refunds\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge.\n",
    )
    .unwrap();
    // SAFETY: the tests of this binary run one at a time (ONE_AT_A_TIME)
    // and set the same value; nothing reads it before.
    unsafe { std::env::set_var("BROWSER_ALICE_TOKEN", AGENT_TOKEN) };
    let toml = format!(
        r##"
[database]
url = "sqlite://{db}"
[knowledge_base]
path = "{kb}"
index_path = "{index}"
watch = false
[prompts]
path = "{prompts}"
[llm]
base_url = "{llm}"
model = "fake"
[web]
listen = "127.0.0.1:0"
allowed_origins = ["{host_origin}"]
[widget]
title = "Acme help"
accent = "#0f766e"
[[agents]]
name = "alice"
token_env = "BROWSER_ALICE_TOKEN"
{extra}
"##,
        db = dir.join("test.db").display(),
        kb = kb.display(),
        index = dir.join("index").display(),
        prompts = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
    );
    Settings::from_toml_str(&toml).unwrap()
}

/// Serves the host page (a shop embedding the widget) on its own port.
async fn host_page(
    listener: tokio::net::TcpListener,
    app_base: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let base = app_base.lock().unwrap().clone();
            async move {
                axum::response::Html(format!(
                    "<!doctype html><html><head><meta name=viewport content='width=device-width, initial-scale=1'>\
                     <style>* {{ font-size: 40px !important; color: red !important; }} iframe {{ display: none !important; }}</style></head>\
                     <body><h1>The Shop</h1><p>Host page.</p><script src=\"{base}/widget.js\" async></script></body></html>"
                ))
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    })
}

/// Clicks the launcher in the widget's shadow root and enters its panel.
async fn open_panel(client: &Client) {
    client.enter_parent_frame().await.ok();
    let host = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("switchboard-widget"))
        .await
        .unwrap();
    let root = host.shadow_root().await.unwrap();
    root.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let frame = root.find(Locator::Css("iframe")).await.unwrap();
    frame.enter_frame().await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#text"))
        .await
        .unwrap();
}

/// Waits until `script` (run in the current frame) returns true.
async fn until(client: &Client, script: &str) {
    let started = std::time::Instant::now();
    loop {
        let value = client.execute(script, vec![]).await.unwrap();
        if value == serde_json::Value::Bool(true) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "not true within {WAIT:?}: {script}\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn type_and_send(client: &Client, text: &str) {
    let input = client.find(Locator::Css("#text")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap(); // Enter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver"]
async fn a_visitor_on_a_host_page_asks_reloads_and_is_safe() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (llm, llm_url) = openai_fake::start().await;
    llm.script([openai_fake::Script::Stream(vec![
        "To get a refund, open **Settings → Billing → Refund** ".into(),
        "within 14 days.".into(),
    ])]);
    let dir = tempfile::tempdir().unwrap();
    let host_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_origin = format!(
        "http://shop.test:{}",
        host_listener.local_addr().unwrap().port()
    );
    let app = App::build(settings(dir.path(), &llm_url, &host_origin, ""), system())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let public = format!("http://support.test:{}", app.local_addr().unwrap().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let host = host_page(host_listener, Arc::new(Mutex::new(public))).await;
    let driver = driver().await;
    let client = browser(&driver).await;

    // 1. The visitor opens the widget on the shop's page and asks.
    client.goto(&host_origin).await.unwrap();
    open_panel(&client).await;
    // Plain HTTP on a real host name: no secure-context APIs.
    let secure = client
        .execute(
            "return [window.isSecureContext, typeof crypto.randomUUID]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(secure, serde_json::json!([false, "undefined"]));
    type_and_send(&client, "how do I get a refund").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.bot a.source"))
        .await
        .unwrap();
    let answer = client
        .find(Locator::Css(".msg.bot:last-of-type .text"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    assert!(
        answer.contains("<strong>Settings → Billing → Refund</strong>"),
        "{answer}"
    );
    let source = client
        .find(Locator::Css(".msg.bot a.source"))
        .await
        .unwrap();
    assert_eq!(source.text().await.unwrap(), "Refunds");
    // Text on the accent contrasts (white on the dark teal) and every
    // message runs in its own script's direction.
    let looks = client
        .execute(
            "const send = getComputedStyle(document.getElementById('send'));\
             const me = document.querySelector('.msg.me .text');\
             return [send.color, me.dir, getComputedStyle(me).direction]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        looks,
        serde_json::json!(["rgb(255, 255, 255)", "auto", "ltr"])
    );
    assert_eq!(
        source.attr("target").await.unwrap().as_deref(),
        Some("_blank")
    );
    // The host's `* { color: red; font-size: 40px }` does not reach the chat.
    let size = client
        .find(Locator::Css("#title"))
        .await
        .unwrap()
        .css_value("font-size")
        .await
        .unwrap();
    assert_eq!(size, "16px");
    shot(&client, "01-answer").await;

    // 2. Hostile markup is shown as text and never runs.
    let hostile = "<img src=x onerror=\"document.body.dataset.pwned='1'\"> hi";
    type_and_send(&client, hostile).await;
    until(&client, "return document.querySelectorAll('.msg.me').length === 2 && document.getElementById('typing').hidden").await;
    type_and_send(&client, "/human").await;
    until(&client, "return document.querySelectorAll('.msg.me').length === 3 && document.getElementById('typing').hidden").await;
    assert_eq!(count(&client, "#log img").await, 0);

    // 3. The tab closes; an agent answers meanwhile.
    client.goto("about:blank").await.unwrap();
    let http = reqwest::Client::new();
    let queue: serde_json::Value = http
        .get(format!("{base}/api/agent/queue"))
        .bearer_auth(AGENT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = queue[0]["id"].as_str().unwrap().to_string();
    let status = http
        .post(format!(
            "{base}/api/agent/conversations/{conversation}/reply"
        ))
        .bearer_auth(AGENT_TOKEN)
        .json(&serde_json::json!({"text": "Hello, **I can help**. <img src=x onerror=\"document.body.dataset.pwned='2'\">"}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());

    // 4. Back on the page: the whole conversation, the agent's reply with
    // her name, nothing executed.
    client.goto(&host_origin).await.unwrap();
    open_panel(&client).await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.agent"))
        .await
        .unwrap();
    assert_eq!(count(&client, ".msg.me").await, 3);
    assert!(count(&client, ".msg.bot a.source").await >= 1);
    let me: Vec<String> = {
        let mut texts = Vec::new();
        for e in client
            .find_all(Locator::Css(".msg.me .text"))
            .await
            .unwrap()
        {
            texts.push(e.text().await.unwrap());
        }
        texts
    };
    assert_eq!(me, ["how do I get a refund", hostile, "/human"]);
    let agent = client.find(Locator::Css(".msg.agent")).await.unwrap();
    let agent_text = agent.text().await.unwrap();
    assert!(agent_text.contains("alice (support)"), "{agent_text}");
    assert!(
        agent
            .html(true)
            .await
            .unwrap()
            .contains("<strong>I can help</strong>")
    );
    assert!(agent_text.contains("<img src=x onerror="), "{agent_text}");
    assert_eq!(count(&client, "#log img").await, 0);
    // The answer's "solved?" buttons are superseded: shown, disabled; its
    // 👍/👎 stay usable.
    let buttons = client
        .execute("return Array.from(document.querySelectorAll('#log .buttons button')).map(b => [!!b.dataset.lasting, b.disabled])", vec![])
        .await
        .unwrap();
    let buttons: Vec<(bool, bool)> = serde_json::from_value(buttons).unwrap();
    assert!(buttons.iter().any(|&(lasting, _)| lasting), "{buttons:?}");
    assert!(buttons.iter().any(|&(lasting, _)| !lasting), "{buttons:?}");
    assert!(
        buttons
            .iter()
            .all(|&(lasting, disabled)| lasting != disabled),
        "{buttons:?}"
    );
    // 👍 on the answer.
    client
        .find(Locator::Css("#log .buttons button[data-lasting]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&client, "return Array.from(document.querySelectorAll('.msg.note')).some(n => n.textContent === 'Thanks for the feedback!')").await;
    let pwned = client
        .execute("return document.body.dataset.pwned || null", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, serde_json::Value::Null);
    shot(&client, "02-history-after-reload").await;

    // 5. A 360 px wide phone: the panel fills the screen, nothing scrolls
    // sideways, the input is usable.
    client.enter_parent_frame().await.unwrap();
    client.set_window_size(360, 740).await.unwrap();
    client.refresh().await.unwrap();
    open_panel(&client).await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.agent"))
        .await
        .unwrap();
    // The 👍 given before the reload is shown chosen.
    let chosen = client
        .find_all(Locator::Css(
            "#log .buttons button.chosen[data-lasting]:disabled",
        ))
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1);
    let inner = client
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .unwrap();
    let width = inner[0].as_u64().unwrap();
    assert!((300..=360).contains(&width), "{inner}");
    assert!(
        inner[1].as_u64().unwrap() <= width,
        "sideways scroll: {inner}"
    );
    type_and_send(&client, "thanks").await;
    until(
        &client,
        "return document.querySelectorAll('.msg.me').length === 4",
    )
    .await;
    shot(&client, "03-phone-360").await;

    client.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
    let _ = running.await;
    host.abort();
}

/// A running app: its port, its core and how to stop it.
struct Running {
    port: u16,
    core: switchboard::app::Core,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn run(settings: Settings) -> Running {
    let app = App::build(settings, system()).await.unwrap();
    let port = app.local_addr().unwrap().port();
    let core = app.core().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running {
        port,
        core,
        stop,
        task,
    }
}

impl Running {
    /// Stops it and waits until it has (its port is free again).
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Records, in the chat frame, every text an answer being written shows
/// and when it was painted (`window.__written`).
const WATCH_WRITING: &str = r#"
window.__written = [];
new MutationObserver(() => {
  const w = document.querySelector('.msg.writing .text');
  if (!w || !w.textContent) return;
  const t = w.textContent;
  const seen = window.__written;
  if (seen.length && seen[seen.length - 1].t === t) return;
  seen.push({ t, at: null });
  const entry = seen[seen.length - 1];
  requestAnimationFrame(() => { entry.at = Date.now(); });
}).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
return true;
"#;

/// The texts and kinds of the conversation shown (notes left out).
async fn shown(client: &Client) -> Vec<(String, String)> {
    let value = client
        .execute(
            "return Array.from(document.querySelectorAll('#log .msg:not(.note)')).map(m => [m.className, m.querySelector('.text').textContent])",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

async fn click_button(client: &Client, label: &str) {
    let clicked = client
        .execute(
            "const b = Array.from(document.querySelectorAll('#log .buttons button')).filter(b => b.textContent === arguments[0] && !b.disabled).pop(); if (b) b.click(); return !!b;",
            vec![serde_json::json!(label)],
        )
        .await
        .unwrap();
    assert_eq!(
        clicked,
        serde_json::Value::Bool(true),
        "no usable {label:?} button"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver"]
async fn the_answer_streams_in_a_survey_score_stays_and_a_dropped_message_is_sent_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let words: Vec<String> = [
        "To get a refund, ",
        "open Settings, then Billing, then Refund, ",
        "within 14 days ",
        "of the charge.",
    ]
    .map(String::from)
    .to_vec();
    let answer = words.concat();
    let (llm, llm_url) = openai_fake::start().await;
    llm.script([openai_fake::Script::Slow(
        words.clone(),
        Duration::from_millis(200),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let host_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_origin = format!(
        "http://shop.test:{}",
        host_listener.local_addr().unwrap().port()
    );
    // One survey question, asked as soon as the conversation is resolved.
    // French texts for a visitor who asks for them, and a logo.
    let extra = "[csat]\ndelay_secs = 0\nces = false\nnps = false\ncomment = false\n\
                 [widget.texts.fr]\nplaceholder = \"Posez votre question…\"\nsend = \"Envoyer\"\n";
    let mut settings = settings(dir.path(), &llm_url, &host_origin, extra);
    let logo = dir.path().join("logo.svg");
    std::fs::write(
        &logo,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><circle cx="12" cy="12" r="11" fill="#fbbf24"/></svg>"##,
    )
    .unwrap();
    settings.widget.logo = Some(logo);
    let app = run(settings.clone()).await;
    let port = app.port;
    let public = format!("http://support.test:{port}");
    let host = host_page(host_listener, Arc::new(Mutex::new(public.clone()))).await;
    let driver = driver().await;
    let client = browser(&driver).await;

    // 1. The answer is written word by word over the event stream.
    client.goto(&host_origin).await.unwrap();
    open_panel(&client).await;
    until(&client, "return live === true").await;
    client.execute(WATCH_WRITING, vec![]).await.unwrap();
    type_and_send(&client, "how do I get a refund").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.writing"))
        .await
        .unwrap();
    shot(&client, "04-answer-being-written").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.bot a.source"))
        .await
        .unwrap();
    assert_eq!(count(&client, ".msg.writing").await, 0);
    let written = client
        .execute("return window.__written", vec![])
        .await
        .unwrap();
    let written: Vec<serde_json::Value> = serde_json::from_value(written).unwrap();
    let texts: Vec<&str> = written.iter().map(|w| w["t"].as_str().unwrap()).collect();
    assert!(
        texts.len() >= 2 && texts[0].len() < answer.len(),
        "partial answers before the whole one: {texts:?}"
    );
    assert!(texts.iter().all(|t| answer.starts_with(t)), "{texts:?}");
    let final_text = client
        .find(Locator::Css(".msg.bot:last-of-type .text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(final_text.trim(), answer.trim());
    // From the model's first token to the first painted words.
    let first_token = llm.slow_chunks_sent.lock().unwrap()[0]
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let painted = written[0]["at"].as_i64().expect("painted");
    let latency = painted - first_token;
    println!("first model token → first visible token: {latency} ms");
    assert!(
        (0..1000).contains(&latency),
        "first token took {latency} ms to show"
    );
    // Nothing was polled: the stream brought it.
    let polls = client
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/chat/updates')).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(polls, serde_json::json!(0));

    // 2. Solved; the survey arrives over the stream; the score chosen is
    // still shown after a reload, with the whole conversation.
    click_button(&client, switchboard::button::SOLVED_YES_LABEL).await;
    until(
        &client,
        "return document.querySelectorAll('.msg.bot').length === 2 && document.getElementById('typing').hidden",
    )
    .await;
    let tick = app.core.surveys.tick().await.unwrap();
    let _ = tick;
    until(
        &client,
        "return Array.from(document.querySelectorAll('#log .buttons button')).some(b => b.textContent === '4' && !b.disabled)",
    )
    .await;
    click_button(&client, "4").await;
    until(
        &client,
        "return document.querySelectorAll('#log .msg.bot').length === 4 && document.getElementById('typing').hidden",
    )
    .await;
    let before = shown(&client).await;
    client.refresh().await.unwrap();
    open_panel(&client).await;
    until(&client, "return live === true").await;
    let after = shown(&client).await;
    assert_eq!(
        before.iter().map(|(_, t)| t).collect::<Vec<_>>(),
        after.iter().map(|(_, t)| t).collect::<Vec<_>>(),
        "the whole conversation after a reload"
    );
    let chosen = client
        .execute(
            "return Array.from(document.querySelectorAll('#log .buttons button.chosen')).map(b => b.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        chosen.as_array().unwrap().contains(&serde_json::json!("4")),
        "the survey score after a reload: {chosen}"
    );
    shot(&client, "05-survey-score-after-reload").await;

    // 3. The server goes away while the visitor writes: the message fails
    // (after two quiet retries), the server comes back, Retry sends it
    // once, and the stream reconnects by itself.
    app.stop().await;
    until(&client, "return live === false").await;
    let question = "how do I get a refund for a yearly plan?";
    type_and_send(&client, question).await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.me.failed .retry"))
        .await
        .unwrap();
    shot(&client, "06-offline-not-sent").await;
    settings.web.listen = format!("127.0.0.1:{port}");
    let app = run(settings.clone()).await;
    until(&client, "return live === true").await;
    client
        .find(Locator::Css(".msg.me.failed .retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &client,
        "return document.querySelectorAll('.msg.me.failed').length === 0 && Array.from(document.querySelectorAll('.msg.bot a.source')).length === 2 && document.getElementById('typing').hidden",
    )
    .await;
    let texts = shown(&client).await;
    let mine = texts.iter().filter(|(_, t)| t == question).count();
    assert_eq!(mine, 1, "{texts:?}");
    let answers = texts
        .iter()
        .filter(|(_, t)| t.trim() == answer.trim())
        .count();
    assert_eq!(answers, 2, "one answer per question: {texts:?}");
    // The server has it once.
    let token = client
        .execute("return token", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/chat/history"))
        .header("x-visitor-token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["customer", "bot"], "{history}");
    shot(&client, "07-sent-once-after-the-drop").await;

    // 4. Keyboard only: Tab reaches the launcher, Enter opens the panel
    // with the cursor in the input, Enter sends, the answer's buttons are
    // reached with Tab, Escape closes the panel and gives the launcher its
    // focus back. Words being written are hidden from screen readers (the
    // whole answer is announced once, by the aria-live log).
    client.goto(&host_origin).await.unwrap();
    let keys = |k: &'static str| {
        let client = client.clone();
        async move {
            client
                .active_element()
                .await
                .unwrap()
                .send_keys(k)
                .await
                .unwrap()
        }
    };
    keys("\u{E004}").await; // Tab
    let on_launcher = client
        .execute(
            "const h = document.getElementById('switchboard-widget'); return document.activeElement === h && h.shadowRoot.activeElement.tagName",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(on_launcher, serde_json::json!("BUTTON"));
    keys("\u{E007}").await; // Enter
    // The panel opens and has the focus.
    until(
        &client,
        "const h = document.getElementById('switchboard-widget'); const f = h.shadowRoot.querySelector('iframe'); return !!f && document.activeElement === h && h.shadowRoot.activeElement === f",
    )
    .await;
    let host_el = client
        .find(Locator::Id("switchboard-widget"))
        .await
        .unwrap();
    let frame = host_el
        .shadow_root()
        .await
        .unwrap()
        .find(Locator::Css("iframe"))
        .await
        .unwrap();
    frame.enter_frame().await.unwrap();
    until(
        &client,
        "return typeof live !== 'undefined' && live === true",
    )
    .await;
    // Tab reaches the input (headless Chromium gives the frame no window
    // focus, so the input is not focused by itself here).
    let mut tabs = 0;
    while client
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap()
        != serde_json::json!("text")
    {
        assert!(tabs < 15, "Tab never reached the input");
        keys("\u{E004}").await;
        tabs += 1;
    }
    assert_eq!(
        client
            .execute(
                "return document.getElementById('log').getAttribute('aria-live')",
                vec![]
            )
            .await
            .unwrap(),
        serde_json::json!("polite")
    );
    let bots = count(&client, ".msg.bot").await;
    keys("how do I get a refund").await;
    keys("\u{E007}").await;
    until(&client, "const w = document.querySelector('.msg.writing'); return !!w && w.getAttribute('aria-hidden') === 'true'").await;
    until(
        &client,
        &format!("return document.querySelectorAll('.msg.bot').length === {} && !document.querySelector('.msg.writing')", bots + 1),
    )
    .await;
    // Tab from the input: Send, then the newest answer's buttons.
    client
        .find(Locator::Css("#text"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    keys("\u{E004}").await;
    let focused = client
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, serde_json::json!("send"));
    shot(&client, "08-keyboard-only").await;
    keys("\u{E00C}").await; // Escape
    client.enter_parent_frame().await.unwrap();
    until(
        &client,
        "const h = document.getElementById('switchboard-widget'); const b = h.shadowRoot.querySelector('button'); return document.activeElement === h && h.shadowRoot.activeElement === b && b.getAttribute('aria-expanded') === 'false'",
    )
    .await;

    // 5. A 360 px phone: nothing scrolls sideways and answers stream in.
    client.enter_parent_frame().await.unwrap();
    client.set_window_size(360, 740).await.unwrap();
    client.refresh().await.unwrap();
    open_panel(&client).await;
    until(&client, "return live === true").await;
    let inner = client
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .unwrap();
    let width = inner[0].as_u64().unwrap();
    assert!((300..=360).contains(&width), "{inner}");
    assert!(
        inner[1].as_u64().unwrap() <= width,
        "sideways scroll: {inner}"
    );
    client.execute(WATCH_WRITING, vec![]).await.unwrap();
    type_and_send(&client, "how do I get a refund").await;
    until(
        &client,
        "return Array.from(document.querySelectorAll('.msg.bot a.source')).length === 2 && window.__written.length >= 2",
    )
    .await;
    let inner = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(inner, serde_json::Value::Bool(true));
    shot(&client, "09-phone-360-streamed").await;

    // 6. The fixed texts in French for a page that asks for them, the logo
    // from the settings.
    client.enter_parent_frame().await.ok();
    client.set_window_size(1280, 900).await.unwrap();
    client
        .goto(&format!("{public}/embed?lang=fr"))
        .await
        .unwrap();
    until(
        &client,
        "return typeof live !== 'undefined' && live === true",
    )
    .await;
    let french = client
        .execute(
            "const l = document.getElementById('logo'); return [document.documentElement.lang, document.getElementById('text').placeholder, document.getElementById('send').textContent, document.querySelector('label[for=text]').textContent, !!l && l.complete && l.naturalWidth > 0]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        french,
        serde_json::json!([
            "fr",
            "Posez votre question…",
            "Envoyer",
            "Your message",
            true
        ])
    );
    shot(&client, "10-french-texts-and-logo").await;

    client.close().await.unwrap();
    drop(driver);
    app.stop().await;
    host.abort();
}

/// Sets `#id`'s value as a person would: cleared, then typed.
async fn type_into(client: &Client, css: &str, text: &str) {
    let input = client.find(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks the button labelled `label` (inside `scope`, a CSS selector).
async fn press(client: &Client, scope: &str, label: &str) {
    let xpath = format!("//*[@id='{scope}']//button[normalize-space(text())='{label}']");
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The bot's answer to `question` from a new widget visitor.
async fn widget_answer(http: &reqwest::Client, base: &str, question: &str) -> serde_json::Value {
    let visitor: serde_json::Value = http
        .post(format!("{base}/api/chat/visitor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{base}/api/chat/messages"))
        .json(&serde_json::json!({"token": visitor["token"], "text": question}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver"]
async fn an_admin_edits_the_knowledge_base_and_works_the_inbox_in_the_console() {
    let _one = ONE_AT_A_TIME.lock().await;
    // SAFETY: the tests of this binary run one at a time (ONE_AT_A_TIME)
    // and set the same value; nothing reads it before.
    unsafe { std::env::set_var("BROWSER_ALICE_TOKEN", AGENT_TOKEN) };
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(kb.join("billing")).unwrap();
    let refunds = kb.join("billing/refunds.md");
    std::fs::write(
        &refunds,
        "---\ntitle: Refunds\ntags: [billing]\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge.\n",
    )
    .unwrap();
    let toml = format!(
        r##"
[database]
url = "sqlite://{db}"
[knowledge_base]
path = "{kb}"
index_path = "{index}"
watch = false
[prompts]
path = "{prompts}"
[web]
listen = "127.0.0.1:0"
cookie_secure = false
# The test leaves the CSAT answers itself (step 6).
[csat]
enabled = false
[[agents]]
name = "alice"
admin = true
"##,
        db = dir.path().join("test.db").display(),
        kb = kb.display(),
        index = dir.path().join("index").display(),
        prompts = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
    );
    let app = App::build(Settings::from_toml_str(&toml).unwrap(), system())
        .await
        .unwrap();
    switchboard::auth::ConsoleAuth::new(app.core().store.clone(), app.core().desk.agents().clone())
        .set_password("alice", "alice's browser password")
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let store = app.core().store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let driver = driver().await;
    let client = browser(&driver).await;

    // 1. Sign in; a wrong password is refused inline.
    client.goto(&format!("{base}/agent")).await.unwrap();
    type_into(&client, "#name", "alice").await;
    type_into(&client, "#password", "not the password").await;
    click(&client, "#go").await;
    until(
        &client,
        "return document.getElementById('err').textContent === 'wrong name or password'",
    )
    .await;
    type_into(&client, "#password", "alice's browser password").await;
    click(&client, "#go").await;
    click(&client, "#nav button[data-view=kb]").await;
    click(&client, "#kb-list .row[data-slug='billing/refunds']").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#kb-body"))
        .await
        .unwrap();
    assert_eq!(
        client
            .find(Locator::Css("#kb-title"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Refunds")
    );
    shot(&client, "console-01-article").await;

    // 2. Edit: the preview is rendered as customers see answers.
    type_into(
        &client,
        "#kb-body",
        "# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within **30 days** of the charge.\n",
    )
    .await;
    until(&client, "return document.getElementById('kb-preview').innerHTML.includes('<strong>30 days</strong>')").await;
    shot(&client, "console-02-preview").await;

    // 3. Save; the bot answers from the new text at once.
    click(&client, "#kb-save").await;
    until(
        &client,
        "return document.getElementById('kb-status').textContent === 'Saved.'",
    )
    .await;
    let saved = std::fs::read_to_string(&refunds).unwrap();
    assert!(saved.contains("within **30 days**"), "{saved}");
    let answer = widget_answer(&http, &base, "how do I get a refund").await;
    assert!(
        answer["reply"]["text"]
            .as_str()
            .unwrap()
            .contains("30 days"),
        "{answer}"
    );
    until(
        &client,
        "return document.querySelectorAll('#kb-history .change').length === 1",
    )
    .await;
    shot(&client, "console-03-saved").await;

    // 4. Someone else changes the file; saving over it is refused with a
    // diff, and neither text is lost.
    let theirs = saved.replace("30 days", "60 days");
    std::fs::write(&refunds, &theirs).unwrap();
    type_into(
        &client,
        "#kb-body",
        "# Refunds\n\n## How to get a refund\nWithin 45 days.\n",
    )
    .await;
    click(&client, "#kb-save").await;
    until(&client, "return document.getElementById('kb-error').textContent.includes('was changed since you opened it') && !document.getElementById('kb-diff').hidden").await;
    let diff = client
        .find(Locator::Css("#kb-diff"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        diff.contains("60 days") && diff.contains("+Within 45 days."),
        "{diff}"
    );
    assert_eq!(std::fs::read_to_string(&refunds).unwrap(), theirs);
    assert!(
        client
            .find(Locator::Css("#kb-body"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap()
            .contains("Within 45 days.")
    );
    shot(&client, "console-04-stale-refused").await;

    // 5. The inbox: two customers wait, pushed to the open inbox over its
    // event stream.
    click(&client, "#nav button[data-view=inbox]").await;
    until(
        &client,
        "return document.getElementById('inbox').dataset.live === 'true'",
    )
    .await;
    for question in ["/human", "/human"] {
        let handed = widget_answer(&http, &base, question).await;
        assert_eq!(handed["reply"]["handoff"], true, "{handed}");
    }
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 2",
    )
    .await;
    shot(&client, "console-05-waiting").await;
    click(&client, "#inbox-list .row").await;
    // The customer panel: where they came from and their conversations.
    until(&client, "const p = document.querySelector('#customer-panel summary'); return !!p && p.textContent.startsWith('web customer since') && p.textContent.includes('1 conversation')").await;
    // Only what applies: a waiting chat can be claimed, not transferred
    // (checked before the claim, which the page may show at once).
    until(&client, "return Array.from(document.querySelectorAll('#head button')).some(b => b.textContent.trim() === 'Claim')").await;
    assert_eq!(count(&client, "#transfer-to").await, 0);
    press(&client, "head", "Claim").await;
    until(&client, "return Array.from(document.querySelectorAll('#log .m.event')).some(e => e.textContent === 'alice joined')").await;
    assert!(count(&client, "#transfer-to").await == 1);
    // Enter sends; Shift+Enter is a new line.
    let text = client.find(Locator::Css("#reply-text")).await.unwrap();
    text.send_keys("Hello, I can help.").await.unwrap();
    text.send_keys("\u{E008}\u{E007}\u{E008}").await.unwrap(); // Shift down, Enter, Shift up
    text.send_keys("Second line.").await.unwrap();
    text.send_keys("\u{E007}").await.unwrap();
    until(&client, "return Array.from(document.querySelectorAll('#log .m.agent')).some(m => m.textContent.includes('Hello, I can help.\\nSecond line.'))").await;
    shot(&client, "console-06-replied").await;
    // "/" offers the canned replies; typing narrows them, Enter puts the
    // chosen one in the box as it will be sent, Enter again sends it.
    let text = client.find(Locator::Css("#reply-text")).await.unwrap();
    text.send_keys("/gre").await.unwrap();
    until(&client, "const p = document.getElementById('canned-picker'); return !p.hidden && p.querySelectorAll('li').length === 1 && p.textContent.startsWith('/greeting')").await;
    shot(&client, "console-06b-canned-picker").await;
    text.send_keys("\u{E007}").await.unwrap();
    until(&client, "const t = document.getElementById('reply-text').value; return t.startsWith('Hi, this is ') && !t.includes('{{') && document.getElementById('canned-picker').hidden").await;
    text.send_keys("\u{E007}").await.unwrap();
    until(&client, "return Array.from(document.querySelectorAll('#log .m.agent')).some(m => m.textContent.includes(\"I've read your conversation with our assistant\"))").await;
    press(&client, "head", "Resolve").await;
    until(&client, "return Array.from(document.querySelectorAll('#log .m.event')).some(e => e.textContent === 'Resolved by alice')").await;
    // The other chat nobody claimed: resolving it asks first.
    click(&client, "#inbox-tabs button[data-tab=waiting]").await;
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 1",
    )
    .await;
    click(&client, "#inbox-list .row").await;
    press(&client, "head", "Resolve…").await;
    // What is typed here would go to the customer, not into a note.
    let note = client
        .execute(
            "const b = document.getElementById('reply-note'); return [b.checked, b.disabled]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(note, serde_json::json!([false, false]));
    until(&client, "return !!document.getElementById('confirm-yes')").await;
    shot(&client, "console-07-confirm-resolve").await;
    click(&client, "#confirm-yes").await;
    until(&client, "return Array.from(document.querySelectorAll('#log .m.event')).some(e => e.textContent === 'Resolved by alice')").await;
    click(&client, "#inbox-tabs button[data-tab=resolved]").await;
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 2",
    )
    .await;
    // Found by search too.
    type_into(&client, "#inbox-search", "I can help").await;
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 1",
    )
    .await;
    assert_eq!(count(&client, "#inbox-error:not(:empty)").await, 0);
    // More filters: both chats were resolved by alice, neither was rated.
    client
        .execute(
            "const s = document.getElementById('inbox-search'); s.value = ''; \
             document.getElementById('inbox-more').open = true; \
             const a = document.getElementById('inbox-agent'); a.value = 'alice'; a.dispatchEvent(new Event('change')); return true",
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 2",
    )
    .await;
    client
        .execute(
            "const c = document.getElementById('inbox-csat'); c.value = '1'; c.dispatchEvent(new Event('change')); return true",
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 0",
    )
    .await;
    client
        .execute(
            "for (const id of ['inbox-csat', 'inbox-agent']) { const f = document.getElementById(id); f.value = ''; f.dispatchEvent(new Event('change')); } return true",
            vec![],
        )
        .await
        .unwrap();
    shot(&client, "console-08-search").await;

    // 6. The dashboard shows a CSAT a customer left (a 4 and a 2), the
    // same as `report --json`, and every chart is an SVG the browser draws.
    store.schedule_surveys(0, 0).await.unwrap();
    let due = store.claim_due_surveys(10).await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    for (survey, rating) in due.iter().zip([4, 2]) {
        store
            .mark_survey_sent(&survey.conversation_id, Some("alice"), false, false)
            .await
            .unwrap();
        store
            .record_survey_answer(
                &survey.conversation_id,
                switchboard::store::Answer::Csat(rating),
            )
            .await
            .unwrap();
    }
    let report = switchboard::report::build(&store, &Default::default())
        .await
        .unwrap();
    assert_eq!(report.csat_score, Some(50.0));
    click(&client, "#nav button[data-view=dash]").await;
    until(
        &client,
        &format!(
            "const f = document.querySelector('#dash-totals [data-key=csat_score] .value'); \
             return !!f && f.textContent === '{}%' && document.querySelector('#dash-totals [data-key=conversations] .value').textContent === '{}'",
            report.csat_score.unwrap(),
            report.conversations
        ),
    )
    .await;
    until(&client, "const i = Array.from(document.querySelectorAll('#dash-charts img')); return i.length === 12 && i.every(i => i.complete && i.naturalWidth > 0)").await;
    shot(&client, "console-09-dashboard").await;
    // The conversation shows what its customer answered.
    click(&client, "#nav button[data-view=inbox]").await;
    press(&client, "inbox-tabs", "Resolved").await;
    click(
        &client,
        &format!("#inbox-list .row[data-id='{}']", due[0].conversation_id),
    )
    .await;
    until(&client, "const l = document.getElementById('survey-line'); return !!l && l.textContent === 'Survey answered: CSAT 4/5'").await;

    // 7. A 👎 on the refund answer makes its question a knowledge gap: the
    // gap page lists it, and "Find articles" searches the editor for it.
    let mut down = None;
    for c in store.conversations_since(None).await.unwrap() {
        let messages = store.messages(&c.id).await.unwrap();
        if let Some(pair) = messages.windows(2).find(|p| {
            p[0].role == switchboard::store::Role::Customer
                && p[0].text.contains("refund")
                && p[1].role == switchboard::store::Role::Bot
        }) {
            down = Some((c.id.clone(), pair[1].id.clone()));
        }
    }
    let (conversation, message) = down.expect("the refund answer");
    assert!(
        store
            .set_feedback(&conversation, &message, -1)
            .await
            .unwrap()
    );
    let gaps = switchboard::report::gaps(&store, &Default::default())
        .await
        .unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    click(&client, "#nav button[data-view=gaps]").await;
    until(
        &client,
        &format!(
            "const r = document.querySelectorAll('#gaps-list .gap'); return r.length === 1 && r[0].dataset.term === '{}' && r[0].textContent.includes('how do I get a refund')",
            gaps[0].term
        ),
    )
    .await;
    shot(&client, "console-10-gaps").await;
    press(&client, "gaps-list", "Find articles").await;
    until(&client, &format!("return !document.getElementById('kb').hidden && document.getElementById('kb-search').value === '{}' && document.querySelectorAll('#kb-list .row').length >= 1", gaps[0].term)).await;

    // 8. On a 390 px phone: the console fits without sideways scrolling,
    // and the editor too.
    client.set_window_size(390, 844).await.unwrap();
    client.refresh().await.unwrap();
    until(
        &client,
        "return document.querySelectorAll('#inbox-list > div').length >= 1",
    )
    .await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth";
    until(&client, fits).await;
    shot(&client, "console-11-phone-inbox").await;
    click(&client, "#nav button[data-view=kb]").await;
    click(&client, "#kb-list .row[data-slug='billing/refunds']").await;
    until(&client, "return !!document.getElementById('kb-body')").await;
    until(&client, fits).await;
    shot(&client, "console-12-phone-editor").await;
    click(&client, "#nav button[data-view=dash]").await;
    until(
        &client,
        "return document.querySelectorAll('#dash-charts img').length === 12",
    )
    .await;
    until(&client, fits).await;
    shot(&client, "console-13-phone-dashboard").await;
    // The settings view: agents with their roles and passwords set, the
    // canned replies; it fits on the phone too.
    click(&client, "#nav button[data-view=settings]").await;
    until(&client, "const c = document.getElementById('settings-content'); return !!c && c.querySelectorAll('table').length >= 6 && c.textContent.includes('admin') && c.textContent.includes('/greeting')").await;
    until(&client, fits).await;
    shot(&client, "console-14-phone-settings").await;

    // 9. Alice adds ana from the settings view and gets her invite link;
    // ana opens it, chooses her password and is signed in.
    client.set_window_size(1280, 900).await.unwrap();
    type_into(&client, "#add-agent input", "ana").await;
    click(&client, "#add-agent button[type=submit]").await;
    until(&client, "const l = document.querySelector('#invite-link input'); return !!l && l.value.includes('/agent#invite=') && document.getElementById('settings-content').textContent.includes('console')").await;
    shot(&client, "console-15-agent-added").await;
    let link = client
        .execute(
            "return document.querySelector('#invite-link input').value",
            vec![],
        )
        .await
        .unwrap();
    let link = link.as_str().unwrap().to_string();
    assert!(link.starts_with(&format!("{base}/agent#invite=")), "{link}");
    // A customer asks for a person (for step 10).
    let handed = widget_answer(&http, &base, "/human").await;
    assert_eq!(handed["reply"]["handoff"], true, "{handed}");
    client.goto(&link).await.unwrap();
    until(&client, "return !document.getElementById('invite').hidden && document.getElementById('login').hidden && !location.hash").await;
    type_into(&client, "#new-password", "ana's browser password").await;
    type_into(&client, "#new-password-2", "ana's browser password").await;
    click(&client, "#accept").await;
    until(&client, "const w = document.querySelector('#nav .who'); return !!w && w.textContent.includes('ana')").await;
    shot(&client, "console-16-invite-accepted").await;

    // 10. Keyboard only: `1` Waiting, `j` opens the chat, `c` claims it;
    // the transfer list offers alice (online in the console), `?` lists the
    // shortcuts.
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length >= 1",
    )
    .await;
    client
        .execute(
            "document.activeElement && document.activeElement.blur(); return true",
            vec![],
        )
        .await
        .unwrap();
    key(&client, '1').await;
    key(&client, 'j').await;
    until(&client, "return !!document.querySelector('#inbox-list .row.active') && !!document.querySelector('#head .actions')").await;
    key(&client, 'c').await;
    until(&client, "const g = document.querySelector('#transfer-to optgroup'); return !!g && g.label === 'online' && Array.from(g.querySelectorAll('option')).some(o => o.value === 'alice')").await;
    key(&client, '?').await;
    until(
        &client,
        "return !document.getElementById('shortcuts').hidden",
    )
    .await;
    shot(&client, "console-17-shortcuts-and-transfer").await;
    key(&client, '\u{E00C}').await; // Escape
    until(
        &client,
        "return document.getElementById('shortcuts').hidden",
    )
    .await;
    // `t` goes to the tags: a tag typed there shows on the chat and in the
    // list, and the search finds the chat by it.
    key(&client, 't').await;
    until(
        &client,
        "return document.activeElement && document.activeElement.id === 'tag-input'",
    )
    .await;
    let input = client.find(Locator::Css("#tag-input")).await.unwrap();
    input.send_keys("Lost Parcel\u{E007}").await.unwrap();
    until(
        &client,
        "return !!document.querySelector('#tags .tag[data-tag=lost-parcel]')",
    )
    .await;
    type_into(&client, "#inbox-search", "lost-parcel").await;
    until(&client, "const r = document.querySelectorAll('#inbox-list .row'); return r.length === 1 && r[0].classList.contains('active') && r[0].querySelector('.row-tags').textContent === '#lost-parcel'").await;
    shot(&client, "console-18-tags").await;

    client.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
    let _ = running.await;
}

/// The texts of the chat page's messages of `kind` (`me`, `bot`, `agent`,
/// `notice`).
async fn chat_texts(client: &Client, kind: &str) -> Vec<String> {
    let value = client
        .execute(
            "return Array.from(document.querySelectorAll('#log .msg.' + arguments[0] + ' .text')).map(t => t.textContent)",
            vec![serde_json::json!(kind)],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

/// Presses `value` (a character or a WebDriver key code) on the page, not
/// in an element.
async fn key(client: &Client, value: char) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    client.perform_actions(keys).await.unwrap();
}

/// Signs `name` in at `/agent` (the sign-in form is shown).
async fn sign_in(client: &Client, name: &str, password: &str) {
    type_into(client, "#name", name).await;
    type_into(client, "#password", password).await;
    click(client, "#go").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#nav"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver"]
async fn a_knowledge_gap_hand_off_becomes_an_article_the_bot_then_answers_from() {
    const QUESTION: &str = "Can I pay by bank transfer from abroad?";
    const ANSWER: &str = "Yes: we accept international bank transfers in EUR. Use the IBAN printed on your invoice; the payment arrives in 2–3 business days.";
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(kb.join("billing")).unwrap();
    std::fs::write(
        kb.join("billing/refunds.md"),
        "---\ntitle: Refunds\ntags: [billing]\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge.\n",
    )
    .unwrap();
    let toml = format!(
        r##"
[database]
url = "sqlite://{db}"
[knowledge_base]
path = "{kb}"
index_path = "{index}"
watch = false
[prompts]
path = "{prompts}"
[web]
listen = "127.0.0.1:0"
cookie_secure = false
[csat]
enabled = false
[[agents]]
name = "alice"
admin = true
[[agents]]
name = "bob"
"##,
        db = dir.path().join("test.db").display(),
        kb = kb.display(),
        index = dir.path().join("index").display(),
        prompts = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
    );
    let app = run(Settings::from_toml_str(&toml).unwrap()).await;
    let auth =
        switchboard::auth::ConsoleAuth::new(app.core.store.clone(), app.core.desk.agents().clone());
    auth.set_password("alice", "alice's browser password")
        .await
        .unwrap();
    auth.set_password("bob", "bob's browser password!")
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port);
    let driver = driver().await;
    let client = browser(&driver).await;

    // 1. A customer asks what the knowledge base does not cover and takes
    // the offer of a person: a knowledge-gap hand-off.
    client.goto(&format!("{base}/")).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#text"))
        .await
        .unwrap();
    type_and_send(&client, QUESTION).await;
    until(&client, "return Array.from(document.querySelectorAll('#log .msg.bot .buttons button')).some(b => b.textContent === 'Yes, talk to a person' && !b.disabled)").await;
    click_button(&client, "Yes, talk to a person").await;
    until(&client, "return Array.from(document.querySelectorAll('#log .msg.bot .text')).some(t => t.textContent.includes('passing your conversation on'))").await;
    shot(&client, "learn-01-knowledge-gap").await;
    let conversation = app.core.desk.queue().await.unwrap()[0].conversation.clone();
    assert_eq!(
        conversation.handoff_reason.as_deref(),
        Some("knowledge_gap")
    );

    // 2. Bob, an agent, answers and resolves it in the console; the
    // resolved conversation offers an article, prominently.
    client.goto(&format!("{base}/agent")).await.unwrap();
    sign_in(&client, "bob", "bob's browser password!").await;
    assert_eq!(count(&client, "#nav button[data-view=suggest]").await, 0);
    click(&client, "#inbox-list .row").await;
    press(&client, "head", "Claim").await;
    until(&client, "return Array.from(document.querySelectorAll('#log .m.event')).some(e => e.textContent === 'bob joined')").await;
    let reply = client.find(Locator::Css("#reply-text")).await.unwrap();
    reply.send_keys(ANSWER).await.unwrap();
    reply.send_keys("\u{E007}").await.unwrap();
    until(&client, "return Array.from(document.querySelectorAll('#log .m.agent')).some(m => m.textContent.includes('IBAN'))").await;
    press(&client, "head", "Resolve").await;
    until(&client, "const b = document.getElementById('suggest-article'); return !!b && b.classList.contains('primary') && document.getElementById('suggest-box').textContent.includes('could not answer')").await;
    shot(&client, "learn-02-resolved-offers-an-article").await;
    click(&client, "#suggest-article").await;
    until(&client, "const b = document.getElementById('suggest-box'); return !!b && b.textContent.includes(\"waiting for an admin's review\")").await;
    shot(&client, "learn-03-suggested").await;
    let suggestion = app
        .core
        .store
        .suggestion_for(&conversation.id)
        .await
        .unwrap()
        .expect("the suggestion");
    assert_eq!(suggestion.created_by, "bob");
    // The customer saw none of it but the answer.
    assert!(
        !app.core
            .store
            .messages(&conversation.id)
            .await
            .unwrap()
            .iter()
            .any(|m| m.text.contains("uggest")),
    );

    // 3. Alice, an admin, reviews it: edits title and slug with the live
    // preview, and publishes it.
    press(&client, "nav", "Sign out").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login"))
        .await
        .unwrap();
    sign_in(&client, "alice", "alice's browser password").await;
    click(&client, "#nav button[data-view=suggest]").await;
    click(
        &client,
        &format!("#suggest-list .row[data-id='{}']", suggestion.id),
    )
    .await;
    until(
        &client,
        &format!(
            "const t = document.getElementById('suggest-title'); return !!t && t.value === '{QUESTION}'"
        ),
    )
    .await;
    until(&client, "return document.getElementById('suggest-preview').innerHTML.includes('IBAN') && document.getElementById('suggest-source').textContent.includes('IBAN')").await;
    type_into(
        &client,
        "#suggest-title",
        "Paying by bank transfer from abroad",
    )
    .await;
    type_into(&client, "#suggest-slug", "billing/bank-transfer").await;
    let body = client.find(Locator::Css("#suggest-body")).await.unwrap();
    body.send_keys("\nAsk your bank for a **SEPA** transfer when you can.")
        .await
        .unwrap();
    until(&client, "return document.getElementById('suggest-preview').innerHTML.includes('<strong>SEPA</strong>')").await;
    shot(&client, "learn-04-review").await;
    click(&client, "#suggest-publish").await;
    until(&client, "const d = document.getElementById('suggest-done'); return !!d && d.textContent.startsWith('Published as billing/bank-transfer by alice')").await;
    shot(&client, "learn-05-published").await;
    let file = std::fs::read_to_string(kb.join("billing/bank-transfer.md")).unwrap();
    assert!(
        file.starts_with("---\ntitle: Paying by bank transfer from abroad\n")
            && file.contains("IBAN")
            && file.contains("**SEPA**"),
        "{file}"
    );
    assert_eq!(
        app.core
            .store
            .kb_changes(Some("billing/bank-transfer"), 10)
            .await
            .unwrap()
            .iter()
            .map(|c| (c.action.clone(), c.agent.to_string()))
            .collect::<Vec<_>>(),
        [("create".to_string(), "alice".to_string())]
    );
    // The conversation says where its answer went.
    click(&client, "#nav button[data-view=inbox]").await;
    click(&client, "#inbox-tabs button[data-tab=resolved]").await;
    click(&client, "#inbox-list .row").await;
    until(&client, "const b = document.getElementById('suggest-box'); return !!b && b.textContent.includes('published as billing/bank-transfer')").await;

    // On a 390 px phone the review page fits without sideways scrolling.
    client.set_window_size(390, 844).await.unwrap();
    click(&client, "#nav button[data-view=suggest]").await;
    client
        .find(Locator::Css("#suggest-filter"))
        .await
        .unwrap()
        .select_by_value("all")
        .await
        .unwrap();
    click(
        &client,
        &format!("#suggest-list .row[data-id='{}']", suggestion.id),
    )
    .await;
    until(&client, "const d = document.getElementById('suggest-done'); return !!d && d.textContent.startsWith('Published as')").await;
    until(
        &client,
        "return document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    shot(&client, "learn-06-phone-review").await;
    client.set_window_size(1280, 900).await.unwrap();

    // 4. The customer asks again: the bot answers from the new article.
    client.goto(&format!("{base}/")).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#text"))
        .await
        .unwrap();
    let answers_before = chat_texts(&client, "bot").await.len();
    type_and_send(&client, QUESTION).await;
    until(
        &client,
        &format!(
            "const b = Array.from(document.querySelectorAll('#log .msg.bot')); return b.length > {answers_before} && b[b.length - 1].querySelector('.text').textContent.includes('IBAN') && !!b[b.length - 1].querySelector('.sources')"
        ),
    )
    .await;
    shot(&client, "learn-07-answered-from-the-article").await;
    let last = chat_texts(&client, "bot").await.pop().unwrap();
    assert!(!last.contains("couldn't find"), "{last}");
    let sources = client
        .execute(
            "const b = Array.from(document.querySelectorAll('#log .msg.bot')); return b[b.length - 1].querySelector('.sources').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        sources
            .as_str()
            .unwrap()
            .contains("Paying by bank transfer from abroad"),
        "{sources}"
    );

    client.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

/// A TCP proxy in front of the app that can cut the widget's event
/// streams (and only those) as a network drop would.
struct Proxy {
    port: u16,
    cut: tokio::sync::watch::Sender<u32>,
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, cuts) = tokio::sync::watch::channel(0u32);
        let streams = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = streams.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (mut from_client, mut to_server) = (client, server);
                    let (mut client_read, mut client_write) = from_client.split();
                    let (mut server_read, mut server_write) = to_server.split();
                    // Requests pass through; a connection that asked for
                    // the event stream is dropped on the next cut.
                    let stream = std::sync::atomic::AtomicBool::new(false);
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = client_read.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            if buf[..n].windows(20).any(|w| w == b"GET /api/chat/stream") {
                                stream.store(true, std::sync::atomic::Ordering::SeqCst);
                                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut server_read, &mut client_write);
                    let cut = async {
                        loop {
                            if cuts.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                            if stream.load(std::sync::atomic::Ordering::SeqCst) {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        () = cut => {}
                    }
                });
            }
        });
        Self { port, cut, streams }
    }

    /// Drops every event stream open now.
    fn cut_streams(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    fn streams_opened(&self) -> usize {
        self.streams.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The connection drops while an answer is being written: the widget's
/// event stream comes back with its last event id and the answer goes on
/// from where it stopped, no word missing and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver"]
async fn an_answer_cut_off_mid_stream_goes_on_without_gaps_or_repeats() {
    let _one = ONE_AT_A_TIME.lock().await;
    let words: Vec<String> = (1..=10)
        .map(|n| format!("Refund step {n} of ten. "))
        .collect();
    let answer = words.concat();
    let (llm, llm_url) = openai_fake::start().await;
    // Slow enough that the stream is back (the server asks for a retry
    // after 2 s) well before the answer is done.
    llm.script([openai_fake::Script::Slow(
        words.clone(),
        Duration::from_millis(700),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let app = run(settings(dir.path(), &llm_url, "http://shop.test:1", "")).await;
    let proxy = Proxy::start(app.port).await;
    let driver = driver().await;
    let client = browser(&driver).await;
    client
        .goto(&format!("http://127.0.0.1:{}/", proxy.port))
        .await
        .unwrap();
    until(&client, "return live === true").await;
    client.execute(WATCH_WRITING, vec![]).await.unwrap();
    type_and_send(&client, "how do I get a refund").await;
    until(
        &client,
        "const w = document.querySelector('.msg.writing .text'); return !!w && w.textContent.length > 0",
    )
    .await;
    let before: String = serde_json::from_value(
        client
            .execute(
                "return document.querySelector('.msg.writing .text').textContent",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(before.len() < answer.len(), "{before:?}");
    let opened = proxy.streams_opened();
    proxy.cut_streams();
    shot(&client, "20-stream-cut").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".msg.bot a.source"))
        .await
        .unwrap();
    assert!(
        proxy.streams_opened() > opened,
        "the event stream reconnected"
    );
    let written = client
        .execute("return window.__written", vec![])
        .await
        .unwrap();
    let written: Vec<serde_json::Value> = serde_json::from_value(written).unwrap();
    let texts: Vec<&str> = written.iter().map(|w| w["t"].as_str().unwrap()).collect();
    // Every text painted while writing is the start of the answer: a word
    // shown twice or skipped would not be.
    assert!(texts.iter().all(|t| answer.starts_with(t)), "{texts:?}");
    // And words kept coming after the cut, through the resumed stream.
    assert!(
        texts
            .iter()
            .any(|t| t.len() > before.len() && t.len() < answer.len()),
        "resumed words before the end: {texts:?} (cut after {before:?})"
    );
    let final_text = client
        .find(Locator::Css(".msg.bot:last-of-type .text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(final_text.trim(), answer.trim());
    let answers = client
        .execute(
            "return Array.from(document.querySelectorAll('#log .msg .text')).filter(t => t.textContent.includes('Refund step 1 ')).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(answers, serde_json::json!(1), "the answer is shown once");
    shot(&client, "21-stream-resumed").await;
    client.close().await.unwrap();
    drop(driver);
    app.stop().await;
}
