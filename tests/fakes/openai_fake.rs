//! A local OpenAI-compatible server (axum) that the real async-openai client
//! talks to over HTTP. Each test scripts what it answers and reads back the
//! request bodies it received.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// One scripted answer to a chat-completions request.
#[derive(Clone, Debug)]
pub enum Script {
    /// SSE-streamed chunks, then a usage chunk and `[DONE]`.
    Stream(Vec<String>),
    /// A non-streamed JSON completion (sent even if the client asked to stream).
    Plain(String),
    /// HTTP 500 with an OpenAI error body.
    ServerError,
    /// HTTP 429 with `Retry-After: N` seconds.
    RateLimited(u64),
    /// These chunks, then silence for this long before the rest.
    Stall(Vec<String>, Duration),
    /// A stream whose second event is not JSON.
    Malformed,
    /// SSE-streamed chunks, each after this pause (a slow model).
    Slow(Vec<String>, Duration),
}

/// What the fake has seen and will say.
#[derive(Default)]
pub struct Fake {
    scripts: Mutex<VecDeque<Script>>,
    /// Request bodies received, in order.
    pub requests: Mutex<Vec<serde_json::Value>>,
    /// Every text sent to `/v1/embeddings`, in order.
    pub embedded: Mutex<Vec<String>>,
    /// While set, `/v1/embeddings` answers 500.
    pub embeddings_down: std::sync::atomic::AtomicBool,
    /// While set, `/v1/embeddings` answers only after a minute.
    pub embeddings_stall: std::sync::atomic::AtomicBool,
    /// Chat completions being answered now (until their body ends or the
    /// client drops it).
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// The most chat completions ever answered at once.
    pub peak: Arc<std::sync::atomic::AtomicUsize>,
    /// When each chunk of a [`Script::Slow`] answer was written to the
    /// socket (wall clock, to compare with a browser's `Date.now()`).
    pub slow_chunks_sent: Arc<Mutex<Vec<std::time::SystemTime>>>,
}

/// Counts one chat completion in flight until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(fake: &Fake) -> Self {
        use std::sync::atomic::Ordering;
        let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        fake.peak.fetch_max(now, Ordering::SeqCst);
        Self(fake.in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Fake {
    /// Queues answers; when the queue is empty the last one repeats.
    pub fn script(&self, scripts: impl IntoIterator<Item = Script>) {
        self.scripts.lock().unwrap().extend(scripts);
    }

    /// Replaces the queued answers with `scripts`.
    pub fn rescript(&self, scripts: impl IntoIterator<Item = Script>) {
        let mut queue = self.scripts.lock().unwrap();
        queue.clear();
        queue.extend(scripts);
    }

    /// Bodies received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.requests.lock().unwrap().clone()
    }

    fn next(&self) -> Script {
        let mut scripts = self.scripts.lock().unwrap();
        if scripts.len() > 1 {
            scripts.pop_front().unwrap()
        } else {
            scripts.front().cloned().unwrap_or(Script::ServerError)
        }
    }
}

/// Starts the fake on 127.0.0.1:0; returns it and its `/v1` base URL.
pub async fn start() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, format!("http://{addr}/v1"))
}

fn chunk(content: &str) -> String {
    let json = serde_json::json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-model",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": null}],
    });
    format!("data: {json}\n\n")
}

fn usage_chunk() -> String {
    let json = serde_json::json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-model",
        "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
    });
    format!("data: {json}\n\n")
}

fn sse(events: Vec<(String, Option<Duration>)>) -> Response {
    sse_counted(events, None, None)
}

type Sent = Arc<Mutex<Vec<std::time::SystemTime>>>;

fn sse_counted(
    events: Vec<(String, Option<Duration>)>,
    guard: Option<InFlight>,
    sent: Option<Sent>,
) -> Response {
    let stream = futures::stream::unfold(
        (events.into_iter(), guard, sent),
        |(mut events, guard, sent)| async move {
            let (event, delay) = events.next()?;
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(sent) = &sent
                && event.contains("\"content\"")
            {
                sent.lock().unwrap().push(std::time::SystemTime::now());
            }
            Some((
                Ok::<Bytes, Infallible>(Bytes::from(event)),
                (events, guard, sent),
            ))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn chat(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    fake.requests.lock().unwrap().push(json);
    let guard = InFlight::enter(&fake);
    match fake.next() {
        Script::Slow(chunks, pause) => {
            let mut events: Vec<(String, Option<Duration>)> =
                chunks.iter().map(|c| (chunk(c), Some(pause))).collect();
            events.push((usage_chunk(), None));
            events.push(("data: [DONE]\n\n".into(), None));
            sse_counted(events, Some(guard), Some(fake.slow_chunks_sent.clone()))
        }
        Script::Stream(chunks) => {
            let mut events: Vec<(String, Option<Duration>)> = chunks.iter().map(|c| (chunk(c), None)).collect();
            events.push((usage_chunk(), None));
            events.push(("data: [DONE]\n\n".into(), None));
            sse(events)
        }
        Script::Plain(text) => {
            let json = serde_json::json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
            });
            (StatusCode::OK, axum::Json(json)).into_response()
        }
        Script::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}})),
        )
            .into_response(),
        Script::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            axum::Json(serde_json::json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})),
        )
            .into_response(),
        Script::Stall(chunks, pause) => {
            let mut events: Vec<(String, Option<Duration>)> = chunks.iter().map(|c| (chunk(c), None)).collect();
            events.push((chunk(" and the rest"), Some(pause)));
            events.push(("data: [DONE]\n\n".into(), None));
            sse(events)
        }
        Script::Malformed => sse(vec![
            (chunk("Partial "), None),
            ("data: {this is not json\n\n".into(), None),
            ("data: [DONE]\n\n".into(), None),
        ]),
    }
}

/// Dimensions of the fake's embeddings.
pub const DIM: usize = 64;

/// A small, deterministic "embedding": words of four letters or more,
/// lower-cased, a plural `s` dropped, a few synonyms folded together
/// (what a real model learns), hashed into [`DIM`] buckets.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 4)
    {
        let word = word.strip_suffix('s').unwrap_or(&word).to_string();
        let word = match word.as_str() {
            "reimbursed" | "reimbursement" | "moneyback" => "refund".to_string(),
            _ => word,
        };
        let bucket = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) % DIM as u64;
        v[bucket as usize] += 1.0;
    }
    v
}

async fn embeddings(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if fake
        .embeddings_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": {"message": "embeddings are down", "type": "server_error", "param": null, "code": null}})),
        )
            .into_response();
    }
    let inputs: Vec<String> = match &json["input"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": {"message": "input must be a string or an array of strings", "type": "invalid_request_error", "param": "input", "code": null}})),
            )
                .into_response();
        }
    };
    if fake
        .embeddings_stall
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    fake.embedded.lock().unwrap().extend(inputs.iter().cloned());
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| serde_json::json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    let json = serde_json::json!({
        "object": "list", "data": data, "model": json["model"],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    });
    (StatusCode::OK, axum::Json(json)).into_response()
}
