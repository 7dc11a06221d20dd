//! Queries behind console sign-in: passwords, sessions, failed attempts.

use sqlx::Row;

use super::{Error, Store};
use crate::clock::Millis;
use crate::ids::AgentId;

/// A signed-in browser session, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSession {
    /// The agent's configured name.
    pub agent: AgentId,
    /// The token the console sends back with every change.
    pub csrf: String,
    /// When it stops being valid.
    pub expires_at: Millis,
}

impl Store {
    /// Sets (or replaces) `agent`'s password hash.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_agent_password(&self, agent: &AgentId, hash: &str) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_passwords (agent, hash, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
        )
        .bind(agent.as_str())
        .bind(hash)
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// `agent`'s password hash, if one was set.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn agent_password(&self, agent: &AgentId) -> Result<Option<String>, Error> {
        let row = sqlx::query("SELECT hash FROM agent_passwords WHERE agent = $1")
            .bind(agent.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("hash")).transpose()?)
    }

    /// Stores a new session.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn create_agent_session(
        &self,
        token_hash: &str,
        session: &AgentSession,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_sessions (token_hash, agent, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(session.agent.as_str())
        .bind(&session.csrf)
        .bind(self.now())
        .bind(session.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The session whose cookie hashes to `token_hash`, if it has not
    /// expired.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn agent_session(&self, token_hash: &str) -> Result<Option<AgentSession>, Error> {
        let row = sqlx::query(
            "SELECT agent, csrf, expires_at FROM agent_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AgentSession {
                agent: r.try_get::<String, _>("agent")?.into(),
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends one session.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn delete_agent_session(&self, token_hash: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends every session of `agent` (and removes expired ones of anyone);
    /// returns how many of `agent`'s ended.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn delete_agent_sessions(&self, agent: &AgentId) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM agent_sessions WHERE agent = $1")
            .bind(agent.as_str())
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM agent_sessions WHERE expires_at <= $1")
            .bind(self.now())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records a failed sign-in for `agent` now.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_sign_in_failure(&self, agent: &AgentId) -> Result<(), Error> {
        sqlx::query("INSERT INTO sign_in_failures (agent, at) VALUES ($1, $2)")
            .bind(agent.as_str())
            .bind(self.now())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Failed sign-ins for `agent` since `since`, and the latest one's time.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn sign_in_failures(
        &self,
        agent: &AgentId,
        since: Millis,
    ) -> Result<(i64, Option<Millis>), Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS latest FROM sign_in_failures \
             WHERE agent = $1 AND at >= $2",
        )
        .bind(agent.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("latest")?))
    }

    /// Forgets `agent`'s failed sign-ins (after a successful one, and old
    /// ones of anyone).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn clear_sign_in_failures(
        &self,
        agent: &AgentId,
        before: Millis,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM sign_in_failures WHERE agent = $1 OR at < $2")
            .bind(agent.as_str())
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
