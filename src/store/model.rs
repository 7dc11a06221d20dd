//! Rows of the conversation log.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{Error, get};
use crate::clock::Millis;
use crate::conversation::Status;
use crate::ids::{AgentId, ConversationId, CustomerId, MessageId};

/// A person who writes to the bot, identified per channel.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Customer {
    /// Internal id.
    pub id: CustomerId,
    /// Channel name (`console`, `telegram`, `discord`, `web`).
    pub channel: String,
    /// The platform's id for this person.
    pub external_id: String,
    /// Name shown to agents.
    pub display_name: Option<String>,
    /// The platform refuses messages to them (e.g. they blocked the bot).
    pub unreachable: bool,
    /// They asked for no more surveys.
    pub surveys_opt_out: bool,
    /// First seen.
    pub created_at: Millis,
    /// Last sent a survey.
    pub surveyed_at: Option<Millis>,
}

impl Customer {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        Self::read(
            row,
            [
                "id",
                "channel",
                "external_id",
                "display_name",
                "unreachable",
                "surveys_opt_out",
                "created_at",
                "surveyed_at",
            ],
        )
    }

    /// A customer from the columns of `row` named with a `cu_` prefix
    /// (read beside another table's row).
    pub(crate) fn from_prefixed(row: &AnyRow) -> Result<Self, Error> {
        Self::read(
            row,
            [
                "cu_id",
                "cu_channel",
                "cu_external_id",
                "cu_display_name",
                "cu_unreachable",
                "cu_surveys_opt_out",
                "cu_created_at",
                "cu_surveyed_at",
            ],
        )
    }

    fn read(row: &AnyRow, columns: [&str; 8]) -> Result<Self, Error> {
        let [
            id,
            channel,
            external_id,
            display_name,
            unreachable,
            surveys_opt_out,
            created_at,
            surveyed_at,
        ] = columns;
        Ok(Self {
            id: get::<String>(row, id)?.into(),
            channel: get(row, channel)?,
            external_id: get(row, external_id)?,
            display_name: get(row, display_name)?,
            unreachable: get::<i64>(row, unreachable)? != 0,
            surveys_opt_out: get::<i64>(row, surveys_opt_out)? != 0,
            created_at: get(row, created_at)?,
            surveyed_at: get(row, surveyed_at)?,
        })
    }
}

/// One conversation: a run of messages with one owner at a time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Conversation {
    /// Internal id.
    pub id: ConversationId,
    /// The customer.
    pub customer_id: CustomerId,
    /// Channel name.
    pub channel: String,
    /// Channel-defined place of the conversation (chat, thread, topic).
    pub thread_key: String,
    /// Who owns it.
    pub status: Status,
    /// The resolved conversation this one follows, if any.
    pub previous_id: Option<ConversationId>,
    /// Opened.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Last customer message.
    pub last_customer_at: Option<Millis>,
    /// Last bot message.
    pub last_bot_at: Option<Millis>,
    /// First bot answer.
    pub first_bot_response_at: Option<Millis>,
    /// Handed off.
    pub handoff_at: Option<Millis>,
    /// Why (one of [`crate::handoff::Reason`]).
    pub handoff_reason: Option<String>,
    /// Free-text detail of the hand-off.
    pub handoff_detail: Option<String>,
    /// Agent who owns it.
    pub assigned_agent: Option<AgentId>,
    /// First agent reply.
    pub first_human_response_at: Option<Millis>,
    /// Resolved.
    pub resolved_at: Option<Millis>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// How it was resolved.
    pub resolution: Option<crate::conversation::Resolution>,
    /// The bot already offered a person.
    pub offered_human: bool,
    /// Consecutive LLM failures.
    pub llm_failures: i64,
    /// Agents were pinged again because nobody claimed it.
    pub repinged_at: Option<Millis>,
    /// When an agent last gave it back to the bot.
    pub context_since: Option<Millis>,
    /// The bot's context is the messages after this `seq` (set when an
    /// agent gives it back: the conversation's last message then).
    pub context_after_seq: Option<i64>,
}

impl Conversation {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let status: String = get(row, "status")?;
        Ok(Self {
            id: get::<String>(row, "id")?.into(),
            customer_id: get::<String>(row, "customer_id")?.into(),
            channel: get(row, "channel")?,
            thread_key: get(row, "thread_key")?,
            status: Status::from_str(&status).map_err(Error::Corrupt)?,
            previous_id: get::<Option<String>>(row, "previous_id")?.map(Into::into),
            created_at: get(row, "created_at")?,
            updated_at: get(row, "updated_at")?,
            last_customer_at: get(row, "last_customer_at")?,
            last_bot_at: get(row, "last_bot_at")?,
            first_bot_response_at: get(row, "first_bot_response_at")?,
            handoff_at: get(row, "handoff_at")?,
            handoff_reason: get(row, "handoff_reason")?,
            handoff_detail: get(row, "handoff_detail")?,
            assigned_agent: get::<Option<String>>(row, "assigned_agent")?.map(Into::into),
            first_human_response_at: get(row, "first_human_response_at")?,
            resolved_at: get(row, "resolved_at")?,
            resolved_by: get(row, "resolved_by")?,
            resolution: get::<Option<String>>(row, "resolution")?
                .as_deref()
                .map(crate::conversation::Resolution::parse),
            offered_human: get::<i64>(row, "offered_human")? != 0,
            llm_failures: get(row, "llm_failures")?,
            repinged_at: get(row, "repinged_at")?,
            context_since: get(row, "context_since")?,
            context_after_seq: get(row, "context_after_seq")?,
        })
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(Default)]
pub enum Role {
    /// The customer.
    #[default]
    Customer,
    /// The bot.
    Bot,
    /// A human agent (reaches the customer).
    Agent,
    /// An agent's internal note (never reaches the customer).
    Note,
    /// A notice from the system (hand-off, queue position…).
    System,
}

impl Role {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Bot => "bot",
            Role::Agent => "agent",
            Role::Note => "note",
            Role::System => "system",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "customer" => Role::Customer,
            "bot" => Role::Bot,
            "agent" => Role::Agent,
            "note" => Role::Note,
            "system" => Role::System,
            other => return Err(format!("unknown message role `{other}`")),
        })
    }
}

/// How a stored message was made: a bot message's answer mode, or a
/// customer's typed answer to a survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageMode {
    /// Generated by the model from retrieved passages.
    Llm,
    /// Quoted from the knowledge base or a template (no model).
    Extractive,
    /// A hand-off, or the offer of a person.
    Handoff,
    /// A customer's typed answer to a survey question.
    Survey,
}

impl MessageMode {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageMode::Llm => "llm",
            MessageMode::Extractive => "extractive",
            MessageMode::Handoff => "handoff",
            MessageMode::Survey => "survey",
        }
    }

    /// Whether it is a bot's answer from the knowledge base (by the model
    /// or quoted), as opposed to an offer, a hand-off or a survey answer.
    pub fn is_answer(self) -> bool {
        matches!(self, MessageMode::Llm | MessageMode::Extractive)
    }
}

impl FromStr for MessageMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "llm" => MessageMode::Llm,
            "extractive" => MessageMode::Extractive,
            "handoff" => MessageMode::Handoff,
            "survey" => MessageMode::Survey,
            other => return Err(format!("unknown message mode `{other}`")),
        })
    }
}

/// An article an answer drew on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceRef {
    /// Article slug.
    pub slug: String,
    /// Article title.
    pub title: String,
    /// Link, if the article has one.
    pub url: Option<String>,
    /// Retrieval score.
    pub score: f32,
}

/// A message to store.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    /// Conversation.
    pub conversation_id: &'a str,
    /// Who wrote it.
    pub role: Role,
    /// Agent name, for agent messages and notes.
    pub author: Option<&'a str>,
    /// Text.
    pub text: &'a str,
    /// How it was made (bot messages and survey answers).
    pub mode: Option<MessageMode>,
    /// Sources of a bot answer.
    pub sources: &'a [SourceRef],
    /// Model that generated it.
    pub model: Option<&'a str>,
    /// Prompt tokens used.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens used.
    pub completion_tokens: Option<i64>,
    /// Time to produce it.
    pub latency_ms: Option<i64>,
    /// Channel the message came from or went to.
    pub channel: &'a str,
    /// Platform message id (for de-duplication), unique per channel.
    pub platform_message_id: Option<&'a str>,
}

/// A stored message.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    /// Internal id.
    pub id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Position in the conversation.
    pub seq: i64,
    /// Who wrote it.
    pub role: Role,
    /// Agent name for agent messages.
    pub author: Option<String>,
    /// Text.
    pub text: String,
    /// How it was made (bot messages and survey answers).
    pub mode: Option<MessageMode>,
    /// Sources of bot answers.
    pub sources: Vec<SourceRef>,
    /// Model that generated it.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens.
    pub completion_tokens: Option<i64>,
    /// Time to produce it.
    pub latency_ms: Option<i64>,
    /// Channel.
    pub channel: String,
    /// Platform message id.
    pub platform_message_id: Option<String>,
    /// Customer's 👍 (1) / 👎 (-1) on a bot answer.
    pub feedback: Option<i64>,
    /// Stored at.
    pub created_at: Millis,
    /// The process that stored it and answers it (see
    /// [`Store::instance`](super::Store::instance)); `None` for messages
    /// stored before processes were told apart.
    pub owner: Option<String>,
}

impl Message {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let role: String = get(row, "role")?;
        let sources: Option<String> = get(row, "sources")?;
        let mode: Option<String> = get(row, "mode")?;
        Ok(Self {
            id: get::<String>(row, "id")?.into(),
            conversation_id: get::<String>(row, "conversation_id")?.into(),
            seq: get(row, "seq")?,
            role: Role::from_str(&role).map_err(Error::Corrupt)?,
            author: get(row, "author")?,
            text: get(row, "text")?,
            mode: mode
                .map(|m| MessageMode::from_str(&m))
                .transpose()
                .map_err(Error::Corrupt)?,
            sources: match sources {
                Some(s) => serde_json::from_str(&s).map_err(|e| Error::Corrupt(e.to_string()))?,
                None => Vec::new(),
            },
            model: get(row, "model")?,
            prompt_tokens: get(row, "prompt_tokens")?,
            completion_tokens: get(row, "completion_tokens")?,
            latency_ms: get(row, "latency_ms")?,
            channel: get(row, "channel")?,
            platform_message_id: get(row, "platform_message_id")?,
            feedback: get(row, "feedback")?,
            created_at: get(row, "created_at")?,
            owner: get(row, "owner")?,
        })
    }
}

/// Something that happened to a conversation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Internal id.
    pub id: String,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// What happened.
    pub kind: crate::conversation::EventKind,
    /// Who (`bot`, `customer`, an agent name, `system`).
    pub actor: String,
    /// Why, or other detail.
    pub detail: Option<String>,
    /// The name the customer saw for the actor (an agent's display name).
    pub actor_name: Option<String>,
    /// What the customer was told about it (an agent joined, transferred,
    /// gave back, closed); `None` for events the customer is not told of.
    pub notice: Option<String>,
    /// When the notice was handed to delivery (sent, or queued in the
    /// outbox); `None` while it is still to go.
    pub notified_at: Option<Millis>,
    /// When.
    pub created_at: Millis,
}

impl Event {
    /// Who did it, read back as an [`Actor`](crate::conversation::Actor)
    /// (a refused stranger reads as an agent's name: the event's kind says
    /// it was refused).
    pub fn by(&self) -> crate::conversation::Actor<'_> {
        crate::conversation::Actor::parse(&self.actor)
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        Ok(Self {
            id: get(row, "id")?,
            conversation_id: get::<String>(row, "conversation_id")?.into(),
            kind: crate::conversation::EventKind::parse(&get::<String>(row, "kind")?),
            actor: get(row, "actor")?,
            detail: get(row, "detail")?,
            actor_name: get(row, "actor_name")?,
            notice: get(row, "notice")?,
            notified_at: get(row, "notified_at")?,
            created_at: get(row, "created_at")?,
        })
    }
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Id.
    pub id: String,
    /// Where it goes.
    pub target: crate::outgoing::Target,
    /// What it says.
    pub message: crate::outgoing::Outgoing,
    /// Conversation, if any.
    pub conversation_id: Option<ConversationId>,
    /// Attempts so far.
    pub attempts: i64,
}

impl OutboxItem {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let target: String = get(row, "target")?;
        let payload: String = get(row, "payload")?;
        Ok(Self {
            id: get(row, "id")?,
            target: serde_json::from_str(&target).map_err(|e| Error::Corrupt(e.to_string()))?,
            message: serde_json::from_str(&payload).map_err(|e| Error::Corrupt(e.to_string()))?,
            conversation_id: get::<Option<String>>(row, "conversation_id")?.map(Into::into),
            attempts: get(row, "attempts")?,
        })
    }
}
