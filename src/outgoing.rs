//! What the core sends and where: a message ([`Outgoing`], with its
//! [`Button`]s) and its [`Target`]. Plain data, used by the delivery (which
//! sends it) and the store (whose outbox and web mailbox keep it).

use serde::{Deserialize, Serialize};

/// Where a message goes: the customer's place on their channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Channel name (`telegram`, `discord`, …).
    pub channel: String,
    /// The customer's platform id.
    pub customer_id: String,
    /// The conversation's place (chat, thread, topic), as the channel set it
    /// in `Turn::thread`.
    pub thread: String,
}

/// A button under a message. `data` comes back to the channel when pressed
/// and is passed to the assistant's `press`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Label shown.
    pub label: String,
    /// Opaque callback data (at most 64 bytes, Telegram's limit).
    pub data: String,
}

/// A message to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Plain text (channels escape it for their markup).
    pub text: String,
    /// Rows of buttons; channels without buttons show the text only and
    /// accept typed answers.
    pub buttons: Vec<Vec<Button>>,
    /// A notice about the conversation (an agent joined, transferred, gave
    /// back, closed), not something the bot or an agent said; channels that
    /// can show it differently (the web widget) do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

impl Outgoing {
    /// Text without buttons.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            buttons: Vec::new(),
            notice: false,
        }
    }

    /// A notice (see [`Outgoing::notice`](Outgoing#structfield.notice)).
    pub fn notice(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            buttons: Vec::new(),
            notice: true,
        }
    }
}
