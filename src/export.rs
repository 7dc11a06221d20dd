//! The conversation log as JSON Lines (one conversation with its messages
//! and events a line) or CSV (one message a row).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::clock::Millis;
use crate::store::{self, Conversation, Customer, Event, Message, MessageMode, Store};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per conversation.
    Jsonl,
    /// One row per message.
    Csv,
}

/// An export failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Writing failed.
    #[error("writing export: {0}")]
    Io(#[from] std::io::Error),
    /// CSV encoding failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// JSON encoding failed.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    conversation: &'a Conversation,
    customer: Option<&'a Customer>,
    messages: Vec<&'a Message>,
    events: Vec<Event>,
}

/// Writes every conversation created since `since` with its messages.
///
/// # Errors
/// On a database or write failure.
pub async fn write(
    store: &Store,
    since: Option<Millis>,
    format: Format,
    out: &mut dyn Write,
) -> Result<usize, Error> {
    let conversations = store.conversations_since(since).await?;
    let messages = store.messages_since(since).await?;
    let mut by_conversation: BTreeMap<&str, Vec<&Message>> = BTreeMap::new();
    for m in &messages {
        by_conversation
            .entry(m.conversation_id.as_str())
            .or_default()
            .push(m);
    }
    let mut customers: BTreeMap<crate::ids::CustomerId, Customer> = BTreeMap::new();
    for c in &conversations {
        if !customers.contains_key(&c.customer_id) {
            let customer = store.customer(&c.customer_id).await?;
            customers.insert(c.customer_id.clone(), customer);
        }
    }
    match format {
        Format::Jsonl => {
            for c in &conversations {
                let record = Record {
                    conversation: c,
                    customer: customers.get(&c.customer_id),
                    messages: by_conversation
                        .get(c.id.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    events: store.events(&c.id).await?,
                };
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            csv.write_record([
                "conversation_id",
                "channel",
                "customer",
                "status",
                "message_id",
                "seq",
                "created_at",
                "role",
                "author",
                "mode",
                "sources",
                "text",
            ])?;
            for c in &conversations {
                let customer = customers
                    .get(&c.customer_id)
                    .map(|k| {
                        k.display_name
                            .clone()
                            .unwrap_or_else(|| k.external_id.clone())
                    })
                    .unwrap_or_default();
                for m in by_conversation.get(c.id.as_str()).into_iter().flatten() {
                    let when = chrono::DateTime::from_timestamp_millis(m.created_at)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default();
                    let sources = m
                        .sources
                        .iter()
                        .map(|s| s.slug.as_str())
                        .collect::<Vec<_>>()
                        .join(";");
                    let row = [
                        c.id.as_str(),
                        c.channel.as_str(),
                        customer.as_str(),
                        c.status.as_str(),
                        m.id.as_str(),
                        &m.seq.to_string(),
                        &when,
                        m.role.as_str(),
                        m.author.as_deref().unwrap_or_default(),
                        m.mode.map(MessageMode::as_str).unwrap_or_default(),
                        &sources,
                        m.text.as_str(),
                    ];
                    csv.write_record(row.map(|c| cell(c).into_owned()))?;
                }
            }
            csv.flush()?;
        }
    }
    Ok(conversations.len())
}

/// A CSV cell as a spreadsheet must show it: text. A cell starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a
/// formula, so it gets a leading `'` (OWASP's advice on CSV injection).
pub fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}
