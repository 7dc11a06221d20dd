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

mod actions;
/// The nearest-neighbour index (the workspace crate `crates/ann`).
pub use switchboard_ann as ann;
mod budget;
mod commands;
pub mod context;
mod decide;
mod decision;
mod decline;
mod generate;
mod press;
pub mod recovery;
mod reply;
mod retrieve;
pub use crate::templates as prompts;
pub mod requests;
pub mod semantic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::ConversationId;

use commands::{Command, GREETINGS, NO, THANKS, YES, parse_command};
pub use context::Earlier;
use decision::Decision;
use generate::{cited_sources, quote_of, source_of};
pub use prompts::{Prompts, Template};
use reply::BotMessage;
pub use reply::{Action, Draft, Mode, Pressed, Reply, Turn};
pub use retrieve::{Assessment, Retrieval};

use crate::button::{self, ButtonData};
use crate::config::AssistantSettings;
use crate::conversation::{Actor, EventKind, Resolution, Status, Transition};
use crate::csat::Surveys;
use crate::delivery::Button;
use crate::desk::Desk;
use crate::handoff::{self, Reason, Rules};
use crate::kb::{Hit, KnowledgeBase};
use crate::limits::{Limits, Verdict};
use crate::llm::{self, ChatMessage, ChatModel, Delta, Speaker, Usage};
use crate::store::{
    self, Change, Conversation, Customer, Message, MessageMode, NewMessage, Role, SourceRef, Store,
};
use semantic::Semantic;

/// Whether a customer's message is small talk rather than a question: a
/// greeting, thanks, or a yes or no (as the decision reads them).
pub fn is_small_talk(text: &str) -> bool {
    let normal = handoff::normalise(text);
    [GREETINGS, THANKS, YES, NO]
        .iter()
        .any(|list| list.contains(&normal.as_str()))
}

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
/// Passages the embeddings rank for fusion (as many as BM25's pool).
const DENSE_POOL: usize = ARTICLE_POOL;
/// BM25's weight in hybrid fusion, the embeddings having the rest: equal
/// weights, chosen before measuring. On the dev sets any weight from 0.3
/// to 0.6 gives hit@1 within 0.03 of this one (README, *Hybrid retrieval*).
const BM25_WEIGHT: f32 = 0.5;
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
    /// The hand-off examples as embedded (see [`requests`]).
    request_examples: tokio::sync::Mutex<Option<requests::Embedded>>,
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
        // What the assistant's templates may use besides their own values.
        let prompts = prompts.with_common(serde_json::json!({
            "product_name": settings.product_name,
            "no_answer_token": NO_ANSWER_TOKEN,
        }));
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
                request_examples: Default::default(),
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

    /// Renders a template with the common values (`product_name`,
    /// `no_answer_token`) and `extra`.
    ///
    /// # Errors
    /// When the template fails.
    pub fn render(&self, template: Template, extra: serde_json::Value) -> Result<String, Error> {
        Ok(self.inner.prompts.render(template, extra)?)
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
        // The customer and their open conversation here, in one read.
        let (customer, open) = store
            .customer_in_thread(
                &turn.channel,
                &turn.customer_id,
                turn.customer_name.as_deref(),
                &turn.thread,
            )
            .await?;
        if let Some(reply) = self.survey_answer(&customer, &turn).await? {
            return Ok(Received(Step::Done(reply)));
        }
        let conversation = store
            .open_conversation_from(&customer, &turn.thread, open)
            .await?;
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
                self.render_or(Template::SlowDown, serde_json::json!({}), SLOW_DOWN)?,
                Action::Info,
            ),
            _ => (String::new(), Action::Limited),
        };
        Ok(Some(Reply {
            conversation_id: ConversationId::default(),
            message_id: None,
            answer,
            mode: Mode::Extractive,
            sources: Vec::new(),
            handoff: false,
            action,
            survey_buttons: Vec::new(),
        }))
    }

    /// Renders `template`, or `default` when the deployment's prompts
    /// folder predates the template (templates added for limits are
    /// optional).
    fn render_or(
        &self,
        template: Template,
        extra: serde_json::Value,
        default: &str,
    ) -> Result<String, Error> {
        if self.inner.prompts.has(template) {
            self.render(template, extra)
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
                Template::TooLong,
                serde_json::json!({"length": length, "limit": limit}),
            )?;
            return self
                .finish(&conversation, &turn, BotMessage::info(text))
                .await;
        }
        self.decide(&customer, conversation, &turn, deltas).await
    }
}

/// What the model reports about a generated answer, stored with it.
#[derive(Debug)]
struct Generated {
    model: String,
    usage: Usage,
    latency: Duration,
}

#[cfg(test)]
mod tests;
