//! Queries of the hand-off workflow: the queue, staff threads, forwarding.

use sqlx::Row;

use super::{Conversation, Error, Event, Message, Store, get};
use crate::clock::Millis;
use crate::ids::ConversationId;

/// How long one pass may hold a staff thread it brings up to date (posting
/// a card with the platform's retries takes seconds, not a minute).
pub const STAFF_SYNC_LEASE_MS: Millis = 60_000;

/// Where a conversation lives in one staff desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffThread {
    /// Conversation.
    pub conversation_id: crate::ids::ConversationId,
    /// Desk name (`telegram`, `discord`).
    pub desk: String,
    /// The desk's reference (topic id, thread id, card message id).
    pub thread_ref: Option<String>,
    /// `posting` while the card is being posted, `open` after.
    pub state: String,
    /// Last customer message `seq` forwarded to the desk.
    pub forwarded_seq: i64,
    /// Last conversation status the desk was told about.
    pub notified_status: Option<String>,
}

impl StaffThread {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, Error> {
        Ok(Self {
            conversation_id: get::<String>(row, "conversation_id")?.into(),
            desk: get(row, "desk")?,
            thread_ref: get(row, "thread_ref")?,
            state: get(row, "state")?,
            forwarded_seq: get(row, "forwarded_seq")?,
            notified_status: get(row, "notified_status")?,
        })
    }
}

impl Store {
    /// Conversations waiting for or with an agent, oldest hand-off first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn handed_off(&self) -> Result<Vec<Conversation>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE status IN ('waiting_for_agent', 'with_agent') \
             ORDER BY handoff_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Conversation::from_row).collect()
    }

    /// Conversations a desk still has to hear about: handed off at some point
    /// and not yet told their current status.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn desk_pending(
        &self,
        desk: &str,
    ) -> Result<Vec<(Conversation, Option<StaffThread>)>, Error> {
        let rows = sqlx::query(
            "SELECT c.id AS cid FROM conversations c \
             LEFT JOIN staff_threads s ON s.conversation_id = c.id AND s.desk = $1 \
             WHERE c.handoff_at IS NOT NULL AND ( \
                 (c.status IN ('waiting_for_agent', 'with_agent') AND s.conversation_id IS NULL) \
                 OR (s.conversation_id IS NOT NULL AND (s.notified_status IS NULL OR s.notified_status <> c.status)) \
                 OR (s.conversation_id IS NOT NULL AND s.forwarded_seq < (SELECT COALESCE(MAX(seq), 0) FROM messages m \
                     WHERE m.conversation_id = c.id AND m.role = 'customer'))) \
             ORDER BY c.handoff_at, c.id",
        )
        .bind(desk)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = ConversationId::from(row.try_get::<String, _>("cid")?);
            let conversation = self.conversation(&id).await?;
            let thread = self.staff_thread(&id, desk).await?;
            out.push((conversation, thread));
        }
        Ok(out)
    }

    /// The conversation's thread in `desk`, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn staff_thread(
        &self,
        conversation_id: &ConversationId,
        desk: &str,
    ) -> Result<Option<StaffThread>, Error> {
        let row =
            sqlx::query("SELECT * FROM staff_threads WHERE conversation_id = $1 AND desk = $2")
                .bind(conversation_id.as_str())
                .bind(desk)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(StaffThread::from_row).transpose()
    }

    /// The conversation whose thread in `desk` is `thread_ref`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn conversation_by_staff_thread(
        &self,
        desk: &str,
        thread_ref: &str,
    ) -> Result<Option<Conversation>, Error> {
        let row = sqlx::query(
            "SELECT conversation_id FROM staff_threads WHERE desk = $1 AND thread_ref = $2 \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(desk)
        .bind(thread_ref)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => {
                let id: String = row.try_get("conversation_id")?;
                Ok(Some(self.conversation(&id).await?))
            }
            None => Ok(None),
        }
    }

    /// Remembers messages the bot posted into `desk` for a conversation
    /// (`post_refs` such as `msg:<id>`), so a reply to one of them reaches
    /// that conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn add_staff_posts(
        &self,
        desk: &str,
        conversation_id: &ConversationId,
        post_refs: &[String],
    ) -> Result<(), Error> {
        for post_ref in post_refs {
            sqlx::query(
                "INSERT INTO staff_posts (desk, post_ref, conversation_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (desk, post_ref) DO NOTHING",
            )
            .bind(desk)
            .bind(post_ref)
            .bind(conversation_id.as_str())
            .bind(self.now())
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// The conversation a message the bot posted into `desk` belongs to.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn conversation_by_staff_post(
        &self,
        desk: &str,
        post_ref: &str,
    ) -> Result<Option<Conversation>, Error> {
        let row = sqlx::query(
            "SELECT conversation_id FROM staff_posts WHERE desk = $1 AND post_ref = $2",
        )
        .bind(desk)
        .bind(post_ref)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => {
                let id: String = row.try_get("conversation_id")?;
                Ok(Some(self.conversation(&id).await?))
            }
            None => Ok(None),
        }
    }

    /// Reserves the right to post the conversation's card in `desk`; `false`
    /// when another process (or an earlier run) already did.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn reserve_staff_thread(
        &self,
        conversation_id: &ConversationId,
        desk: &str,
    ) -> Result<bool, Error> {
        let now = self.now();
        let result = sqlx::query(
            "INSERT INTO staff_threads (conversation_id, desk, state, forwarded_seq, updated_at, sync_until) \
             VALUES ($1, $2, 'posting', 0, $3, $4) ON CONFLICT (conversation_id, desk) DO NOTHING",
        )
        .bind(conversation_id.as_str())
        .bind(desk)
        .bind(now)
        .bind(now + STAFF_SYNC_LEASE_MS)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Takes the staff thread of `conversation_id` in `desk` for one sync
    /// (posting its card, forwarding messages, notices) for
    /// [`STAFF_SYNC_LEASE_MS`]: `false` while another pass, in this process
    /// or another, holds it. [`Store::update_staff_thread`] ends the sync.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_staff_sync(
        &self,
        conversation_id: &ConversationId,
        desk: &str,
    ) -> Result<bool, Error> {
        let now = self.now();
        let result = sqlx::query(
            "UPDATE staff_threads SET sync_until = $1 \
             WHERE conversation_id = $2 AND desk = $3 AND (sync_until IS NULL OR sync_until < $4)",
        )
        .bind(now + STAFF_SYNC_LEASE_MS)
        .bind(conversation_id.as_str())
        .bind(desk)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records the posted card's reference and what the desk now knows,
    /// and ends the sync that claimed the thread.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn update_staff_thread(
        &self,
        conversation_id: &ConversationId,
        desk: &str,
        thread_ref: Option<&str>,
        forwarded_seq: i64,
        notified_status: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE staff_threads SET thread_ref = COALESCE($1, thread_ref), state = 'open', \
               forwarded_seq = $2, notified_status = COALESCE($3, notified_status), updated_at = $4, \
               sync_until = NULL \
             WHERE conversation_id = $5 AND desk = $6",
        )
        .bind(thread_ref)
        .bind(forwarded_seq)
        .bind(notified_status)
        .bind(self.now())
        .bind(conversation_id.as_str())
        .bind(desk)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Drops a reservation whose card could not be posted, so it is tried
    /// again.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn release_staff_thread(
        &self,
        conversation_id: &ConversationId,
        desk: &str,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM staff_threads WHERE conversation_id = $1 AND desk = $2 AND state = 'posting'")
            .bind(conversation_id.as_str())
            .bind(desk)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Customer messages of a conversation after `seq`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn customer_messages_after(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 AND seq > $2 AND role = 'customer' ORDER BY seq",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Message::from_row).collect()
    }

    /// Notices of a conversation not yet handed to delivery, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn unsent_notices(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<Event>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE conversation_id = $1 AND notice IS NOT NULL \
               AND notified_at IS NULL ORDER BY created_at, id",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Event::from_row).collect()
    }

    /// Notices recorded before `before` and still not handed to delivery
    /// (the process that recorded them stopped first), oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn stale_notices(&self, before: Millis) -> Result<Vec<Event>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE notice IS NOT NULL AND notified_at IS NULL \
               AND created_at <= $1 ORDER BY created_at, id LIMIT 100",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Event::from_row).collect()
    }

    /// Takes a notice for sending; `false` when someone else took it first,
    /// so of two senders exactly one sends it. A process that stops between
    /// taking and sending leaves it unsent rather than risk sending it twice.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_notice(&self, event_id: &str) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE events SET notified_at = $1 WHERE id = $2 AND notice IS NOT NULL \
               AND notified_at IS NULL",
        )
        .bind(self.now())
        .bind(event_id)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Waiting conversations handed off before `before` that were not
    /// re-pinged yet.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn unclaimed_since(&self, before: Millis) -> Result<Vec<Conversation>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE status = 'waiting_for_agent' AND handoff_at <= $1 \
               AND repinged_at IS NULL ORDER BY handoff_at",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Conversation::from_row).collect()
    }

    /// Marks a conversation as re-pinged; `false` if someone else did first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_repinged(&self, conversation_id: &ConversationId) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE conversations SET repinged_at = $1 WHERE id = $2 AND repinged_at IS NULL",
        )
        .bind(self.now())
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Bot conversations with customer messages that no one answered:
    /// stored, but the process stopped before answering. Looks at the log as
    /// it was at `before` (the start of this process), so messages that
    /// this process is answering now are not taken twice; returns, per
    /// conversation active after `since`, the customer messages up to
    /// `before` that no bot message answers, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn unanswered(
        &self,
        since: Millis,
        before: Millis,
    ) -> Result<Vec<(Conversation, Vec<Message>)>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE status = 'bot' AND last_customer_at >= $1 \
             ORDER BY last_customer_at",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let conversation = Conversation::from_row(row)?;
            let waiting = self.waiting_in(&conversation.id, before).await?;
            if !waiting.is_empty() {
                out.push((conversation, waiting));
            }
        }
        Ok(out)
    }

    /// The customer messages of `conversation_id` up to `before` that no
    /// bot message answers, oldest first (among its last 20 messages).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn waiting_in(
        &self,
        conversation_id: &ConversationId,
        before: Millis,
    ) -> Result<Vec<Message>, Error> {
        let recent = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 AND created_at <= $2 \
               AND role <> 'note' ORDER BY seq DESC LIMIT 20",
        )
        .bind(conversation_id.as_str())
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        // Oldest first, each bot message answers the oldest customer
        // message still waiting: answers made at the same time can be
        // stored after a later customer message (the answer to the first of
        // two quick messages lands after the second), so "customer messages
        // after the last answer" would miss one. An agent's or the system's
        // message settles what came before.
        let mut waiting = std::collections::VecDeque::new();
        for row in recent.iter().rev() {
            let message = Message::from_row(row)?;
            match message.role {
                super::Role::Customer => waiting.push_back(message),
                super::Role::Bot => {
                    waiting.pop_front();
                }
                _ => waiting.clear(),
            }
        }
        Ok(waiting.into())
    }
}
