//! A conversation as people read it: its messages and, between them, the
//! notices the customer was shown when an agent joined, transferred, gave
//! back or closed it, in the order they happened.
//!
//! Notices come only from the events the desk stored with a transition
//! (see [`crate::store::Change::notice`]), never from message text: a
//! customer who writes "alice joined the conversation." wrote a message,
//! and it stays one.

use serde::Serialize;

use crate::clock::Millis;
use crate::ids::ConversationId;
use crate::store::{self, Event, Message, Store};

/// What the customer was told about an agent's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The event it comes from.
    pub event_id: String,
    /// What happened (a transition: `claim`, `transfer`, `give_back`,
    /// `withdraw`, `resolve`).
    pub event: crate::conversation::EventKind,
    /// Who acted, as in the log (an agent's name).
    pub actor: String,
    /// The name the customer saw.
    pub actor_name: Option<String>,
    /// The text the customer was sent.
    pub text: String,
    /// When.
    pub created_at: Millis,
}

impl Notice {
    /// The notice an event carries, if the customer was told of it.
    pub fn from_event(event: &Event) -> Option<Self> {
        Some(Self {
            event_id: event.id.clone(),
            event: event.kind.clone(),
            actor: event.actor.clone(),
            actor_name: event.actor_name.clone(),
            text: event.notice.clone()?,
            created_at: event.created_at,
        })
    }
}

/// One line of a transcript; serialised with `"kind": "message"` or
/// `"kind": "notice"` beside the fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// Something the customer, the bot or an agent wrote (notes included:
    /// transcripts are for agents).
    Message(Message),
    /// A notice from an event.
    Notice(Notice),
}

/// `messages` (in their order) with the notices of `events` placed by
/// time: before the first message recorded after them. Within one
/// millisecond the ids decide, which are time-ordered ([`store::new_id`]).
pub fn merge(messages: Vec<Message>, events: &[Event]) -> Vec<Entry> {
    let mut notices: Vec<Notice> = events.iter().filter_map(Notice::from_event).collect();
    notices.sort_by(|a, b| (a.created_at, &a.event_id).cmp(&(b.created_at, &b.event_id)));
    let mut notices = notices.into_iter().peekable();
    let mut out = Vec::with_capacity(messages.len() + notices.len());
    for message in messages {
        while let Some(notice) = notices.next_if(|n| {
            (n.created_at, n.event_id.as_str()) < (message.created_at, message.id.as_str())
        }) {
            out.push(Entry::Notice(notice));
        }
        out.push(Entry::Message(message));
    }
    out.extend(notices.map(Entry::Notice));
    out
}

/// The transcript of a conversation.
///
/// # Errors
/// On a database failure.
pub async fn load(
    store: &Store,
    conversation_id: &ConversationId,
) -> Result<Vec<Entry>, store::Error> {
    let messages = store.messages(conversation_id).await?;
    let events = store.events(conversation_id).await?;
    Ok(merge(messages, &events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn message(text: &str, at: Millis) -> Message {
        Message {
            id: format!("{at}-m").into(),
            conversation_id: "c".into(),
            seq: at,
            role: Role::Customer,
            author: None,
            text: text.into(),
            mode: None,
            sources: Vec::new(),
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

    fn event(kind: &str, notice: Option<&str>, at: Millis) -> Event {
        Event {
            id: format!("{at}-e"),
            conversation_id: "c".into(),
            kind: kind.into(),
            actor: "alice".into(),
            detail: None,
            actor_name: Some("Alice".into()),
            notice: notice.map(str::to_string),
            notified_at: None,
            created_at: at,
        }
    }

    fn kinds(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Message(m) => format!("message:{}", m.text),
                Entry::Notice(n) => format!("notice:{}", n.text),
            })
            .collect()
    }

    #[test]
    fn notices_come_from_events_in_time_order() {
        let messages = vec![
            message("/human", 10),
            message("Alice joined the conversation.", 20),
            message("thanks", 40),
        ];
        let events = [
            event("handoff", None, 11),
            event("claim", Some("Alice joined the conversation."), 30),
            event("resolve", Some("Alice closed it."), 50),
        ];
        assert_eq!(
            kinds(&merge(messages, &events)),
            [
                "message:/human",
                "message:Alice joined the conversation.",
                "notice:Alice joined the conversation.",
                "message:thanks",
                "notice:Alice closed it.",
            ]
        );
    }

    #[test]
    fn within_a_millisecond_the_ids_decide() {
        let mut before = message("are you there?", 30);
        before.id = "0001".into();
        let mut claim = event("claim", Some("Alice joined."), 30);
        claim.id = "0002".into();
        let mut after = message("hello from Alice", 30);
        after.id = "0003".into();
        let entries = merge(vec![before, after], &[claim]);
        assert_eq!(
            kinds(&entries),
            [
                "message:are you there?",
                "notice:Alice joined.",
                "message:hello from Alice"
            ]
        );
        let json = serde_json::to_value(&entries[1]).unwrap();
        assert_eq!(json["kind"], "notice");
        assert_eq!(json["actor_name"], "Alice");
        let json = serde_json::to_value(&entries[2]).unwrap();
        assert_eq!(json["kind"], "message");
        assert_eq!(json["role"], "customer");
    }
}
