//! Queries of the web widget's mailbox.

use sqlx::Row;

use super::{Error, Store, new_id};
use crate::delivery::Outgoing;

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
            .execute(&self.pool)
            .await?;
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
            out.push((
                id,
                Outgoing {
                    text,
                    buttons,
                    notice: notice != 0,
                },
            ));
        }
        Ok(out)
    }
}
