//! A message as the widget shows it ([`Shown`]): from a reply, the
//! conversation log or the mailbox, with its kind, author, sanitised HTML,
//! buttons and the choices already made on them.

use std::collections::HashMap;

use serde::Serialize;

use super::markdown::to_html;
use crate::assistant::{Action, Mode, Reply};
use crate::button::{ButtonData, SurveyStep};
use crate::delivery::{Button, Outgoing};
use crate::store::{Message, MessageMode, Role};

/// What the widget shows for one message.
#[derive(Serialize)]
pub(super) struct Shown {
    /// `customer`, `bot`, `agent` or `notice`.
    pub(super) kind: &'static str,
    /// The agent's name, for agent messages.
    pub(super) author: Option<String>,
    pub(super) text: String,
    /// `text` as sanitised HTML.
    pub(super) html: String,
    /// Sent at, in milliseconds since the epoch.
    pub(super) at: i64,
    pub(super) mode: Option<&'static str>,
    pub(super) sources: Vec<crate::store::SourceRef>,
    pub(super) handoff: bool,
    pub(super) buttons: Vec<Vec<Button>>,
    /// `data` of the buttons already pressed (the 👍 or 👎 given to an
    /// answer), shown chosen after a reload.
    pub(super) chosen: Vec<String>,
    /// `data` of buttons that stay usable when newer messages arrive (👍/👎
    /// can be given to any answer of the conversation).
    pub(super) lasting: Vec<String>,
    /// The mailbox id of a mailbox message (its polling cursor): the
    /// widget shows each once, however it arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cursor: Option<String>,
}

impl Shown {
    /// Its mailbox id, for a mailbox message.
    pub(super) fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
    pub(super) fn new(kind: &'static str, text: String, at: i64) -> Self {
        Shown {
            kind,
            author: None,
            html: to_html(&text),
            text,
            at,
            mode: None,
            sources: Vec::new(),
            handoff: false,
            buttons: Vec::new(),
            chosen: Vec::new(),
            lasting: Vec::new(),
            cursor: None,
        }
    }
    /// Marks the feedback buttons as lasting, and the one matching
    /// `feedback` (1 👍, -1 👎) as chosen.
    fn with_feedback(mut self, feedback: Option<i64>) -> Self {
        for button in self.buttons.iter().flatten() {
            if let Some(ButtonData::Feedback { up, .. }) = ButtonData::parse(&button.data) {
                self.lasting.push(button.data.clone());
                if feedback == Some(if up { 1 } else { -1 }) {
                    self.chosen.push(button.data.clone());
                }
            }
        }
        self
    }
    pub(super) fn reply(reply: &Reply, at: i64) -> Option<Self> {
        (!reply.is_silent()).then(|| {
            Shown {
                mode: Some(reply.mode.as_str()),
                sources: reply.sources.clone(),
                handoff: reply.handoff,
                buttons: reply.buttons(),
                ..Shown::new("bot", reply.answer.clone(), at)
            }
            .with_feedback(None)
        })
    }
    /// A stored bot message, shown again for a retried request.
    pub(super) fn stored(message: &crate::store::Message, conversation_id: &str) -> Option<Self> {
        let mode = match message.mode {
            Some(MessageMode::Llm) => Mode::Llm,
            Some(MessageMode::Handoff) => Mode::Handoff,
            _ => Mode::Extractive,
        };
        let answered = mode != Mode::Handoff && !message.sources.is_empty();
        let reply = Reply {
            conversation_id: conversation_id.into(),
            message_id: Some(message.id.clone()),
            answer: message.text.clone(),
            mode,
            sources: message.sources.clone(),
            handoff: mode == Mode::Handoff,
            action: if answered {
                Action::Answer
            } else {
                Action::Info
            },
            survey_buttons: Vec::new(),
        };
        Self::reply(&reply, message.created_at).map(|shown| shown.with_feedback(message.feedback))
    }
    /// A message of the conversation log, as history shows it (notes are
    /// not shown).
    pub(super) fn logged(message: &Message) -> Option<Self> {
        match message.role {
            Role::Customer => Some(Shown::new(
                "customer",
                message.text.clone(),
                message.created_at,
            )),
            Role::Bot => Self::stored(message, &message.conversation_id),
            Role::Agent => Some(Shown {
                author: message.author.clone(),
                ..Shown::new("agent", message.text.clone(), message.created_at)
            }),
            Role::System => Some(Shown::new(
                "notice",
                message.text.clone(),
                message.created_at,
            )),
            Role::Note => None,
        }
    }
    /// A mailbox message sent at `at`. An agent's reply (delivered as
    /// `NAME (support): TEXT`) is recognised by the agent message of the
    /// log it copies, never by its shape alone.
    pub(super) fn message(message: Outgoing, at: i64, log: &[Message]) -> Self {
        if message.notice {
            // An agent joined / transferred / gave back / closed: a line of
            // its own, from the desk's event, never from anyone's text.
            return Shown::new("notice", message.text, at);
        }
        let agent = log.iter().filter(|m| m.role == Role::Agent).find_map(|m| {
            let name = message
                .text
                .strip_suffix(m.text.as_str())?
                .strip_suffix(" (support): ")?;
            Some((name.to_string(), m.text.as_str()))
        });
        match agent {
            // `text` stays as delivered; `html` is the agent's own words.
            Some((name, body)) => Shown {
                author: Some(name),
                html: to_html(body),
                buttons: message.buttons,
                ..Shown::new("agent", message.text.clone(), at)
            },
            None => Shown {
                buttons: message.buttons,
                ..Shown::new("bot", message.text, at)
            },
        }
    }
    /// Whether this mailbox message copies a message of the log (an
    /// agent's reply, an answer made by crash recovery, a stored notice):
    /// history shows the logged one.
    pub(super) fn copies(message: &Outgoing, log: &[Message]) -> bool {
        log.iter().any(|m| match m.role {
            Role::Agent => message
                .text
                .strip_suffix(m.text.as_str())
                .is_some_and(|name| name.ends_with(" (support): ")),
            Role::Bot => !m.text.is_empty() && message.text.starts_with(m.text.as_str()),
            Role::System => message.text == m.text,
            Role::Customer | Role::Note => false,
        })
    }
}

/// Marks the survey answers already given as chosen, so a survey question
/// shows its score after a reload.
pub(super) async fn survey_choices(
    store: &crate::store::Store,
    shown: &mut [Shown],
) -> Result<(), crate::store::Error> {
    let mut surveys: HashMap<crate::ids::ConversationId, Option<crate::store::Survey>> =
        HashMap::new();
    for message in shown.iter_mut() {
        let mut chosen = Vec::new();
        for button in message.buttons.iter().flatten() {
            let Some(ButtonData::Survey {
                conversation,
                step,
                value,
            }) = ButtonData::parse(&button.data)
            else {
                continue;
            };
            if !surveys.contains_key(&conversation) {
                let survey = store.survey(&conversation).await?;
                surveys.insert(conversation.clone(), survey);
            }
            let Some(Some(survey)) = surveys.get(&conversation) else {
                continue;
            };
            let given = match step {
                SurveyStep::Csat => survey.csat,
                SurveyStep::Ces => survey.ces,
                SurveyStep::Nps => survey.nps,
            };
            if given == Some(i64::from(value)) {
                chosen.push(button.data.clone());
            }
        }
        message.chosen.extend(chosen);
    }
    Ok(())
}
