//! `[telegram]` and `[discord]`: the chat platforms' settings.

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[telegram]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSettings {
    /// Serve Telegram customers.
    pub enabled: bool,
    /// Bot API base; calls go to `{api_url}/bot<token>/<Method>`.
    pub api_url: String,
    /// Token; normally from `TELEGRAM_BOT_TOKEN`.
    pub token: Option<Secret>,
    /// Public HTTPS URL for webhook mode; unset means long polling.
    pub webhook_url: Option<String>,
    /// Secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`; normally
    /// from `TELEGRAM_WEBHOOK_SECRET`.
    pub webhook_secret: Option<Secret>,
    /// Group where agents take hand-offs.
    pub agents_chat_id: Option<i64>,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            api_url: "https://api.telegram.org".into(),
            token: None,
            webhook_url: None,
            webhook_secret: None,
            agents_chat_id: None,
        }
    }
}

/// `[discord]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// Serve Discord customers.
    pub enabled: bool,
    /// REST base; calls go to `{api_url}/api/v10/…`.
    pub api_url: String,
    /// Token; normally from `DISCORD_TOKEN`.
    pub token: Option<Secret>,
    /// Staff channel where hand-offs open threads.
    pub agents_channel_id: Option<u64>,
    /// Channels or forums where every new message is answered.
    pub help_channel_ids: Vec<u64>,
    /// Guild for slash-command registration; unset registers globally.
    pub guild_id: Option<u64>,
    /// Members with any of these roles may act as agents.
    pub agent_role_ids: Vec<u64>,
    /// Gateway shards of the bot in all (every process sharing the bot
    /// uses the same number).
    pub shard_count: u32,
    /// The shards this process runs (consecutive ids below `shard_count`);
    /// unset runs them all. Processes sharing one database each run a
    /// range, together all of them.
    pub shards: Option<Vec<u32>>,
}

impl DiscordSettings {
    /// The first and last shard this process runs, and the total.
    pub fn shard_range(&self) -> (u32, u32, u32) {
        let total = self.shard_count.max(1);
        match self.shards.as_deref() {
            Some([first, .., last]) => (*first, *last, total),
            Some([only]) => (*only, *only, total),
            _ => (0, total - 1, total),
        }
    }
}

impl Default for DiscordSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            api_url: "https://discord.com".into(),
            token: None,
            agents_channel_id: None,
            help_channel_ids: Vec::new(),
            guild_id: None,
            agent_role_ids: Vec::new(),
            shard_count: 1,
            shards: None,
        }
    }
}
