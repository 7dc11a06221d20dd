//! Who may act as an agent or admin, from `[[agents]]` in config.
//!
//! An agent is recognised by their Telegram user id, Discord user id (or a
//! Discord role listed in `discord.agent_role_ids`, read as role ids from
//! the member Discord sends, never by name), or, on the HTTP agent API, by
//! the bearer token in the environment variable their `token_env` names.
//! Anyone else is refused. Display names never identify anyone: a member
//! who renames themselves to an agent's name is still who their id says.
//!
//! Admins can add console-only agents and disable anyone from the console;
//! those accounts live in the database and are loaded into [`Agents`] (a
//! disabled agent is refused everywhere, as if not configured).

use std::sync::{Arc, RwLock};

use crate::config::{AgentSettings, Secret, Settings};
use crate::ids::AgentId;

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Name; also their id in the log and as a conversation's owner.
    /// Agents recognised by a Discord role are named `discord:<user id>`.
    pub name: AgentId,
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

/// An agent account kept in the database: an agent added from the
/// console or `switchboard agents invite` (`added`, with their role), or
/// only the disabled flag of an agent from `[[agents]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The agent's name.
    pub name: AgentId,
    /// Added in the database (not in `[[agents]]`).
    pub added: bool,
    /// The role of an added agent (ignored for configured ones).
    pub admin: bool,
    /// May not act or sign in.
    pub disabled: bool,
}

/// Where an agent comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `[[agents]]` in config: read-only from the console.
    Config,
    /// Added from the console or the CLI: role editable.
    Console,
}

/// One row of the settings view's agent list.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The agent (as they act when enabled).
    pub agent: Agent,
    /// Where they come from.
    pub origin: Origin,
    /// Whether they are disabled.
    pub disabled: bool,
}

/// All agents: configured ones, plus the accounts kept in the database
/// (loaded with [`Agents::set_accounts`]). Clones share the accounts, so
/// an admin's change is seen by every part of the process at once.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    list: Arc<Vec<Agent>>,
    accounts: Arc<RwLock<Arc<Vec<Account>>>>,
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
                name: a.name.as_str().into(),
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
            accounts: Arc::default(),
            discord_roles: Arc::new(discord_roles),
        }
    }

    /// Replaces the accounts kept in the database (as the store read them).
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        let mut held = self
            .accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Arc::new(accounts);
    }

    fn accounts(&self) -> Arc<Vec<Account>> {
        self.accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn disabled(accounts: &[Account], name: &str) -> bool {
        accounts.iter().any(|a| a.name == name && a.disabled)
    }

    /// The agent an added account is (console only: no linked accounts).
    fn console_agent(account: &Account) -> Agent {
        Agent {
            name: account.name.as_str().into(),
            telegram_id: None,
            discord_id: None,
            admin: account.admin,
            token: None,
            shown_as: None,
        }
    }

    /// Whether `name` is in `[[agents]]`.
    pub fn is_configured(&self, name: &str) -> bool {
        self.list.iter().any(|a| a.name == name)
    }

    /// Every agent, enabled or not, configured ones first.
    pub fn listing(&self) -> Vec<Listed> {
        let accounts = self.accounts();
        let configured = self.list.iter().map(|a| Listed {
            agent: a.clone(),
            origin: Origin::Config,
            disabled: Self::disabled(&accounts, &a.name),
        });
        let added = accounts
            .iter()
            .filter(|a| a.added && !self.is_configured(&a.name))
            .map(|a| Listed {
                agent: Self::console_agent(a),
                origin: Origin::Console,
                disabled: a.disabled,
            });
        configured.chain(added).collect()
    }

    /// Every enabled agent.
    pub fn all(&self) -> Vec<Agent> {
        self.listing()
            .into_iter()
            .filter(|l| !l.disabled)
            .map(|l| l.agent)
            .collect()
    }

    /// The enabled agent with this name (configured first, then added).
    pub fn by_name(&self, name: &str) -> Option<Agent> {
        if self.is_configured(name) {
            return self.configured(|a| a.name == name);
        }
        self.accounts()
            .iter()
            .find(|a| a.added && !a.disabled && a.name == name)
            .map(Self::console_agent)
    }

    /// The enabled configured agent matching `pick`.
    fn configured(&self, pick: impl Fn(&Agent) -> bool) -> Option<Agent> {
        let accounts = self.accounts();
        self.list
            .iter()
            .find(|a| pick(a))
            .filter(|a| !Self::disabled(&accounts, &a.name))
            .cloned()
    }

    /// The agent whose API token this is. Compared in constant time.
    pub fn by_token(&self, token: &str) -> Option<Agent> {
        self.configured(|a| {
            a.token
                .as_ref()
                .is_some_and(|t| constant_time_eq(t.expose().as_bytes(), token.as_bytes()))
        })
    }

    /// The agent with this Telegram user id.
    pub fn by_telegram(&self, id: i64) -> Option<Agent> {
        self.configured(|a| a.telegram_id == Some(id))
    }

    /// The agent with this Discord user id, or a member holding one of the
    /// agent roles (`roles` are the member's role ids as Discord sent them).
    /// A role-based agent is identified by their user id (`discord:<id>`),
    /// so renaming oneself never makes one someone else; `display_name` is
    /// only what customers see.
    pub fn by_discord(&self, id: u64, roles: &[u64], display_name: &str) -> Option<Agent> {
        if self.list.iter().any(|a| a.discord_id == Some(id)) {
            return self.configured(|a| a.discord_id == Some(id));
        }
        let name = format!("discord:{id}");
        (roles.iter().any(|r| self.discord_roles.contains(r))
            && !Self::disabled(&self.accounts(), &name))
        .then(|| Agent {
            name: name.into(),
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
            agents.by_telegram(11).map(|a| a.name),
            Some(AgentId::from("alice"))
        );
        assert!(agents.by_telegram(12).is_none());
        assert_eq!(
            agents.by_discord(22, &[], "x").map(|a| a.name),
            Some(AgentId::from("alice"))
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

    #[test]
    fn database_accounts_add_agents_and_disable_anyone() {
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
        let copy = agents.clone();
        agents.set_accounts(vec![
            Account {
                name: "ana".into(),
                added: true,
                admin: false,
                disabled: false,
            },
            // A row for a configured name never changes its role.
            Account {
                name: "alice".into(),
                added: true,
                admin: false,
                disabled: false,
            },
        ]);
        assert_eq!(
            copy.all()
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["alice", "ana"]
        );
        assert!(copy.by_name("alice").unwrap().admin);
        assert_eq!(copy.listing()[1].origin, Origin::Console);

        agents.set_accounts(vec![
            Account {
                name: "alice".into(),
                added: false,
                admin: false,
                disabled: true,
            },
            Account {
                name: "discord:33".into(),
                added: false,
                admin: false,
                disabled: true,
            },
        ]);
        assert!(copy.by_name("alice").is_none());
        assert!(copy.by_telegram(11).is_none());
        assert!(copy.by_discord(22, &[99], "alice").is_none());
        assert!(copy.by_discord(33, &[99], "bob").is_none());
        assert!(copy.by_discord(34, &[99], "carol").is_some());
        assert!(copy.listing()[0].disabled);
        assert!(copy.all().is_empty());
    }
}
