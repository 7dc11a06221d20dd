//! Settings: `config.toml` plus `SWITCHBOARD_<SECTION>__<KEY>` environment
//! overrides, validated once at start.
//!
//! Every section is a `*Settings` struct with `deny_unknown_fields`, so a typo
//! in a key stops the program with a message naming the key instead of being
//! silently ignored. Secrets (`llm.api_key`, bot tokens, agent tokens) are read
//! from the environment and never printed: their `Debug` output is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod channels;
mod validate;
mod web;

pub use channels::{DiscordSettings, TelegramSettings};
pub use web::{WIDGET_TEXT_KEYS, WebSettings, WidgetSettings};

/// A configuration problem, phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file named by `--config` does not exist.
    #[error("config file {0} not found: pass --config PATH or set SWITCHBOARD_CONFIG")]
    Missing(PathBuf),
    /// A key is unknown, has the wrong type, or the TOML does not parse.
    #[error("{0}")]
    Invalid(String),
}

/// A string that must not appear in logs.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// All settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[database]`
    pub database: DatabaseSettings,
    /// `[knowledge_base]`
    pub knowledge_base: KnowledgeBaseSettings,
    /// `[prompts]`
    pub prompts: PromptSettings,
    /// `[llm]`
    pub llm: LlmSettings,
    /// `[embeddings]`
    pub embeddings: EmbeddingSettings,
    /// `[assistant]`
    pub assistant: AssistantSettings,
    /// `[web]`
    pub web: WebSettings,
    /// `[widget]`
    pub widget: WidgetSettings,
    /// `[telegram]`
    pub telegram: TelegramSettings,
    /// `[discord]`
    pub discord: DiscordSettings,
    /// `[handoff]`
    pub handoff: HandoffSettings,
    /// `[csat]`
    pub csat: CsatSettings,
    /// `[[agents]]`
    pub agents: Vec<AgentSettings>,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://switchboard.db` (created if missing) or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds between two passes over the outbox (messages whose delivery
    /// failed, retried with backoff).
    pub outbox_retry_secs: u64,
    /// Seconds between two passes over kept inputs (button presses and
    /// staff messages interrupted by a crash or due for a retry).
    pub inbound_retry_secs: u64,
    /// Seconds between two beats of this process in the database. Processes
    /// sharing one PostgreSQL database tell each other they are alive this
    /// way; one that misses three beats is gone, and the messages it stored
    /// and never answered are answered by another.
    pub heartbeat_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://switchboard.db".into(),
            max_connections: 8,
            outbox_retry_secs: 2,
            inbound_retry_secs: 5,
            heartbeat_secs: 5,
        }
    }
}

/// `[knowledge_base]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeBaseSettings {
    /// Folder of Markdown articles.
    pub path: PathBuf,
    /// Where the search index is kept. Relative paths are relative to the
    /// current directory.
    pub index_path: PathBuf,
    /// Reload the index when files change while `run` is running.
    pub watch: bool,
    /// Base of article links when an article has no `url` in front matter;
    /// the slug is appended. Empty means sources carry no link.
    pub base_url: String,
}

impl Default for KnowledgeBaseSettings {
    fn default() -> Self {
        Self {
            path: "knowledge-base".into(),
            index_path: ".switchboard/index".into(),
            watch: true,
            base_url: String::new(),
        }
    }
}

/// `[prompts]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    /// Folder of prompt templates (minijinja).
    pub path: PathBuf,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self {
            path: "prompts".into(),
        }
    }
}

/// `[llm]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// OpenAI-compatible endpoint base, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// Chat model name.
    pub model: String,
    /// API key; normally from `OPENAI_API_KEY`.
    pub api_key: Option<Secret>,
    /// Deprecated alias of `embeddings.provider = "openai"` with
    /// `embeddings.model`; used only when `[embeddings]` names no provider.
    pub embedding_model: Option<String>,
    /// Sampling temperature.
    pub temperature: f32,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// The model's context window in tokens: prompts (rules, sources,
    /// recent conversation, question) are cut to fit it with `max_tokens`
    /// left for the answer, the most relevant passages first.
    pub context_tokens: usize,
    /// Seconds to wait for the first token, and between two tokens, before
    /// the answer falls back to an extractive one.
    pub timeout_secs: u64,
    /// Most model calls in flight at once (the whole process).
    pub max_concurrency: usize,
    /// Answers waiting for a free model call at most; past it (or after
    /// `timeout_secs` in the queue) the customer is asked to wait a moment.
    pub max_queue: usize,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            model: "gpt-4o-mini".into(),
            api_key: None,
            embedding_model: None,
            temperature: 0.2,
            max_tokens: 600,
            context_tokens: 4096,
            timeout_secs: 20,
            max_concurrency: 4,
            max_queue: 64,
        }
    }
}

impl LlmSettings {
    /// The endpoint to call, or `None` when the bot runs extractive-only:
    /// no key and no explicit base URL.
    pub fn endpoint(&self) -> Option<String> {
        match (&self.base_url, &self.api_key) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(_)) => Some("https://api.openai.com/v1".into()),
            (None, None) => None,
        }
    }
}

/// Where passage and question vectors for hybrid retrieval come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// A sentence-transformers folder run inside the process.
    Local,
    /// `/v1/embeddings` at `llm.base_url`.
    Openai,
}

/// `[embeddings]`: hybrid retrieval. No provider means BM25 only.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingSettings {
    /// `local` or `openai`; unset: BM25 only (or the deprecated
    /// `llm.embedding_model`).
    pub provider: Option<EmbeddingProvider>,
    /// For `local`: a sentence-transformers folder (config.json,
    /// tokenizer.json, model.safetensors).
    pub path: Option<PathBuf>,
    /// For `openai`: the model name sent to `/v1/embeddings`.
    pub model: Option<String>,
}

/// The embedding source settled from `[embeddings]` and the deprecated
/// `llm.embedding_model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Embeddings {
    /// BM25 only.
    Off,
    /// In process, from this folder.
    Local(PathBuf),
    /// `/v1/embeddings` at `llm.base_url` with this model name.
    Openai(String),
}

impl Settings {
    /// Which embeddings to use: `[embeddings]` when it names a provider,
    /// else `llm.embedding_model` (deprecated) as `openai`, else none.
    /// Call after validation (a provider without its key is rejected
    /// there).
    pub fn embeddings(&self) -> Embeddings {
        match self.embeddings.provider {
            Some(EmbeddingProvider::Local) => self
                .embeddings
                .path
                .clone()
                .map_or(Embeddings::Off, Embeddings::Local),
            Some(EmbeddingProvider::Openai) => self
                .embeddings
                .model
                .clone()
                .or_else(|| self.llm.embedding_model.clone())
                .map_or(Embeddings::Off, Embeddings::Openai),
            None => self
                .llm
                .embedding_model
                .clone()
                .map_or(Embeddings::Off, Embeddings::Openai),
        }
    }
}

/// `[assistant]`: how answers are made.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistantSettings {
    /// Share (0–1) of generic off-topic questions the bot refuses: each
    /// knowledge base is calibrated against a list of such questions (and
    /// questions made from its own articles) when it is indexed, and a
    /// question counts as covered when its best passage scores above what
    /// this share of them score. Higher refuses more.
    pub refusal_target: f32,
    /// Optional: a retrieval confidence (0–1, the share of the question's
    /// informative terms found in the best passages, weighted by rarity) at
    /// or above which a question counts as covered whatever its score.
    /// Unset by default.
    pub min_confidence: Option<f32>,
    /// Optional: a fixed BM25 score at or above which a question counts as
    /// covered, instead of the calibrated threshold. Unset by default.
    pub min_score: Option<f32>,
    /// Optional, with embeddings on (`[embeddings]`): a nearest passage at
    /// least this similar (cosine) counts as covering the question (0.1
    /// less when BM25 and the embeddings agree on the article), beside
    /// BM25's threshold. Unset by default: BM25 and the embeddings are
    /// then calibrated together for the knowledge base, with
    /// `refusal_target` (see `assistant::semantic::Joint`).
    pub min_similarity: Option<f32>,
    /// Passages given to the model.
    pub max_passages: usize,
    /// Earlier turns (customer + bot messages) kept as context.
    pub history_messages: usize,
    /// Longest customer message accepted, in characters.
    pub max_message_chars: usize,
    /// Product name used in prompts.
    pub product_name: String,
    /// Messages one customer may send per minute on any channel; past it
    /// they are told once to slow down and further messages are dropped
    /// (not stored) until the minute has passed. 0 turns the limit off.
    pub max_messages_per_minute: u32,
    /// Seconds after start before customer messages the last run stored
    /// but did not answer are answered (the channels connect meanwhile).
    pub recovery_delay_secs: u64,
}

impl Default for AssistantSettings {
    fn default() -> Self {
        Self {
            refusal_target: 0.9,
            min_confidence: None,
            min_score: None,
            min_similarity: None,
            max_passages: 4,
            history_messages: 6,
            max_message_chars: 4000,
            product_name: "Lumen Notes".into(),
            max_messages_per_minute: 20,
            recovery_delay_secs: 3,
        }
    }
}

/// `[handoff]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffSettings {
    /// e.g. `"Mon-Fri 09:00-17:00"`; unset means always staffed.
    pub business_hours: Option<String>,
    /// IANA time zone of the business hours.
    pub timezone: String,
    /// Words or phrases that always go to a person.
    pub keywords: Vec<String>,
    /// Knowledge-base tags whose articles always go to a person.
    pub tags: Vec<String>,
    /// Customers (`channel:id`) always served by a person.
    pub vip: Vec<String>,
    /// Re-ping agents when nobody claims within this many seconds.
    pub unclaimed_reping_secs: u64,
    /// Seconds between two passes of the desk (cards, forwarded messages,
    /// re-pings) when nothing wakes it earlier.
    pub desk_sync_secs: u64,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        Self {
            business_hours: None,
            timezone: "UTC".into(),
            keywords: Vec::new(),
            tags: Vec::new(),
            vip: Vec::new(),
            unclaimed_reping_secs: 300,
            desk_sync_secs: 1,
        }
    }
}

/// `[csat]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsatSettings {
    /// Ask for a rating after resolution.
    pub enabled: bool,
    /// Seconds between resolution and the survey.
    pub delay_secs: u64,
    /// A bot conversation with no customer message for this long is resolved.
    pub inactivity_resolve_secs: u64,
    /// Ask "How easy was it to get help?" (1–7) after the rating.
    pub ces: bool,
    /// Ask "How likely are you to recommend…" (0–10) at most once per
    /// customer per `nps_period_days`.
    pub nps: bool,
    /// Days between two NPS questions to the same customer.
    pub nps_period_days: u64,
    /// Invite an optional free-text comment at the end.
    pub comment: bool,
    /// A survey that could not be delivered for this long is dropped.
    pub expire_secs: u64,
    /// Seconds between two passes of the survey scheduler (resolves
    /// inactive conversations, sends due surveys).
    pub tick_secs: u64,
}

impl Default for CsatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            delay_secs: 60,
            inactivity_resolve_secs: 1800,
            ces: true,
            nps: true,
            nps_period_days: 90,
            comment: true,
            expire_secs: 86_400,
            tick_secs: 5,
        }
    }
}

/// One `[[agents]]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Display name; also the agent's id in the log.
    pub name: String,
    /// Telegram user id.
    pub telegram_id: Option<i64>,
    /// Discord user id.
    pub discord_id: Option<u64>,
    /// May edit the knowledge base and run admin commands.
    pub admin: bool,
    /// Name of the environment variable holding this agent's API token.
    pub token_env: Option<String>,
}

impl Settings {
    /// Loads `path` (which must exist) and the environment, then validates.
    ///
    /// # Errors
    /// [`Error::Missing`] when the file is absent, [`Error::Invalid`] with a
    /// one-line explanation for any unknown key, wrong type or bad value.
    pub fn load(path: &Path) -> Result<Self, Error> {
        if !path.exists() {
            return Err(Error::Missing(path.to_path_buf()));
        }
        Self::from_figment(Figment::from(Toml::file_exact(path)))
    }

    /// Loads from TOML text and the environment (used by tests).
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        Self::from_figment(Figment::from(Toml::string(text)))
    }

    /// Loads settings for a command that only reads the knowledge base or
    /// a file (`kb …`, `eval`, `ask`, `chat`): a missing `path` means
    /// defaults (plus the environment), and a missing `prompts.path` means
    /// the bundled templates. The knowledge-base folder is not checked here
    /// (a command may point it elsewhere first); see
    /// [`Settings::check_knowledge_base`].
    ///
    /// # Errors
    /// As [`Settings::load`], except for the two folders.
    pub fn load_for_reading(path: &Path) -> Result<Self, Error> {
        let file = if path.exists() {
            Figment::from(Toml::file_exact(path))
        } else {
            Figment::new()
        };
        let settings = Self::extract(file)?;
        settings.validate_values()?;
        Ok(settings)
    }

    /// Checks that `knowledge_base.path` is a folder.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key and the fix.
    pub fn check_knowledge_base(&self) -> Result<(), Error> {
        if !self.knowledge_base.path.is_dir() {
            return Err(Error::Invalid(format!(
                "knowledge_base.path: folder {} does not exist; create it or point the key at your articles",
                self.knowledge_base.path.display()
            )));
        }
        Ok(())
    }

    fn from_figment(file: Figment) -> Result<Self, Error> {
        let settings = Self::extract(file)?;
        settings.validate()?;
        Ok(settings)
    }

    fn extract(file: Figment) -> Result<Self, Error> {
        let figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(file)
            // Only `SECTION__KEY` variables are settings; this leaves
            // `SWITCHBOARD_CONFIG` and test variables alone.
            .merge(
                Env::prefixed("SWITCHBOARD_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            );
        let mut settings: Settings = figment.extract().map_err(describe)?;
        settings.fill_secrets_from_env();
        Ok(settings)
    }

    fn fill_secrets_from_env(&mut self) {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if self.llm.api_key.is_none() {
            self.llm.api_key = env("OPENAI_API_KEY").map(Secret::new);
        }
        if self.telegram.token.is_none() {
            self.telegram.token = env("TELEGRAM_BOT_TOKEN").map(Secret::new);
        }
        if self.telegram.webhook_secret.is_none() {
            self.telegram.webhook_secret = env("TELEGRAM_WEBHOOK_SECRET").map(Secret::new);
        }
        if self.discord.token.is_none() {
            self.discord.token = env("DISCORD_TOKEN").map(Secret::new);
        }
    }
}

/// Turns figment's error into one line: what is wrong, at which key, and the fix.
fn describe(err: figment::Error) -> Error {
    use figment::error::Kind;
    let key = if err.path.is_empty() {
        None
    } else {
        Some(err.path.join("."))
    };
    let source = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(src) => format!(" (in {src})"),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    let message = match (&err.kind, key) {
        (Kind::UnknownField(field, expected), key) => {
            let full = match key {
                Some(k) if !k.ends_with(field.as_str()) => format!("{k}.{field}"),
                Some(k) => k,
                None => field.clone(),
            };
            format!(
                "unknown key `{full}`{source}: remove it or fix the spelling; known keys here: {}",
                expected.join(", ")
            )
        }
        (kind, Some(key)) => {
            format!("{key}: {kind}{source}; see config.toml for the expected form")
        }
        (kind, None) => format!("configuration: {kind}{source}"),
    };
    Error::Invalid(message)
}

#[cfg(test)]
mod tests;
