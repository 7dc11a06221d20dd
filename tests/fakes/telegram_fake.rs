//! A local Telegram Bot API server: `/bot<token>/<Method>` over HTTP with
//! JSON, as teloxide speaks it (method names matched case-insensitively).
//! It records every call, serves long-polling `getUpdates`, can answer with
//! 429 and 500 on demand, and checks HTML text the way Telegram does
//! (a message it cannot parse gets "can't parse entities").

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const TOKEN: &str = "123456:TEST-TOKEN";
pub const BOT_ID: i64 = 999;
pub const BOT_USERNAME: &str = "switchboard_bot";

/// A scripted failure for the next call of a method.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// 429 with `retry_after` seconds.
    TooMany(u64),
    /// 500.
    ServerError,
    /// 400 with this description (e.g. `createForumTopic` in a group
    /// without topics).
    BadRequest(&'static str),
}

#[derive(Default)]
pub struct Fake {
    /// `(method in lower case, parameters)` of every call, in order.
    pub calls: Mutex<Vec<(String, Value)>>,
    updates: Mutex<VecDeque<Value>>,
    /// Updates to deliver once more whatever the offset says.
    replays: Mutex<VecDeque<Value>>,
    /// The highest `offset` a `getUpdates` call has sent: every update
    /// below it is confirmed.
    pub confirmed_below: AtomicI64,
    failures: Mutex<HashMap<String, VecDeque<Failure>>>,
    next_message_id: Mutex<i64>,
    /// `(message id, parameters)` of every message sent, in order.
    sent: Mutex<Vec<(i64, Value)>>,
    /// How many `getUpdates` answers carried each update id.
    served: Mutex<HashMap<i64, usize>>,
    notify: tokio::sync::Notify,
}

impl Fake {
    /// How many `getUpdates` answers have carried update `id`: more than
    /// one means the bot did not confirm it the first time.
    pub fn times_served(&self, id: i64) -> usize {
        self.served.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    /// Queues an update for `getUpdates`.
    pub fn push(&self, update: Value) {
        self.updates.lock().unwrap().push_back(update);
        self.notify.notify_waiters();
    }

    /// Delivers `update` once more with the next `getUpdates`, even if it
    /// was already confirmed (an at-least-once delivery replaying it).
    pub fn replay(&self, update: Value) {
        self.replays.lock().unwrap().push_back(update);
        self.notify.notify_waiters();
    }

    /// The next `n` calls of `method` fail like this.
    pub fn fail(&self, method: &str, failure: Failure, n: usize) {
        let mut f = self.failures.lock().unwrap();
        let queue = f.entry(method.to_lowercase()).or_default();
        for _ in 0..n {
            queue.push_back(failure);
        }
    }

    /// Calls of a method (lower case), in order.
    pub fn calls_of(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Messages sent into `chat` as `(message id, text)`, in order.
    pub fn sent_to(&self, chat: i64) -> Vec<(i64, String)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p["chat_id"].as_i64() == Some(chat))
            .map(|(id, p)| (*id, p["text"].as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Every text sent or edited into `chat`, in order.
    pub fn texts_to(&self, chat: i64) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| {
                (m == "sendmessage" || m == "editmessagetext")
                    && p["chat_id"].as_i64() == Some(chat)
            })
            .map(|(_, p)| p["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Updates pushed and not confirmed yet by a `getUpdates` offset.
    pub fn unconfirmed(&self) -> Vec<i64> {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .map(|u| u["update_id"].as_i64().unwrap_or(0))
            .collect()
    }

    /// Waits (bounded, 10 s) until `check` holds.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Fake) -> bool) {
        self.wait_up_to(10, what, check).await;
    }

    /// Waits at most `secs` until `check` holds.
    pub async fn wait_up_to(&self, secs: u64, what: &str, check: impl Fn(&Fake) -> bool) {
        for _ in 0..secs * 20 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; calls: {:#?}",
            self.calls.lock().unwrap()
        );
    }
}

/// Starts the fake; returns it and its base URL (for `telegram.api_url`).
pub async fn start() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    *fake.next_message_id.lock().unwrap() = 1000;
    let app = Router::new()
        .route("/{bot}/{method}", post(call))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, format!("http://{addr}"))
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn error(status: StatusCode, description: &str, extra: Value) -> Response {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    (status, axum::Json(body)).into_response()
}

pub fn user(id: i64, name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": name})
}

pub fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Switchboard", "username": BOT_USERNAME})
}

pub fn private_chat(id: i64) -> Value {
    json!({"id": id, "type": "private", "first_name": "Customer"})
}

pub fn group_chat(id: i64, forum: bool) -> Value {
    json!({"id": id, "type": "supergroup", "title": "Group", "is_forum": forum})
}

/// A message object.
pub fn message(id: i64, chat: Value, from: Value, text: &str) -> Value {
    json!({"message_id": id, "date": 1_700_000_000, "chat": chat, "from": from, "text": text})
}

/// An update carrying a message.
pub fn message_update(update_id: i64, message: Value) -> Value {
    json!({"update_id": update_id, "message": message})
}

/// An update carrying a button press on `message`.
pub fn callback_update(update_id: i64, id: &str, from: Value, message: Value, data: &str) -> Value {
    json!({"update_id": update_id, "callback_query": {
        "id": id, "from": from, "chat_instance": "instance", "data": data, "message": message,
    }})
}

/// Checks HTML the way Telegram does, roughly: tags must be known and
/// balanced, `&` must start an entity, `<` must start a tag.
pub fn html_problem(text: &str) -> Option<String> {
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('&') {
            let ok = ["&lt;", "&gt;", "&amp;", "&quot;"]
                .iter()
                .any(|e| tail.starts_with(e));
            if !ok {
                return Some(format!(
                    "Bad Request: can't parse entities: unsupported entity at {i}"
                ));
            }
            rest = after;
            continue;
        }
        let Some(end) = tail.find('>') else {
            return Some("Bad Request: can't parse entities: unclosed tag".into());
        };
        let tag = &tail[1..end];
        if let Some(name) = tag.strip_prefix('/') {
            if open.pop().as_deref() != Some(name) {
                return Some(format!(
                    "Bad Request: can't parse entities: unexpected end tag {name}"
                ));
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("");
            if !["a", "b", "i", "code", "pre", "u", "s"].contains(&name) {
                return Some(format!(
                    "Bad Request: can't parse entities: unsupported start tag \"{name}\""
                ));
            }
            open.push(name.to_string());
        }
        rest = &tail[end + 1..];
    }
    open.first()
        .map(|t| format!("Bad Request: can't parse entities: can't find end tag {t}"))
}

/// Form fields of a multipart body (teloxide sends some methods, such as
/// `setWebhook`, as multipart/form-data).
fn multipart_fields(content_type: &str, body: &[u8]) -> Value {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return json!({});
    };
    let body = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in body.split(&format!("--{}", boundary.trim_matches('"'))) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|n| n.split('"').next())
        else {
            continue;
        };
        let value = value.trim_end_matches("\r\n");
        let parsed =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        fields.insert(name.to_string(), parsed);
    }
    Value::Object(fields)
}

async fn call(
    State(fake): State<Arc<Fake>>,
    Path((bot, method)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let method = method.to_lowercase();
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let params: Value = if content_type.starts_with("multipart/") {
        multipart_fields(&content_type, &body)
    } else {
        serde_json::from_slice(&body).unwrap_or(json!({}))
    };
    if method != "getupdates" {
        fake.calls
            .lock()
            .unwrap()
            .push((method.clone(), params.clone()));
    }
    let failure = fake
        .failures
        .lock()
        .unwrap()
        .get_mut(&method)
        .and_then(|q| q.pop_front());
    match failure {
        Some(Failure::TooMany(secs)) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {secs}"),
                json!({"parameters": {"retry_after": secs}}),
            );
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                Value::Null,
            );
        }
        Some(Failure::BadRequest(description)) => {
            return error(StatusCode::BAD_REQUEST, description, Value::Null);
        }
        None => {}
    }
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Switchboard", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        })),
        "getupdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            fake.confirmed_below.fetch_max(offset, Ordering::SeqCst);
            for _ in 0..2 {
                {
                    let mut updates = fake.updates.lock().unwrap();
                    // An offset confirms every update below it.
                    updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    let replays: Vec<Value> = fake.replays.lock().unwrap().drain(..).collect();
                    if !updates.is_empty() || !replays.is_empty() {
                        let batch: Vec<Value> =
                            replays.into_iter().chain(updates.iter().cloned()).collect();
                        let mut served = fake.served.lock().unwrap();
                        for u in &batch {
                            *served
                                .entry(u["update_id"].as_i64().unwrap_or(0))
                                .or_default() += 1;
                        }
                        return ok(Value::Array(batch));
                    }
                }
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), fake.notify.notified()).await;
            }
            ok(json!([]))
        }
        "sendmessage" | "editmessagetext" => {
            let text = params["text"].as_str().unwrap_or_default();
            if params["parse_mode"] == "HTML"
                && let Some(problem) = html_problem(text)
            {
                return error(StatusCode::BAD_REQUEST, &problem, Value::Null);
            }
            if text.chars().count() > 4096 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message is too long",
                    Value::Null,
                );
            }
            let chat_id = params["chat_id"].as_i64().unwrap_or(0);
            let id = if method == "sendmessage" {
                let mut next = fake.next_message_id.lock().unwrap();
                *next += 1;
                fake.sent.lock().unwrap().push((*next, params.clone()));
                *next
            } else {
                params["message_id"].as_i64().unwrap_or(0)
            };
            let chat = if chat_id > 0 {
                private_chat(chat_id)
            } else {
                group_chat(chat_id, true)
            };
            let mut m = message(id, chat, bot_user(), text);
            if let Some(thread) = params["message_thread_id"].as_i64() {
                m["message_thread_id"] = json!(thread);
                m["is_topic_message"] = json!(true);
            }
            ok(m)
        }
        "createforumtopic" => {
            ok(json!({"message_thread_id": 77, "name": params["name"], "icon_color": 7_322_096}))
        }
        _ => ok(json!(true)),
    }
}
