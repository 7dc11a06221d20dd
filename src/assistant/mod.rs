//! The assistant: a customer's [`Turn`] in, a channel-neutral [`Reply`] out.
//!
//! Every channel calls [`Assistant::handle`]. It stores the inbound message
//! first (a repeated platform id is answered with [`Action::Duplicate`] and
//! nothing else), decides what to do (answer, offer a person, hand off, stay
//! silent because a person owns the conversation), and for answers runs
//! retrieval → prompt → streamed LLM completion, falling back to an
//! extractive quote of the best passage when there is no model or it fails.
//! Streamed text goes to an optional channel so a channel can show the
//! answer as it is written; the returned [`Reply`] is always the final word.

pub mod ann;
mod budget;
pub mod context;
mod decline;
mod generate;
mod retrieve;
pub use crate::templates as prompts;
pub mod semantic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use context::Earlier;
pub use prompts::Prompts;

use crate::button::{self, ButtonData};
use crate::config::AssistantSettings;
use crate::conversation::{Status, Transition};
use crate::csat::Surveys;
use crate::delivery::Button;
use crate::desk::Desk;
use crate::handoff::{self, Reason, Rules};
use crate::kb::{Hit, KnowledgeBase};
use crate::limits::{Limits, Verdict};
use crate::llm::{self, ChatMessage, ChatModel, Delta, Speaker, Usage};
use crate::store::{
    self, Change, Conversation, Customer, Message, NewMessage, Role, SourceRef, Store,
};
use semantic::Semantic;

/// Event kind marking a message answered by [`Assistant::answer_pending`].
const RECOVERED: &str = "recovered";

/// What the model answers when the sources do not cover the question.
pub const NO_ANSWER_TOKEN: &str = "NO_ANSWER";
/// `slow_down.md` when the prompts folder has none.
const SLOW_DOWN: &str = "You're sending messages faster than I can read them. Please wait a minute, then send your question again.";
/// `busy.md` when the prompts folder has none.
const BUSY: &str = "We're busy right now, a moment please… Send your question again in a minute.";
/// `already_waiting.md` when the prompts folder has none.
const ALREADY_WAITING: &str = "You're already in the queue for a person from our support team in another conversation; they'll reply there shortly.";
/// `handoff_busy.md` when the prompts folder has none.
const HANDOFF_BUSY: &str = "Our support team is receiving a lot of requests right now; please ask for a person again in a few minutes.";
/// Passages retrieved before they are grouped and trimmed.
const RETRIEVE_LIMIT: usize = 12;
/// Passages BM25 ranks before they are grouped by article.
const ARTICLE_POOL: usize = 60;
/// Passages of one article kept in a retrieval, so that the first
/// [`RETRIEVE_LIMIT`] passages name several articles.
const PASSAGES_PER_ARTICLE: usize = 2;
/// The merged retrieval of a message that does not read as a follow-up is
/// kept only when its best article holds at least this share of the
/// message's own terms.
const ABOUT_NEW_TURN: f32 = 0.5;
/// Earlier turns given to the model that rewrites a follow-up.
const REWRITE_TURNS: usize = 4;
/// Longest earlier turn in that prompt, in characters.
const REWRITE_TURN_CHARS: usize = 600;
/// Longest rewrite kept, in characters.
const REWRITE_MAX_CHARS: usize = 400;
/// Rewrites remembered (per conversation turn) before the cache starts over.
const REWRITE_CACHE: usize = 512;
/// When both rankings put the same article first, the similarity needed
/// to answer is this much lower.
const AGREEMENT_BONUS: f32 = 0.1;
/// Reciprocal-rank fusion constant (the usual 60).
const RRF_K: f32 = 60.0;
/// Longest quote in an extractive answer.
const MAX_QUOTE_CHARS: usize = 900;
/// The same question this many times in a row means the customer is stuck.
const REPEATS_FOR_FRUSTRATION: usize = 3;

/// An assistant failure: the message could not be stored or the knowledge
/// base could not be searched. Model failures are not errors (they fall
/// back to extractive answers).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The conversation log failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The search index failed.
    #[error(transparent)]
    Kb(#[from] crate::kb::Error),
    /// A template failed.
    #[error(transparent)]
    Prompt(#[from] prompts::Error),
    /// The survey service failed.
    #[error(transparent)]
    Survey(#[from] crate::csat::Error),
    /// No model is configured, or it failed (only from [`Assistant::draft`];
    /// customers' answers fall back instead).
    #[error("language model: {0}")]
    Model(String),
}

/// An answer generated for a question without a conversation
/// ([`Assistant::draft`], used by `switchboard eval --answers`).
#[derive(Debug, Clone)]
pub struct Draft {
    /// The model's text.
    pub text: String,
    /// The sources it cites (all it was given when it cites none).
    pub sources: Vec<SourceRef>,
    /// The model said the sources do not answer the question.
    pub declined: bool,
}

/// A customer's message, as a channel hands it over.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    /// Channel name (`console`, `telegram`, `discord`, `web`).
    pub channel: String,
    /// The customer's id on that channel.
    pub customer_id: String,
    /// Their display name, if the platform gives one.
    pub customer_name: Option<String>,
    /// Where the conversation happens (chat, thread, topic): a customer can
    /// hold one conversation per place.
    pub thread: String,
    /// The platform's message id, for de-duplication of retries.
    pub platform_message_id: Option<String>,
    /// The text.
    pub text: String,
}

/// How an answer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Generated by the model from retrieved passages.
    Llm,
    /// Quoted from the best passage (no model, or the model failed).
    Extractive,
    /// The bot decided a person must take over (or offered one).
    Handoff,
}

impl Mode {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Llm => "llm",
            Mode::Extractive => "extractive",
            Mode::Handoff => "handoff",
        }
    }
}

/// What the assistant decided. Channels render it (buttons for an offer,
/// feedback buttons for an answer, nothing for a silent action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
pub enum Action {
    /// An answer from the knowledge base.
    Answer,
    /// A reply that is not an answer (welcome, help, thanks, an error).
    Info,
    /// The knowledge base does not cover the question; a person is offered.
    OfferHuman,
    /// The conversation was handed to people for this reason.
    HandOff(Reason),
    /// A person owns the conversation; the message is theirs, the bot is
    /// silent.
    ToAgent,
    /// The message was already processed (platform retry); send nothing.
    Duplicate,
    /// The customer started a new conversation.
    NewConversation,
    /// The customer is over `assistant.max_messages_per_minute` and was
    /// already told; the message was dropped, send nothing.
    Limited,
}

/// The assistant's reply to one turn.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    /// Conversation the turn belongs to.
    pub conversation_id: String,
    /// Stored id of the bot message (for feedback), if one was stored.
    #[serde(skip)]
    pub message_id: Option<String>,
    /// What to tell the customer; empty for silent actions.
    pub answer: String,
    /// How it was made.
    pub mode: Mode,
    /// Articles it drew on, best first.
    pub sources: Vec<SourceRef>,
    /// Whether a person must take over (or is offered).
    pub handoff: bool,
    /// The decision.
    #[serde(skip)]
    pub action: Action,
    /// Buttons of a survey question sent as this reply (typed answers).
    #[serde(skip)]
    pub survey_buttons: Vec<Vec<Button>>,
}

impl Reply {
    /// Whether the channel should send nothing.
    pub fn is_silent(&self) -> bool {
        matches!(
            self.action,
            Action::ToAgent | Action::Duplicate | Action::Limited
        )
    }
}

impl Reply {
    /// Buttons a channel with buttons shows under the reply: Yes/No for an
    /// offer of a person, "solved?" and 👍/👎 under an answer. Each names
    /// this conversation and the stored bot message it belongs to; their
    /// data goes back to [`Assistant::press`].
    pub fn buttons(&self) -> Vec<Vec<Button>> {
        if !self.survey_buttons.is_empty() {
            return self.survey_buttons.clone();
        }
        let Some(message) = self.message_id.clone() else {
            return Vec::new();
        };
        let conversation = self.conversation_id.clone();
        let row = |data: Vec<ButtonData>| data.iter().map(ButtonData::button).collect::<Vec<_>>();
        match self.action {
            Action::OfferHuman => vec![row(vec![
                ButtonData::OfferYes {
                    conversation: conversation.clone(),
                    message: message.clone(),
                },
                ButtonData::OfferNo {
                    conversation,
                    message,
                },
            ])],
            Action::Answer => vec![
                row(vec![
                    ButtonData::SolvedYes {
                        conversation: conversation.clone(),
                        message: message.clone(),
                    },
                    ButtonData::SolvedNo {
                        conversation: conversation.clone(),
                        message: message.clone(),
                    },
                ]),
                row(vec![
                    ButtonData::Feedback {
                        conversation: conversation.clone(),
                        message: message.clone(),
                        up: true,
                    },
                    ButtonData::Feedback {
                        conversation,
                        message,
                        up: false,
                    },
                ]),
            ],
            _ => Vec::new(),
        }
    }
}

/// What a button press did.
#[derive(Debug, Clone)]
pub enum Pressed {
    /// The press was the customer's answer to an offer or a "solved?"
    /// question; send the reply like any other.
    Reply(Reply),
    /// Feedback stored (`true`) or ignored as a repeat (`false`); show a
    /// short acknowledgement at most.
    Feedback(bool),
    /// A message to send (the next survey question, thanks).
    Message(crate::delivery::Outgoing),
    /// A repeated delivery of a press already handled; acknowledge only.
    Unknown,
    /// The button is not the presser's, no longer applies (a newer message
    /// superseded it, the conversation moved on, the survey question was
    /// answered) or cannot be read (sent by an older version): nothing
    /// changed; tell the presser [`button::NO_LONGER_AVAILABLE`].
    Stale,
}

/// What a customer's press of an offer or "solved?" button means, handed
/// to the decision as data (never re-read from text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    AcceptOffer,
    DeclineOffer,
    Solved,
    NotSolved,
}

/// A stored customer message, ready to be answered
/// ([`Assistant::receive`] → [`Assistant::answer`]).
#[derive(Debug)]
pub struct Received(Step);

#[derive(Debug)]
enum Step {
    /// Nothing left to decide (a duplicate, a survey answer).
    Done(Reply),
    /// Stored; the decision is still to be made.
    Stored(Box<Stored>),
}

#[derive(Debug)]
struct Stored {
    customer: Customer,
    conversation: Conversation,
    turn: Turn,
}

impl Received {
    /// Whether the message was a platform retry of one already stored.
    pub fn is_duplicate(&self) -> bool {
        matches!(&self.0, Step::Done(reply) if reply.action == Action::Duplicate)
    }
}

/// The stateless decision for a question ([`Assistant::assess`]).
#[derive(Debug, Clone)]
pub enum Assessment {
    /// A person must take over.
    HandOff(Reason, Option<String>),
    /// A canned reply (the template's name): greetings, thanks.
    Reply(&'static str),
    /// The knowledge base covers it.
    Answer(Retrieval),
    /// The knowledge base does not cover it: say so, offer a person.
    NotCovered(Retrieval),
}

/// Retrieved passages and how sure retrieval is that they answer.
#[derive(Debug, Clone)]
pub struct Retrieval {
    /// Ranked passages.
    pub hits: Vec<Hit>,
    /// 0–1: the share of the question's information the best passage holds.
    pub confidence: f32,
    /// The best BM25 score.
    pub best_score: f32,
    /// The best BM25 score as the share (0–1) of generic off-topic
    /// questions that score lower on this knowledge base: comparable across
    /// knowledge bases.
    pub relevance: f32,
    /// Cosine similarity of the nearest passage, with embeddings on.
    pub similarity: Option<f32>,
    /// Whether BM25 and the embeddings put the same article first.
    pub agree: bool,
}

/// One article given to the model, with its passages.
#[derive(Debug, Clone, Serialize)]
struct PromptSource {
    slug: String,
    title: String,
    url: Option<String>,
    score: f32,
    passages: Vec<PromptPassage>,
}

#[derive(Debug, Clone, Serialize)]
struct PromptPassage {
    heading: String,
    text: String,
}

/// A command a customer can type on any channel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command<'a> {
    Start,
    Help,
    Human,
    New,
    Cancel,
    StopSurveys,
    Ask(&'a str),
    Unknown(&'a str),
}

fn parse_command(text: &str) -> Option<Command<'_>> {
    let rest = text.trim().strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // Telegram appends the bot name in groups: /ask@switchboard_bot
    let name = name.split('@').next().unwrap_or(name);
    Some(match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "human" | "agent" => Command::Human,
        "new" | "reset" => Command::New,
        "cancel" | "bot" => Command::Cancel,
        "stop-surveys" | "stop_surveys" | "stopsurveys" => Command::StopSurveys,
        "ask" => Command::Ask(args.trim()),
        _ => Command::Unknown(name),
    })
}

const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hi there",
    "hello there",
    "hey there",
    "good morning",
    "good afternoon",
    "good evening",
    "hiya",
    "howdy",
];
const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "thx",
    "ty",
    "thank you so much",
    "thanks a lot",
    "cheers",
    "great thanks",
    "ok thanks",
    "perfect thanks",
    "thanks that helped",
    "that helped",
    "great",
    "perfect",
    "awesome",
];
const YES: &[&str] = &[
    "yes",
    "yes please",
    "y",
    "yeah",
    "yep",
    "sure",
    "ok",
    "okay",
    "please",
    "please do",
];
const NO: &[&str] = &["no", "no thanks", "no thank you", "nope", "n", "not now"];

/// How much of the model's context one prompt may use (`llm.context_tokens`)
/// and how much of it the answer needs (`llm.max_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptBudget {
    /// The model's context window, in tokens.
    pub context_tokens: usize,
    /// Tokens kept free for the answer.
    pub answer_tokens: usize,
}

impl Default for PromptBudget {
    fn default() -> Self {
        Self {
            context_tokens: 4096,
            answer_tokens: 600,
        }
    }
}

/// The assistant. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Assistant {
    inner: Arc<Inner>,
}

struct Inner {
    kb: Arc<KnowledgeBase>,
    store: Store,
    prompts: Prompts,
    model: Option<Arc<dyn ChatModel>>,
    settings: AssistantSettings,
    llm_timeout: Duration,
    rules: Rules,
    desk: Option<Desk>,
    surveys: Option<Surveys>,
    semantic: Option<Semantic>,
    limits: Option<Arc<Limits>>,
    budget: PromptBudget,
    /// Follow-ups already rewritten by the model, by turn.
    rewrites: std::sync::Mutex<HashMap<u64, String>>,
    /// When this process started: customer messages stored before it and
    /// never answered were left by a crash.
    started: crate::clock::Millis,
    /// Messages left by a crash that this process has taken on, so a
    /// client's retry and the recovery pass do not both answer one.
    recovering: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Assistant {
    /// Wires the assistant. `model` is `None` for extractive-only answers.
    pub fn new(
        kb: Arc<KnowledgeBase>,
        store: Store,
        prompts: Prompts,
        model: Option<Arc<dyn ChatModel>>,
        settings: AssistantSettings,
        llm_timeout: Duration,
        rules: Rules,
    ) -> Self {
        let started = store.now();
        Self {
            inner: Arc::new(Inner {
                kb,
                store,
                prompts,
                model,
                settings,
                llm_timeout,
                rules,
                desk: None,
                surveys: None,
                semantic: None,
                limits: None,
                budget: PromptBudget::default(),
                rewrites: Default::default(),
                started,
                recovering: Default::default(),
            }),
        }
    }

    /// Connects the agents' desk: hand-offs and messages for agents are
    /// announced to it, and its business hours shape the hand-off message.
    /// Call before the assistant is shared.
    pub fn with_desk(mut self, desk: Desk) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.desk = Some(desk),
            None => tracing::error!("with_desk called on a shared assistant; desk not connected"),
        }
        self
    }

    /// Connects the survey service: typed survey answers and survey buttons
    /// are routed to it. Call before the assistant is shared.
    pub fn with_surveys(mut self, surveys: Surveys) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.surveys = Some(surveys),
            None => {
                tracing::error!("with_surveys called on a shared assistant; surveys not connected")
            }
        }
        self
    }

    /// Adds dense retrieval: answers then fuse BM25 with passage
    /// embeddings. Call before the assistant is shared.
    pub fn with_semantic(mut self, semantic: Semantic) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.semantic = Some(semantic),
            None => tracing::error!("with_semantic called on a shared assistant; not connected"),
        }
        self
    }

    /// Applies `limits` (model calls in flight, messages per customer,
    /// anonymous hand-offs). Call before the assistant is shared.
    pub fn with_limits(mut self, limits: Arc<Limits>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.limits = Some(limits),
            None => tracing::error!("with_limits called on a shared assistant; not applied"),
        }
        self
    }

    /// Fits prompts into `budget` (the model's context). Call before the
    /// assistant is shared.
    pub fn with_budget(mut self, budget: PromptBudget) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.budget = budget,
            None => tracing::error!("with_budget called on a shared assistant; not applied"),
        }
        self
    }

    /// The dense index, if embeddings are configured.
    pub fn semantic(&self) -> Option<&Semantic> {
        self.inner.semantic.as_ref()
    }

    /// The survey service, if connected.
    pub fn surveys(&self) -> Option<&Surveys> {
        self.inner.surveys.as_ref()
    }

    /// The agents' desk, if connected.
    pub fn desk(&self) -> Option<&Desk> {
        self.inner.desk.as_ref()
    }

    /// The knowledge base.
    pub fn kb(&self) -> &Arc<KnowledgeBase> {
        &self.inner.kb
    }

    /// The conversation log.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The templates.
    pub fn prompts(&self) -> &Prompts {
        &self.inner.prompts
    }

    /// Whether answers are generated by a model.
    pub fn has_model(&self) -> bool {
        self.inner.model.is_some()
    }

    /// Renders a template with the common context (`product_name`).
    ///
    /// # Errors
    /// When the template fails.
    pub fn render(&self, name: &str, extra: serde_json::Value) -> Result<String, Error> {
        let common = serde_json::json!({
            "product_name": self.inner.settings.product_name,
            "no_answer_token": NO_ANSWER_TOKEN,
        });
        Ok(self.inner.prompts.render_with(name, common, extra)?)
    }

    /// Handles one customer message: [`Assistant::receive`] then
    /// [`Assistant::answer`]. Streamed answer text, when the model is used,
    /// is sent to `deltas` as it arrives.
    ///
    /// # Errors
    /// When the message cannot be stored (the caller must then not confirm
    /// it to the platform) or the index fails.
    pub async fn handle(
        &self,
        turn: Turn,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        let received = self.receive(turn).await?;
        self.answer(received, deltas).await
    }

    /// Stores a customer message (the first step of [`Assistant::handle`]).
    /// Once this returns, the message is safe: a channel may confirm it to
    /// the platform and answer later with [`Assistant::answer`]. A message
    /// left unanswered by a crash is answered by
    /// [`Assistant::answer_pending`] after the restart.
    ///
    /// # Errors
    /// When the message cannot be stored.
    #[tracing::instrument(
        name = "receive",
        skip_all,
        fields(
            channel = %turn.channel,
            message = turn.platform_message_id.as_deref().unwrap_or("-"),
        )
    )]
    pub async fn receive(&self, turn: Turn) -> Result<Received, Error> {
        let store = &self.inner.store;
        metrics::counter!("switchboard_messages_total", "channel" => turn.channel.clone())
            .increment(1);
        if let Some(reply) = self.over_rate(&turn)? {
            return Ok(Received(Step::Done(reply)));
        }
        let customer = store
            .upsert_customer(
                &turn.channel,
                &turn.customer_id,
                turn.customer_name.as_deref(),
            )
            .await?;
        if let Some(reply) = self.survey_answer(&customer, &turn).await? {
            return Ok(Received(Step::Done(reply)));
        }
        let conversation = store.open_conversation(&customer, &turn.thread).await?;
        let limit = self.inner.settings.max_message_chars;
        let stored_text: String = if turn.text.chars().count() > limit {
            turn.text.chars().take(limit).chain("…".chars()).collect()
        } else {
            turn.text.clone()
        };
        let inbound = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Customer,
            text: &stored_text,
            channel: &turn.channel,
            platform_message_id: turn.platform_message_id.as_deref(),
            ..NewMessage::default()
        };
        if store.insert_message(&inbound).await?.is_none() {
            return Ok(Received(Step::Done(
                self.silent(&conversation, Action::Duplicate),
            )));
        }
        Ok(Received(Step::Stored(Box::new(Stored {
            customer,
            conversation,
            turn,
        }))))
    }

    /// `Some` reply when the customer is over their message rate: the
    /// message is dropped before anything is stored; the first one over
    /// the limit is answered with `slow_down.md`, later ones silently.
    fn over_rate(&self, turn: &Turn) -> Result<Option<Reply>, Error> {
        let Some(limits) = &self.inner.limits else {
            return Ok(None);
        };
        let verdict = limits.customer_message(&turn.channel, &turn.customer_id);
        if verdict == Verdict::Allowed {
            return Ok(None);
        }
        metrics::counter!("switchboard_limited_total", "limit" => "customer_rate").increment(1);
        let (answer, action) = match verdict {
            Verdict::Notify => (
                self.render_or("slow_down.md", serde_json::json!({}), SLOW_DOWN)?,
                Action::Info,
            ),
            _ => (String::new(), Action::Limited),
        };
        Ok(Some(Reply {
            conversation_id: String::new(),
            message_id: None,
            answer,
            mode: Mode::Extractive,
            sources: Vec::new(),
            handoff: false,
            action,
            survey_buttons: Vec::new(),
        }))
    }

    /// Renders `name`, or `default` when the deployment's prompts folder
    /// predates the template (templates added for limits are optional).
    fn render_or(
        &self,
        name: &str,
        extra: serde_json::Value,
        default: &str,
    ) -> Result<String, Error> {
        if self.inner.prompts.dir().join(name).is_file() {
            self.render(name, extra)
        } else {
            Ok(default.to_string())
        }
    }

    /// Answers a message stored by [`Assistant::receive`].
    ///
    /// # Errors
    /// When the log or the index fails.
    pub async fn answer(
        &self,
        received: Received,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        let (customer, conversation, turn) = match received.0 {
            Step::Done(reply) => return Ok(reply),
            Step::Stored(stored) => {
                let Stored {
                    customer,
                    conversation,
                    turn,
                } = *stored;
                (customer, conversation, turn)
            }
        };
        let span = tracing::info_span!(
            "turn",
            channel = %turn.channel,
            conversation = %conversation.id,
            message = turn.platform_message_id.as_deref().unwrap_or("-"),
        );
        self.answer_turn(customer, conversation, turn, deltas)
            .instrument(span)
            .await
    }

    /// [`Assistant::answer`] once the message is stored, inside its span.
    async fn answer_turn(
        &self,
        customer: Customer,
        conversation: Conversation,
        turn: Turn,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        if !conversation.status.bot_may_answer() {
            match parse_command(&turn.text) {
                Some(Command::Cancel) if conversation.status == Status::WaitingForAgent => {
                    return self.withdraw(&conversation, &turn).await;
                }
                Some(Command::New) => return self.restart(&customer, &conversation, &turn).await,
                _ => {}
            }
            if let Some(desk) = &self.inner.desk {
                desk.poke();
            }
            return Ok(self.silent(&conversation, Action::ToAgent));
        }
        let limit = self.inner.settings.max_message_chars;
        let length = turn.text.chars().count();
        if length > limit {
            let text = self.render(
                "too_long.md",
                serde_json::json!({"length": length, "limit": limit}),
            )?;
            return self
                .finish(
                    &conversation,
                    &turn,
                    text,
                    Mode::Extractive,
                    Vec::new(),
                    Action::Info,
                    None,
                )
                .await;
        }
        self.decide(&customer, conversation, &turn, deltas).await
    }

    /// Answers customer messages that were stored but never answered (the
    /// process stopped in between), on the customer's channel. Messages older
    /// than `max_age_ms` are left alone: a late answer to an old question
    /// would confuse more than help. Returns how many were answered.
    ///
    /// # Errors
    /// On a database failure.
    #[tracing::instrument(name = "recovery", skip_all)]
    pub async fn answer_pending(
        &self,
        registry: &crate::delivery::Registry,
        max_age_ms: i64,
        before: crate::clock::Millis,
    ) -> Result<usize, Error> {
        let store = &self.inner.store;
        let mut answered = 0;
        let pending = store.unanswered(store.now() - max_age_ms, before).await?;
        for (conversation, messages) in pending {
            if !registry.can_deliver(&conversation.channel) {
                continue;
            }
            let customer = store.customer(&conversation.customer_id).await?;
            // A message answered by an earlier pass is not answered again.
            let recovered = self.recovered(&conversation.id).await?;
            for message in messages {
                if recovered.contains(&message.id) {
                    continue;
                }
                let conversation = store.conversation(&conversation.id).await?;
                if conversation.status != crate::conversation::Status::Bot {
                    break;
                }
                if self
                    .recover(registry, &customer, conversation, message)
                    .await?
                {
                    answered += 1;
                }
            }
        }
        Ok(answered)
    }

    /// Answers a customer message a previous process stored and never
    /// answered, now that the client sent it again (a retry with the same
    /// platform id after a crash): the retry gets the answer at once rather
    /// than after the recovery pass, which by then may find the customer
    /// moved on. `false` when the message is not such a message (unknown,
    /// stored by this process, answered, or with a person now).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn answer_orphan(
        &self,
        registry: &crate::delivery::Registry,
        channel: &str,
        platform_message_id: &str,
    ) -> Result<bool, Error> {
        let store = &self.inner.store;
        let Some(message) = store.customer_message(channel, platform_message_id).await? else {
            return Ok(false);
        };
        if message.created_at >= self.inner.started
            || store
                .reply_to(channel, platform_message_id)
                .await?
                .is_some()
        {
            return Ok(false);
        }
        let answered_before = self
            .recovered(&message.conversation_id)
            .await?
            .contains(&message.id);
        let conversation = store.conversation(&message.conversation_id).await?;
        if answered_before || conversation.status != crate::conversation::Status::Bot {
            return Ok(false);
        }
        let customer = store.customer(&conversation.customer_id).await?;
        self.recover(registry, &customer, conversation, message)
            .await
    }

    /// Ids of the messages of `conversation_id` that crash recovery has
    /// answered (in any process).
    async fn recovered(&self, conversation_id: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .inner
            .store
            .events(conversation_id)
            .await?
            .into_iter()
            .filter(|e| e.kind == RECOVERED)
            .filter_map(|e| e.detail)
            .collect())
    }

    /// Answers one message left by a crash, unless this process has taken
    /// it on already; marks it answered.
    async fn recover(
        &self,
        registry: &crate::delivery::Registry,
        customer: &crate::store::Customer,
        conversation: Conversation,
        message: Message,
    ) -> Result<bool, Error> {
        let taken = self
            .inner
            .recovering
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(message.id.clone());
        if !taken {
            return Ok(false);
        }
        let (conversation_id, message_id) = (conversation.id.clone(), message.id.clone());
        let answered = self
            .answer_stored(registry, customer, conversation, message)
            .await?;
        // After the answer: a crash in between answers it once more.
        self.inner
            .store
            .record_event(&conversation_id, RECOVERED, "system", Some(&message_id))
            .await?;
        Ok(answered)
    }

    /// Answers one stored customer message on its channel (or through the
    /// outbox); `false` when the decision was to stay silent.
    async fn answer_stored(
        &self,
        registry: &crate::delivery::Registry,
        customer: &crate::store::Customer,
        conversation: Conversation,
        message: Message,
    ) -> Result<bool, Error> {
        let store = &self.inner.store;
        {
            let turn = Turn {
                channel: conversation.channel.clone(),
                customer_id: customer.external_id.clone(),
                customer_name: customer.display_name.clone(),
                thread: conversation.thread_key.clone(),
                platform_message_id: None,
                text: message.text.clone(),
            };
            let reply = self
                .decide(customer, conversation.clone(), &turn, None)
                .await?;
            if reply.is_silent() {
                return Ok(false);
            }
            let target = crate::delivery::Target {
                channel: conversation.channel.clone(),
                customer_id: customer.external_id.clone(),
                thread: conversation.thread_key.clone(),
            };
            let outgoing = crate::delivery::Outgoing {
                text: crate::delivery::plain_reply(&reply.answer, &reply.sources),
                buttons: reply.buttons(),
                notice: false,
            };
            crate::delivery::send_or_queue(
                registry,
                store,
                &target,
                &outgoing,
                Some(&conversation.id),
                crate::delivery::Retry::Outbox,
            )
            .await?;
        }
        Ok(true)
    }

    /// Handles a button press. `turn.text` is the button's data;
    /// `turn.channel` and `turn.customer_id` identify the presser (platform
    /// user id, web session); `turn.platform_message_id` should identify the
    /// press (callback id) so a repeated delivery is ignored.
    ///
    /// A press counts only when its conversation belongs to the presser and
    /// it still applies: an offer or "solved?" button only while its message
    /// is the conversation's latest bot message and the bot still has the
    /// conversation, a survey button only for the question still open.
    /// Anything else is [`Pressed::Stale`] and changes nothing.
    ///
    /// # Errors
    /// As [`Assistant::handle`].
    #[tracing::instrument(
        name = "press",
        skip_all,
        fields(channel = %turn.channel, press = turn.platform_message_id.as_deref().unwrap_or("-"))
    )]
    pub async fn press(&self, turn: Turn) -> Result<Pressed, Error> {
        let Some(data) = ButtonData::parse(&turn.text) else {
            return Ok(Pressed::Stale);
        };
        let store = &self.inner.store;
        let Some(customer) = store
            .find_customer(&turn.channel, &turn.customer_id)
            .await?
        else {
            return Ok(Pressed::Stale);
        };
        let conversation = match store.conversation(data.conversation()).await {
            Ok(c) => c,
            Err(store::Error::NotFound { .. }) => return Ok(Pressed::Stale),
            Err(e) => return Err(e.into()),
        };
        if conversation.customer_id != customer.id {
            tracing::warn!(
                channel = %turn.channel,
                conversation = %conversation.id,
                "refused a press on another customer's conversation"
            );
            return Ok(Pressed::Stale);
        }
        match data {
            ButtonData::OfferYes { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::AcceptOffer)
                    .await
            }
            ButtonData::OfferNo { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::DeclineOffer)
                    .await
            }
            ButtonData::SolvedYes { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::Solved)
                    .await
            }
            ButtonData::SolvedNo { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::NotSolved)
                    .await
            }
            ButtonData::Feedback { message, up, .. } => {
                let rated = store.message(&message).await?;
                if !rated
                    .is_some_and(|m| m.conversation_id == conversation.id && m.role == Role::Bot)
                {
                    return Ok(Pressed::Stale);
                }
                let value = if up { 1 } else { -1 };
                let stored = store
                    .set_feedback(&conversation.id, &message, value)
                    .await?;
                Ok(Pressed::Feedback(stored))
            }
            ButtonData::Survey { step, value, .. } => {
                let Some(surveys) = &self.inner.surveys else {
                    return Ok(Pressed::Stale);
                };
                Ok(match surveys.press(&conversation.id, step, value).await? {
                    Some(next) => Pressed::Message(next),
                    None => Pressed::Stale,
                })
            }
            ButtonData::StopSurveys { .. } => {
                let text = match &self.inner.surveys {
                    Some(surveys) => surveys.opt_out(&customer.id).await?,
                    None => {
                        store.opt_out_of_surveys(&customer.id).await?;
                        self.render("surveys_stopped.md", serde_json::json!({}))?
                    }
                };
                Ok(Pressed::Message(crate::delivery::Outgoing::text(text)))
            }
            // Card buttons are for agents, in staff places.
            ButtonData::Desk { .. } => Ok(Pressed::Stale),
        }
    }

    /// An offer or "solved?" press on `message`, checked against the
    /// conversation's current state, then decided as `intent`. The press is
    /// stored as the customer's message (its label), so the log and the
    /// agents' card show what they chose.
    async fn press_intent(
        &self,
        conversation: &Conversation,
        message: &str,
        mut turn: Turn,
        intent: Intent,
    ) -> Result<Pressed, Error> {
        let store = &self.inner.store;
        if conversation.status != Status::Bot {
            return Ok(Pressed::Stale);
        }
        let Some(last) = store.last_bot_message(&conversation.id).await? else {
            return Ok(Pressed::Stale);
        };
        let offer = last.mode.as_deref() == Some(Mode::Handoff.as_str());
        let answer =
            matches!(last.mode.as_deref(), Some("llm" | "extractive")) && !last.sources.is_empty();
        let (fits, label) = match intent {
            Intent::AcceptOffer => (offer, button::OFFER_YES_LABEL),
            Intent::DeclineOffer => (offer, button::OFFER_NO_LABEL),
            Intent::Solved => (answer, button::SOLVED_YES_LABEL),
            Intent::NotSolved => (answer, button::SOLVED_NO_LABEL),
        };
        if last.id != message || !fits {
            return Ok(Pressed::Stale);
        }
        turn.text = label.to_string();
        turn.thread = conversation.thread_key.clone();
        let inbound = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Customer,
            text: label,
            channel: &turn.channel,
            platform_message_id: turn.platform_message_id.as_deref(),
            ..NewMessage::default()
        };
        if store.insert_message(&inbound).await?.is_none() {
            return Ok(Pressed::Unknown);
        }
        let reply = match intent {
            Intent::AcceptOffer => {
                self.hand_off(conversation, &turn, Reason::KnowledgeGap, None)
                    .await?
            }
            Intent::DeclineOffer => self.info(conversation, &turn, "offer_declined.md").await?,
            Intent::Solved => self.resolve_solved(conversation, &turn).await?,
            Intent::NotSolved => self.not_solved(conversation, &turn).await?,
        };
        Ok(Pressed::Reply(reply))
    }

    /// The customer says the answer did not solve it: offer a person.
    async fn not_solved(&self, conversation: &Conversation, turn: &Turn) -> Result<Reply, Error> {
        let text = self.render("not_solved.md", serde_json::json!({}))?;
        self.inner
            .store
            .mark_offered_human(&conversation.id)
            .await?;
        self.finish(
            conversation,
            turn,
            text,
            Mode::Handoff,
            Vec::new(),
            Action::OfferHuman,
            None,
        )
        .await
    }

    async fn decide(
        &self,
        customer: &Customer,
        conversation: Conversation,
        turn: &Turn,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        let text = turn.text.trim();
        let mut question = text;
        match parse_command(text) {
            Some(Command::Start) => return self.info(&conversation, turn, "welcome.md").await,
            Some(Command::Help) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::Human) => {
                return self
                    .hand_off(&conversation, turn, Reason::CustomerRequest, None)
                    .await;
            }
            Some(Command::New) => return self.restart(customer, &conversation, turn).await,
            Some(Command::Cancel) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::StopSurveys) => {
                let text = match &self.inner.surveys {
                    Some(surveys) => surveys.opt_out(&customer.id).await?,
                    None => {
                        self.inner.store.opt_out_of_surveys(&customer.id).await?;
                        self.render("surveys_stopped.md", serde_json::json!({}))?
                    }
                };
                return self
                    .finish(
                        &conversation,
                        turn,
                        text,
                        Mode::Extractive,
                        Vec::new(),
                        Action::Info,
                        None,
                    )
                    .await;
            }
            Some(Command::Ask("")) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::Ask(q)) => question = q,
            Some(Command::Unknown(name)) => {
                let help = self.render("help.md", serde_json::json!({}))?;
                let text = format!("Unknown command /{name}. {help}");
                return self
                    .finish(
                        &conversation,
                        turn,
                        text,
                        Mode::Extractive,
                        Vec::new(),
                        Action::Info,
                        None,
                    )
                    .await;
            }
            None => {}
        }
        let normal = handoff::normalise(question);
        let rules = &self.inner.rules;
        if rules.is_vip(&turn.channel, &turn.customer_id) {
            return self.hand_off(&conversation, turn, Reason::Vip, None).await;
        }
        let history = self.history(&conversation).await?;
        let last_bot = history.iter().rev().find(|m| m.role == Role::Bot);
        let offer_pending =
            last_bot.is_some_and(|m| m.mode.as_deref() == Some(Mode::Handoff.as_str()));
        if offer_pending && YES.contains(&normal.as_str()) {
            return self
                .hand_off(&conversation, turn, Reason::KnowledgeGap, None)
                .await;
        }
        if offer_pending && NO.contains(&normal.as_str()) {
            return self.info(&conversation, turn, "offer_declined.md").await;
        }
        let after_answer = last_bot.is_some_and(|m| {
            matches!(m.mode.as_deref(), Some("llm" | "extractive")) && !m.sources.is_empty()
        });
        if after_answer && YES.contains(&normal.as_str()) {
            return self.resolve_solved(&conversation, turn).await;
        }
        if after_answer && NO.contains(&normal.as_str()) && stuck(&history, &normal).is_none() {
            return self.not_solved(&conversation, turn).await;
        }
        if let Some(detail) = stuck(&history, &normal) {
            return self
                .hand_off(&conversation, turn, Reason::Frustration, Some(detail))
                .await;
        }
        let earlier: Vec<Earlier> = history
            .iter()
            .map(|m| Earlier {
                role: if m.role == Role::Customer {
                    context::Role::Customer
                } else {
                    context::Role::Bot
                },
                text: m.text.clone(),
            })
            .collect();
        let retrieval = match self.assess_in(question, &earlier).await? {
            Assessment::HandOff(reason, detail) => {
                return self
                    .hand_off(&conversation, turn, reason, detail.as_deref())
                    .await;
            }
            Assessment::Reply(template) => return self.info(&conversation, turn, template).await,
            Assessment::Answer(retrieval) => retrieval,
            Assessment::NotCovered(_) => return self.offer_human(&conversation, turn).await,
        };
        if let Some(model) = self.inner.model.clone() {
            let started = Instant::now();
            let (messages, sources) = self.build_prompt(question, &retrieval.hits, &earlier)?;
            let outcome = self.generate(model.as_ref(), &messages, deltas).await;
            let latency = started.elapsed();
            metrics::histogram!("switchboard_llm_latency_seconds").record(latency.as_secs_f64());
            match outcome {
                Ok((text, usage)) if decline::is_decline(&text) => {
                    if conversation.llm_failures > 0 {
                        self.inner
                            .store
                            .note_llm_result(&conversation.id, false)
                            .await?;
                    }
                    tracing::debug!(usage.completion, "model says the sources do not answer");
                    return self.offer_human(&conversation, turn).await;
                }
                Ok((text, usage)) => {
                    if conversation.llm_failures > 0 {
                        self.inner
                            .store
                            .note_llm_result(&conversation.id, false)
                            .await?;
                    }
                    let cited = cited_sources(&text, &sources);
                    let generated = Generated {
                        model: model.name().to_string(),
                        usage,
                        latency,
                    };
                    return self
                        .finish(
                            &conversation,
                            turn,
                            text,
                            Mode::Llm,
                            cited,
                            Action::Answer,
                            Some(&generated),
                        )
                        .await;
                }
                Err(llm::Error::Busy) => {
                    let text = self.render_or("busy.md", serde_json::json!({}), BUSY)?;
                    return self
                        .finish(
                            &conversation,
                            turn,
                            text,
                            Mode::Extractive,
                            Vec::new(),
                            Action::Info,
                            None,
                        )
                        .await;
                }
                Err(e) => {
                    metrics::counter!("switchboard_llm_errors_total").increment(1);
                    tracing::warn!(conversation = %conversation.id, "LLM failed, answering extractively: {e}");
                    let failures = self
                        .inner
                        .store
                        .note_llm_result(&conversation.id, true)
                        .await?;
                    if failures >= 2 {
                        let detail = e.to_string();
                        return self
                            .hand_off(&conversation, turn, Reason::LlmFailure, Some(&detail))
                            .await;
                    }
                }
            }
        }
        self.extractive(&conversation, turn, &retrieval).await
    }

    fn silent(&self, conversation: &Conversation, action: Action) -> Reply {
        Reply {
            conversation_id: conversation.id.clone(),
            message_id: None,
            answer: String::new(),
            mode: Mode::Handoff,
            sources: Vec::new(),
            handoff: conversation.status != Status::Bot,
            action,
            survey_buttons: Vec::new(),
        }
    }

    async fn info(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        template: &str,
    ) -> Result<Reply, Error> {
        let text = self.render(template, serde_json::json!({}))?;
        self.finish(
            conversation,
            turn,
            text,
            Mode::Extractive,
            Vec::new(),
            Action::Info,
            None,
        )
        .await
    }

    async fn offer_human(&self, conversation: &Conversation, turn: &Turn) -> Result<Reply, Error> {
        store_gap(&self.inner.store, conversation, turn).await?;
        let already = conversation.offered_human;
        let text = self.render("no_answer.md", serde_json::json!({"offer": !already}))?;
        self.inner
            .store
            .mark_offered_human(&conversation.id)
            .await?;
        self.finish(
            conversation,
            turn,
            text,
            Mode::Handoff,
            Vec::new(),
            Action::OfferHuman,
            None,
        )
        .await
    }

    /// Hands the conversation to people: moves it to `waiting_for_agent`,
    /// records why, and tells the customer.
    async fn hand_off(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        reason: Reason,
        detail: Option<&str>,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        if let Some(limited) = self.handoff_limited(conversation, turn).await? {
            return Ok(limited);
        }
        let change = Change {
            handoff_reason: Some(reason.as_str()),
            handoff_detail: detail,
            ..Change::default()
        };
        let conversation = match self
            .move_conversation(conversation, Transition::HandOff, "bot", &change)
            .await?
        {
            Ok(c) => c,
            Err(silent) => return Ok(silent),
        };
        metrics::counter!("switchboard_handoffs_total", "reason" => reason.as_str()).increment(1);
        let position = store.queue_position(&conversation.id).await?;
        let back_at = self.inner.desk.as_ref().and_then(Desk::back_at);
        let text = self.render(
            "handoff.md",
            serde_json::json!({"reason": reason.as_str(), "queue_position": position, "back_at": back_at}),
        )?;
        if let Some(desk) = &self.inner.desk {
            desk.poke();
        }
        let message = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Bot,
            text: &text,
            mode: Some(Mode::Handoff.as_str()),
            channel: &turn.channel,
            ..NewMessage::default()
        };
        let message_id = store.insert_message(&message).await?;
        metrics::counter!("switchboard_answers_total", "mode" => Mode::Handoff.as_str())
            .increment(1);
        Ok(Reply {
            conversation_id: conversation.id.clone(),
            message_id,
            answer: text,
            mode: Mode::Handoff,
            sources: Vec::new(),
            handoff: true,
            action: Action::HandOff(reason),
            survey_buttons: Vec::new(),
        })
    }

    /// `Some` reply instead of a hand-off when the customer already waits
    /// for a person in another conversation (one place in the queue per
    /// customer), or when an anonymous channel is over its hand-offs per
    /// minute.
    async fn handoff_limited(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Option<Reply>, Error> {
        let store = &self.inner.store;
        let (template, default, limit) = if store
            .waiting_elsewhere(&conversation.customer_id, &conversation.id)
            .await?
            .is_some()
        {
            ("already_waiting.md", ALREADY_WAITING, "one_waiting_handoff")
        } else if self
            .inner
            .limits
            .as_ref()
            .is_some_and(|l| !l.allow_handoff(&turn.channel))
        {
            ("handoff_busy.md", HANDOFF_BUSY, "anonymous_handoffs")
        } else {
            return Ok(None);
        };
        metrics::counter!("switchboard_limited_total", "limit" => limit).increment(1);
        let text = self.render_or(template, serde_json::json!({}), default)?;
        self.finish(
            conversation,
            turn,
            text,
            Mode::Extractive,
            Vec::new(),
            Action::Info,
            None,
        )
        .await
        .map(Some)
    }

    /// The customer confirmed the answer solved it: resolve (a survey
    /// follows later).
    async fn resolve_solved(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let text = self.render("solved.md", serde_json::json!({}))?;
        let reply = self
            .finish(
                conversation,
                turn,
                text,
                Mode::Extractive,
                Vec::new(),
                Action::Info,
                None,
            )
            .await?;
        let change = Change {
            resolution: Some("customer"),
            event_detail: Some("customer confirmed the answer solved it"),
            ..Change::default()
        };
        match self
            .inner
            .store
            .transition(&conversation.id, Transition::Resolve, "customer", &change)
            .await
        {
            Ok(_) | Err(store::Error::Conflict(_) | store::Error::Illegal(_)) => Ok(reply),
            Err(e) => Err(e.into()),
        }
    }

    /// A typed answer to a survey (a rating number or the comment), stored
    /// in the surveyed conversation without reopening it.
    async fn survey_answer(
        &self,
        customer: &Customer,
        turn: &Turn,
    ) -> Result<Option<Reply>, Error> {
        let Some(surveys) = &self.inner.surveys else {
            return Ok(None);
        };
        // Only customers recently sent a survey can be answering one.
        let now = self.inner.store.now();
        if customer
            .surveyed_at
            .is_none_or(|t| now - t > crate::csat::TYPED_WINDOW_MS)
        {
            return Ok(None);
        }
        let Some((survey, next)) = surveys
            .typed(&customer.id, &turn.thread, &turn.text)
            .await?
        else {
            return Ok(None);
        };
        let store = &self.inner.store;
        let inbound = NewMessage {
            conversation_id: &survey.conversation_id,
            role: Role::Customer,
            text: &turn.text,
            mode: Some("survey"),
            channel: &turn.channel,
            platform_message_id: turn.platform_message_id.as_deref(),
            ..NewMessage::default()
        };
        store.insert_message(&inbound).await?;
        Ok(Some(Reply {
            conversation_id: survey.conversation_id.clone(),
            message_id: None,
            answer: next.text,
            mode: Mode::Extractive,
            sources: Vec::new(),
            handoff: false,
            action: Action::Info,
            survey_buttons: next.buttons,
        }))
    }

    /// Applies a transition; when someone else moved the conversation first
    /// (an agent took it), returns the silent reply to give instead.
    async fn move_conversation(
        &self,
        conversation: &Conversation,
        transition: Transition,
        actor: &str,
        change: &Change<'_>,
    ) -> Result<Result<Conversation, Reply>, Error> {
        let store = &self.inner.store;
        match store
            .transition(&conversation.id, transition, actor, change)
            .await
        {
            Ok(c) => Ok(Ok(c)),
            Err(store::Error::Conflict(_) | store::Error::Illegal(_)) => {
                let fresh = store.conversation(&conversation.id).await?;
                Ok(Err(self.silent(&fresh, Action::ToAgent)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn withdraw(&self, conversation: &Conversation, turn: &Turn) -> Result<Reply, Error> {
        let change = Change {
            event_detail: Some("customer withdrew the request"),
            ..Change::default()
        };
        let back = match self
            .move_conversation(conversation, Transition::Withdraw, "customer", &change)
            .await?
        {
            Ok(c) => c,
            Err(silent) => return Ok(silent),
        };
        if let Some(desk) = &self.inner.desk {
            desk.poke();
        }
        let text = self.render("given_back.md", serde_json::json!({}))?;
        self.finish(
            &back,
            turn,
            text,
            Mode::Extractive,
            Vec::new(),
            Action::Info,
            None,
        )
        .await
    }

    async fn restart(
        &self,
        customer: &Customer,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        let change = Change {
            resolution: Some("new_conversation"),
            event_detail: Some("customer started a new conversation"),
            ..Change::default()
        };
        store
            .transition(&conversation.id, Transition::Resolve, "customer", &change)
            .await?;
        let fresh = store
            .start_conversation(customer, &turn.thread, Some(&conversation.id))
            .await?;
        let text = self.render("welcome.md", serde_json::json!({}))?;
        self.finish(
            &fresh,
            turn,
            text,
            Mode::Extractive,
            Vec::new(),
            Action::NewConversation,
            None,
        )
        .await
    }

    async fn extractive(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        retrieval: &Retrieval,
    ) -> Result<Reply, Error> {
        let Some(best) = retrieval.hits.first() else {
            return self.offer_human(conversation, turn).await;
        };
        let quote = quote_of(&best.markdown);
        let link = self.inner.kb.link(&best.slug, best.url.as_deref());
        let text = self.render(
            "extractive.md",
            serde_json::json!({"title": best.title, "heading": best.heading, "quote": quote, "url": link}),
        )?;
        let mut sources = vec![source_of(best)];
        if let Some(next) = retrieval
            .hits
            .iter()
            .find(|h| h.slug != best.slug && h.score >= best.score * 0.8)
        {
            sources.push(source_of(next));
        }
        self.finish(
            conversation,
            turn,
            text,
            Mode::Extractive,
            sources,
            Action::Answer,
            None,
        )
        .await
    }

    /// Stores the bot's reply, unless the conversation left the bot while
    /// the reply was being made (then the reply is dropped, silently).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        text: String,
        mode: Mode,
        sources: Vec<SourceRef>,
        action: Action,
        generated: Option<&Generated>,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        let message = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Bot,
            text: &text,
            mode: Some(mode.as_str()),
            sources: &sources,
            model: generated.map(|g| g.model.as_str()),
            prompt_tokens: generated.map(|g| g.usage.prompt).filter(|t| *t > 0),
            completion_tokens: generated.map(|g| g.usage.completion).filter(|t| *t > 0),
            latency_ms: generated.map(|g| g.latency.as_millis() as i64),
            channel: &turn.channel,
            ..NewMessage::default()
        };
        // Stored only if the conversation is still with the bot, in the
        // same statement: no answer slips out after a hand-off.
        let Some(message_id) = store.insert_if_with_bot(&message).await? else {
            let fresh = store.conversation(&conversation.id).await?;
            return Ok(self.silent(&fresh, Action::ToAgent));
        };
        let message_id = Some(message_id);
        if action == Action::Answer || action == Action::OfferHuman {
            metrics::counter!("switchboard_answers_total", "mode" => mode.as_str()).increment(1);
        }
        Ok(Reply {
            conversation_id: conversation.id.clone(),
            message_id,
            answer: text,
            mode,
            sources,
            handoff: mode == Mode::Handoff,
            action,
            survey_buttons: Vec::new(),
        })
    }

    /// Earlier messages of the conversation that the bot may use as context:
    /// a conversation given back by an agent starts its context afresh, so
    /// the bot does not carry on as if the hand-off never happened. Excludes
    /// the message just stored.
    async fn history(&self, conversation: &Conversation) -> Result<Vec<Message>, Error> {
        let keep = self.inner.settings.history_messages + 1;
        let mut messages = self
            .inner
            .store
            .recent_messages(&conversation.id, keep)
            .await?;
        messages.pop();
        if let Some(since) = conversation.context_since {
            messages.retain(|m| m.created_at >= since);
        }
        messages.retain(|m| matches!(m.role, Role::Customer | Role::Bot | Role::Agent));
        Ok(messages)
    }
}

struct Generated {
    model: String,
    usage: Usage,
    latency: Duration,
}

/// Records the question the bot could not answer, for `report gaps`.
async fn store_gap(store: &Store, conversation: &Conversation, turn: &Turn) -> Result<(), Error> {
    let question: String = turn.text.chars().take(500).collect();
    store
        .record_event(&conversation.id, "no_answer", "bot", Some(&question))
        .await?;
    Ok(())
}

/// The sources whose `[n]` the answer cites; all of them if it cites none.
fn cited_sources(text: &str, sources: &[PromptSource]) -> Vec<SourceRef> {
    let mut cited: Vec<usize> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'[' {
            let digits: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !digits.is_empty()
                && text[i + 1 + digits.len()..].starts_with(']')
                && let Ok(n) = digits.parse::<usize>()
                && (1..=sources.len()).contains(&n)
                && !cited.contains(&(n - 1))
            {
                cited.push(n - 1);
            }
        }
        i += 1;
    }
    if cited.is_empty() {
        cited = (0..sources.len()).collect();
    }
    cited.sort_unstable();
    cited
        .into_iter()
        .map(|i| {
            let s = &sources[i];
            SourceRef {
                slug: s.slug.clone(),
                title: s.title.clone(),
                url: s.url.clone(),
                score: s.score,
            }
        })
        .collect()
}

fn source_of(hit: &Hit) -> SourceRef {
    SourceRef {
        slug: hit.slug.clone(),
        title: hit.title.clone(),
        url: hit.url.clone(),
        score: hit.score,
    }
}

/// The passage as a quote: whole paragraphs up to [`MAX_QUOTE_CHARS`].
fn quote_of(markdown: &str) -> String {
    let mut out = String::new();
    for para in markdown.split("\n\n") {
        if !out.is_empty() && out.chars().count() + para.chars().count() > MAX_QUOTE_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(para.trim_end());
    }
    if out.chars().count() > MAX_QUOTE_CHARS {
        out = out.chars().take(MAX_QUOTE_CHARS).collect::<String>() + "…";
    }
    out
}

/// Whether the customer is stuck: the same question for the third time, or
/// "no / that didn't help" after two answers in a row.
fn stuck(history: &[Message], normal: &str) -> Option<&'static str> {
    let customer: Vec<String> = history
        .iter()
        .filter(|m| m.role == Role::Customer)
        .map(|m| handoff::normalise(&m.text))
        .collect();
    let repeats = customer.iter().rev().take_while(|t| *t == normal).count();
    if !normal.is_empty() && repeats + 1 >= REPEATS_FOR_FRUSTRATION {
        return Some("asked the same question three times");
    }
    if handoff::is_negative_feedback(normal) {
        let earlier_negative = customer
            .iter()
            .rev()
            .take(2)
            .filter(|t| handoff::is_negative_feedback(t))
            .count();
        if earlier_negative >= 1 {
            return Some("said twice that answers did not help");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{any_case, text};
    use proptest::prelude::*;

    fn cases(n: u32) -> ProptestConfig {
        ProptestConfig {
            cases: n,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        // 80,000 + 40,000 + 15,000 cases (the total is in tests/hostile_text.rs).
        #![proptest_config(cases(80_000))]

        #[test]
        fn hostile_customer_commands_parse(s in text()) {
            match parse_command(&s) {
                None => prop_assert!(!s.trim().starts_with('/')),
                Some(Command::Unknown(name)) => {
                    prop_assert!(!name.contains('@') && !name.contains(char::is_whitespace));
                }
                Some(Command::Ask(args)) => prop_assert_eq!(args, args.trim()),
                Some(_) => {}
            }
        }
    }

    proptest! {
        #![proptest_config(cases(40_000))]

        #[test]
        fn hostile_customer_commands_round_trip(
            (name, cased) in prop::sample::select(&["start", "help", "human", "agent", "new", "reset", "cancel", "bot", "stop-surveys", "stop_surveys", "stopsurveys", "ask", "frobnicate"][..])
                .prop_flat_map(|name| (Just(name), any_case(name))),
            bot in prop::option::of("[A-Za-z0-9_]{1,20}"),
            args in text(),
        ) {
            let at = bot.map(|b| format!("@{b}")).unwrap_or_default();
            let typed = format!("/{cased}{at} {args}");
            let expected = match name {
                "start" => Command::Start,
                "help" => Command::Help,
                "human" | "agent" => Command::Human,
                "new" | "reset" => Command::New,
                "cancel" | "bot" => Command::Cancel,
                "ask" => Command::Ask(args.trim()),
                "frobnicate" => Command::Unknown(&cased),
                _ => Command::StopSurveys,
            };
            prop_assert_eq!(parse_command(&typed), Some(expected));
        }
    }

    proptest! {
        #![proptest_config(cases(15_000))]

        #[test]
        fn hostile_quotes_and_citations(s in text()) {
            prop_assert!(quote_of(&s).chars().count() <= MAX_QUOTE_CHARS + 1);
            let source = |slug: &str| PromptSource {
                slug: slug.into(),
                title: slug.into(),
                url: None,
                score: 1.0,
                passages: vec![],
            };
            let cited = cited_sources(&s, &[source("a"), source("b"), source("c")]);
            prop_assert!(!cited.is_empty() && cited.len() <= 3);
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command("/start"), Some(Command::Start));
        assert_eq!(
            parse_command("/ask@my_bot how do refunds work"),
            Some(Command::Ask("how do refunds work"))
        );
        assert_eq!(parse_command("/HUMAN"), Some(Command::Human));
        assert_eq!(
            parse_command("/frobnicate now"),
            Some(Command::Unknown("frobnicate"))
        );
        assert_eq!(parse_command("how do I /start"), None);
    }

    #[test]
    fn citations_select_sources() {
        let s = |slug: &str| PromptSource {
            slug: slug.into(),
            title: slug.into(),
            url: None,
            score: 1.0,
            passages: vec![],
        };
        let sources = vec![s("a"), s("b"), s("c")];
        let cited = cited_sources("Do this [2], then that [3][2]. Not [9].", &sources);
        assert_eq!(
            cited.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>(),
            vec!["b", "c"]
        );
        let all = cited_sources("No citations here.", &sources);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn quotes_keep_whole_paragraphs() {
        let para = "word ".repeat(100);
        let md = format!("{para}\n\n{para}\n\n{para}");
        let q = quote_of(&md);
        assert!(q.chars().count() <= MAX_QUOTE_CHARS + 1);
        assert!(!q.ends_with("wor"));
    }
}
