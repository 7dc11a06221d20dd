//! Console sign-in for agents and admins: passwords hashed with argon2
//! (set with `switchboard agents passwd NAME`), sessions kept in the
//! database (only a hash of the cookie is stored), a CSRF token per session
//! and a lock-out after repeated failures.
//!
//! Only agents configured in `[[agents]]` or added by an admin can sign in;
//! removing or disabling an agent ends their sessions at their next
//! request. Adding, disabling and inviting agents is in [`accounts`]. The
//! HTTP layer (cookies, headers) lives in `web::agent`.

mod accounts;

pub use accounts::{INVITE_TTL, Invite, ONLINE_WINDOW, valid_name};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::agents::{Agent, Agents};
use crate::clock::Millis;
use crate::ids::AgentId;
use crate::store::{self, AgentSession, Store};

/// Failed sign-ins for one agent within [`LOCK_WINDOW`] that lock them out.
pub const MAX_FAILURES: i64 = 5;
/// How far back failures count, and how long a lock-out lasts.
pub const LOCK_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A sign-in problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No (enabled) agent of this name.
    #[error(
        "no agent named `{0}`; add them under [[agents]] in config.toml or invite them (`switchboard agents invite NAME`)"
    )]
    UnknownAgent(String),
    /// The password is too short.
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Not a name an agent can have.
    #[error("an agent's name is 1 to 64 letters, digits, `.`, `_` or `-`")]
    InvalidName,
    /// An agent of this name exists already.
    #[error("there is already an agent named `{0}`")]
    Exists(String),
    /// The agent comes from config.toml, where this is changed.
    #[error("`{0}` is configured in [[agents]] in config.toml; change their role there")]
    FromConfig(String),
    /// An admin tried to disable themselves.
    #[error("you cannot disable yourself; ask another admin")]
    Yourself,
    /// Hashing failed (or a background task stopped).
    #[error("password hashing: {0}")]
    Hash(String),
}

/// What a sign-in attempt got.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: `token` goes into the cookie (never stored as such).
    Accepted {
        /// The agent.
        agent: Agent,
        /// The cookie value.
        token: String,
        /// The session (with its CSRF token).
        session: AgentSession,
    },
    /// Wrong name or password (the two are not told apart).
    Refused,
    /// Too many failures: try again after this long.
    LockedOut(Duration),
}

/// Console sign-in over the store.
#[derive(Clone)]
pub struct ConsoleAuth {
    store: Store,
    agents: Agents,
    /// When this process last wrote each agent's presence.
    seen: Arc<Mutex<HashMap<String, Millis>>>,
}

impl ConsoleAuth {
    /// Sign-in for the configured `agents`.
    pub fn new(store: Store, agents: Agents) -> Self {
        Self {
            store,
            agents,
            seen: Arc::default(),
        }
    }

    /// The agents this signs in (shared with the rest of the process).
    pub fn agents(&self) -> &Agents {
        &self.agents
    }

    /// Sets `agent`'s password and ends their sessions.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`], [`Error::WeakPassword`], or a store failure.
    pub async fn set_password(&self, agent: &str, password: &str) -> Result<(), Error> {
        if self.agents.by_name(agent).is_none() {
            return Err(Error::UnknownAgent(agent.to_string()));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::WeakPassword);
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| Error::Hash(e.to_string()))??;
        self.store
            .set_agent_password(&AgentId::from(agent), &hash)
            .await?;
        self.store
            .delete_agent_sessions(&AgentId::from(agent))
            .await?;
        Ok(())
    }

    /// Checks `name` and `password`; on success opens a session.
    ///
    /// # Errors
    /// On a store failure.
    pub async fn sign_in(&self, name: &str, password: &str) -> Result<SignIn, Error> {
        let store = &self.store;
        let now = store.now();
        let window = LOCK_WINDOW.as_millis() as Millis;
        let agent = self.agents.by_name(name);
        if agent.is_some() {
            let (failures, latest) = store
                .sign_in_failures(&AgentId::from(name), now - window)
                .await?;
            if failures >= MAX_FAILURES {
                let until = latest.unwrap_or(now) + window;
                let wait = u64::try_from(until - now).unwrap_or(0).max(1_000);
                return Ok(SignIn::LockedOut(Duration::from_millis(wait)));
            }
        }
        let stored = match &agent {
            Some(a) => store.agent_password(&a.name).await?,
            None => None,
        };
        // An unknown name or an agent without a password costs as much as a
        // wrong password, so timing does not tell which names exist.
        let hash = stored.clone().unwrap_or_else(|| DUMMY_HASH.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| Error::Hash(e.to_string()))?;
        let (Some(agent), Some(_), true) = (agent, stored, ok) else {
            if self.agents.by_name(name).is_some() {
                store.record_sign_in_failure(&AgentId::from(name)).await?;
            }
            return Ok(SignIn::Refused);
        };
        store
            .clear_sign_in_failures(&agent.name, now - window)
            .await?;
        self.open_session(agent).await
    }

    /// Opens a session for `agent`.
    async fn open_session(&self, agent: Agent) -> Result<SignIn, Error> {
        let token = random_hex(32);
        let session = AgentSession {
            agent: agent.name.clone(),
            csrf: random_hex(16),
            expires_at: self.store.now() + SESSION_TTL.as_millis() as Millis,
        };
        self.store
            .create_agent_session(&token_hash(&token), &session)
            .await?;
        self.seen(&agent.name).await?;
        Ok(SignIn::Accepted {
            agent,
            token,
            session,
        })
    }

    /// The agent and session of a cookie value, if it is a live session of
    /// an agent still configured.
    ///
    /// # Errors
    /// On a store failure.
    pub async fn session(&self, token: &str) -> Result<Option<(Agent, AgentSession)>, Error> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self.store.agent_session(&token_hash(token)).await? else {
            return Ok(None);
        };
        Ok(self
            .agents
            .by_name(&session.agent)
            .map(|agent| (agent, session)))
    }

    /// Ends the session of this cookie value.
    ///
    /// # Errors
    /// On a store failure.
    pub async fn sign_out(&self, token: &str) -> Result<(), Error> {
        Ok(self.store.delete_agent_session(&token_hash(token)).await?)
    }

    /// Ends every session of `agent`; returns how many.
    ///
    /// # Errors
    /// On a store failure.
    pub async fn sign_out_everywhere(&self, agent: &str) -> Result<u64, Error> {
        Ok(self
            .store
            .delete_agent_sessions(&AgentId::from(agent))
            .await?)
    }
}

/// A hash of a random password nobody knows, made the same way as real
/// ones (so checking against it costs the same).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_hex(16)).unwrap_or_default());

fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// What the store keeps of a cookie value.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("", &hash));
        assert!(!verify_password("x", "not a hash"));
        // The dummy hash parses (so the unknown-name path does real work).
        assert!(PasswordHash::new(&DUMMY_HASH).is_ok());
        assert!(!verify_password("", &DUMMY_HASH));
    }
}
