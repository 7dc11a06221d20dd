//! Inputs from outside that must survive a panic, a crash or a failing
//! database: the boundary every channel runs its inputs in, the inputs kept
//! before they are confirmed, and the dead letters.
//!
//! A channel keeps an input that it cannot process at once (a button press,
//! a staff message) with [`Inbound::keep`] before it confirms it to the
//! platform, processes it with [`Inbound::process`], and registers a
//! [`Replay`] so that [`Inbound::run_once`] can finish what a crash
//! interrupted. Whatever panics, or fails [`MAX_ATTEMPTS`] times, becomes a
//! *dead letter*: stored with its raw payload and the error, confirmed to
//! the platform, counted in `/metrics` (`switchboard_dead_letters_total`),
//! listed by `switchboard dead-letters` — and the channel goes on.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::FutureExt;

use crate::clock::Millis;
use crate::store::{self, InboundItem, Store};

/// Failed attempts after which an input is quarantined.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long a kept input belongs to the pass processing it; after that a
/// later pass (or another process) takes it over.
const LEASE_MS: Millis = 60_000;
/// Processed inputs are forgotten after this long.
const KEEP_DONE_MS: Millis = 7 * 24 * 3600 * 1000;

/// A failure of a guarded piece of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// It panicked; the panic message.
    #[error("panicked: {0}")]
    Panic(String),
    /// It returned an error.
    #[error("{0}")]
    Error(String),
}

/// Runs `work`, turning a panic into [`Failure::Panic`] instead of taking
/// the calling task (a channel's loop) down with it.
///
/// # Errors
/// [`Failure::Panic`] when `work` panicked.
pub async fn guarded<T>(work: impl Future<Output = T>) -> Result<T, Failure> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Failure::Panic(message)
        })
}

/// A channel's way of processing one of its kept inputs again.
#[async_trait::async_trait]
pub trait Replay: Send + Sync {
    /// Processes `item` (its `kind` and raw `payload`) as if it had just
    /// arrived, without keeping it again.
    ///
    /// # Errors
    /// A description of what failed; the input is retried, then quarantined.
    async fn replay(&self, item: &InboundItem) -> Result<(), String>;
}

/// The inbound service. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    store: Store,
    channels: Arc<RwLock<HashMap<String, Arc<dyn Replay>>>>,
}

impl Inbound {
    /// The service over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            channels: Arc::default(),
        }
    }

    /// Registers the channel that replays inputs kept under `channel`.
    pub fn register(&self, channel: &str, replay: Arc<dyn Replay>) {
        self.channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.to_string(), replay);
    }

    /// Keeps an input before it is confirmed. `None` when it was kept
    /// before (a platform retry): confirm it and do nothing more.
    ///
    /// # Errors
    /// When the store fails: do not confirm the input.
    pub async fn keep(
        &self,
        channel: &str,
        kind: &str,
        key: &str,
        payload: &str,
    ) -> Result<Option<String>, store::Error> {
        self.store
            .keep_inbound(channel, kind, key, payload, LEASE_MS)
            .await
    }

    /// Processes the kept input `id` with `work` inside a panic boundary and
    /// records the outcome: done; or a failed attempt, retried by a later
    /// [`Inbound::run_once`]; or, on a panic or the last attempt, a dead
    /// letter.
    pub async fn process<F>(&self, id: &str, channel: &str, attempts: i64, work: F)
    where
        F: Future<Output = Result<(), String>>,
    {
        let outcome = match guarded(work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::Error(e)),
            Err(panic) => Err(panic),
        };
        let settled = match &outcome {
            Ok(()) => self.store.settle_inbound(id, Ok(())).await,
            Err(failure) => {
                let dead = matches!(failure, Failure::Panic(_)) || attempts + 1 >= MAX_ATTEMPTS;
                let backoff = 5_000i64.saturating_mul(1 << attempts.clamp(0, 10));
                let text = failure.to_string();
                if dead {
                    count_dead(channel, &text);
                } else {
                    tracing::warn!(channel, input = id, "input failed, will retry: {text}");
                }
                self.store
                    .settle_inbound(id, Err((&text, dead, self.store.now() + backoff)))
                    .await
            }
        };
        if let Err(e) = settled {
            // The input stays pending and leased; a later pass retries it.
            tracing::error!(
                channel,
                input = id,
                "could not record an input's outcome: {e}"
            );
        }
    }

    /// Quarantines an input that was not kept: stores it as a dead letter
    /// with its raw payload and the error, and counts it.
    ///
    /// # Errors
    /// When the store fails too (then the input must not be confirmed).
    pub async fn quarantine(
        &self,
        channel: &str,
        kind: &str,
        key: &str,
        payload: &str,
        error: &str,
    ) -> Result<String, store::Error> {
        let id = self
            .store
            .dead_letter(channel, kind, key, payload, error)
            .await?;
        count_dead(channel, error);
        Ok(id)
    }

    /// One pass: replays the pending inputs of the registered channels whose
    /// lease ran out (interrupted by a crash, due for a retry, or handed back
    /// by `switchboard dead-letters --retry`), and forgets old processed
    /// ones. Returns how many were replayed.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn run_once(&self) -> Result<usize, store::Error> {
        let channels: Vec<(String, Arc<dyn Replay>)> = self
            .channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, replay)| (name.clone(), replay.clone()))
            .collect();
        if channels.is_empty() {
            return Ok(0);
        }
        let names: Vec<String> = channels.iter().map(|(n, _)| n.clone()).collect();
        let items = self.store.claim_inbound(&names, 50, LEASE_MS).await?;
        let count = items.len();
        for item in items {
            let Some((_, replay)) = channels.iter().find(|(n, _)| *n == item.channel) else {
                continue;
            };
            let span = tracing::info_span!("replay", channel = %item.channel, input = %item.id, kind = %item.kind);
            let _enter = span.enter();
            self.process(&item.id, &item.channel, item.attempts, replay.replay(&item))
                .await;
        }
        self.store
            .prune_inbound(self.store.now() - KEEP_DONE_MS)
            .await?;
        Ok(count)
    }

    /// Runs [`Inbound::run_once`] every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!("inbound: {e}");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {},
            }
        }
    }
}

fn count_dead(channel: &str, error: &str) {
    tracing::error!(channel, "input quarantined as a dead letter: {error}");
    metrics::counter!("switchboard_dead_letters_total", "channel" => channel.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_caught_with_its_message() {
        let caught = guarded(async { panic!("byte index 1 is not a char boundary") }).await;
        assert_eq!(
            caught,
            Err::<(), _>(Failure::Panic("byte index 1 is not a char boundary".into()))
        );
        let formatted = guarded(async { panic!("{} {}", "formatted", 2) }).await;
        assert_eq!(
            formatted,
            Err::<(), _>(Failure::Panic("formatted 2".into()))
        );
        assert_eq!(guarded(async { 7 }).await, Ok(7));
    }
}
