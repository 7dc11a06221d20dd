//! The widget's event stream: `GET /api/chat/stream?token=TOKEN`
//! (Server-Sent Events).
//!
//! | event | data | when |
//! | --- | --- | --- |
//! | `ready` | `{"boot"}` | first, once the stream listens |
//! | `message` | a message as history shows it, plus `cursor` | an agent reply, a notice, a survey question left in the mailbox |
//! | `delta` | `{"id", "text"}` | words of the answer to the customer message `id` (the client's), as the model writes them |
//! | `gap` | `{}` | some `delta`s owed to this stream were dropped (wait for the answer itself) |
//!
//! Every event has an id `BOOT_SEQ_CURSOR`: the server run,
//! the number of the last passing event and the mailbox cursor (the
//! polling cursor of `/api/chat/updates`). A client reconnecting with
//! `Last-Event-ID` (EventSource does so by itself; `?last=` for clients
//! that cannot set headers) gets exactly what it missed: the mailbox
//! messages after the cursor, read from the database, and the kept
//! `delta`s after the number when the server run is the same. Without one
//! the stream starts now, with the mailbox after `?after=CURSOR` (the
//! cursor history returned).
//!
//! The visitor token is required (a query parameter, as EventSource sends
//! no headers; or `X-Visitor-Token`): a bare session id opens nothing.
//! Streams are bounded per visitor (429) and in all (503; the widget then
//! polls), and end when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::chat::{MAX_ID_BYTES, TOKEN_HEADER, mailbox};
use super::visitor::Refused;
use crate::channels::live::{Bell, Full, Open};

/// What EventSource waits before reconnecting.
pub const RETRY: Duration = Duration::from_secs(2);

/// The stream's route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/chat/stream", get(stream))
}

#[derive(Deserialize)]
struct StreamQuery {
    token: Option<String>,
    /// The mailbox cursor history returned.
    #[serde(default)]
    after: String,
    /// The last event id, for clients that cannot send `Last-Event-ID`.
    last: Option<String>,
}

/// A parsed event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId<'a> {
    /// The server run.
    pub boot: &'a str,
    /// The last passing event's number.
    pub seq: u64,
    /// The mailbox cursor.
    pub cursor: &'a str,
}

impl<'a> EventId<'a> {
    /// Reads `BOOT_SEQ_CURSOR` (`None` when malformed or too long).
    pub fn parse(id: &'a str) -> Option<Self> {
        if id.len() > 2 * MAX_ID_BYTES {
            return None;
        }
        let mut parts = id.splitn(3, '_');
        let boot = parts.next()?;
        let seq = parts.next()?.parse().ok()?;
        let cursor = parts.next()?;
        (!boot.is_empty() && cursor.len() <= MAX_ID_BYTES).then_some(Self { boot, seq, cursor })
    }
}

/// Formats an event id.
pub fn event_id(boot: &str, seq: u64, cursor: &str) -> String {
    format!("{boot}_{seq}_{cursor}")
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Response {
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(q.token.as_deref());
    // A token only: the old API's bare session ids poll.
    let session = match token.map(|t| state.visitors.session(Some(t), None)) {
        Some(Ok(session)) => session,
        Some(Err(e)) => return error(StatusCode::UNAUTHORIZED, &e.to_string()),
        None => return error(StatusCode::BAD_REQUEST, &Refused::Malformed.to_string()),
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .or(q.last.as_deref());
    let (resume, cursor) = match last.map(EventId::parse) {
        Some(Some(id)) => (Some((id.boot, id.seq)), id.cursor.to_string()),
        Some(None) => return error(StatusCode::BAD_REQUEST, "malformed Last-Event-ID"),
        None if q.after.len() > MAX_ID_BYTES => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("`after` must be at most {MAX_ID_BYTES} bytes"),
            );
        }
        None => (None, q.after.clone()),
    };
    let live = state.live.clone();
    let (bell, open) = match live.open(&session) {
        Ok(opened) => opened,
        Err(full) => {
            metrics::counter!("switchboard_limited_total", "limit" => "streams").increment(1);
            let status = match full {
                Full::Visitor => StatusCode::TOO_MANY_REQUESTS,
                Full::Server => StatusCode::SERVICE_UNAVAILABLE,
            };
            return (
                status,
                [(header::RETRY_AFTER, "30")],
                axum::Json(serde_json::json!({"error": full.to_string()})),
            )
                .into_response();
        }
    };
    let seq = live.resume(resume);
    let check_every = live.check_every();
    let rung = bell.borrow().mailbox;
    // With an id, so that a stream dropped before any other event still
    // resumes where it started.
    let ready = Event::default()
        .event("ready")
        .id(event_id(live.boot(), seq, &cursor))
        .retry(RETRY)
        .data(serde_json::json!({"boot": live.boot()}).to_string());
    let conn = Conn {
        stop: live.stopped(),
        state,
        session,
        cursor,
        seq,
        rung,
        read_mailbox: true,
        bell,
        queue: VecDeque::from([ready]),
        _open: open,
    };
    let events = futures::stream::unfold(conn, |mut conn| async move {
        conn.next().await.map(|e| (Ok::<_, Infallible>(e), conn))
    });
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(events).keep_alive(KeepAlive::new().interval(check_every)),
    )
        .into_response()
}

/// One open stream.
struct Conn {
    state: Arc<AppState>,
    session: String,
    /// The last mailbox message queued.
    cursor: String,
    /// The last passing event queued.
    seq: u64,
    /// The mailbox bell as last read.
    rung: u64,
    read_mailbox: bool,
    bell: watch::Receiver<Bell>,
    queue: VecDeque<Event>,
    stop: CancellationToken,
    _open: Open,
}

impl Conn {
    /// The next event; `None` ends the stream (shutdown, or a database
    /// failure: the client reconnects and resumes).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let bell = *self.bell.borrow_and_update();
            if self.read_mailbox || bell.mailbox != self.rung {
                self.rung = bell.mailbox;
                self.read_mailbox = false;
                if let Err(e) = self.read_mailbox().await {
                    tracing::warn!("chat stream: reading the mailbox: {e}");
                    return None;
                }
            }
            let live = &self.state.live;
            let (events, dropped) = live.after(&self.session, self.seq);
            if dropped > self.seq {
                self.seq = dropped;
                self.queue.push_back(
                    Event::default()
                        .event("gap")
                        .id(event_id(live.boot(), self.seq, &self.cursor))
                        .data("{}"),
                );
            }
            for event in events {
                self.seq = event.seq;
                self.queue.push_back(
                    Event::default()
                        .event(event.name)
                        .id(event_id(live.boot(), self.seq, &self.cursor))
                        .data(&*event.data),
                );
            }
            if !self.queue.is_empty() {
                continue;
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                changed = self.bell.changed() => if changed.is_err() { return None },
                () = tokio::time::sleep(self.state.live.check_every()) => self.read_mailbox = true,
            }
        }
    }

    /// Queues the mailbox messages after the cursor.
    async fn read_mailbox(&mut self) -> Result<(), crate::store::Error> {
        let store = self.state.assistant.store();
        let messages = store
            .web_messages_since_cursor(&self.session, &self.cursor)
            .await?;
        // A full page: read again before waiting.
        self.read_mailbox = messages.len() >= 100;
        let boot = self.state.live.boot().to_string();
        let last = messages.last().map(|(id, _, _)| id.clone());
        for shown in mailbox(&self.state, &self.session, messages).await? {
            if let Some(cursor) = shown.cursor() {
                self.cursor = cursor.to_string();
            }
            self.queue.push_back(
                Event::default()
                    .event("message")
                    .id(event_id(&boot, self.seq, &self.cursor))
                    .data(serde_json::to_string(&shown).unwrap_or_default()),
            );
        }
        if let Some(last) = last {
            self.cursor = last;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_ids_read_back() {
        let id = event_id("0a1b2c3d", 42, "0190a-b_c");
        assert_eq!(
            EventId::parse(&id),
            Some(EventId {
                boot: "0a1b2c3d",
                seq: 42,
                cursor: "0190a-b_c"
            })
        );
        assert_eq!(
            EventId::parse("b_7_").map(|e| e.cursor),
            Some(""),
            "no mailbox message yet"
        );
        assert_eq!(EventId::parse("b_x_c"), None);
        assert_eq!(EventId::parse("_1_c"), None);
        assert_eq!(EventId::parse("b_1"), None);
    }

    proptest! {
        /// Any text a client sends as an event id is read without panic,
        /// and what is read names at most [`MAX_ID_BYTES`] of cursor.
        #[test]
        fn hostile_event_ids_never_panic(id in ".{0,400}") {
            if let Some(parsed) = EventId::parse(&id) {
                prop_assert!(parsed.cursor.len() <= MAX_ID_BYTES);
                prop_assert!(!parsed.boot.is_empty());
            }
        }
    }
}
