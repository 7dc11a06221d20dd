//! What agents see of a handed-off conversation in a staff place (its
//! [`Card`]) and what a staff desk implements to show it ([`StaffDesk`]).

use serde::Serialize;

use super::{Desk, Error};
use crate::button::{ButtonData, DeskButton};
use crate::delivery::{self, Button};
use crate::store::{Conversation, Customer, Message, Role};

/// How many recent messages a card shows.
const CARD_MESSAGES: usize = 6;

/// What a staff desk shows for a handed-off conversation.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// The conversation.
    pub conversation: Conversation,
    /// The customer.
    pub customer: Customer,
    /// Hand-off reason (a [`crate::handoff::Reason`] name).
    pub reason: String,
    /// Free-text detail of the reason.
    pub detail: Option<String>,
    /// One-line summary: the customer's first question.
    pub summary: String,
    /// The last messages, oldest first.
    pub recent: Vec<Message>,
    /// Claim / Resolve / Give back.
    pub buttons: Vec<Vec<Button>>,
}

impl Card {
    /// The name of the card's staff thread or topic: the customer and the
    /// reason, cut to `max_chars` characters.
    pub fn thread_name(&self, max_chars: usize) -> String {
        let who = self
            .customer
            .display_name
            .as_deref()
            .unwrap_or(&self.customer.external_id);
        format!("{who} · {}", self.reason)
            .chars()
            .take(max_chars)
            .collect()
    }

    /// The card as plain text (desks add their own markup).
    pub fn text(&self) -> String {
        let who = self
            .customer
            .display_name
            .clone()
            .unwrap_or_else(|| self.customer.external_id.clone());
        let mut text = format!(
            "Hand-off: {who} on {} — reason: {}{}\nStatus: {}\nFirst question: {}\n",
            self.customer.channel,
            self.reason,
            self.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            self.conversation.status,
            self.summary
        );
        if !self.recent.is_empty() {
            text.push_str("\nLast messages:\n");
            for m in &self.recent {
                let line: String = m.text.chars().take(300).collect();
                text.push_str(&format!("{}: {line}\n", m.role.as_str()));
            }
        }
        text.push_str(&format!("\nConversation {}", self.conversation.id));
        text
    }
}

/// A card posted into a staff desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedCard {
    /// The thread reference (topic, thread or card message) that later
    /// posts use.
    pub thread_ref: String,
    /// The messages posted (`msg:<id>`), remembered so an agent's reply to
    /// one of them reaches this conversation.
    pub posts: Vec<String>,
}

/// A place where agents see hand-offs.
///
/// Agents' messages are tied to a conversation only through what the desk
/// stored: the thread reference, and every message the bot posted (the
/// card and later posts) by its message reference. Never by text in a
/// message, which a customer may have written.
#[async_trait::async_trait]
pub trait StaffDesk: Send + Sync {
    /// Desk name (`telegram`, `discord`); one thread per conversation per desk.
    fn name(&self) -> &str;
    /// Posts a new card.
    ///
    /// # Errors
    /// A delivery error; the card is tried again later.
    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error>;
    /// Posts text into the conversation's thread (a customer message, or a
    /// status notice when `notice` is set); returns the messages posted
    /// (`msg:<id>`).
    ///
    /// # Errors
    /// A delivery error; retried later.
    async fn post(
        &self,
        thread_ref: &str,
        card: &Card,
        text: &str,
        notice: bool,
    ) -> Result<Vec<String>, delivery::Error>;
}

impl Desk {
    /// The card of a conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn card(&self, conversation: &Conversation) -> Result<Card, Error> {
        let store = &self.inner.store;
        let customer = store.customer(&conversation.customer_id).await?;
        let messages = store.messages(&conversation.id).await?;
        let summary = messages
            .iter()
            .find(|m| m.role == Role::Customer)
            .map(|m| m.text.chars().take(200).collect())
            .unwrap_or_default();
        let start = messages.len().saturating_sub(CARD_MESSAGES);
        let recent = messages[start..]
            .iter()
            .filter(|m| m.role != Role::Note)
            .cloned()
            .collect();
        let id = &conversation.id;
        Ok(Card {
            conversation: conversation.clone(),
            customer,
            reason: conversation
                .handoff_reason
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            detail: conversation.handoff_detail.clone(),
            summary,
            recent,
            buttons: vec![
                [DeskButton::Claim, DeskButton::Resolve, DeskButton::GiveBack]
                    .into_iter()
                    .map(|action| {
                        ButtonData::Desk {
                            action,
                            conversation: id.clone(),
                        }
                        .button()
                    })
                    .collect(),
            ],
        })
    }
}
