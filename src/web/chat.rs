//! The web chat widget's API and pages.
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /agent` | | the agent console page (uses the agent API) |
//! | `GET /static/{widget,agent}.{js,css}` | | their script and style |
//! | `POST /api/chat/visitor` | | a new visitor: `{"visitor", "token"}` |
//! | `POST /api/chat/messages` | `{"token", "text", "id"?}` | a customer message; the reply comes back |
//! | `POST /api/chat/press` | `{"token", "data", "id"?}` | a button press (`"stale": true` when it no longer applies) |
//! | `GET /api/chat/history` | | the visitor's current conversation, whole, and the polling cursor |
//! | `GET /api/chat/updates?after=CURSOR` | | messages sent since (agent replies, notices, surveys): the fallback of the event stream |
//!
//! The pages themselves (`/`, `/embed`, `/widget.js`) are in [`super::embed`];
//! the event stream (`/api/chat/stream`: the words of answers as they are
//! written, mailbox messages at once) in [`super::live`]. Mailbox messages
//! carry their `cursor`, so the widget shows each once however it came.
//!
//! `token` is the visitor token ([`super::visitor`]); GET requests send it
//! in the `X-Visitor-Token` header (or `?token=`). The old API's bare
//! `session` (8–64 letters, digits, `-`, `_`, chosen by the browser) is
//! still accepted in its place, except for ids the server issued. Every
//! message shown carries `kind` (`customer`, `bot`, `agent`, `notice`),
//! `author` (an agent's name), `at` (milliseconds since the epoch) and
//! `html` (the message as sanitised HTML, [`super::markdown`]) besides
//! `text`. `text` is what was delivered (an agent's reply polled from the
//! mailbox keeps its `NAME (support): ` prefix; `html` and history's `text`
//! have the agent's words only).
//! `id` (at most [`MAX_ID_BYTES`]) is an optional
//! client message id so a retried POST is not answered twice. The answer is
//! made in a task of its own: a client that goes away does not lose it,
//! and a retry with the same `id` gets the same reply (waiting for it if
//! it is still being made).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;

use super::AppState;
use super::shown::Shown;
use super::visitor::Refused;
use crate::assistant::{Action, Pressed, Reply};
use crate::button::ButtonData;
use crate::channels::driver;
use crate::channels::web::{CHANNEL, Kept, Place};
use crate::delivery::Outgoing;
use crate::inbound::guarded;
use crate::store::Message;

const WIDGET_JS: &str = include_str!("static/widget.js");
const WIDGET_CSS: &str = include_str!("static/widget.css");
const AGENT: &str = include_str!("static/agent.html");
const AGENT_JS: &str = include_str!("static/agent.js");
const AGENT_CSS: &str = include_str!("static/agent.css");

/// Longest client message id, cursor or button data accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest button data accepted, in bytes.
pub const MAX_DATA_BYTES: usize = 512;

/// Routes of the widget page and its API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/static/widget.js", get(|| async { script(WIDGET_JS) }))
        .route("/static/widget.css", get(|| async { style(WIDGET_CSS) }))
        .route("/api/chat/messages", post(message))
        .route("/api/chat/press", post(press))
        .route("/api/chat/updates", get(updates))
        .route("/api/chat/history", get(history))
        .route("/api/chat/visitor", post(visitor))
}

/// Routes of the agent console page.
pub fn console_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/agent", get(|| async { Html(AGENT) }))
        .route("/static/agent.js", get(|| async { script(AGENT_JS) }))
        .route("/static/agent.css", get(|| async { style(AGENT_CSS) }))
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

fn style(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// Answers being made for widget messages, by `session:id`: a retry
/// waits on the same answer instead of getting nothing.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<String, Answer>>>);

type Answer = watch::Receiver<Option<Result<Reply, String>>>;

/// Removes an answer from [`InFlight`] when dropped.
struct Forget(InFlight, String);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

#[derive(Deserialize)]
struct MessageBody {
    session: Option<String>,
    token: Option<String>,
    text: String,
    id: Option<String>,
}

#[derive(Deserialize)]
struct PressBody {
    session: Option<String>,
    token: Option<String>,
    data: String,
    id: Option<String>,
}

#[derive(Deserialize)]
struct UpdatesQuery {
    session: Option<String>,
    token: Option<String>,
    #[serde(default)]
    after: String,
}

/// Header carrying the visitor token of GET requests.
pub const TOKEN_HEADER: &str = "x-visitor-token";

/// The response refusing a request's visitor.
fn refused(e: Refused) -> Response {
    let status = match e {
        Refused::Malformed => StatusCode::BAD_REQUEST,
        Refused::Forged => StatusCode::UNAUTHORIZED,
    };
    (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
}

/// The token of a GET request: the header, else `?token=`.
fn token_of<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(query)
}

async fn visitor(State(state): State<Arc<AppState>>) -> Response {
    let (visitor, token) = state.visitors.issue();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"visitor": visitor, "token": token})),
    )
        .into_response()
}

/// The session's latest conversation and its log (none before the first
/// message).
async fn conversation_log(
    state: &AppState,
    session: &str,
) -> Result<Option<(crate::store::Conversation, Vec<Message>)>, crate::store::Error> {
    let store = state.assistant.store();
    let Some(customer) = store.find_customer(CHANNEL, session).await? else {
        return Ok(None);
    };
    let Some(conversation) = store.latest_conversation(&customer.id, session).await? else {
        return Ok(None);
    };
    let log = store.messages(&conversation.id).await?;
    Ok(Some((conversation, log)))
}

/// Most mailbox messages one history shows.
const HISTORY_MAILBOX: usize = 200;

async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<UpdatesQuery>,
) -> Response {
    let session = match state
        .visitors
        .session(token_of(&headers, q.token.as_deref()), q.session.as_deref())
    {
        Ok(session) => session,
        Err(e) => return refused(e),
    };
    let store = state.assistant.store();
    // The cursor first: a message arriving meanwhile is polled, not lost.
    let cursor = match store.web_cursor(&session).await {
        Ok(cursor) => cursor,
        Err(e) => return internal(e),
    };
    let (status, mut shown) = match conversation_log(&state, &session).await {
        Ok(Some((conversation, log))) => {
            let mailbox = match store
                .web_messages_since(&session, conversation.created_at, HISTORY_MAILBOX)
                .await
            {
                Ok(mailbox) => mailbox,
                Err(e) => return internal(e),
            };
            let events = match store.events(&conversation.id).await {
                Ok(events) => events,
                Err(e) => return internal(e),
            };
            // Messages with the notices of their events, in order; the
            // mailbox's copies of those notices are left out.
            let mut shown: Vec<Shown> = crate::transcript::merge(log.clone(), &events)
                .iter()
                .filter_map(|entry| match entry {
                    crate::transcript::Entry::Message(m) => Shown::logged(m),
                    crate::transcript::Entry::Notice(n) => {
                        Some(Shown::new("notice", n.text.clone(), n.created_at))
                    }
                })
                .collect();
            shown.extend(
                mailbox
                    .into_iter()
                    .filter(|(id, _, m)| {
                        id.as_str() <= cursor.as_str() && !m.notice && !Shown::copies(m, &log)
                    })
                    .map(|(id, at, m)| Shown {
                        cursor: Some(id),
                        ..Shown::message(m, at, &log)
                    }),
            );
            if let Err(e) = super::shown::survey_choices(store, &mut shown).await {
                return internal(e);
            }
            (Some(conversation.status.as_str()), shown)
        }
        Ok(None) => (None, Vec::new()),
        Err(e) => return internal(e),
    };
    // Stable: a log message and a mailbox message of the same moment keep
    // the log's order first.
    shown.sort_by_key(|m| m.at);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"messages": shown, "cursor": cursor, "status": status})),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": message})),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("web chat: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"error": "something went wrong on our side; please try again"})),
    )
        .into_response()
}

/// A 400 when a client-supplied id is empty or too long.
fn bad_id(id: Option<&str>) -> Option<Response> {
    match id {
        Some(id) if id.is_empty() || id.len() > MAX_ID_BYTES => Some(bad_request(&format!(
            "`id` must be 1 to {MAX_ID_BYTES} bytes"
        ))),
        _ => None,
    }
}

async fn message(State(state): State<Arc<AppState>>, Json(body): Json<MessageBody>) -> Response {
    let session = match state
        .visitors
        .session(body.token.as_deref(), body.session.as_deref())
    {
        Ok(session) => session,
        Err(e) => return refused(e),
    };
    if let Some(response) = bad_id(body.id.as_deref()) {
        return response;
    }
    if body.text.trim().is_empty() {
        return bad_request("`text` is empty");
    }
    let kept = Kept {
        session,
        text: body.text,
        id: body.id,
    };
    let key = kept.key();
    let result = answer(&state, kept).await;
    match result {
        Ok(reply) if reply.action == Action::Duplicate => match key {
            Some(key) => match replay(&state, &key).await {
                Ok(stored) => Json(serde_json::json!({
                    "reply": stored.as_ref().and_then(|m| Shown::stored(m, &reply.conversation_id))
                }))
                .into_response(),
                Err(e) => internal(e),
            },
            None => Json(serde_json::json!({"reply": null})).into_response(),
        },
        Ok(reply) => {
            Json(serde_json::json!({"reply": Shown::reply(&reply, state.assistant.store().now())}))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

/// The stored reply to the customer message `key`, for a client that sent
/// it again. A message stored by the process before a crash and never
/// answered is answered first (in a task of its own, so a client that goes
/// away does not stop it); that answer reaches the widget as a waiting
/// message, like every answer made by crash recovery, so the reply here
/// stays empty and the widget shows it once.
async fn replay(state: &AppState, key: &str) -> Result<Option<crate::store::Message>, String> {
    let store = state.assistant.store();
    if let Some(stored) = store
        .reply_to(CHANNEL, key)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Some(stored));
    }
    let assistant = state.assistant.clone();
    let registry = state.desk.registry().clone();
    let key = key.to_string();
    let orphan = tokio::spawn(async move {
        if let Err(e) = assistant.answer_orphan(&registry, CHANNEL, &key).await {
            tracing::warn!("web chat: answering a message left by a crash: {e}");
        }
    });
    orphan.await.map_err(|e| e.to_string())?;
    Ok(None)
}

/// Answers the browser's message through the channel driver, in a task of
/// its own, so the answer is made and stored even when the client
/// disconnects; a message whose id is being answered already waits for
/// that answer. The words of the answer go to the session's event stream
/// as they are written, named by the client's message id (without one
/// the widget could not tell whose they are), all of them before the
/// answer is returned.
async fn answer(state: &AppState, kept: Kept) -> Result<Reply, String> {
    let turn = kept.turn();
    let mut receiver = {
        let mut answers = state.answers.0.lock().unwrap_or_else(|p| p.into_inner());
        match turn
            .platform_message_id
            .as_ref()
            .and_then(|k| answers.get(k))
        {
            Some(receiver) => receiver.clone(),
            None => {
                let (sender, receiver) = watch::channel(None);
                let key = turn.platform_message_id.clone();
                if let Some(key) = &key {
                    answers.insert(key.clone(), receiver.clone());
                }
                let web = state.web.clone();
                let answers = state.answers.clone();
                let inbound = state.inbound.clone();
                tokio::spawn(async move {
                    // Forgotten when the task ends, even by a panic.
                    let _forget = key.clone().map(|key| Forget(answers, key));
                    let place = Place::response(&kept.session, kept.id.clone());
                    let handled = guarded(driver::converse(&web, place, turn)).await;
                    let result = match handled {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(panic) => {
                            // Quarantined with what the browser sent.
                            let key = key.unwrap_or_else(crate::store::new_id);
                            let payload = serde_json::to_string(&kept).unwrap_or_default();
                            if let Err(e) = inbound
                                .quarantine(CHANNEL, "message", &key, &payload, &panic.to_string())
                                .await
                            {
                                tracing::error!("web chat: could not quarantine a message: {e}");
                            }
                            Err(panic.to_string())
                        }
                    };
                    let _ = sender.send(Some(result));
                });
                receiver
            }
        }
    };
    let done = receiver.wait_for(Option::is_some).await;
    match done {
        Ok(result) => result.clone().unwrap_or_else(|| Err("no answer".into())),
        Err(_) => Err("the answer task stopped".into()),
    }
}

async fn press(State(state): State<Arc<AppState>>, Json(body): Json<PressBody>) -> Response {
    let session = match state
        .visitors
        .session(body.token.as_deref(), body.session.as_deref())
    {
        Ok(session) => session,
        Err(e) => return refused(e),
    };
    if let Some(response) = bad_id(body.id.as_deref()) {
        return response;
    }
    if body.data.len() > MAX_DATA_BYTES {
        return bad_request(&format!("`data` must be at most {MAX_DATA_BYTES} bytes"));
    }
    // A press that the log keeps as the customer's message (its label):
    // the widget shows it as theirs, as history will.
    let said = ButtonData::parse(&body.data).map(|data| data.label());
    let turn = Kept {
        session: session.clone(),
        text: body.data,
        id: body.id.map(|id| format!("press:{id}")),
    }
    .turn();
    let place = Place::response(&session, None);
    match driver::press(&state.web, place, &(), turn).await {
        Ok(Pressed::Reply(reply)) => Json(serde_json::json!({
            "said": said,
            "reply": Shown::reply(&reply, state.assistant.store().now())
        }))
        .into_response(),
        Ok(Pressed::Message(message)) => {
            // Kept in the mailbox (the next survey question, the thanks)
            // so that history shows it after a reload; the widget shows it
            // once by its id, from this response or the stream.
            let id = match state.web.keep(&session, &message).await {
                Ok(id) => id,
                Err(e) => return internal(e),
            };
            Json(serde_json::json!({
                "reply": Shown {
                    cursor: Some(id),
                    ..Shown::message(message, state.assistant.store().now(), &[])
                }
            }))
            .into_response()
        }
        Ok(Pressed::Feedback(_)) => {
            Json(serde_json::json!({"reply": null, "ack": crate::channels::text::FEEDBACK_THANKS}))
                .into_response()
        }
        Ok(Pressed::Unknown) => Json(serde_json::json!({"reply": null})).into_response(),
        Ok(Pressed::Stale) => Json(serde_json::json!({
            "reply": null,
            "ack": crate::button::NO_LONGER_AVAILABLE,
            "stale": true,
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn updates(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<UpdatesQuery>,
) -> Response {
    let session = match state
        .visitors
        .session(token_of(&headers, q.token.as_deref()), q.session.as_deref())
    {
        Ok(session) => session,
        Err(e) => return refused(e),
    };
    if q.after.len() > MAX_ID_BYTES {
        return bad_request(&format!("`after` must be at most {MAX_ID_BYTES} bytes"));
    }
    let store = state.assistant.store();
    match store.web_messages_since_cursor(&session, &q.after).await {
        Ok(messages) => {
            let cursor = messages
                .last()
                .map(|(id, _, _)| id.clone())
                .unwrap_or(q.after);
            let shown = match mailbox(&state, &session, messages).await {
                Ok(shown) => shown,
                Err(e) => return internal(e),
            };
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(serde_json::json!({"messages": shown, "cursor": cursor})),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}

/// Mailbox messages of `session` as the widget shows them, with their ids.
/// Agent replies are told apart by the log they copy.
///
/// # Errors
/// On a database failure.
pub(super) async fn mailbox(
    state: &AppState,
    session: &str,
    messages: Vec<(String, crate::clock::Millis, Outgoing)>,
) -> Result<Vec<Shown>, crate::store::Error> {
    let log = if messages.is_empty() {
        Vec::new()
    } else {
        conversation_log(state, session)
            .await?
            .map(|(_, log)| log)
            .unwrap_or_default()
    };
    let mut shown: Vec<Shown> = messages
        .into_iter()
        .map(|(id, at, m)| Shown {
            cursor: Some(id),
            ..Shown::message(m, at, &log)
        })
        .collect();
    super::shown::survey_choices(state.assistant.store(), &mut shown).await?;
    Ok(shown)
}
