//! Switchboard: an omnichannel AI support assistant.
//!
//! # Layout
//! Dependencies point inward: channels and the web server call the core;
//! the core never imports a channel, axum or a concrete database driver.
//!
//! - [`config`]: `config.toml` + `SWITCHBOARD_<SECTION>__<KEY>` overrides.
//! - [`kb`]: Markdown articles → passages → tantivy index; hot reload.
//! - [`assistant`]: a customer's [`assistant::Turn`] in, a channel-neutral
//!   [`assistant::Reply`] out (retrieval, prompts, LLM, fallbacks, hand-off
//!   decisions).
//! - [`llm`]: the [`llm::ChatModel`] trait and its async-openai implementation.
//! - [`embed`]: the [`embed::Embedder`] trait for hybrid retrieval: a
//!   sentence-transformers folder run in the process (candle), or the
//!   model endpoint's `/v1/embeddings`.
//! - [`store`]: the conversation log over sqlx (SQLite or PostgreSQL).
//! - [`conversation`]: conversation states and their legal transitions.
//! - [`ids`]: the log's ids as types (conversation, customer, message, agent).
//! - [`outgoing`]: what the core sends and where (message, buttons, target).
//! - [`delivery`]: how the core reaches a customer on their channel, and the
//!   one "deliver or queue for retry" policy.
//! - [`templates`]: the prompt and message templates (`prompts/`).
//! - [`button`]: typed button data (what a press acts on), shared by the
//!   assistant, surveys and the desk.
//! - [`auth`]: console sign-in (argon2 passwords, sessions, lock-out).
//! - [`agents`], [`desk`]: who may act as an agent, and the agents' side of
//!   a hand-off (queue, claim, reply, notes, resolve, give back, staff desks).
//! - [`handoff`]: why and when a person takes over; [`hours`]: business hours.
//! - [`inbound`]: the panic boundary for outside input, inputs kept before
//!   they are confirmed, and dead letters; [`health`]: channel states and the
//!   supervisor that restarts a stopped channel.
//! - [`limits`]: model calls in flight, messages per customer, anonymous
//!   hand-offs, log lines per source.
//! - [`csat`]: surveys after resolution (CSAT, CES, NPS), scheduled in the database.
//! - [`tags`]: the tags agents put on conversations.
//! - [`suggest`]: the learning loop: an article drafted from a conversation
//!   an agent answered, pending an admin's review.
//! - [`eval`]: retrieval and hand-off quality on a labelled question set.
//! - [`report`]: support metrics from the log; [`export`]: the log as JSONL/CSV;
//!   [`transcript`]: a conversation's messages with the notices its customer
//!   was shown (an agent joined, transferred, gave back, closed).
//! - [`channels`]: the channel driver ([`channels::driver::Platform`]) and
//!   Telegram, Discord, the console and the web widget on it.
//! - [`web`]: the axum router (`/healthz`, `/metrics`, …).
//! - [`app`]: builds every part from settings and runs them until shutdown.

pub mod agents;
pub mod app;
pub mod assistant;
pub mod auth;
pub mod button;
pub mod channels;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod csat;
pub mod dashboard;
pub mod delivery;
pub mod desk;
pub mod embed;
pub mod eval;
pub mod export;
pub mod handoff;
pub mod health;
pub mod hours;
pub mod ids;
pub mod inbound;
pub mod kb;
pub mod limits;
pub mod llm;
pub mod outgoing;
pub mod report;
pub mod store;
pub mod suggest;
pub mod tags;
pub mod telemetry;
pub mod templates;
pub mod transcript;
pub mod web;

/// Hostile text for the property tests (shared with `tests/suite/unicode.rs`).
#[cfg(test)]
#[path = "../tests/hostile/mod.rs"]
mod hostile;
