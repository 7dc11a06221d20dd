//! The console's inbox (agent API, any signed-in agent):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/agent/inbox?tab=waiting\|mine\|open\|resolved\|all&q=TEXT&channel=NAME&status=STATUS&agent=NAME&reason=REASON&from=MS&until=MS&csat=N&tag=TAG` | conversations with customer name, channel, reason, hand-off time, last message, tags; `now` for wait times; `q` also matches tags |
//! | `GET /api/agent/agents` | `agents`: every enabled agent's name; `online`: those using the console now (to transfer to) |
//! | `POST /api/agent/conversations/{id}/tags` | `{"tag"}`: tags a conversation (any agent); returns `{"tags"}`; 422 not a tag ([`crate::tags::Tag`]) |
//! | `DELETE /api/agent/conversations/{id}/tags/{tag}` | takes a tag off; returns `{"tags"}` |
//! | `GET /api/agent/events` | Server-Sent Events: `ready`, then `changed` whenever a hand-off, a customer's message to an agent or an agent's action happened in this process (the console then re-reads; it still polls now and then for other processes) |
//!
//! and the timeline of a conversation (messages and every event in the
//! order they happened, each event with a line of text for people), which
//! `GET /api/agent/conversations/{id}` returns as `timeline`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::agent::{ApiError, AuthAgent, auth_error};
use crate::conversation::{EventKind, Transition};
use crate::ids::ConversationId;
use crate::store::{Event, InboxQuery, InboxTab, Message};
use crate::tags::Tag;

/// Routes merged into `/api/agent`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/agents", get(agents))
        .route("/events", get(events))
        .route("/conversations/{id}/tags", post(add_tag))
        .route("/conversations/{id}/tags/{tag}", delete(remove_tag))
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
}

/// A tag from the request, or 422 saying why it is not one.
fn tag_of(text: &str) -> Result<Tag, ApiError> {
    Tag::parse(text).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

/// The conversation's tags after a change (and the consoles told).
async fn tags_now(
    state: &AppState,
    id: &ConversationId,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.desk.poke();
    let tags = state
        .assistant
        .store()
        .tags(id)
        .await
        .map_err(crate::desk::Error::from)?;
    Ok(Json(serde_json::json!({ "tags": tags })))
}

/// Any agent may tag any conversation (tags are for finding them again).
async fn add_tag(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<ConversationId>,
    Json(body): Json<TagBody>,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_of(&body.tag)?;
    let found = state
        .assistant
        .store()
        .add_tag(&id, &tag, &agent.name)
        .await
        .map_err(crate::desk::Error::from)?;
    if !found {
        return Err(crate::desk::Error::NotFound(id.into_string()).into());
    }
    tags_now(&state, &id).await
}

async fn remove_tag(
    State(state): State<Arc<AppState>>,
    _agent: AuthAgent,
    Path((id, tag)): Path<(ConversationId, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_of(&tag)?;
    state
        .assistant
        .store()
        .remove_tag(&id, &tag)
        .await
        .map_err(crate::desk::Error::from)?;
    tags_now(&state, &id).await
}

/// The console's event stream: `ready`, then `changed` (with a counter)
/// after each change the desk sees; bursts arrive as one. Ends at shutdown.
/// While it is open the agent counts as online (see
/// [`crate::auth::ONLINE_WINDOW`]): it marks them seen every 30 seconds.
async fn events(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
) -> impl IntoResponse {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let mut changes = state.desk.changes();
    changes.mark_unchanged();
    let stop = state.live.stopped();
    let ready = Some(Sse::default().event("ready").data("0"));
    let presence = (state.auth.clone(), agent.name);
    let events = futures::stream::unfold(
        (changes, stop, ready, presence),
        |(mut changes, stop, ready, presence)| async move {
            if let Some(first) = ready {
                return Some((
                    Ok::<_, std::convert::Infallible>(first),
                    (changes, stop, None, presence),
                ));
            }
            tokio::select! {
                changed = changes.changed() => {
                    changed.ok()?;
                    let n = *changes.borrow_and_update();
                    let event = Sse::default().event("changed").data(n.to_string());
                    Some((Ok(event), (changes, stop, None, presence)))
                }
                () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {
                    if let Err(e) = presence.0.seen(&presence.1).await {
                        tracing::warn!("agent presence: {e}");
                    }
                    let event = Sse::default().comment("online");
                    Some((Ok(event), (changes, stop, None, presence)))
                }
                () = stop.cancelled() => None,
            }
        },
    );
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::response::sse::Sse::new(events).keep_alive(KeepAlive::default()),
    )
}

async fn agents(
    State(state): State<Arc<AppState>>,
    _agent: AuthAgent,
) -> Result<impl IntoResponse, ApiError> {
    let names: Vec<String> = state
        .desk
        .agents()
        .all()
        .into_iter()
        .map(|a| a.name.into_string())
        .collect();
    let online = state.auth.online().await.map_err(auth_error)?;
    Ok(Json(
        serde_json::json!({ "agents": names, "online": online }),
    ))
}

#[derive(Deserialize)]
struct InboxParams {
    #[serde(default)]
    tab: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// Assigned (or resolving) agent.
    #[serde(default)]
    agent: Option<String>,
    /// Hand-off reason.
    #[serde(default)]
    reason: Option<String>,
    /// Started on or after (ms since the epoch).
    #[serde(default)]
    from: Option<i64>,
    /// Started before (ms since the epoch).
    #[serde(default)]
    until: Option<i64>,
    /// CSAT rating given.
    #[serde(default)]
    csat: Option<i64>,
    /// Tagged so.
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn inbox(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Query(params): Query<InboxParams>,
) -> Result<impl IntoResponse, ApiError> {
    let searching = params.q.as_deref().is_some_and(|q| !q.trim().is_empty())
        || params.tag.as_deref().is_some_and(|t| !t.is_empty());
    let tab = match params.tab.as_deref() {
        Some("waiting") => InboxTab::Waiting,
        Some("mine") => InboxTab::Mine,
        Some("open") => InboxTab::Open,
        Some("resolved") => InboxTab::Resolved,
        Some("all") => InboxTab::All,
        None if searching => InboxTab::All,
        None => InboxTab::Waiting,
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("unknown tab `{other}`; use waiting, mine, open, resolved or all"),
            ));
        }
    };
    let store = state.assistant.store();
    let entries = store
        .inbox(&InboxQuery {
            tab,
            agent: &agent.name,
            text: params.q.as_deref().map(|q| q.get(..200).unwrap_or(q)),
            channel: params.channel.as_deref(),
            status: params.status.as_deref(),
            assigned: params.agent.as_deref(),
            reason: params.reason.as_deref(),
            from: params.from,
            until: params.until,
            csat: params.csat,
            tag: params.tag.as_deref(),
            limit: params.limit.unwrap_or(200),
        })
        .await
        .map_err(crate::desk::Error::from)?;
    Ok(Json(serde_json::json!({
        "now": store.now(), "agent": agent.name, "conversations": entries,
    })))
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// A message (notes included: timelines are for agents).
    Message(Message),
    /// Something that happened, with what to show (the event is nested:
    /// its own `kind` would clash with the tag).
    Event {
        /// The event.
        event: Event,
        /// A line for people ("Handed off: asked for a person").
        text: String,
    },
}

/// What an event means to an agent reading the conversation; `None` for
/// bookkeeping events nobody needs to see.
pub fn describe(event: &Event) -> Option<String> {
    let actor = event.actor_name.as_deref().unwrap_or(event.by().as_str());
    let detail = event.detail.as_deref().filter(|d| !d.trim().is_empty());
    let with = |text: String| match detail {
        Some(d) => format!("{text}: {d}"),
        None => text,
    };
    Some(match &event.kind {
        EventKind::Transition(t) => match t {
            Transition::HandOff => with("Handed off".into()),
            Transition::Claim => format!("{actor} joined"),
            Transition::Transfer => match detail {
                Some(d) => format!("{actor} transferred it {d}"),
                None => format!("{actor} transferred it"),
            },
            Transition::GiveBack => format!("{actor} gave it back to the bot"),
            Transition::Withdraw => with("The customer withdrew the request".into()),
            Transition::Resolve => with(format!("Resolved by {actor}")),
        },
        EventKind::NoAnswer => "The bot had no answer".into(),
        EventKind::DeliveryFailed => with("Delivery failed".into()),
        EventKind::Reping | EventKind::Refused | EventKind::Recovered | EventKind::Other(_) => {
            return None;
        }
    })
}

/// `messages` (in their order) with the events placed by time: before the
/// first message recorded after them (ids decide within a millisecond).
pub fn timeline(messages: Vec<Message>, events: &[Event]) -> Vec<Line> {
    let mut shown: Vec<(&Event, String)> = events
        .iter()
        .filter_map(|e| describe(e).map(|t| (e, t)))
        .collect();
    shown.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
    let mut shown = shown.into_iter().peekable();
    let mut out = Vec::with_capacity(messages.len() + shown.len());
    let event = |(e, text): (&Event, String)| Line::Event {
        event: e.clone(),
        text,
    };
    for message in messages {
        while let Some(e) = shown.next_if(|(e, _)| {
            (e.created_at, e.id.as_str()) < (message.created_at, message.id.as_str())
        }) {
            out.push(event(e));
        }
        out.push(Line::Message(message));
    }
    out.extend(shown.map(event));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str, actor: &str, detail: Option<&str>, at: i64) -> Event {
        Event {
            id: id.into(),
            conversation_id: "c".into(),
            kind: kind.into(),
            actor: actor.into(),
            detail: detail.map(str::to_string),
            actor_name: None,
            notice: None,
            notified_at: None,
            created_at: at,
        }
    }

    fn message(id: &str, text: &str, at: i64) -> Message {
        Message {
            id: id.into(),
            conversation_id: "c".into(),
            seq: 0,
            role: crate::store::Role::Customer,
            author: None,
            text: text.into(),
            mode: None,
            sources: vec![],
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            channel: "web".into(),
            platform_message_id: None,
            feedback: None,
            created_at: at,
            owner: None,
        }
    }

    #[test]
    fn events_are_told_in_order_between_messages() {
        let events = [
            event("e3", "resolve", "alice", None, 30),
            event("e1", "handoff", "bot", Some("human_requested: asked"), 10),
            event("e2", "claim", "alice", None, 20),
            event("e0", "refused", "bob", None, 15),
        ];
        let lines = timeline(
            vec![message("m1", "help", 5), message("m2", "hi alice", 25)],
            &events,
        );
        let texts: Vec<String> = lines
            .iter()
            .map(|l| match l {
                Line::Message(m) => m.text.clone(),
                Line::Event { text, .. } => text.clone(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "help",
                "Handed off: human_requested: asked",
                "alice joined",
                "hi alice",
                "Resolved by alice"
            ]
        );
        let transfer = event("e4", "transfer", "alice", Some("to bob"), 1);
        assert_eq!(
            describe(&transfer).as_deref(),
            Some("alice transferred it to bob")
        );
    }
}
