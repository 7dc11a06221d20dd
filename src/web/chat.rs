//! The web chat widget's API and pages.
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /` | | the chat widget page |
//! | `GET /agent` | | the agent console page (uses the agent API) |
//! | `POST /api/chat/messages` | `{"session", "text", "id"?}` | a customer message; the reply comes back |
//! | `POST /api/chat/press` | `{"session", "data", "id"?}` | a button press (`"stale": true` when it no longer applies) |
//! | `GET /api/chat/updates?session=S&after=CURSOR` | | messages sent since (agent replies, notices, surveys) |
//!
//! `session` is chosen by the browser (8–64 letters, digits, `-`, `_`) and
//! identifies the customer; `id` is an optional client message id so a
//! retried POST is not answered twice.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::assistant::{Pressed, Reply, Turn};
use crate::channels::web::{CHANNEL, valid_session};
use crate::delivery::{Button, Outgoing};

const WIDGET: &str = include_str!("static/widget.html");
const AGENT: &str = include_str!("static/agent.html");

/// Routes of the widget and the console pages.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Html(WIDGET) }))
        .route("/agent", get(|| async { Html(AGENT) }))
        .route("/api/chat/messages", post(message))
        .route("/api/chat/press", post(press))
        .route("/api/chat/updates", get(updates))
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
}

impl Shown {
    fn reply(reply: &Reply) -> Option<Self> {
        (!reply.is_silent()).then(|| Shown {
            text: reply.answer.clone(),
            mode: Some(reply.mode.as_str()),
            sources: reply.sources.clone(),
            handoff: reply.handoff,
            buttons: reply.buttons(),
        })
    }
    fn message(message: Outgoing) -> Self {
        Shown {
            text: message.text,
            mode: None,
            sources: Vec::new(),
            handoff: false,
            buttons: message.buttons,
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

async fn message(State(state): State<Arc<AppState>>, Json(body): Json<MessageBody>) -> Response {
    if !valid_session(&body.session) {
        return bad_request("`session` must be 8–64 letters, digits, '-' or '_'");
    }
    if body.text.trim().is_empty() {
        return bad_request("`text` is empty");
    }
    match state
        .assistant
        .handle(turn(&body.session, body.text, body.id), None)
        .await
    {
        Ok(reply) => Json(serde_json::json!({"reply": Shown::reply(&reply)})).into_response(),
        Err(e) => internal(e),
    }
}

async fn press(State(state): State<Arc<AppState>>, Json(body): Json<PressBody>) -> Response {
    if !valid_session(&body.session) {
        return bad_request("`session` must be 8–64 letters, digits, '-' or '_'");
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
