//! Who may act as an agent or admin, from `[[agents]]` in config.
//!
//! An agent is recognised by their Telegram user id, Discord user id (or a
//! Discord role listed in `discord.agent_role_ids`, read as role ids from
//! the member Discord sends, never by name), or, on the HTTP agent API, by
//! the bearer token in the environment variable their `token_env` names.
//! Anyone else is refused. Display names never identify anyone: a member
//! who renames themselves to an agent's name is still who their id says.

use std::sync::Arc;

use crate::config::{AgentSettings, Secret, Settings};

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Name; also their id in the log and as a conversation's owner.
    /// Agents recognised by a Discord role are named `discord:<user id>`.
    pub name: String,
    /// Telegram user id.
    pub telegram_id: Option<i64>,
    /// Discord user id.
    pub discord_id: Option<u64>,
    /// May run admin actions.
    pub admin: bool,
    token: Option<Secret>,
    /// What customers see, when it differs from `name`.
    shown_as: Option<String>,
}

impl Agent {
    /// The name customers see ("alice (support): …"): the configured name,
    /// or a role-based Discord agent's display name.
    pub fn display_name(&self) -> &str {
        self.shown_as.as_deref().unwrap_or(&self.name)
    }
}

/// All configured agents.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    list: Arc<Vec<Agent>>,
    discord_roles: Arc<Vec<u64>>,
}

impl Agents {
    /// Agents from settings; tokens are read from the environment now.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(&settings.agents, settings.discord.agent_role_ids.clone())
    }

    /// Agents from their settings and the Discord roles that count as agents.
    pub fn new(agents: &[AgentSettings], discord_roles: Vec<u64>) -> Self {
        let list = agents
            .iter()
            .map(|a| Agent {
                name: a.name.clone(),
                telegram_id: a.telegram_id,
                discord_id: a.discord_id,
                admin: a.admin,
                token: a
                    .token_env
                    .as_deref()
                    .and_then(|var| std::env::var(var).ok())
                    .filter(|t| !t.is_empty())
                    .map(Secret::new),
                shown_as: None,
            })
            .collect();
        Self {
            list: Arc::new(list),
            discord_roles: Arc::new(discord_roles),
        }
    }

    /// Every agent.
    pub fn all(&self) -> &[Agent] {
        &self.list
    }

    /// The agent with this name.
    pub fn by_name(&self, name: &str) -> Option<&Agent> {
        self.list.iter().find(|a| a.name == name)
    }

    /// The agent whose API token this is. Compared in constant time.
    pub fn by_token(&self, token: &str) -> Option<&Agent> {
        self.list.iter().find(|a| {
            a.token
                .as_ref()
                .is_some_and(|t| constant_time_eq(t.expose().as_bytes(), token.as_bytes()))
        })
    }

    /// The agent with this Telegram user id.
    pub fn by_telegram(&self, id: i64) -> Option<&Agent> {
        self.list.iter().find(|a| a.telegram_id == Some(id))
    }

    /// The agent with this Discord user id, or a member holding one of the
    /// agent roles (`roles` are the member's role ids as Discord sent them).
    /// A role-based agent is identified by their user id (`discord:<id>`),
    /// so renaming oneself never makes one someone else; `display_name` is
    /// only what customers see.
    pub fn by_discord(&self, id: u64, roles: &[u64], display_name: &str) -> Option<Agent> {
        if let Some(a) = self.list.iter().find(|a| a.discord_id == Some(id)) {
            return Some(a.clone());
        }
        roles
            .iter()
            .any(|r| self.discord_roles.contains(r))
            .then(|| Agent {
                name: format!("discord:{id}"),
                telegram_id: None,
                discord_id: Some(id),
                admin: false,
                token: None,
                shown_as: Some(display_name.to_string()),
            })
    }
}

/// Whether `a == b`, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_agents_by_platform_and_role() {
        let agents = Agents::new(
            &[AgentSettings {
                name: "alice".into(),
                telegram_id: Some(11),
                discord_id: Some(22),
                admin: true,
                token_env: None,
            }],
            vec![99],
        );
        assert_eq!(
            agents.by_telegram(11).map(|a| a.name.as_str()),
            Some("alice")
        );
        assert!(agents.by_telegram(12).is_none());
        assert_eq!(
            agents.by_discord(22, &[], "x").map(|a| a.name),
            Some("alice".to_string())
        );
        let bob = agents.by_discord(33, &[99], "bob").unwrap();
        assert_eq!(
            (bob.name.as_str(), bob.display_name()),
            ("discord:33", "bob")
        );
        // Renamed to a configured agent's name: still only themselves.
        let renamed = agents.by_discord(33, &[99], "alice").unwrap();
        assert_eq!(renamed.name, "discord:33");
        assert!(!renamed.admin);
        assert!(agents.by_discord(33, &[1], "alice").is_none());
        assert!(agents.by_token("").is_none());
    }
}
