//! Messages and events of a conversation: storing (once, by platform id), reading back, feedback.

use super::*;
use crate::ids::ConversationId;

impl Store {
    /// Stores a message. Returns `None`, storing nothing, when a message with
    /// the same platform id was already stored on this channel (a platform
    /// retry or gateway re-delivery).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn insert_message(
        &self,
        message: &NewMessage<'_>,
    ) -> Result<Option<MessageId>, Error> {
        self.insert_message_when(message, None).await
    }

    /// Stores a bot message only if the conversation is still with the bot,
    /// checked in the same statement; `None` when it is not (someone took
    /// the conversation while the answer was being made).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn insert_if_with_bot(
        &self,
        message: &NewMessage<'_>,
    ) -> Result<Option<MessageId>, Error> {
        self.insert_message_when(message, Some(Status::Bot)).await
    }

    async fn insert_message_when(
        &self,
        message: &NewMessage<'_>,
        status: Option<Status>,
    ) -> Result<Option<MessageId>, Error> {
        // The conversation's timestamps follow in the same statement
        // (trigger `messages_touch`); concurrent messages share one
        // statement (see `batch`).
        let row = batch::Row::new(message, status, self.now(), &self.instance)?;
        Ok(self
            .batcher
            .insert(&self.writer, row)
            .await?
            .map(MessageId::from))
    }

    /// The last `limit` messages of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn recent_messages(
        &self,
        conversation_id: &ConversationId,
        limit: usize,
    ) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq DESC, created_at DESC LIMIT $2",
        )
        .bind(conversation_id.as_str())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut messages = rows
            .iter()
            .map(Message::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// A message by id, if it exists.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn message(&self, id: &MessageId) -> Result<Option<Message>, Error> {
        let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Message::from_row).transpose()
    }

    /// The conversation's latest bot message, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn last_bot_message(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<Message>, Error> {
        let row = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 AND role = 'bot' \
             ORDER BY seq DESC, created_at DESC LIMIT 1",
        )
        .bind(conversation_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Message::from_row).transpose()
    }

    /// Every message of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn messages(&self, conversation_id: &ConversationId) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq, created_at",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Message::from_row).collect()
    }

    /// Records an event (hand-off requested, resolved, refused action, …).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_event(
        &self,
        conversation_id: &ConversationId,
        kind: EventKind,
        actor: Actor<'_>,
        detail: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO events (id, conversation_id, kind, actor, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(conversation_id.as_str())
        .bind(kind.as_str())
        .bind(actor.as_str())
        .bind(detail)
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Events of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn events(&self, conversation_id: &ConversationId) -> Result<Vec<Event>, Error> {
        let rows =
            sqlx::query("SELECT * FROM events WHERE conversation_id = $1 ORDER BY created_at, id")
                .bind(conversation_id.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Event::from_row).collect()
    }

    /// Messages of conversations created since `since`, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn messages_since(&self, since: Option<Millis>) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE c.created_at >= $1 ORDER BY m.conversation_id, m.seq",
        )
        .bind(since.unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Message::from_row).collect()
    }

    /// Sets the customer's 👍 (1) / 👎 (-1) on a bot message of
    /// `conversation_id`. The first click counts; returns `false` when the
    /// message already had feedback, is not a bot message or belongs to
    /// another conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_feedback(
        &self,
        conversation_id: &ConversationId,
        message_id: &MessageId,
        value: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE messages SET feedback = $1 \
             WHERE id = $2 AND conversation_id = $3 AND role = 'bot' AND feedback IS NULL",
        )
        .bind(value.signum())
        .bind(message_id.as_str())
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
