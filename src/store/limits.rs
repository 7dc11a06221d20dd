//! Queries behind the limits and the web widget's retries.

use sqlx::Row;

use super::{Error, Message, Store};
use crate::ids::{ConversationId, CustomerId};

impl Store {
    /// Another conversation of `customer_id` (not `except`) that waits for
    /// a person, if any: a customer holds one place in the queue.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn waiting_elsewhere(
        &self,
        customer_id: &CustomerId,
        except: &ConversationId,
    ) -> Result<Option<String>, Error> {
        let row = sqlx::query(
            "SELECT id FROM conversations \
             WHERE customer_id = $1 AND status = 'waiting_for_agent' AND id <> $2 LIMIT 1",
        )
        .bind(customer_id.as_str())
        .bind(except.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(row.try_get::<String, _>("id")?)),
            None => Ok(None),
        }
    }

    /// The bot message that answered the customer message with platform id
    /// `platform_message_id` on `channel`: the first bot message after it
    /// in its conversation, before the customer's next message.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn reply_to(
        &self,
        channel: &str,
        platform_message_id: &str,
    ) -> Result<Option<Message>, Error> {
        let row = sqlx::query(
            "SELECT m.* FROM messages c JOIN messages m ON m.conversation_id = c.conversation_id \
             WHERE c.channel = $1 AND c.platform_message_id = $2 AND c.role = 'customer' \
               AND m.role = 'bot' AND m.seq > c.seq \
               AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.conversation_id = c.conversation_id \
                   AND n.role = 'customer' AND n.seq > c.seq AND n.seq < m.seq) \
             ORDER BY m.seq LIMIT 1",
        )
        .bind(channel)
        .bind(platform_message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Message::from_row).transpose()
    }

    /// The customer message `platform_message_id` on `channel`, if stored.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn customer_message(
        &self,
        channel: &str,
        platform_message_id: &str,
    ) -> Result<Option<Message>, Error> {
        let row = sqlx::query(
            "SELECT * FROM messages WHERE channel = $1 AND platform_message_id = $2 \
               AND role = 'customer' LIMIT 1",
        )
        .bind(channel)
        .bind(platform_message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Message::from_row).transpose()
    }
}
