//! Agents managed by admins: adding console agents, their role, disabling
//! anyone, invite links (one use, a week) and who is online.
//!
//! Agents from `[[agents]]` stay read-only here except for being disabled;
//! agents added here live in the database (`agent_accounts`) and are loaded
//! into the shared [`crate::agents::Agents`] after every change and on every desk pass.

use std::time::Duration;

use super::{ConsoleAuth, Error, MIN_PASSWORD_CHARS, SignIn, random_hex, token_hash};
use crate::agents::{Account, Origin};
use crate::clock::Millis;
use crate::ids::AgentId;

/// How long an invite link works.
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Seen in the console this recently: online (for transfers).
pub const ONLINE_WINDOW: Duration = Duration::from_secs(120);
/// Presence is written at most this often per agent.
const PRESENCE_EVERY: Duration = Duration::from_secs(30);

/// A new invite link's secret part.
#[derive(Debug, Clone)]
pub struct Invite {
    /// Who it is for.
    pub agent: AgentId,
    /// Goes into the link (`/agent#invite=TOKEN`); only its hash is stored.
    pub token: String,
    /// When it stops working.
    pub expires_at: Millis,
}

impl Invite {
    /// The console path that accepts it. The token is in the fragment, so
    /// it never reaches a server log or a Referer header.
    pub fn path(&self) -> String {
        format!("/agent#invite={}", self.token)
    }
}

/// Whether `name` can name an agent: 1 to 64 ASCII letters, digits, `.`,
/// `_` or `-` (so it never clashes with `discord:<id>` names or needs
/// escaping anywhere), and not an actor of the log that is not an agent
/// (`system`, `bot`, `customer`).
pub fn valid_name(name: &str) -> bool {
    !crate::conversation::is_non_agent_actor(name)
        && (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ConsoleAuth {
    /// Loads the accounts kept in the database into the shared agents.
    ///
    /// # Errors
    /// On a store failure.
    pub async fn reload(&self) -> Result<(), Error> {
        self.agents.set_accounts(self.store.agent_accounts().await?);
        Ok(())
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, Error> {
        Ok(self
            .store
            .agent_accounts()
            .await?
            .into_iter()
            .find(|a| a.name == name))
    }

    /// Adds `name` as a console agent (admin or not), recorded as `by`'s.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Exists`], or a store failure.
    pub async fn add_agent(&self, name: &str, admin: bool, by: &str) -> Result<(), Error> {
        if !valid_name(name) {
            return Err(Error::InvalidName);
        }
        let existing = self.account(name).await?;
        if self.agents.is_configured(name) || existing.as_ref().is_some_and(|a| a.added) {
            return Err(Error::Exists(name.to_string()));
        }
        // A row without `added` only carries a disabled flag; keep it.
        let disabled = existing.is_some_and(|a| a.disabled);
        let account = Account {
            name: name.into(),
            added: true,
            admin,
            disabled,
        };
        self.store.put_agent_account(&account, by).await?;
        self.reload().await
    }

    /// Makes a console agent an admin or not.
    ///
    /// # Errors
    /// [`Error::FromConfig`] for agents in `[[agents]]`,
    /// [`Error::UnknownAgent`], or a store failure.
    pub async fn set_role(&self, name: &str, admin: bool, by: &str) -> Result<(), Error> {
        if self.agents.is_configured(name) {
            return Err(Error::FromConfig(name.to_string()));
        }
        let Some(mut account) = self.account(name).await?.filter(|a| a.added) else {
            return Err(Error::UnknownAgent(name.to_string()));
        };
        if admin == account.admin {
            return Ok(());
        }
        if !admin && name == by {
            return Err(Error::Yourself);
        }
        account.admin = admin;
        self.store.put_agent_account(&account, by).await?;
        // A role change takes effect at once: sessions carry no role, but
        // a demoted admin is signed out so the console reloads as an agent.
        self.store
            .delete_agent_sessions(&AgentId::from(name))
            .await?;
        self.reload().await
    }

    /// Disables (or enables again) any agent: a disabled agent cannot sign
    /// in, their sessions and invites end, and they are refused on every
    /// channel as if not configured.
    ///
    /// # Errors
    /// [`Error::Yourself`] when `by` disables themselves,
    /// [`Error::UnknownAgent`], or a store failure.
    pub async fn set_disabled(&self, name: &str, disabled: bool, by: &str) -> Result<(), Error> {
        if disabled && name == by {
            return Err(Error::Yourself);
        }
        self.reload().await?;
        let listed = self
            .agents()
            .listing()
            .into_iter()
            .find(|l| l.agent.name == name)
            .ok_or_else(|| Error::UnknownAgent(name.to_string()))?;
        let account = Account {
            name: name.into(),
            added: listed.origin == Origin::Console,
            admin: listed.origin == Origin::Console && listed.agent.admin,
            disabled,
        };
        self.store.put_agent_account(&account, by).await?;
        if disabled {
            self.store
                .delete_agent_sessions(&AgentId::from(name))
                .await?;
            self.store
                .withdraw_agent_invites(&AgentId::from(name))
                .await?;
        }
        self.reload().await
    }

    /// A new invite link for `name` (an enabled agent), made by `by`.
    /// Earlier unused links for them stop working.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`], or a store failure.
    pub async fn invite(&self, name: &str, by: &str) -> Result<Invite, Error> {
        self.reload().await?;
        if self.agents.by_name(name).is_none() {
            return Err(Error::UnknownAgent(name.to_string()));
        }
        self.store
            .withdraw_agent_invites(&AgentId::from(name))
            .await?;
        let token = random_hex(32);
        let expires_at = self.store.now() + INVITE_TTL.as_millis() as Millis;
        self.store
            .create_agent_invite(&token_hash(&token), &AgentId::from(name), by, expires_at)
            .await?;
        Ok(Invite {
            agent: name.into(),
            token,
            expires_at,
        })
    }

    /// Uses an invite: sets the password and signs the agent in. A used,
    /// expired or unknown link is [`SignIn::Refused`]; a weak password is
    /// refused before the link is used up.
    ///
    /// # Errors
    /// [`Error::WeakPassword`], or a store failure.
    pub async fn accept_invite(&self, token: &str, password: &str) -> Result<SignIn, Error> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::WeakPassword);
        }
        if token.is_empty() || token.len() > 128 {
            return Ok(SignIn::Refused);
        }
        let Some(name) = self.store.use_agent_invite(&token_hash(token)).await? else {
            return Ok(SignIn::Refused);
        };
        self.reload().await?;
        let Some(agent) = self.agents.by_name(&name) else {
            return Ok(SignIn::Refused);
        };
        self.set_password(&name, password).await?;
        self.open_session(agent).await
    }

    /// Records that `agent` is using the console now (written at most
    /// every 30 seconds per agent).
    ///
    /// # Errors
    /// On a store failure.
    pub async fn seen(&self, agent: &str) -> Result<(), Error> {
        let now = self.store.now();
        {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let last = seen.get(agent).copied();
            if last.is_some_and(|t| now - t < PRESENCE_EVERY.as_millis() as Millis) {
                return Ok(());
            }
            seen.insert(agent.to_string(), now);
        }
        Ok(self
            .store
            .touch_agent_presence(&AgentId::from(agent))
            .await?)
    }

    /// The enabled agents seen in the console within [`ONLINE_WINDOW`]
    /// (by any process on this database).
    ///
    /// # Errors
    /// On a store failure.
    pub async fn online(&self) -> Result<Vec<String>, Error> {
        let since = self.store.now() - ONLINE_WINDOW.as_millis() as Millis;
        let seen = self.store.agents_seen_since(since).await?;
        Ok(self
            .agents()
            .all()
            .into_iter()
            .map(|a| a.name.into_string())
            .filter(|n| seen.contains(n))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_plain() {
        assert!(valid_name("ana"));
        assert!(valid_name("ana.lopez-2_x"));
        for bad in [
            "",
            "discord:1",
            "a b",
            "ana\u{202e}",
            "ä",
            &"x".repeat(65),
            "system",
            "Bot",
            "CUSTOMER",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_valid_name_is_short_ascii(name in any::<String>()) {
            if valid_name(&name) {
                prop_assert!(name.len() <= 64 && name.is_ascii() && !name.contains(':'));
            }
        }
    }
}
