//! Checking settings that parse but make no sense: each problem named by
//! its key, with the fix.

use super::*;

impl Settings {
    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: String| Err(Error::Invalid(format!("{key}: {why}")));
        self.check_knowledge_base()?;
        if !self.prompts.path.is_dir() {
            return bad(
                "prompts.path",
                format!(
                    "folder {} does not exist; point the key at the prompts/ folder shipped with Switchboard",
                    self.prompts.path.display()
                ),
            );
        }
        self.validate_values()
    }

    /// The checks of [`Settings::validate`] that do not look at folders.
    pub(super) fn validate_values(&self) -> Result<(), Error> {
        let bad = |key: &str, why: String| Err(Error::Invalid(format!("{key}: {why}")));
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return bad(
                "database.url",
                format!("`{url}` is not supported; use sqlite://FILE or postgres://USER@HOST/DB"),
            );
        }
        if let Some(base) = &self.llm.base_url {
            check_http_url("llm.base_url", base)?;
        }
        check_http_url("telegram.api_url", &self.telegram.api_url)?;
        check_http_url("discord.api_url", &self.discord.api_url)?;
        if self.discord.shard_count == 0 {
            return bad("discord.shard_count", "must be at least 1".into());
        }
        if let Some(shards) = &self.discord.shards {
            let consecutive = shards.windows(2).all(|w| w[1] == w[0] + 1);
            if shards.is_empty()
                || !consecutive
                || shards.iter().any(|s| *s >= self.discord.shard_count)
            {
                return bad(
                    "discord.shards",
                    format!(
                        "{shards:?} must be consecutive shard ids below discord.shard_count ({}), such as [0, 1]",
                        self.discord.shard_count
                    ),
                );
            }
        }
        if let Some(hook) = &self.telegram.webhook_url {
            check_http_url("telegram.webhook_url", hook)?;
        }
        if self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "web.listen",
                format!(
                    "`{}` is not an address; use HOST:PORT such as 127.0.0.1:8080",
                    self.web.listen
                ),
            );
        }
        if let Some(admin) = &self.web.admin_listen
            && admin.parse::<std::net::SocketAddr>().is_err()
        {
            return bad(
                "web.admin_listen",
                format!("`{admin}` is not an address; use HOST:PORT such as 127.0.0.1:9090"),
            );
        }
        for (key, value) in [
            ("web.max_connections", self.web.max_connections as u64),
            ("web.max_streams", self.web.max_streams as u64),
            (
                "web.max_streams_per_visitor",
                self.web.max_streams_per_visitor as u64,
            ),
            (
                "web.header_read_timeout_secs",
                self.web.header_read_timeout_secs,
            ),
            ("web.stream_check_secs", self.web.stream_check_secs),
            ("web.max_body_bytes", self.web.max_body_bytes as u64),
            (
                "web.ip_requests_per_minute",
                u64::from(self.web.ip_requests_per_minute),
            ),
            ("web.ip_burst", u64::from(self.web.ip_burst)),
            (
                "web.agent_requests_per_minute",
                u64::from(self.web.agent_requests_per_minute),
            ),
            ("web.agent_burst", u64::from(self.web.agent_burst)),
            ("llm.max_concurrency", self.llm.max_concurrency as u64),
            (
                "database.outbox_retry_secs",
                self.database.outbox_retry_secs,
            ),
            (
                "database.inbound_retry_secs",
                self.database.inbound_retry_secs,
            ),
            ("database.heartbeat_secs", self.database.heartbeat_secs),
            ("handoff.desk_sync_secs", self.handoff.desk_sync_secs),
            ("csat.tick_secs", self.csat.tick_secs),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        for origin in &self.web.allowed_origins {
            let fine = !origin.is_empty()
                && origin
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '\'' | '"'));
            if !fine {
                return bad(
                    "web.allowed_origins",
                    format!("`{origin}` is not an origin such as https://www.example.com"),
                );
            }
        }
        let accent = self.widget.accent.strip_prefix('#').unwrap_or("");
        if !matches!(accent.len(), 3 | 6) || !accent.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad(
                "widget.accent",
                format!("`{}` is not a colour such as #1d4ed8", self.widget.accent),
            );
        }
        if !matches!(self.widget.position.as_str(), "right" | "left") {
            return bad(
                "widget.position",
                format!("`{}` is not `right` or `left`", self.widget.position),
            );
        }
        for (language, texts) in &self.widget.texts {
            let code = !language.is_empty()
                && language.len() <= 16
                && language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !code {
                return bad(
                    "widget.texts",
                    format!("`{language}` is not a language code such as fr or pt-BR"),
                );
            }
            if let Some(key) = texts
                .keys()
                .find(|k| !WIDGET_TEXT_KEYS.contains(&k.as_str()))
            {
                return bad(
                    &format!("widget.texts.{language}"),
                    format!(
                        "`{key}` is not a text of the widget; use one of {}",
                        WIDGET_TEXT_KEYS.join(", ")
                    ),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.assistant.refusal_target) {
            return bad(
                "assistant.refusal_target",
                "must be a share between 0 and 1 (0.9 refuses 90% of off-topic questions)".into(),
            );
        }
        if let Some(c) = self.assistant.min_confidence
            && !(0.0..=1.0).contains(&c)
        {
            return bad("assistant.min_confidence", "must be between 0 and 1".into());
        }
        if let Some(score) = self.assistant.min_score
            && (!score.is_finite() || score < 0.0)
        {
            return bad(
                "assistant.min_score",
                "must be a number of 0 or more (leave it unset for the calibrated threshold)"
                    .into(),
            );
        }
        match self.embeddings.provider {
            Some(EmbeddingProvider::Local) if self.embeddings.path.is_none() => {
                return bad(
                    "embeddings.path",
                    "provider `local` needs the sentence-transformers folder (config.json, tokenizer.json, model.safetensors); scripts/local-embed.sh fetch downloads all-MiniLM-L6-v2".into(),
                );
            }
            Some(EmbeddingProvider::Openai)
                if self.embeddings.model.is_none() && self.llm.embedding_model.is_none() =>
            {
                return bad(
                    "embeddings.model",
                    "provider `openai` needs the model name sent to /v1/embeddings, e.g. text-embedding-3-small".into(),
                );
            }
            None if self.embeddings.path.is_some() || self.embeddings.model.is_some() => {
                return bad(
                    "embeddings.provider",
                    "set it to `local` (with embeddings.path) or `openai` (with embeddings.model); without it retrieval is BM25 only".into(),
                );
            }
            _ => {}
        }
        if let Some(min) = self.assistant.min_similarity
            && !(-1.0..=1.0).contains(&min)
        {
            return bad(
                "assistant.min_similarity",
                "must be a cosine similarity between -1 and 1".into(),
            );
        }
        if self.assistant.max_message_chars == 0 {
            return bad("assistant.max_message_chars", "must be at least 1".into());
        }
        if self.llm.timeout_secs == 0 {
            return bad("llm.timeout_secs", "must be at least 1".into());
        }
        if self.handoff.timezone.parse::<chrono_tz::Tz>().is_err() {
            return bad(
                "handoff.timezone",
                format!(
                    "`{}` is not an IANA time zone such as Europe/Berlin",
                    self.handoff.timezone
                ),
            );
        }
        if let Some(hours) = &self.handoff.business_hours
            && let Err(why) = crate::hours::BusinessHours::parse(hours, &self.handoff.timezone)
        {
            return bad("handoff.business_hours", why);
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.name.trim().is_empty() {
                return bad(
                    &format!("agents[{i}].name"),
                    "every agent needs a name".into(),
                );
            }
            if crate::conversation::is_non_agent_actor(agent.name.trim()) {
                return bad(
                    &format!("agents[{i}].name"),
                    format!(
                        "`{}` names the bot, the customer or the system in the log; choose another name",
                        agent.name
                    ),
                );
            }
        }
        Ok(())
    }
}

fn check_http_url(key: &str, value: &str) -> Result<(), Error> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(Error::Invalid(format!(
            "{key}: scheme `{}` in `{value}` is not supported; use http:// or https://",
            u.scheme()
        ))),
        Err(e) => Err(Error::Invalid(format!(
            "{key}: `{value}` is not a URL ({e}); use e.g. http://127.0.0.1:11434/v1"
        ))),
    }
}
