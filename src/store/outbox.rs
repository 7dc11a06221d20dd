//! The outbox: sends that failed and wait to be retried, claimed with a lease.

use super::*;

impl Store {
    /// Puts an undelivered message in the outbox, to be retried from
    /// `next_attempt_at`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn enqueue_outbox(
        &self,
        target: &crate::outgoing::Target,
        message: &crate::outgoing::Outgoing,
        conversation_id: Option<&str>,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<String, Error> {
        let id = new_id();
        let target_json =
            serde_json::to_string(target).map_err(|e| Error::Corrupt(e.to_string()))?;
        let payload = serde_json::to_string(message).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO outbox (id, channel, target, payload, conversation_id, attempts, next_attempt_at, last_error, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, 'pending', $8)",
        )
        .bind(&id)
        .bind(&target.channel)
        .bind(target_json)
        .bind(payload)
        .bind(conversation_id)
        .bind(next_attempt_at)
        .bind(error)
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(id)
    }

    /// Claims up to `limit` due outbox items of `channels` for `lease_ms`
    /// (another process will not take them meanwhile).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_outbox(
        &self,
        channels: &[String],
        limit: usize,
        lease_ms: Millis,
    ) -> Result<Vec<OutboxItem>, Error> {
        let now = self.now();
        let mut rows = Vec::new();
        for channel in channels {
            rows.extend(
                sqlx::query(
                    "SELECT * FROM outbox WHERE status = 'pending' AND channel = $1 AND next_attempt_at <= $2 \
                       AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY next_attempt_at LIMIT $3",
                )
                .bind(channel)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?,
            );
        }
        let mut claimed = Vec::new();
        for row in rows {
            let id: String = get(&row, "id")?;
            let taken = sqlx::query(
                "UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND status = 'pending' \
                   AND (claimed_until IS NULL OR claimed_until < $3)",
            )
            .bind(now + lease_ms)
            .bind(&id)
            .bind(now)
            .execute(&self.writer)
            .await?;
            if taken.rows_affected() == 1 {
                claimed.push(OutboxItem::from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    /// Extends the lease of a claimed outbox item that is still being sent.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn renew_outbox_lease(&self, id: &str, until: Millis) -> Result<(), Error> {
        sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND status = 'pending'")
            .bind(until)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records the outcome of an outbox delivery attempt: `Ok` deletes the
    /// item; `Err((error, Some(next)))` retries at `next`; `Err((error,
    /// None))` marks it failed for good (kept for the record).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn settle_outbox(
        &self,
        id: &str,
        outcome: Result<(), (&str, Option<Millis>)>,
    ) -> Result<(), Error> {
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE outbox SET status = 'delivered', claimed_until = NULL WHERE id = $1",
                )
                .bind(id)
                .execute(&self.writer)
                .await?;
            }
            Err((error, Some(next))) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, claimed_until = NULL WHERE id = $3",
                )
                .bind(next)
                .bind(error)
                .bind(id)
                .execute(&self.writer)
                .await?;
            }
            Err((error, None)) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, status = 'failed', last_error = $1, claimed_until = NULL WHERE id = $2",
                )
                .bind(error)
                .bind(id)
                .execute(&self.writer)
                .await?;
            }
        }
        Ok(())
    }
}
