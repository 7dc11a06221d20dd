//! Conversations: opening, the current one, status transitions with their events, and the counters kept on them.

use super::*;
use crate::ids::ConversationId;

impl Store {
    /// The customer's open (not resolved) conversation in `thread_key`, or a
    /// new one in state `bot`, linked to the last resolved one if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn open_conversation(
        &self,
        customer: &Customer,
        thread_key: &str,
    ) -> Result<Conversation, Error> {
        let open = self.current_conversation(&customer.id, thread_key).await?;
        self.open_conversation_from(customer, thread_key, open)
            .await
    }

    /// [`Store::open_conversation`] when the open conversation was read
    /// already (`open`, from [`Store::customer_in_thread`]).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn open_conversation_from(
        &self,
        customer: &Customer,
        thread_key: &str,
        open: Option<Conversation>,
    ) -> Result<Conversation, Error> {
        if let Some(c) = open {
            return Ok(c);
        }
        let previous: Option<String> = sqlx::query(
            "SELECT id FROM conversations WHERE customer_id = $1 AND thread_key = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(customer.id.as_str())
        .bind(thread_key)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?;
        self.start_conversation(customer, thread_key, previous.as_deref())
            .await
    }

    /// The open conversation, if there is one.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn current_conversation(
        &self,
        customer_id: &CustomerId,
        thread_key: &str,
    ) -> Result<Option<Conversation>, Error> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE customer_id = $1 AND thread_key = $2 AND status <> 'resolved' \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(customer_id.as_str())
        .bind(thread_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Conversation::from_row).transpose()
    }

    /// Starts a new conversation in state `bot`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn start_conversation(
        &self,
        customer: &Customer,
        thread_key: &str,
        previous_id: Option<&str>,
    ) -> Result<Conversation, Error> {
        let id = new_id();
        let now = self.now();
        sqlx::query(
            "INSERT INTO conversations (id, customer_id, channel, thread_key, status, previous_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(customer.id.as_str())
        .bind(&customer.channel)
        .bind(thread_key)
        .bind(Status::Bot.as_str())
        .bind(previous_id)
        .bind(now)
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.conversation(&id).await
    }

    /// A conversation by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a database failure.
    pub async fn conversation(&self, id: &str) -> Result<Conversation, Error> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "conversation",
                id: id.to_string(),
            })?;
        Conversation::from_row(&row)
    }

    /// The conversation's current status (read fresh, for the check right
    /// before a send).
    ///
    /// # Errors
    /// [`Error::NotFound`] or a database failure.
    pub async fn status(&self, conversation_id: &ConversationId) -> Result<Status, Error> {
        let row = sqlx::query("SELECT status FROM conversations WHERE id = $1")
            .bind(conversation_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "conversation",
                id: conversation_id.to_string(),
            })?;
        let s: String = row.try_get("status")?;
        Status::from_str(&s).map_err(Error::Corrupt)
    }

    /// Applies `transition` to the conversation, atomically: the update only
    /// happens if the status is still the one read, so of two agents
    /// claiming at once exactly one wins and the other gets
    /// [`Error::Conflict`]. The transition is recorded as an event, with
    /// the notice for the customer when `change` has one (in the same
    /// transaction, so a notice exists exactly when the change happened).
    ///
    /// `change` fills the hand-off, assignment and resolution columns.
    ///
    /// # Errors
    /// [`Error::Illegal`] for a transition the state machine forbids,
    /// [`Error::Conflict`] when someone else changed the state first.
    pub async fn transition(
        &self,
        conversation_id: &ConversationId,
        transition: Transition,
        actor: Actor<'_>,
        change: &Change<'_>,
    ) -> Result<Conversation, Error> {
        let current = self.conversation(conversation_id).await?;
        let next = current.status.apply(transition)?;
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let result = sqlx::query(
            "UPDATE conversations SET status = $1, updated_at = $2, \
               handoff_at = CASE WHEN $3 = 1 THEN $2 ELSE handoff_at END, \
               handoff_reason = COALESCE($4, handoff_reason), \
               handoff_detail = COALESCE($5, handoff_detail), \
               assigned_agent = CASE WHEN $6 = 1 THEN $7 ELSE assigned_agent END, \
               resolved_at = CASE WHEN $8 = 1 THEN $2 ELSE resolved_at END, \
               resolution = COALESCE($9, resolution), \
               resolved_by = CASE WHEN $8 = 1 THEN $10 ELSE resolved_by END, \
               context_since = CASE WHEN $13 = 1 THEN $2 ELSE context_since END, \
               context_after_seq = CASE WHEN $13 = 1 THEN \
                 (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.conversation_id = $11) \
                 ELSE context_after_seq END \
             WHERE id = $11 AND status = $12",
        )
        .bind(next.as_str())
        .bind(now)
        .bind(i64::from(transition == Transition::HandOff))
        .bind(change.handoff_reason)
        .bind(change.handoff_detail)
        .bind(i64::from(change.assign.is_some()))
        .bind(change.assign.flatten())
        .bind(i64::from(transition == Transition::Resolve))
        .bind(change.resolution.map(|r| r.as_str()))
        .bind(actor.as_str())
        .bind(conversation_id.as_str())
        .bind(current.status.as_str())
        .bind(i64::from(transition == Transition::GiveBack))
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(Error::Conflict(conversation_id.to_string()));
        }
        let detail = change.event_detail.map(str::to_string).or_else(|| {
            change.handoff_reason.map(|r| {
                format!(
                    "{r}{}",
                    change
                        .handoff_detail
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )
            })
        });
        sqlx::query(
            "INSERT INTO events (id, conversation_id, kind, actor, detail, actor_name, notice, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(conversation_id.as_str())
        .bind(transition.as_str())
        .bind(actor.as_str())
        .bind(detail)
        .bind(change.actor_name)
        .bind(change.notice)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.conversation(conversation_id).await
    }

    /// Increments (or, with `reset`, zeroes) the count of consecutive LLM
    /// failures; returns the new count.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn note_llm_result(
        &self,
        conversation_id: &ConversationId,
        failed: bool,
    ) -> Result<i64, Error> {
        let sql = if failed {
            "UPDATE conversations SET llm_failures = llm_failures + 1 WHERE id = $1"
        } else {
            "UPDATE conversations SET llm_failures = 0 WHERE id = $1"
        };
        sqlx::query(sql)
            .bind(conversation_id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(self.conversation(conversation_id).await?.llm_failures)
    }

    /// Remembers that the customer was offered a person.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_offered_human(&self, conversation_id: &ConversationId) -> Result<(), Error> {
        sqlx::query("UPDATE conversations SET offered_human = 1 WHERE id = $1")
            .bind(conversation_id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// 1-based position of a waiting conversation in the queue (oldest
    /// hand-off first); `None` when it is not waiting.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn queue_position(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM conversations w, conversations c \
             WHERE c.id = $1 AND c.status = 'waiting_for_agent' AND w.status = 'waiting_for_agent' \
               AND (w.handoff_at < c.handoff_at OR (w.handoff_at = c.handoff_at AND w.id <= c.id))",
        )
        .bind(conversation_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok((n > 0).then_some(n))
    }

    /// Conversations created since `since` (all when `None`), oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn conversations_since(
        &self,
        since: Option<Millis>,
    ) -> Result<Vec<Conversation>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE created_at >= $1 ORDER BY created_at, id",
        )
        .bind(since.unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Conversation::from_row).collect()
    }
}
