//! The web chat widget channel: a browser session is a customer.
//!
//! Answers go back in the HTTP response; messages the core sends later
//! (agent replies, notices, surveys) wait in the `web_messages` mailbox,
//! and the session's bell in [`Live`] rings so that an open event stream
//! sends them at once (a widget without one polls for them).

use super::live::Live;
use crate::assistant::{Assistant, Turn};
use crate::delivery::{self, Deliver, Outgoing, Target};
use crate::inbound::Replay;
use crate::store::{InboundItem, Store};

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

/// Delivers to widget sessions by leaving the message in their mailbox
/// and ringing their bell.
pub struct WebDelivery {
    store: Store,
    live: Live,
}

impl WebDelivery {
    /// A delivery over the store, telling open streams through `live`.
    pub fn new(store: Store, live: Live) -> Self {
        Self { store, live }
    }
}

#[async_trait::async_trait]
impl Deliver for WebDelivery {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        let id = self
            .store
            .push_web_message(&target.thread, message)
            .await
            .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
        self.live.mailbox(&target.thread);
        Ok(Some(id))
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
    /// The turn this message is.
    pub fn turn(&self) -> Turn {
        Turn {
            channel: CHANNEL.into(),
            customer_id: self.session.clone(),
            customer_name: None,
            thread: self.session.clone(),
            platform_message_id: self.id.as_ref().map(|id| format!("{}:{id}", self.session)),
            text: self.text.clone(),
        }
    }
}

/// Answers a widget message handed back from the dead letters: the answer
/// goes to the session's mailbox, where the widget finds it.
pub struct WebReplay {
    assistant: Assistant,
    live: Live,
}

impl WebReplay {
    /// Replays through `assistant`, telling open streams through `live`.
    pub fn new(assistant: Assistant, live: Live) -> Self {
        Self { assistant, live }
    }
}

#[async_trait::async_trait]
impl Replay for WebReplay {
    async fn replay(&self, item: &InboundItem) -> Result<(), String> {
        let kept: Kept = serde_json::from_str(&item.payload)
            .map_err(|e| format!("not a widget message: {e}"))?;
        let reply = self
            .assistant
            .handle(kept.turn(), None)
            .await
            .map_err(|e| e.to_string())?;
        if reply.is_silent() {
            return Ok(());
        }
        let message = Outgoing {
            text: delivery::plain_reply(&reply.answer, &reply.sources),
            buttons: reply.buttons(),
            notice: false,
        };
        self.assistant
            .store()
            .push_web_message(&kept.session, &message)
            .await
            .map_err(|e| e.to_string())?;
        self.live.mailbox(&kept.session);
        Ok(())
    }
}
