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
//! Ignored by default (it needs `chromium` and `chromium-driver`); CI
//! installs them and runs it with `cargo test --test browser -- --ignored`.

mod openai_fake;

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

static ENV: std::sync::Once = std::sync::Once::new();

/// Sets the agent token's variable; every test calls it first.
fn init_env() {
    ENV.call_once(|| {
        // SAFETY: every test calls this before anything else, and nothing
        // in this test binary reads the environment before the Once has
        // completed.
        unsafe { std::env::set_var("BROWSER_ALICE_TOKEN", AGENT_TOKEN) };
    });
}

/// The knowledge base, prompts and settings of one run.
fn settings(dir: &std::path::Path, llm: &str, host_origin: &str) -> Settings {
    let kb = dir.join("kb");
    std::fs::create_dir_all(kb.join("billing")).unwrap();
    std::fs::write(
        kb.join("billing/refunds.md"),
        "---\ntitle: Refunds\nurl: https://help.example/refunds\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge.\n",
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
    init_env();
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
    let app = App::build(settings(dir.path(), &llm_url, &host_origin), system())
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
    init_env();
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

    // 5. The inbox: two customers wait.
    for question in ["/human", "/human"] {
        let handed = widget_answer(&http, &base, question).await;
        assert_eq!(handed["reply"]["handoff"], true, "{handed}");
    }
    click(&client, "#nav button[data-view=inbox]").await;
    until(
        &client,
        "return document.querySelectorAll('#inbox-list .row').length === 2",
    )
    .await;
    shot(&client, "console-05-waiting").await;
    click(&client, "#inbox-list .row").await;
    // Only what applies: a waiting chat can be claimed, not transferred.
    press(&client, "head", "Claim").await;
    assert_eq!(count(&client, "#transfer-to").await, 0);
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

    client.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
    let _ = running.await;
}
