//! Queries behind agents managed from the console: accounts (added agents
//! and the disabled flag), invite links and when agents were last seen.

use sqlx::Row;

use super::{Error, Store, get};
use crate::agents::Account;
use crate::clock::Millis;
use crate::ids::AgentId;

impl Store {
    /// Every account kept in the database.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn agent_accounts(&self) -> Result<Vec<Account>, Error> {
        let rows =
            sqlx::query("SELECT name, added, admin, disabled FROM agent_accounts ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Account {
                    name: get::<String>(r, "name")?.into(),
                    added: get::<i64>(r, "added")? != 0,
                    admin: get::<i64>(r, "admin")? != 0,
                    disabled: get::<i64>(r, "disabled")? != 0,
                })
            })
            .collect()
    }

    /// Creates or replaces `account`, recording who changed it.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn put_agent_account(&self, account: &Account, by: &str) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_accounts (name, added, admin, disabled, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET added = excluded.added, admin = excluded.admin, \
             disabled = excluded.disabled, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(account.name.as_str())
        .bind(i64::from(account.added))
        .bind(i64::from(account.admin))
        .bind(i64::from(account.disabled))
        .bind(by)
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Stores an invite for `agent` (only the hash of its token).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn create_agent_invite(
        &self,
        token_hash: &str,
        agent: &AgentId,
        by: &str,
        expires_at: Millis,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_invites (token_hash, agent, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(agent.as_str())
        .bind(by)
        .bind(self.now())
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Uses the invite whose token hashes to `token_hash`, once: the agent
    /// it was for, or `None` when it is unknown, used or expired.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn use_agent_invite(&self, token_hash: &str) -> Result<Option<AgentId>, Error> {
        let row = sqlx::query(
            "UPDATE agent_invites SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING agent",
        )
        .bind(self.now())
        .bind(token_hash)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("agent"))
            .transpose()?
            .map(AgentId::from))
    }

    /// Withdraws `agent`'s unused invites; returns how many.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn withdraw_agent_invites(&self, agent: &AgentId) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM agent_invites WHERE agent = $1 AND used_at IS NULL")
            .bind(agent.as_str())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records that `agent` was seen now.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn touch_agent_presence(&self, agent: &AgentId) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_presence (agent, seen_at) VALUES ($1, $2) \
             ON CONFLICT (agent) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(agent.as_str())
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Agents seen at or after `since`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn agents_seen_since(&self, since: Millis) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT agent FROM agent_presence WHERE seen_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| get(r, "agent")).collect()
    }
}
