//! The web chat widget channel: a browser session is a customer.
//!
//! Answers go back in the HTTP response; messages the core sends later
//! (agent replies, notices, surveys) wait in the `web_messages` mailbox until
//! the widget polls for them.

use crate::delivery::{self, Deliver, Outgoing, Target};
use crate::store::Store;

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

/// Delivers to widget sessions by leaving the message in their mailbox.
pub struct WebDelivery {
    store: Store,
}

impl WebDelivery {
    /// A delivery over the store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl Deliver for WebDelivery {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        self.store
            .push_web_message(&target.thread, message)
            .await
            .map(Some)
            .map_err(|e| delivery::Error::Temporary(e.to_string()))
    }
}
