//! The web chat widget channel: a browser session is a customer, and the
//! widget is a [`Platform`] on the channel driver like every chat platform.
//!
//! It has two kinds of place ([`Place`]):
//! - the **response** to a customer message or press: the driver stores the
//!   message, answers it in order with the session's other messages and
//!   streams the words to the session's event stream ([`Live`], `delta`
//!   events named by the client's message id); the final reply is returned
//!   to the HTTP handler, which sends it as the response;
//! - the session's **mailbox** (`web_messages`): what reaches the widget
//!   later (agent replies, notices, surveys, answers made by crash recovery
//!   or from a dead letter) is kept there and the session's bell rings, so
//!   an open event stream sends it at once (a widget without one polls).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::driver::{self, ChannelCore, Platform};
use super::live::Live;
use crate::assistant::{Reply, Turn};
use crate::delivery::{self, Button, Deliver, Outgoing, Registry, Target};
use crate::inbound::{Inbound, Replay};
use crate::store::InboundItem;

/// Channel name in the log.
pub const CHANNEL: &str = "web";
/// Longest accepted session id.
pub const MAX_SESSION_LEN: usize = 64;

/// Whether `session` is an acceptable widget session id (letters, digits,
/// `-`, `_`; 8 to 64 characters).
pub fn valid_session(session: &str) -> bool {
    (8..=MAX_SESSION_LEN).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where the widget channel writes.
#[derive(Debug, Clone)]
pub enum Place {
    /// The answer to a customer message or press of `session`, returned
    /// as the HTTP response. With the client's message `id`, the answer's
    /// words go to the session's event stream as they are written.
    Response {
        /// The widget session.
        session: String,
        /// The client's message id.
        id: Option<String>,
        /// What the event stream has been sent of the answer so far.
        written: Arc<Mutex<String>>,
    },
    /// The session's mailbox.
    Mailbox(String),
}

impl Place {
    /// The response to a message of `session` with the client's `id`.
    pub fn response(session: &str, id: Option<String>) -> Self {
        Self::Response {
            session: session.to_string(),
            id,
            written: Arc::default(),
        }
    }

    /// The widget session.
    pub fn session(&self) -> &str {
        match self {
            Self::Response { session, .. } | Self::Mailbox(session) => session,
        }
    }
}

/// A message that could not be kept in a session's mailbox.
#[derive(Debug, thiserror::Error)]
#[error("keeping a widget message: {0}")]
pub struct SendError(#[from] crate::store::Error);

/// The widget as a [`Platform`].
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    core: ChannelCore,
    live: Live,
}

impl Web {
    /// The widget channel over the core, telling open event streams
    /// through `live`.
    pub fn new(core: ChannelCore, live: Live) -> Self {
        Self {
            inner: Arc::new(Inner { core, live }),
        }
    }

    /// Registers the channel's delivery (its mailbox) and its dead-letter
    /// replay.
    pub fn register(&self, registry: &Registry, inbound: &Inbound) {
        registry.register(CHANNEL, Arc::new(self.clone()));
        inbound.register(CHANNEL, Arc::new(self.clone()));
    }

    /// Keeps `message` in `session`'s mailbox and rings its bell; returns
    /// the mailbox id (the widget's polling cursor).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn keep(
        &self,
        session: &str,
        message: &Outgoing,
    ) -> Result<String, crate::store::Error> {
        let id = self
            .inner
            .core
            .store
            .push_web_message(session, message)
            .await?;
        self.inner.live.mailbox(session);
        Ok(id)
    }

    /// Rings the bells other processes sharing the database ring (a widget
    /// message one of them kept) until `stop`; returns at once on SQLite.
    /// A visitor's event stream open here then reads its mailbox at once.
    pub async fn ring_from_elsewhere(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut wait = Duration::from_millis(500);
        loop {
            let bells = tokio::select! {
                () = &mut stop => return,
                bells = self.inner.core.store.mailbox_bells() => bells,
            };
            match bells {
                Ok(Some(mut bells)) => loop {
                    tokio::select! {
                        () = &mut stop => return,
                        rung = bells.next() => match rung {
                            Ok(session) => {
                                wait = Duration::from_millis(500);
                                self.inner.live.mailbox(&session);
                            }
                            Err(e) => {
                                tracing::warn!("widget bells from other processes: {e}");
                                break;
                            }
                        },
                    }
                },
                Ok(None) => return,
                Err(e) => tracing::warn!("widget bells from other processes: {e}"),
            }
            // Connecting or listening failed: wait longer each time in a
            // row, so a database that drops the connection at once is not
            // hammered.
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// Publishes what `body` adds to what the event stream has of the
    /// answer to the client's message `id`.
    fn stream(&self, session: &str, id: &str, written: &Mutex<String>, body: &str) {
        let mut written = written.lock().unwrap_or_else(|p| p.into_inner());
        let Some(added) = added(&written, body) else {
            return;
        };
        let data = serde_json::json!({"id": id, "text": added});
        self.inner.live.publish(session, "delta", data.to_string());
        *written = body.to_string();
    }
}

/// What `body` adds to `written` (what the stream has of the answer): `None`
/// when nothing, or when `body` does not continue it (partial answers only
/// grow).
fn added<'a>(written: &str, body: &'a str) -> Option<&'a str> {
    body.strip_prefix(written).filter(|added| !added.is_empty())
}

#[async_trait::async_trait]
impl Platform for Web {
    const CHANNEL: &'static str = CHANNEL;
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    type Place = Place;
    type Id = ();
    type Error = SendError;
    /// The press's response carries its acknowledgement.
    type Press = ();

    fn core(&self) -> &ChannelCore {
        &self.inner.core
    }

    fn key(place: &Place) -> String {
        place.session().to_string()
    }

    fn place_of(target: &Target) -> Option<Place> {
        Some(Place::Mailbox(target.thread.clone()))
    }

    fn target_of(place: &Place) -> Option<Target> {
        Some(Target {
            channel: CHANNEL.into(),
            customer_id: place.session().to_string(),
            thread: place.session().to_string(),
        })
    }

    fn message_ref(_id: ()) -> String {
        String::new()
    }

    /// Words stream to a response only; the mailbox gets the final reply.
    fn partial_limit(&self, place: &Place) -> usize {
        match place {
            Place::Response { id: Some(_), .. } => usize::MAX,
            _ => 0,
        }
    }

    fn render_partial(&self, text: &str) -> String {
        text.to_string()
    }

    fn render_reply(&self, reply: &Reply) -> Vec<String> {
        vec![delivery::plain_reply(&reply.answer, &reply.sources)]
    }

    fn render_text(&self, text: &str) -> Vec<String> {
        vec![text.to_string()]
    }

    fn returns_final(place: &Place) -> bool {
        matches!(place, Place::Response { .. })
    }

    /// An event stream has no edit rate limit: words go out as written.
    fn edit_every(&self) -> Duration {
        Duration::ZERO
    }

    async fn send(
        &self,
        place: &Place,
        body: &str,
        buttons: &[Vec<Button>],
        _key: Option<&str>,
    ) -> Result<(), SendError> {
        match place {
            Place::Response {
                session,
                id: Some(id),
                written,
            } => self.stream(session, id, written, body),
            Place::Response { id: None, .. } => {}
            Place::Mailbox(session) => {
                let message = Outgoing {
                    text: body.to_string(),
                    buttons: buttons.to_vec(),
                    notice: false,
                };
                self.keep(session, &message).await?;
            }
        }
        Ok(())
    }

    async fn edit(
        &self,
        place: &Place,
        (): (),
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), SendError> {
        match place {
            Place::Response { .. } => self.send(place, body, buttons, None).await,
            // A mailbox message is never edited: the final reply is one
            // part sent once (no partials go there).
            Place::Mailbox(_) => Ok(()),
        }
    }

    async fn typing(&self, _place: &Place) {}

    async fn acknowledge(&self, _press: &(), _text: Option<&str>) {}

    fn failure(error: &SendError) -> delivery::Error {
        delivery::Error::Temporary(error.to_string())
    }

    fn retry_wait(_error: &SendError, backoff: Duration) -> Option<Duration> {
        Some(backoff)
    }
}

/// The core's delivery to widget sessions: the mailbox, where the message
/// is kept whole (a notice stays a notice).
#[async_trait::async_trait]
impl Deliver for Web {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        self.keep(&target.thread, message)
            .await
            .map(Some)
            .map_err(|e| delivery::Error::Temporary(e.to_string()))
    }
}

/// A widget message as kept in a dead letter: what the browser sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Kept {
    /// The widget session.
    pub session: String,
    /// The customer's text.
    pub text: String,
    /// The client's message id, if it sent one.
    pub id: Option<String>,
}

impl Kept {
    /// The key the driver stores this message under (the session and the
    /// client's id), if the client sent an id.
    pub fn key(&self) -> Option<String> {
        self.id.as_ref().map(|id| format!("{}:{id}", self.session))
    }

    /// The turn this message is.
    pub fn turn(&self) -> Turn {
        Turn {
            channel: CHANNEL.into(),
            customer_id: self.session.clone(),
            customer_name: None,
            thread: self.session.clone(),
            platform_message_id: self.key(),
            text: self.text.clone(),
        }
    }
}

/// A widget message handed back from the dead letters is answered into
/// the session's mailbox, where the widget finds it.
#[async_trait::async_trait]
impl Replay for Web {
    async fn replay(&self, item: &InboundItem) -> Result<(), String> {
        let kept: Kept = serde_json::from_str(&item.payload)
            .map_err(|e| format!("not a widget message: {e}"))?;
        let place = Place::Mailbox(kept.session.clone());
        driver::converse(self, place, kept.turn())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The deltas of a growing answer, whatever its words, add up to
        /// the answer, each word once.
        #[test]
        fn deltas_add_up_to_the_answer(pieces in proptest::collection::vec(any::<String>(), 0..12)) {
            let (mut written, mut streamed, mut body) = (String::new(), String::new(), String::new());
            for piece in &pieces {
                body.push_str(piece);
                if let Some(added) = added(&written, &body) {
                    streamed.push_str(added);
                    written = body.clone();
                }
            }
            prop_assert_eq!(streamed, pieces.concat());
        }

        /// A body that does not continue what was streamed adds nothing.
        #[test]
        fn a_body_that_does_not_continue_adds_nothing(written in "\\PC+", body in any::<String>()) {
            prop_assume!(!body.starts_with(&written));
            prop_assert_eq!(added(&written, &body), None);
        }
    }
}
