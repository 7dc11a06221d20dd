//! Mailbox bells across processes sharing a PostgreSQL database: a widget
//! message kept by one process (an agent's reply, a notice) rings the
//! session's bell in every other one, through `NOTIFY`, so a visitor whose
//! event stream is open at another process gets it at once instead of at
//! that stream's next periodic check. SQLite has one process: nothing to
//! tell.

use std::sync::Arc;

use super::{Backend, Error, Store};

/// The PostgreSQL channel the bells are sent on.
const CHANNEL: &str = "switchboard_mailbox";

/// The database URL a listener connects with. It may hold a password: its
/// `Debug` shows nothing of it.
#[derive(Clone)]
pub(super) struct ListenUrl(pub(super) Arc<str>);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenUrl(…)")
    }
}

/// Mailbox bells rung by other processes: see [`Store::mailbox_bells`].
pub struct MailboxBells {
    listener: sqlx::postgres::PgListener,
    instance: Arc<str>,
}

impl MailboxBells {
    /// The next session another process kept a widget message for. After a
    /// lost connection the listener connects again; bells rung meanwhile
    /// are missed (the streams' periodic check finds their messages).
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn next(&mut self) -> Result<String, Error> {
        loop {
            let note = self.listener.recv().await?;
            if let Some((instance, session)) = note.payload().split_once('\n')
                && instance != &*self.instance
            {
                return Ok(session.to_string());
            }
        }
    }
}

impl Store {
    /// Listens for the mailbox bells other processes ring (PostgreSQL;
    /// `None` on SQLite).
    ///
    /// # Errors
    /// When the listening connection cannot be opened.
    pub async fn mailbox_bells(&self) -> Result<Option<MailboxBells>, Error> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(&url.0).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(MailboxBells {
            listener,
            instance: self.instance.clone(),
        }))
    }

    /// Rings `session`'s bell in the other processes (PostgreSQL).
    pub(super) async fn ring_elsewhere(&self, session: &str) -> Result<(), Error> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{}\n{session}", self.instance))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
