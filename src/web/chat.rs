//! The web chat widget's API and pages.
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /` | | the chat widget page |
//! | `GET /agent` | | the agent console page (uses the agent API) |
//! | `GET /static/{widget,agent}.{js,css}` | | their script and style |
//! | `POST /api/chat/messages` | `{"session", "text", "id"?}` | a customer message; the reply comes back |
//! | `POST /api/chat/press` | `{"session", "data", "id"?}` | a button press (`"stale": true` when it no longer applies) |
//! | `GET /api/chat/updates?session=S&after=CURSOR` | | messages sent since (agent replies, notices, surveys); `"notice": true` marks an agent joined / transferred / gave back / closed notice |
//!
//! `session` is chosen by the browser (8–64 letters, digits, `-`, `_`) and
//! identifies the customer; `id` (at most [`MAX_ID_BYTES`]) is an optional
//! client message id so a retried POST is not answered twice. The answer is
//! made in a task of its own: a client that goes away does not lose it,
//! and a retry with the same `id` gets the same reply (waiting for it if
//! it is still being made).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::AppState;
use crate::assistant::{Action, Mode, Pressed, Reply, Turn};
use crate::channels::web::{CHANNEL, Kept, valid_session};
use crate::delivery::{Button, Outgoing};
use crate::inbound::guarded;

const WIDGET: &str = include_str!("static/widget.html");
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
        .route("/", get(|| async { Html(WIDGET) }))
        .route("/static/widget.js", get(|| async { script(WIDGET_JS) }))
        .route("/static/widget.css", get(|| async { style(WIDGET_CSS) }))
        .route("/api/chat/messages", post(message))
        .route("/api/chat/press", post(press))
        .route("/api/chat/updates", get(updates))
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
    session: String,
    text: String,
    id: Option<String>,
}

#[derive(Deserialize)]
struct PressBody {
    session: String,
    data: String,
    id: Option<String>,
}

#[derive(Deserialize)]
struct UpdatesQuery {
    session: String,
    #[serde(default)]
    after: String,
}

/// What the widget shows for one bot message.
#[derive(Serialize)]
struct Shown {
    text: String,
    mode: Option<&'static str>,
    sources: Vec<crate::store::SourceRef>,
    handoff: bool,
    buttons: Vec<Vec<Button>>,
    /// A notice about the conversation ("alice joined the conversation."),
    /// shown as such rather than as a bot answer.
    notice: bool,
}

impl Shown {
    fn reply(reply: &Reply) -> Option<Self> {
        (!reply.is_silent()).then(|| Shown {
            text: reply.answer.clone(),
            mode: Some(reply.mode.as_str()),
            sources: reply.sources.clone(),
            handoff: reply.handoff,
            buttons: reply.buttons(),
            notice: false,
        })
    }
    /// A stored bot message, shown again for a retried request.
    fn stored(message: &crate::store::Message, conversation_id: &str) -> Option<Self> {
        let mode = match message.mode.as_deref() {
            Some("llm") => Mode::Llm,
            Some("handoff") => Mode::Handoff,
            _ => Mode::Extractive,
        };
        let answered = mode != Mode::Handoff && !message.sources.is_empty();
        let reply = Reply {
            conversation_id: conversation_id.to_string(),
            message_id: Some(message.id.clone()),
            answer: message.text.clone(),
            mode,
            sources: message.sources.clone(),
            handoff: mode == Mode::Handoff,
            action: if answered {
                Action::Answer
            } else {
                Action::Info
            },
            survey_buttons: Vec::new(),
        };
        Self::reply(&reply)
    }
    fn message(message: Outgoing) -> Self {
        Shown {
            text: message.text,
            mode: None,
            sources: Vec::new(),
            handoff: false,
            buttons: message.buttons,
            notice: message.notice,
        }
    }
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

/// What the browser sent for `turn`, as a dead letter keeps it.
fn kept(turn: &Turn) -> Kept {
    Kept {
        session: turn.customer_id.clone(),
        text: turn.text.clone(),
        id: turn
            .platform_message_id
            .as_deref()
            .and_then(|k| k.split_once(':'))
            .map(|(_, id)| id.to_string()),
    }
}

fn turn(session: &str, text: String, id: Option<String>) -> Turn {
    Turn {
        channel: CHANNEL.into(),
        customer_id: session.to_string(),
        customer_name: None,
        thread: session.to_string(),
        platform_message_id: id.map(|id| format!("{session}:{id}")),
        text,
    }
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
    if !valid_session(&body.session) {
        return bad_request("`session` must be 8–64 letters, digits, '-' or '_'");
    }
    if let Some(response) = bad_id(body.id.as_deref()) {
        return response;
    }
    if body.text.trim().is_empty() {
        return bad_request("`text` is empty");
    }
    let turn = turn(&body.session, body.text, body.id);
    let key = turn.platform_message_id.clone();
    let result = answer(&state, turn).await;
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
        Ok(reply) => Json(serde_json::json!({"reply": Shown::reply(&reply)})).into_response(),
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

/// Answers `turn` in a task of its own, so the answer is made and stored
/// even when the client disconnects; a turn whose id is being answered
/// already waits for that answer.
async fn answer(state: &AppState, turn: Turn) -> Result<Reply, String> {
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
                let assistant = state.assistant.clone();
                let answers = state.answers.clone();
                let inbound = state.inbound.clone();
                tokio::spawn(async move {
                    // Forgotten when the task ends, even by a panic.
                    let _forget = key.clone().map(|key| Forget(answers, key));
                    let kept = kept(&turn);
                    let result = match guarded(assistant.handle(turn, None)).await {
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
    if !valid_session(&body.session) {
        return bad_request("`session` must be 8–64 letters, digits, '-' or '_'");
    }
    if let Some(response) = bad_id(body.id.as_deref()) {
        return response;
    }
    if body.data.len() > MAX_DATA_BYTES {
        return bad_request(&format!("`data` must be at most {MAX_DATA_BYTES} bytes"));
    }
    let id = body.id.map(|id| format!("press:{id}"));
    match state
        .assistant
        .press(turn(&body.session, body.data, id))
        .await
    {
        Ok(Pressed::Reply(reply)) => {
            Json(serde_json::json!({"reply": Shown::reply(&reply)})).into_response()
        }
        Ok(Pressed::Message(message)) => {
            Json(serde_json::json!({"reply": Shown::message(message)})).into_response()
        }
        Ok(Pressed::Feedback(_)) => {
            Json(serde_json::json!({"reply": null, "ack": "Thanks for the feedback!"}))
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

async fn updates(State(state): State<Arc<AppState>>, Query(q): Query<UpdatesQuery>) -> Response {
    if !valid_session(&q.session) {
        return bad_request("`session` must be 8–64 letters, digits, '-' or '_'");
    }
    if q.after.len() > MAX_ID_BYTES {
        return bad_request(&format!("`after` must be at most {MAX_ID_BYTES} bytes"));
    }
    match state
        .assistant
        .store()
        .web_messages_after(&q.session, &q.after)
        .await
    {
        Ok(messages) => {
            let cursor = messages.last().map(|(id, _)| id.clone()).unwrap_or(q.after);
            let shown: Vec<Shown> = messages
                .into_iter()
                .map(|(_, m)| Shown::message(m))
                .collect();
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(serde_json::json!({"messages": shown, "cursor": cursor})),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}
