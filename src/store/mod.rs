//! The conversation log over sqlx: SQLite by default, PostgreSQL by URL.
//!
//! One codebase through sqlx's `Any` driver. `Any` carries only booleans,
//! integers, floats, text and bytes, so times are integer milliseconds and
//! JSON is text. Queries use `$1, $2, …` in order of first use, which both
//! SQLite and PostgreSQL accept; every value is bound, never spliced.

mod accounts;
mod batch;
mod conversations;
mod csat;
mod customers;
mod desk;
mod inbound;
mod inbox;
pub mod instances;
mod kb_changes;
mod limits;
mod messages;
mod model;
mod notify;
mod outbox;
mod sessions;
mod suggestions;
mod tags;
mod web;

use std::str::FromStr;
use std::sync::{Arc, Once};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use crate::ids::{CustomerId, MessageId};

pub use csat::{Answer, Awaiting, STALE_CLAIM_MS, Survey};
pub use desk::{STAFF_SYNC_LEASE_MS, StaffThread};
pub use inbound::{InboundItem, InboundStatus};
pub use inbox::{InboxEntry, InboxQuery, InboxTab, PastConversation};
pub use kb_changes::{Citations, KbChange, NewKbChange};
pub use model::*;
pub use notify::MailboxBells;
pub use sessions::AgentSession;
pub use suggestions::{Suggestion, SuggestionDraft, SuggestionStatus};

use crate::clock::{Millis, SharedClock};
use crate::conversation::{Actor, EventKind, IllegalTransition, Status, Transition};

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
///
/// Reads go to `pool`; every statement that writes goes to `writer`. On
/// PostgreSQL the two are the same pool. A SQLite file has one writer at a
/// time anyway, so its `writer` is a pool of one connection: writers queue
/// on the pool (in order, without spinning) instead of each taking a
/// connection and sleeping in SQLite's busy handler until the file's write
/// lock frees up (1, 2, 5, 10… ms at a time).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    batcher: batch::Batcher,
    backend: Backend,
    clock: SharedClock,
    /// This process among those sharing the database ([`instances`]).
    instance: Arc<str>,
    /// How long a process may go without a beat before it counts as gone.
    lease_ms: Millis,
    /// Where [`Store::mailbox_bells`] listens (PostgreSQL only).
    listen_url: Option<notify::ListenUrl>,
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
        let options = AnyPoolOptions::new().max_connections(max_connections.max(1));
        let pool = Self::pool_with(backend, &url, options).await?;
        // One connection for a SQLite file's writes; an in-memory database
        // exists only on its one connection, so it is its own writer.
        let writer = if backend == Backend::Sqlite && !url.contains(":memory:") {
            Self::pool_with(backend, &url, AnyPoolOptions::new().max_connections(1)).await?
        } else {
            pool.clone()
        };
        Ok(Self {
            pool,
            batcher: batch::Batcher::start(writer.clone()),
            writer,
            backend,
            clock,
            instance: new_id().into(),
            lease_ms: instances::DEFAULT_LEASE_MS,
            listen_url: (backend == Backend::Postgres).then(|| notify::ListenUrl(url.into())),
        })
    }

    /// Opens a pool with the connection settings of `backend`.
    async fn pool_with(
        backend: Backend,
        url: &str,
        mut options: AnyPoolOptions,
    ) -> Result<AnyPool, Error> {
        if backend == Backend::Sqlite {
            // sqlx pings a pooled connection before lending it out, which
            // on SQLite is one more trip to the connection's thread per
            // statement. A connection to a local file does not drop the
            // way a network connection can, so the ping only costs.
            // (PostgreSQL keeps it: it finds connections a restart cut.)
            options = options.test_before_acquire(false);
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
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            // WAL lets readers (reports) run beside the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(pool)
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
        first.close().await;
        Self::connect(url, max_connections, clock).await
    }

    /// Applies the migrations of this backend.
    ///
    /// # Errors
    /// When a migration fails or the database has migrations this binary
    /// does not know.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("migrations/sqlite")
                    .run(&self.writer)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.writer)
                    .await?
            }
        }
        Ok(())
    }

    /// The dialect in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads (tests and tools inspect the log through it).
    /// Writes go through [`Store::writer`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for statements that write.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
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
    /// How it was resolved.
    pub resolution: Option<&'a crate::conversation::Resolution>,
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
