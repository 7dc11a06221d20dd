//! The widget's event stream (`GET /api/chat/stream`, Server-Sent Events)
//! read with reqwest against a running app whose model is the
//! OpenAI-compatible fake: answers arrive word by word, agent messages and
//! notices are pushed, a reconnect with `Last-Event-ID` gets exactly what
//! was missed, streams need a signed token, are bounded, and end at
//! shutdown.

use crate::common;

use std::sync::Once;
use std::time::{Duration, Instant};

use common::openai_fake::Script;
use common::{DEADLINE, Deployment, Options, TestApp, spawn_app, spawn_on, wait_for_async};
use futures::StreamExt;

const ALICE: &str = "alice-token-live";
static ENV: Once = Once::new();

fn options(extra: &str) -> Options {
    ENV.call_once(|| {
        // SAFETY: every test calls this first, and nothing in this test
        // binary reads the environment before the Once has completed.
        unsafe { std::env::set_var("LIVE_ALICE_TOKEN", ALICE) };
    });
    Options::new()
        .openai()
        .settings("[[agents]]\nname = \"alice\"\ntoken_env = \"LIVE_ALICE_TOKEN\"\n")
        .settings(extra)
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

impl Sse {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// An open event stream, read event by event.
struct Stream {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
    /// The id of its `ready` event.
    ready: String,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, last: Option<&str>) -> Self {
        let response = Self::request(app, token, last).await;
        assert_eq!(response.status(), 200, "the stream opens");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut stream = Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            ready: String::new(),
        };
        let ready = stream.next().await.expect("the ready event");
        assert_eq!(ready.event, "ready", "{ready:?}");
        stream.ready = ready.id.expect("ready has an id");
        stream
    }

    async fn request(app: &TestApp, token: &str, last: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .get(format!("{}/api/chat/stream", app.base()))
            .query(&[("token", token)]);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send().await.unwrap()
    }

    /// The next event (keep-alive comments skipped); `None` when the
    /// stream ended cleanly. Fails the test after [`DEADLINE`].
    async fn next(&mut self) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    event: "message".into(),
                    ..Sse::default()
                };
                let mut data = Vec::new();
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event.event = value.into(),
                        "id" => event.id = Some(value.into()),
                        "data" => data.push(value),
                        _ => {}
                    }
                }
                if data.is_empty() && event.id.is_none() {
                    continue; // a comment (keep-alive) or a bare retry
                }
                event.data = data.join("\n");
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an event within the deadline");
            match chunk {
                Some(Ok(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(e)) => panic!("the stream broke: {e}"),
                None => return None,
            }
        }
    }
}

async fn visitor(app: &TestApp) -> String {
    let visitor: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/chat/visitor", app.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    visitor["token"].as_str().unwrap().to_string()
}

/// Posts a customer message; its JSON answer.
async fn say(base: &str, token: &str, text: &str, id: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/chat/messages"))
        .json(&serde_json::json!({"token": token, "text": text, "id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn agent(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/api/agent{path}", app.base()))
        .bearer_auth(ALICE);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// The conversation waiting in the agents' queue.
async fn waiting(app: &TestApp) -> String {
    let queue: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/agent/queue", app.base()))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    queue[0]["id"]
        .as_str()
        .expect("a waiting conversation")
        .to_string()
}

async fn reply(app: &TestApp, conversation: &str, text: &str) {
    agent(
        app,
        reqwest::Method::POST,
        &format!("/conversations/{conversation}/reply"),
        Some(serde_json::json!({"text": text})),
    )
    .await;
}

fn words() -> Vec<String> {
    [
        "To get a refund, ",
        "open Settings → Billing → Refund ",
        "within 14 days ",
        "of the charge; ",
        "it reaches your card ",
        "in 5–10 business days.",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_streams_word_by_word_and_agent_messages_are_pushed() {
    let app = spawn_app(options("")).await;
    app.openai()
        .script([Script::Slow(words(), Duration::from_millis(60))]);
    let token = visitor(&app).await;
    let mut stream = Stream::open(&app, &token, None).await;

    let asked = tokio::spawn({
        let (base, token) = (app.base().to_string(), token.clone());
        async move {
            let answer = say(&base, &token, "how do I get a refund", "q1").await;
            (answer, Instant::now())
        }
    });
    let mut deltas = Vec::new();
    let mut first = None;
    let mut seqs = Vec::new();
    while deltas.concat() != words().concat() {
        let event = stream.next().await.expect("the stream stays open");
        assert_eq!(event.event, "delta", "{event:?}");
        let data = event.json();
        assert_eq!(data["id"], "q1");
        first.get_or_insert_with(Instant::now);
        deltas.push(data["text"].as_str().unwrap().to_string());
        let id = event.id.clone().unwrap();
        seqs.push(id.split('_').nth(1).unwrap().parse::<u64>().unwrap());
    }
    let (answer, answered) = asked.await.unwrap();
    // Word by word, in order, before the answer was complete.
    assert!(deltas.len() >= words().len(), "{deltas:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        first.unwrap() < answered,
        "the first words came before the answer"
    );
    // They make the answer that was returned and stored.
    assert_eq!(answer["reply"]["text"], deltas.concat(), "{answer}");
    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/chat/history", app.base()))
        .header("x-visitor-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][1]["kind"], "bot", "{history}");
    assert_eq!(history["messages"][1]["text"], deltas.concat(), "{history}");

    // A person: the "joined" notice and her reply are pushed.
    say(app.base(), &token, "/human", "q2").await;
    let conversation = waiting(&app).await;
    reply(&app, &conversation, "Hi, **Alice** here.").await;
    let joined = stream.next().await.unwrap();
    assert_eq!(joined.event, "message", "{joined:?}");
    assert_eq!(joined.json()["kind"], "notice", "{joined:?}");
    assert_eq!(joined.json()["text"], "alice joined the conversation.");
    let pushed = stream.next().await.unwrap();
    let pushed_json = pushed.json();
    assert_eq!(pushed_json["kind"], "agent", "{pushed:?}");
    assert_eq!(pushed_json["author"], "alice");
    assert!(
        pushed_json["html"]
            .as_str()
            .unwrap()
            .contains("<strong>Alice</strong>")
    );
    // Its id carries the polling cursor.
    assert!(
        pushed
            .id
            .unwrap()
            .ends_with(pushed_json["cursor"].as_str().unwrap())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_the_last_event_id_gets_exactly_what_was_missed() {
    let app = spawn_app(options("")).await;
    app.openai()
        .script([Script::Slow(words(), Duration::from_millis(40))]);
    let token = visitor(&app).await;
    let mut stream = Stream::open(&app, &token, None).await;
    let asked = tokio::spawn({
        let (base, token) = (app.base().to_string(), token.clone());
        async move { say(&base, &token, "how do I get a refund", "q1").await }
    });
    // Two pieces, then the connection drops.
    let mut seen = Vec::new();
    let mut last = String::new();
    while seen.len() < 2 {
        let event = stream.next().await.unwrap();
        assert_eq!(event.event, "delta");
        seen.push(event.json()["text"].as_str().unwrap().to_string());
        last = event.id.unwrap();
    }
    drop(stream);
    // Meanwhile: the answer completes, a person joins and writes twice.
    let answer = asked.await.unwrap();
    say(app.base(), &token, "/human", "q2").await;
    let conversation = waiting(&app).await;
    reply(&app, &conversation, "first while away").await;
    reply(&app, &conversation, "second while away").await;

    // Back with the last id: the rest of the answer, the notice and both
    // replies, once each.
    let mut stream = Stream::open(&app, &token, Some(&last)).await;
    let mut rest = Vec::new();
    let mut mailbox = Vec::new();
    while mailbox.len() < 3
        || format!("{}{}", seen.concat(), rest.concat()) != answer["reply"]["text"]
    {
        let event = stream.next().await.unwrap();
        match event.event.as_str() {
            "delta" => rest.push(event.json()["text"].as_str().unwrap().to_string()),
            "message" => mailbox.push(event.json()["text"].as_str().unwrap().to_string()),
            other => panic!("unexpected {other}: {event:?}"),
        }
        assert!(mailbox.len() <= 3, "{mailbox:?}");
    }
    assert_eq!(
        mailbox,
        [
            "alice joined the conversation.",
            "alice (support): first while away",
            "alice (support): second while away"
        ]
    );
    assert_eq!(seen.len() + rest.len(), words().len(), "{seen:?} {rest:?}");
    // Nothing else was owed: the next event is the next reply.
    reply(&app, &conversation, "third, live").await;
    let next = stream.next().await.unwrap();
    assert_eq!(
        next.json()["text"],
        "alice (support): third, live",
        "{next:?}"
    );
    let after_third = next.id.unwrap();
    drop(stream);

    // Reconnecting with an id from the stream that saw everything: nothing
    // is sent again.
    let mut stream = Stream::open(&app, &token, Some(&after_third)).await;
    reply(&app, &conversation, "fourth").await;
    let next = stream.next().await.unwrap();
    assert_eq!(next.json()["text"], "alice (support): fourth", "{next:?}");
    drop(stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_need_a_signed_token_are_bounded_and_end_at_shutdown() {
    let app = spawn_app(options(
        "[web]\nmax_streams = 3\nmax_streams_per_visitor = 2\n",
    ))
    .await;
    let token = visitor(&app).await;
    let (id, _) = token.split_once('.').unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/chat/stream", app.base());
    // A bare id, a forged signature, an old-API session, nothing: refused.
    for query in [
        vec![("session", id.to_string())],
        vec![("token", format!("{id}.{}", "0".repeat(64)))],
        vec![("token", id.to_string())],
        vec![("session", "widget-session-1".to_string())],
        vec![],
    ] {
        let status = http.get(&url).query(&query).send().await.unwrap().status();
        assert!(
            status == 400 || status == 401,
            "{query:?} opened a stream: {status}"
        );
    }
    // A malformed Last-Event-ID.
    let status = Stream::request(&app, &token, Some("nonsense"))
        .await
        .status();
    assert_eq!(status, 400);

    // Two per visitor, three in all.
    let one = Stream::open(&app, &token, None).await;
    let mut two = Stream::open(&app, &token, None).await;
    assert_eq!(Stream::request(&app, &token, None).await.status(), 429);
    let other = visitor(&app).await;
    let three = Stream::open(&app, &other, None).await;
    assert_eq!(Stream::request(&app, &other, None).await.status(), 503);
    drop(one);
    // A closed stream frees its place (once the server notices).
    common::wait_for_async("a place to free up", || {
        let app = &app;
        let token = token.clone();
        async move { Stream::request(app, &token, None).await.status() == 200 }
    })
    .await;
    drop(three);

    // Shutdown ends an open stream cleanly, well before the drain limit.
    let started = Instant::now();
    let stopping = tokio::spawn(app.stop());
    while two.next().await.is_some() {}
    stopping.await.unwrap();
    assert!(
        started.elapsed() < switchboard::web::serve::DRAIN,
        "shutdown waited for the stream: {:?}",
        started.elapsed()
    );
}

async fn press(base: &str, token: &str, data: &str, id: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/chat/press"))
        .json(&serde_json::json!({"token": token, "data": data, "id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The `data` of the button labelled `label` in `message`.
fn button(message: &serde_json::Value, label: &str) -> String {
    message["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .find(|b| b["label"] == label)
        .unwrap_or_else(|| panic!("no {label:?} button: {message}"))["data"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The survey as the widget shows it: pushed on the stream, and after a
/// reload (history) with the score chosen and the thanks that followed,
/// once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_score_and_what_followed_it_are_shown_after_a_reload() {
    let app = spawn_app(options(
        "[csat]\ndelay_secs = 0\nces = false\nnps = false\ncomment = false\n",
    ))
    .await;
    app.openai().script([Script::Stream(words())]);
    let token = visitor(&app).await;
    let answer = say(app.base(), &token, "how do I get a refund", "q1").await;
    let solved = button(&answer["reply"], switchboard::button::SOLVED_YES_LABEL);
    let pressed = press(app.base(), &token, &solved, "p1").await;
    // Kept in the log as the visitor's message: said so.
    assert_eq!(pressed["said"], switchboard::button::SOLVED_YES_LABEL);
    let mut stream = Stream::open(&app, &token, None).await;
    app.surveys_tick().await;
    let survey = stream.next().await.unwrap().json();
    let four = button(&survey, "4");
    let thanks = press(app.base(), &token, &four, "p2").await;
    let thanks_cursor = thanks["reply"]["cursor"]
        .as_str()
        .expect("kept in the mailbox");

    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/chat/history", app.base()))
        .header("x-visitor-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = history["messages"].as_array().unwrap();
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let asked = messages
        .iter()
        .filter(|m| m["text"] == survey["text"])
        .collect::<Vec<_>>();
    assert_eq!(asked.len(), 1, "{texts:?}");
    assert_eq!(asked[0]["chosen"], serde_json::json!([four]), "{history}");
    let thanked = messages
        .iter()
        .filter(|m| m["text"] == thanks["reply"]["text"])
        .collect::<Vec<_>>();
    assert_eq!(thanked.len(), 1, "{texts:?}");
    assert_eq!(thanked[0]["cursor"], thanks_cursor);
    assert_eq!(
        texts
            .iter()
            .filter(|t| **t == switchboard::button::SOLVED_YES_LABEL)
            .count(),
        1,
        "{texts:?}"
    );
    app.stop().await;
}

/// A stream dropped before any word: reconnecting with the `ready` event's
/// id gets the whole answer written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_at_once_resumes_from_its_ready_event() {
    let app = spawn_app(options("")).await;
    app.openai().script([Script::Stream(words())]);
    let token = visitor(&app).await;
    let stream = Stream::open(&app, &token, None).await;
    let ready = stream.ready.clone();
    drop(stream);
    let answer = say(app.base(), &token, "how do I get a refund", "q1").await;
    let mut stream = Stream::open(&app, &token, Some(&ready)).await;
    let mut text = String::new();
    while text != answer["reply"]["text"] {
        let event = stream.next().await.unwrap();
        assert_eq!(event.event, "delta", "{event:?}");
        text.push_str(event.json()["text"].as_str().unwrap());
    }
    app.stop().await;
}

/// Issue 16, several processes on one PostgreSQL database behind a load
/// balancer: the visitor's event stream is open on one process while the
/// hand-off and the agent's reply go through another. The other process
/// keeps the messages in the visitor's mailbox and rings its bell through
/// the database (`NOTIFY`); the stream's periodic mailbox read is an hour
/// here (the harness's `web.stream_check_secs`), so only the bell can
/// bring them within the stream's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn an_agent_reply_through_another_process_reaches_the_open_stream() {
    let deployment = Deployment::new(&options("").postgres()).await;
    let one = spawn_on(deployment.clone(), options("").postgres()).await;
    let two = spawn_on(deployment.clone(), options("").postgres()).await;
    // Both processes listen for bells before anything rings one.
    wait_for_async("both processes listen for bells", || async {
        listeners(deployment.db_url()).await >= 2
    })
    .await;

    let token = visitor(&one).await;
    let mut stream = Stream::open(&one, &token, None).await;
    say(two.base(), &token, "/human", "q1").await;
    let conversation = waiting(&two).await;
    reply(
        &two,
        &conversation,
        "Hi, **Alice** here, on the other process.",
    )
    .await;

    let mut seen = Vec::new();
    let pushed = loop {
        let event = stream.next().await.expect("the stream stays open");
        if event.event == "message" && event.json()["kind"] == "agent" {
            break event.json();
        }
        seen.push(event);
    };
    assert_eq!(pushed["author"], "alice", "{pushed}");
    assert!(
        pushed["html"]
            .as_str()
            .unwrap()
            .contains("on the other process"),
        "{pushed}"
    );
    // The "joined" notice came the same way, before the reply.
    assert!(
        seen.iter()
            .any(|e| e.event == "message" && e.json()["text"] == "alice joined the conversation."),
        "{seen:?}"
    );
    two.stop().await;
    one.stop().await;
    deployment.finish().await;
}

/// Connections listening for widget bells on the database at `url`.
async fn listeners(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_activity");
    n
}
