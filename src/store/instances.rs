//! Processes sharing one database: each `switchboard run` registers itself
//! and beats; one whose beat is older than the lease is gone, and the
//! customer messages it stored (their `owner`) and never answered are
//! claimed, one compare-and-set each, by exactly one of the others.

use std::collections::HashSet;

use super::*;

/// Beats a process may miss before it counts as gone.
pub const MISSED_BEATS: u64 = 3;
/// The lease with the default beat (`database.heartbeat_secs = 5`).
pub const DEFAULT_LEASE_MS: Millis = 15_000;

/// One registered process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its id ([`Store::instance`]).
    pub id: String,
    /// Host name it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: i64,
    /// When it registered.
    pub started_at: Millis,
    /// Its last beat.
    pub seen_at: Millis,
}

/// This machine's host name, as Linux tells it ("" elsewhere).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` runs on this machine (`true` where that cannot
/// be told, so a live process is never taken for gone).
fn pid_running(pid: i64) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

impl Store {
    /// This process's id among the processes sharing the database: the
    /// `owner` of the messages it stores.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// This store with processes that beat every `beat` (a process that
    /// misses [`MISSED_BEATS`] counts as gone).
    #[must_use]
    pub fn with_heartbeat(mut self, beat: std::time::Duration) -> Self {
        self.lease_ms = Millis::try_from(beat.as_millis())
            .unwrap_or(Millis::MAX / 4)
            .saturating_mul(MISSED_BEATS as Millis);
        self
    }

    /// How long a process may go without a beat before it counts as gone.
    pub fn lease_ms(&self) -> Millis {
        self.lease_ms
    }

    /// Registers this process. A process registered earlier from this host
    /// whose pid no longer runs (a crash, then a restart) is marked gone at
    /// once, rather than after its lease.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn register_instance(&self) -> Result<(), Error> {
        let host = host_name();
        let now = self.now();
        let same_host = sqlx::query("SELECT * FROM instances WHERE host = $1")
            .bind(&host)
            .fetch_all(&self.pool)
            .await?;
        for row in &same_host {
            let instance = Instance::from_row(row)?;
            if instance.pid != i64::from(std::process::id()) && !pid_running(instance.pid) {
                self.mark_gone(&instance.id).await?;
            }
        }
        sqlx::query(
            "INSERT INTO instances (id, host, pid, started_at, seen_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET seen_at = $4",
        )
        .bind(&*self.instance)
        .bind(&host)
        .bind(i64::from(std::process::id()))
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Tells the others this process is alive (registering it again if its
    /// row was removed meanwhile).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn beat(&self) -> Result<(), Error> {
        let updated = sqlx::query("UPDATE instances SET seen_at = $1 WHERE id = $2")
            .bind(self.now())
            .bind(&*self.instance)
            .execute(&self.writer)
            .await?;
        if updated.rows_affected() == 0 {
            self.register_instance().await?;
        }
        Ok(())
    }

    /// Marks process `id` gone without waiting for its lease: this one on a
    /// clean stop (the others then answer what it left at their next
    /// beat), or one that crashed on this host.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_gone(&self, id: &str) -> Result<(), Error> {
        // Its lease ran out just now: gone, and forgotten only once nothing
        // it left would be answered any more.
        sqlx::query("UPDATE instances SET seen_at = $1 WHERE id = $2")
            .bind(self.now() - self.lease_ms - 1)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Removes the row of a process long gone.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn forget_instance(&self, id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every registered process.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn instances(&self) -> Result<Vec<Instance>, Error> {
        let rows = sqlx::query("SELECT * FROM instances ORDER BY started_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Instance::from_row).collect()
    }

    /// Ids of the processes that beat within the lease (this one always).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn live_instances(&self) -> Result<HashSet<String>, Error> {
        let since = self.now() - self.lease_ms;
        let mut live: HashSet<String> = self
            .instances()
            .await?
            .into_iter()
            .filter(|i| i.seen_at >= since)
            .map(|i| i.id)
            .collect();
        live.insert(self.instance.to_string());
        Ok(live)
    }

    /// Conversations with customer messages stored by process `owner` since
    /// `since`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn conversations_owned_by(
        &self,
        owner: &str,
        since: Millis,
    ) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT conversation_id FROM messages \
             WHERE owner = $1 AND role = 'customer' AND created_at >= $2",
        )
        .bind(owner)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| get(r, "conversation_id")).collect()
    }

    /// Makes this process the owner of `message_id` if its owner is still
    /// `from` (`None`: it had none): `true` for exactly one of the
    /// processes that try.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_message(
        &self,
        message_id: &MessageId,
        from: Option<&str>,
    ) -> Result<bool, Error> {
        let result = match from {
            Some(from) => {
                sqlx::query("UPDATE messages SET owner = $1 WHERE id = $2 AND owner = $3")
                    .bind(&*self.instance)
                    .bind(message_id.as_str())
                    .bind(from)
                    .execute(&self.writer)
                    .await?
            }
            None => {
                sqlx::query("UPDATE messages SET owner = $1 WHERE id = $2 AND owner IS NULL")
                    .bind(&*self.instance)
                    .bind(message_id.as_str())
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }
}

impl Instance {
    fn from_row(row: &AnyRow) -> Result<Self, Error> {
        Ok(Self {
            id: get(row, "id")?,
            host: get(row, "host")?,
            pid: get(row, "pid")?,
            started_at: get(row, "started_at")?,
            seen_at: get(row, "seen_at")?,
        })
    }
}
