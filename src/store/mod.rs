//! The conversation log over sqlx: SQLite by default, PostgreSQL by URL.
//!
//! One codebase through sqlx's `Any` driver. `Any` carries only booleans,
//! integers, floats, text and bytes, so times are integer milliseconds and
//! JSON is text. Queries use `$1, $2, …` in order of first use, which both
//! SQLite and PostgreSQL accept; every value is bound, never spliced.

mod csat;
mod desk;
mod inbound;
mod inbox;
mod kb_changes;
mod limits;
mod model;
mod sessions;
mod web;

use std::str::FromStr;
use std::sync::Once;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use uuid::Uuid;

pub use csat::{Answer, STALE_CLAIM_MS, Survey};
pub use desk::StaffThread;
pub use inbound::{InboundItem, InboundStatus};
pub use inbox::{InboxEntry, InboxQuery, InboxTab};
pub use kb_changes::{Citations, KbChange, NewKbChange};
pub use model::*;
pub use sessions::AgentSession;

use crate::clock::{Millis, SharedClock};
use crate::conversation::{IllegalTransition, Status, Transition};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported database.
    #[error("database.url `{0}` is not supported; use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    /// A row was expected and is not there.
    #[error("no {kind} `{id}`")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The conversation is not in a state that allows the change.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// Another process changed the conversation first (e.g. two agents
    /// claiming at once); the caller lost the race.
    #[error("conversation {0} was changed by someone else; reload and try again")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Handle to the conversation log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: SharedClock,
}

static DRIVERS: Once = Once::new();

/// A new time-ordered id.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

impl Store {
    /// Connects (creating a SQLite file if missing). Does not migrate.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] or a connection failure.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        clock: SharedClock,
    ) -> Result<Self, Error> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") || url.contains(":memory:") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(Error::UnsupportedUrl(url.to_string()));
        };
        let mut options = AnyPoolOptions::new().max_connections(max_connections.max(1));
        if backend == Backend::Sqlite {
            // Each `sqlite::memory:` connection is its own database, so an
            // in-memory store gets exactly one connection.
            if url.contains(":memory:") {
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    // With WAL, NORMAL syncs at checkpoints: a process crash
                    // loses nothing; only an OS crash or power cut can lose
                    // the last transactions.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            // WAL lets readers (reports) run beside the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Self {
            pool,
            backend,
            clock,
        })
    }

    /// Connects and brings the schema up to date: the way the bot opens its
    /// database.
    ///
    /// Migrations run on a connection of their own that is closed before the
    /// working pool opens. A connection that has prepared statements against
    /// the old schema (`RETURNING *` on a table a migration just widened)
    /// would otherwise read rows with the wrong number of columns.
    ///
    /// # Errors
    /// As [`Store::connect`] and [`Store::migrate`].
    pub async fn open(url: &str, max_connections: u32, clock: SharedClock) -> Result<Self, Error> {
        let first = Self::connect(url, 1, clock.clone()).await?;
        first.migrate().await?;
        if url.contains(":memory:") {
            // Each in-memory connection is its own database: keep this one.
            return Ok(first);
        }
        first.pool.close().await;
        Self::connect(url, max_connections, clock).await
    }

    /// Applies the migrations of this backend.
    ///
    /// # Errors
    /// When a migration fails or the database has migrations this binary
    /// does not know.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The dialect in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for modules that add their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Finds or creates the customer known on `channel` as `external_id`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn upsert_customer(
        &self,
        channel: &str,
        external_id: &str,
        display_name: Option<&str>,
    ) -> Result<Customer, Error> {
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO customers (id, channel, external_id, display_name, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel, external_id) DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, customers.display_name) \
             RETURNING *",
        )
        .bind(new_id())
        .bind(channel)
        .bind(external_id)
        .bind(display_name)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Customer::from_row(&row)
    }

    /// The customer known on `channel` as `external_id`, if any (never
    /// creates one).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn find_customer(
        &self,
        channel: &str,
        external_id: &str,
    ) -> Result<Option<Customer>, Error> {
        let row = sqlx::query("SELECT * FROM customers WHERE channel = $1 AND external_id = $2")
            .bind(channel)
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Customer::from_row).transpose()
    }

    /// A customer by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a database failure.
    pub async fn customer(&self, id: &str) -> Result<Customer, Error> {
        let row = sqlx::query("SELECT * FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "customer",
                id: id.to_string(),
            })?;
        Customer::from_row(&row)
    }

    /// Marks a customer as unreachable (e.g. they blocked the bot).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_unreachable(&self, customer_id: &str, unreachable: bool) -> Result<(), Error> {
        sqlx::query("UPDATE customers SET unreachable = $1 WHERE id = $2")
            .bind(i64::from(unreachable))
            .bind(customer_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

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
        if let Some(c) = self.current_conversation(&customer.id, thread_key).await? {
            return Ok(c);
        }
        let previous: Option<String> = sqlx::query(
            "SELECT id FROM conversations WHERE customer_id = $1 AND thread_key = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(&customer.id)
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
        customer_id: &str,
        thread_key: &str,
    ) -> Result<Option<Conversation>, Error> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE customer_id = $1 AND thread_key = $2 AND status <> 'resolved' \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(customer_id)
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
        .bind(&customer.id)
        .bind(&customer.channel)
        .bind(thread_key)
        .bind(Status::Bot.as_str())
        .bind(previous_id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
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
    pub async fn status(&self, conversation_id: &str) -> Result<Status, Error> {
        let row = sqlx::query("SELECT status FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "conversation",
                id: conversation_id.to_string(),
            })?;
        let s: String = row.try_get("status")?;
        Status::from_str(&s).map_err(Error::Corrupt)
    }

    /// Stores a message. Returns `None`, storing nothing, when a message with
    /// the same platform id was already stored on this channel (a platform
    /// retry or gateway re-delivery).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn insert_message(&self, message: &NewMessage<'_>) -> Result<Option<String>, Error> {
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
    ) -> Result<Option<String>, Error> {
        self.insert_message_when(message, Some(Status::Bot)).await
    }

    async fn insert_message_when(
        &self,
        message: &NewMessage<'_>,
        status: Option<Status>,
    ) -> Result<Option<String>, Error> {
        let id = new_id();
        let now = self.now();
        let sources = if message.sources.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(message.sources)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
            )
        };
        // The conversation's timestamps follow in the same statement
        // (trigger `messages_touch`).
        let sql = if status.is_some() {
            "INSERT INTO messages (id, conversation_id, seq, role, author, text, mode, sources, model, \
               prompt_tokens, completion_tokens, latency_ms, channel, platform_message_id, created_at) \
             SELECT $1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = $2), \
               $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
             WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $2 AND status = $15) \
             ON CONFLICT (channel, platform_message_id) DO NOTHING"
        } else {
            "INSERT INTO messages (id, conversation_id, seq, role, author, text, mode, sources, model, \
               prompt_tokens, completion_tokens, latency_ms, channel, platform_message_id, created_at) \
             VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = $2), \
               $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (channel, platform_message_id) DO NOTHING"
        };
        let mut query = sqlx::query(sql)
            .bind(&id)
            .bind(message.conversation_id)
            .bind(message.role.as_str())
            .bind(message.author)
            .bind(message.text)
            .bind(message.mode)
            .bind(sources)
            .bind(message.model)
            .bind(message.prompt_tokens)
            .bind(message.completion_tokens)
            .bind(message.latency_ms)
            .bind(message.channel)
            .bind(message.platform_message_id)
            .bind(now);
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        let result = query.execute(&self.pool).await?;
        Ok((result.rows_affected() == 1).then_some(id))
    }

    /// The last `limit` messages of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn recent_messages(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq DESC, created_at DESC LIMIT $2",
        )
        .bind(conversation_id)
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
    pub async fn message(&self, id: &str) -> Result<Option<Message>, Error> {
        let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Message::from_row).transpose()
    }

    /// The conversation's latest bot message, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn last_bot_message(&self, conversation_id: &str) -> Result<Option<Message>, Error> {
        let row = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 AND role = 'bot' \
             ORDER BY seq DESC, created_at DESC LIMIT 1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Message::from_row).transpose()
    }

    /// Every message of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<Message>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq, created_at",
        )
        .bind(conversation_id)
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
        conversation_id: &str,
        kind: &str,
        actor: &str,
        detail: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO events (id, conversation_id, kind, actor, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(conversation_id)
        .bind(kind)
        .bind(actor)
        .bind(detail)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events of a conversation, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn events(&self, conversation_id: &str) -> Result<Vec<Event>, Error> {
        let rows =
            sqlx::query("SELECT * FROM events WHERE conversation_id = $1 ORDER BY created_at, id")
                .bind(conversation_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Event::from_row).collect()
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
        conversation_id: &str,
        transition: Transition,
        actor: &str,
        change: &Change<'_>,
    ) -> Result<Conversation, Error> {
        let current = self.conversation(conversation_id).await?;
        let next = current.status.apply(transition)?;
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE conversations SET status = $1, updated_at = $2, \
               handoff_at = CASE WHEN $3 = 1 THEN $2 ELSE handoff_at END, \
               handoff_reason = COALESCE($4, handoff_reason), \
               handoff_detail = COALESCE($5, handoff_detail), \
               assigned_agent = CASE WHEN $6 = 1 THEN $7 ELSE assigned_agent END, \
               resolved_at = CASE WHEN $8 = 1 THEN $2 ELSE resolved_at END, \
               resolution = COALESCE($9, resolution), \
               resolved_by = CASE WHEN $8 = 1 THEN $10 ELSE resolved_by END, \
               context_since = CASE WHEN $13 = 1 THEN $2 ELSE context_since END \
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
        .bind(change.resolution)
        .bind(actor)
        .bind(conversation_id)
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
        .bind(conversation_id)
        .bind(transition.as_str())
        .bind(actor)
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
    pub async fn note_llm_result(&self, conversation_id: &str, failed: bool) -> Result<i64, Error> {
        let sql = if failed {
            "UPDATE conversations SET llm_failures = llm_failures + 1 WHERE id = $1"
        } else {
            "UPDATE conversations SET llm_failures = 0 WHERE id = $1"
        };
        sqlx::query(sql)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(self.conversation(conversation_id).await?.llm_failures)
    }

    /// Remembers that the customer was offered a person.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_offered_human(&self, conversation_id: &str) -> Result<(), Error> {
        sqlx::query("UPDATE conversations SET offered_human = 1 WHERE id = $1")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// 1-based position of a waiting conversation in the queue (oldest
    /// hand-off first); `None` when it is not waiting.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn queue_position(&self, conversation_id: &str) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM conversations w, conversations c \
             WHERE c.id = $1 AND c.status = 'waiting_for_agent' AND w.status = 'waiting_for_agent' \
               AND (w.handoff_at < c.handoff_at OR (w.handoff_at = c.handoff_at AND w.id <= c.id))",
        )
        .bind(conversation_id)
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
        conversation_id: &str,
        message_id: &str,
        value: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE messages SET feedback = $1 \
             WHERE id = $2 AND conversation_id = $3 AND role = 'bot' AND feedback IS NULL",
        )
        .bind(value.signum())
        .bind(message_id)
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

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
        .execute(&self.pool)
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
            .execute(&self.pool)
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
            .execute(&self.pool)
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
                .execute(&self.pool)
                .await?;
            }
            Err((error, Some(next))) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, claimed_until = NULL WHERE id = $3",
                )
                .bind(next)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
            }
            Err((error, None)) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, status = 'failed', last_error = $1, claimed_until = NULL WHERE id = $2",
                )
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Column changes that go with a transition.
#[derive(Debug, Default, Clone, Copy)]
pub struct Change<'a> {
    /// Why the conversation is handed off (a [`crate::handoff`] reason).
    pub handoff_reason: Option<&'a str>,
    /// Free text for the hand-off.
    pub handoff_detail: Option<&'a str>,
    /// `Some(Some(agent))` assigns, `Some(None)` unassigns, `None` keeps.
    pub assign: Option<Option<&'a str>>,
    /// How it was resolved: `agent`, `customer` or `inactivity`.
    pub resolution: Option<&'a str>,
    /// Extra text for the event.
    pub event_detail: Option<&'a str>,
    /// The name the customer sees for the actor (an agent's display name).
    pub actor_name: Option<&'a str>,
    /// What the customer is told about this transition; stored with its
    /// event and sent once (see [`Store::claim_notice`]).
    pub notice: Option<&'a str>,
}

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T, Error>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(Error::from)
}
