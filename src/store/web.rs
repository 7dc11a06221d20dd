//! Queries of the web widget's mailbox.

use sqlx::Row;

use super::{Conversation, Error, Store, new_id};
use crate::clock::Millis;
use crate::ids::CustomerId;
use crate::outgoing::Outgoing;

impl Store {
    /// Leaves a message for a web-widget session; returns its id (ids sort
    /// by time, so they double as the polling cursor).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn push_web_message(
        &self,
        session: &str,
        message: &Outgoing,
    ) -> Result<String, Error> {
        let id = new_id();
        let buttons =
            serde_json::to_string(&message.buttons).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO web_messages (id, session, text, buttons, notice, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(session)
            .bind(&message.text)
            .bind(buttons)
            .bind(i64::from(message.notice))
            .bind(self.now())
            .execute(&self.writer)
            .await?;
        // Kept: a bell that cannot be rung only delays it to the streams'
        // periodic check.
        if let Err(e) = self.ring_elsewhere(session).await {
            tracing::warn!("could not tell other processes of a widget message: {e}");
        }
        Ok(id)
    }

    /// Messages for a session after cursor `after` (all when empty), oldest
    /// first, as `(id, message)`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn web_messages_after(
        &self,
        session: &str,
        after: &str,
    ) -> Result<Vec<(String, Outgoing)>, Error> {
        Ok(self
            .web_messages_since_cursor(session, after)
            .await?
            .into_iter()
            .map(|(id, _, message)| (id, message))
            .collect())
    }

    /// As [`Store::web_messages_after`], with each message's time:
    /// `(id, sent at, message)`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn web_messages_since_cursor(
        &self,
        session: &str,
        after: &str,
    ) -> Result<Vec<(String, Millis, Outgoing)>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM web_messages WHERE session = $1 AND id > $2 ORDER BY id LIMIT 100",
        )
        .bind(session)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let text: String = row.try_get("text")?;
            let buttons: Option<String> = row.try_get("buttons")?;
            let notice: i64 = row.try_get("notice")?;
            let buttons = match buttons {
                Some(b) => serde_json::from_str(&b).map_err(|e| Error::Corrupt(e.to_string()))?,
                None => Vec::new(),
            };
            let at: i64 = row.try_get("created_at")?;
            out.push((
                id,
                at,
                Outgoing {
                    text,
                    buttons,
                    notice: notice != 0,
                },
            ));
        }
        Ok(out)
    }

    /// Mailbox messages for a session from time `since` on (at most
    /// `limit`, the latest), oldest first, as `(id, sent at, message)`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn web_messages_since(
        &self,
        session: &str,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<(String, Millis, Outgoing)>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM web_messages WHERE session = $1 AND created_at >= $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(session)
        .bind(since)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let id: String = row.try_get("id")?;
            let at: i64 = row.try_get("created_at")?;
            let text: String = row.try_get("text")?;
            let buttons: Option<String> = row.try_get("buttons")?;
            let buttons = match buttons {
                Some(b) => serde_json::from_str(&b).map_err(|e| Error::Corrupt(e.to_string()))?,
                None => Vec::new(),
            };
            let notice: i64 = row.try_get("notice")?;
            out.push((
                id,
                at,
                Outgoing {
                    text,
                    buttons,
                    notice: notice != 0,
                },
            ));
        }
        Ok(out)
    }

    /// The id of the session's newest mailbox message ("" when none): the
    /// polling cursor after a full history.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn web_cursor(&self, session: &str) -> Result<String, Error> {
        let row = sqlx::query("SELECT MAX(id) AS id FROM web_messages WHERE session = $1")
            .bind(session)
            .fetch_one(&self.pool)
            .await?;
        let id: Option<String> = row.try_get("id")?;
        Ok(id.unwrap_or_default())
    }

    /// The customer's latest conversation in `thread_key`, open or
    /// resolved, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn latest_conversation(
        &self,
        customer_id: &CustomerId,
        thread_key: &str,
    ) -> Result<Option<Conversation>, Error> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE customer_id = $1 AND thread_key = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(customer_id.as_str())
        .bind(thread_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Conversation::from_row).transpose()
    }

    /// The secret called `name`, made by `make` and kept on first use (the
    /// first of two racing processes wins; both get its value).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn secret(&self, name: &str, make: impl FnOnce() -> String) -> Result<String, Error> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }
}
