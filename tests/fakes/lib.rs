//! The fake platforms Switchboard's tests run the real clients against,
//! compiled once for every test binary (`tests/common` re-exports them):
//!
//! - [`telegram_fake`]: the Bot API as teloxide speaks it;
//! - [`discord_fake`]: Discord's REST API and gateway as serenity speaks them;
//! - [`openai_fake`]: an OpenAI-compatible server for async-openai.

pub mod discord_fake;
pub mod openai_fake;
pub mod telegram_fake;
