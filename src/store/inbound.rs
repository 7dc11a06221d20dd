//! Queries of the `inbound` table: platform inputs kept before they are
//! confirmed, and dead letters (inputs that panicked or kept failing).

use sqlx::Row;

use super::{Error, Store, get, new_id};
use crate::clock::Millis;

/// Where an inbound input stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundStatus {
    /// Kept, not processed yet (or being processed, or due for a retry).
    Pending,
    /// Processed.
    Done,
    /// Quarantined: it panicked or failed too often; waits for an operator.
    Dead,
}

impl InboundStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "pending" => Ok(Self::Pending),
            "done" => Ok(Self::Done),
            "dead" => Ok(Self::Dead),
            other => Err(Error::Corrupt(format!("inbound status `{other}`"))),
        }
    }
}

/// One kept input.
#[derive(Debug, Clone)]
pub struct InboundItem {
    /// Row id.
    pub id: String,
    /// Channel that received it (`telegram`, `discord`, `web`).
    pub channel: String,
    /// What it is, in the channel's words (`update`, `message`, …).
    pub kind: String,
    /// The platform's id for it; unique per channel (deduplicates retries).
    pub key: String,
    /// The raw payload, as the platform sent it (JSON).
    pub payload: String,
    /// Where it stands.
    pub status: InboundStatus,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last error or panic message.
    pub error: Option<String>,
    /// When it arrived.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

impl InboundItem {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, Error> {
        Ok(Self {
            id: get(row, "id")?,
            channel: get(row, "channel")?,
            kind: get(row, "kind")?,
            key: get(row, "key")?,
            payload: get(row, "payload")?,
            status: InboundStatus::parse(&get::<String>(row, "status")?)?,
            attempts: get(row, "attempts")?,
            error: get(row, "error")?,
            created_at: get(row, "created_at")?,
            updated_at: get(row, "updated_at")?,
        })
    }
}

impl Store {
    /// Keeps an input before it is confirmed to its platform, leased to the
    /// caller for `lease_ms` (another pass does not take it meanwhile).
    /// Returns its id, or `None` when the same `(channel, key)` was kept
    /// before (a platform retry: confirm it and do nothing).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn keep_inbound(
        &self,
        channel: &str,
        kind: &str,
        key: &str,
        payload: &str,
        lease_ms: Millis,
    ) -> Result<Option<String>, Error> {
        let id = new_id();
        let now = self.now();
        let done = sqlx::query(
            "INSERT INTO inbound (id, channel, kind, key, payload, status, attempts, claimed_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $7) ON CONFLICT (channel, key) DO NOTHING",
        )
        .bind(&id)
        .bind(channel)
        .bind(kind)
        .bind(key)
        .bind(payload)
        .bind(now + lease_ms)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// Records the outcome of processing a kept input: `Ok` marks it done;
    /// `Err((error, dead))` counts a failed attempt and either leaves it
    /// pending for a retry after `retry_at` or, when `dead`, quarantines it.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn settle_inbound(
        &self,
        id: &str,
        outcome: Result<(), (&str, bool, Millis)>,
    ) -> Result<(), Error> {
        let now = self.now();
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE inbound SET status = 'done', claimed_until = NULL, updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?;
            }
            Err((error, dead, retry_at)) => {
                let status = if dead { "dead" } else { "pending" };
                sqlx::query(
                    "UPDATE inbound SET status = $1, attempts = attempts + 1, error = $2, claimed_until = $3, updated_at = $4 WHERE id = $5",
                )
                .bind(status)
                .bind(error)
                .bind(retry_at)
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?;
            }
        }
        Ok(())
    }

    /// Quarantines an input that was never kept (it failed before it could
    /// be, or panicked): stored as a dead letter with its payload and error.
    /// A second dead letter with the same `(channel, key)` updates the first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn dead_letter(
        &self,
        channel: &str,
        kind: &str,
        key: &str,
        payload: &str,
        error: &str,
    ) -> Result<String, Error> {
        let id = new_id();
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO inbound (id, channel, kind, key, payload, status, attempts, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'dead', 1, $6, $7, $7) \
             ON CONFLICT (channel, key) DO UPDATE SET status = 'dead', attempts = inbound.attempts + 1, \
               error = EXCLUDED.error, claimed_until = NULL, updated_at = EXCLUDED.updated_at \
             RETURNING id",
        )
        .bind(&id)
        .bind(channel)
        .bind(kind)
        .bind(key)
        .bind(payload)
        .bind(error)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Pending inputs of `channels` whose lease ran out (never processed,
    /// interrupted by a crash, or due for a retry), leased to the caller
    /// for `lease_ms`; oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_inbound(
        &self,
        channels: &[String],
        limit: usize,
        lease_ms: Millis,
    ) -> Result<Vec<InboundItem>, Error> {
        let now = self.now();
        let mut claimed = Vec::new();
        for channel in channels {
            let rows = sqlx::query(
                "SELECT * FROM inbound WHERE status = 'pending' AND channel = $1 \
                   AND (claimed_until IS NULL OR claimed_until <= $2) ORDER BY created_at LIMIT $3",
            )
            .bind(channel)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let item = InboundItem::from_row(&row)?;
                let taken = sqlx::query(
                    "UPDATE inbound SET claimed_until = $1 WHERE id = $2 AND status = 'pending' \
                       AND (claimed_until IS NULL OR claimed_until <= $3)",
                )
                .bind(now + lease_ms)
                .bind(&item.id)
                .bind(now)
                .execute(&self.writer)
                .await?;
                if taken.rows_affected() == 1 {
                    claimed.push(item);
                }
            }
        }
        Ok(claimed)
    }

    /// Dead letters, newest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<InboundItem>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM inbound WHERE status = 'dead' ORDER BY updated_at DESC, id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(InboundItem::from_row).collect()
    }

    /// Hands a dead letter back to its channel: it becomes pending with a
    /// fresh attempt count, and the next inbound pass of a running
    /// `switchboard run` processes it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `id` is not a dead letter.
    pub async fn retry_dead_letter(&self, id: &str) -> Result<InboundItem, Error> {
        let done = sqlx::query(
            "UPDATE inbound SET status = 'pending', attempts = 0, claimed_until = NULL, updated_at = $1 \
             WHERE id = $2 AND status = 'dead'",
        )
        .bind(self.now())
        .bind(id)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "dead letter",
                id: id.to_string(),
            });
        }
        let row = sqlx::query("SELECT * FROM inbound WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        InboundItem::from_row(&row)
    }

    /// Forgets processed inputs older than `before` (they are only kept to
    /// recognise a platform's retries, which come within minutes).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn prune_inbound(&self, before: Millis) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM inbound WHERE status = 'done' AND updated_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}
