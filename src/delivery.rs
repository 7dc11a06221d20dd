//! Messages the core sends on its own initiative (an agent's reply, a queue
//! notice, a survey) reach the customer through the channel they wrote on.
//!
//! Each channel implements [`Deliver`] and registers it in [`Registry`]; the
//! core never names a channel. A send that finally fails is put in the
//! store's outbox and retried later (see [`crate::store::Store::enqueue_outbox`]),
//! so nothing is dropped silently.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::conversation::{Actor, EventKind};
use crate::ids::ConversationId;
pub use crate::outgoing::{Button, Outgoing, Target};

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Worth retrying later (rate limit, 5xx, network).
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// The customer cannot be reached (blocked the bot, left the server).
    #[error("customer unreachable: {0}")]
    Unreachable(String),
    /// Will never work (bad request); not retried.
    #[error("delivery refused: {0}")]
    Permanent(String),
    /// No channel registered under this name (e.g. console).
    #[error("no delivery for channel `{0}`")]
    NoChannel(String),
}

/// A channel's way of sending to a customer.
#[async_trait::async_trait]
pub trait Deliver: Send + Sync {
    /// Sends `message`; returns the platform's message id.
    ///
    /// # Errors
    /// [`Error::Temporary`] to have it retried from the outbox.
    async fn deliver(&self, target: &Target, message: &Outgoing) -> Result<Option<String>, Error>;

    /// [`Deliver::deliver`] with an idempotency key: the same `key` sent
    /// again (a retry after a crash between sending and recording it) must
    /// not show the customer a second message where the platform can
    /// prevent it (Discord's `enforce_nonce`). Without such a mark on the
    /// platform it is a plain send.
    ///
    /// # Errors
    /// As [`Deliver::deliver`].
    async fn deliver_keyed(
        &self,
        target: &Target,
        message: &Outgoing,
        key: &str,
    ) -> Result<Option<String>, Error> {
        let _ = key;
        self.deliver(target, message).await
    }
}

/// The channels that can deliver, by name.
#[derive(Clone, Default)]
pub struct Registry {
    channels: Arc<RwLock<HashMap<String, Arc<dyn Deliver>>>>,
}

impl Registry {
    /// Registers `channel` (replacing an earlier registration).
    pub fn register(&self, channel: &str, deliver: Arc<dyn Deliver>) {
        self.channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.to_string(), deliver);
    }

    /// Whether `channel` can receive messages from the core.
    pub fn can_deliver(&self, channel: &str) -> bool {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(channel)
    }

    /// Sends through the target's channel.
    ///
    /// # Errors
    /// [`Error::NoChannel`] or the channel's error.
    pub async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, Error> {
        self.channel(target)?.deliver(target, message).await
    }

    /// Sends through the target's channel with an idempotency key (see
    /// [`Deliver::deliver_keyed`]).
    ///
    /// # Errors
    /// [`Error::NoChannel`] or the channel's error.
    pub async fn deliver_keyed(
        &self,
        target: &Target,
        message: &Outgoing,
        key: &str,
    ) -> Result<Option<String>, Error> {
        self.channel(target)?
            .deliver_keyed(target, message, key)
            .await
    }

    fn channel(&self, target: &Target) -> Result<Arc<dyn Deliver>, Error> {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&target.channel)
            .cloned()
            .ok_or_else(|| Error::NoChannel(target.channel.clone()))
    }
}

/// An answer with its sources as plain text, for channels without markup
/// and for the outbox: a `• title — url` line per source.
pub fn plain_reply(answer: &str, sources: &[crate::store::SourceRef]) -> String {
    let mut text = answer.to_string();
    for source in sources {
        text.push_str(&format!("\n• {}", source.title));
        if let Some(url) = &source.url {
            text.push_str(&format!(" — {url}"));
        }
    }
    text
}

/// How long a send that failed for now waits in the outbox before its
/// first retry.
const QUEUE_MS: crate::clock::Millis = 5_000;

/// Who retries a send that failed for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The outbox ([`run_outbox`]).
    Outbox,
    /// The caller, which keeps the message itself (a survey reschedules
    /// itself, and expires).
    Caller,
}

/// What became of a message given to [`send_or_queue`].
#[derive(Debug)]
pub enum Sent {
    /// Delivered; the platform's message id.
    Delivered(Option<String>),
    /// Failed for now; kept in the outbox and retried.
    Queued,
    /// Failed for now; the caller keeps it ([`Retry::Caller`]).
    Held(Error),
    /// Failed for good (unreachable customer, refused message): recorded,
    /// never queued.
    Failed(Error),
}

/// The one delivery policy: deliver through the target's channel, or queue
/// a retryable failure in the outbox (or leave it to the caller, with
/// [`Retry::Caller`]); never queue a permanent failure. An unreachable
/// customer is marked so; a failure for good is recorded on the
/// conversation (`delivery_failed`) when it is known.
///
/// # Errors
/// On a database failure.
pub async fn send_or_queue(
    registry: &Registry,
    store: &crate::store::Store,
    target: &Target,
    message: &Outgoing,
    conversation: Option<&ConversationId>,
    retry: Retry,
) -> Result<Sent, crate::store::Error> {
    match registry.deliver(target, message).await {
        Ok(id) => Ok(Sent::Delivered(id)),
        Err(e) => settle_failure(store, target, message, conversation, e, retry).await,
    }
}

/// [`send_or_queue`]'s policy for a send that already failed (a channel
/// that sent by itself and gave up after its own retries).
///
/// # Errors
/// On a database failure.
pub async fn settle_failure(
    store: &crate::store::Store,
    target: &Target,
    message: &Outgoing,
    conversation: Option<&ConversationId>,
    error: Error,
    retry: Retry,
) -> Result<Sent, crate::store::Error> {
    match error {
        Error::Temporary(_) | Error::NoChannel(_) if retry == Retry::Caller => {
            Ok(Sent::Held(error))
        }
        Error::Temporary(_) | Error::NoChannel(_) => {
            tracing::warn!(
                channel = %target.channel,
                thread = %target.thread,
                "send failed, queued for retry: {error}"
            );
            let next = store.now() + QUEUE_MS;
            store
                .enqueue_outbox(
                    target,
                    message,
                    conversation.map(|c| c.as_str()),
                    &error.to_string(),
                    next,
                )
                .await?;
            Ok(Sent::Queued)
        }
        Error::Unreachable(ref why) => {
            tracing::warn!(channel = %target.channel, thread = %target.thread, "customer unreachable: {why}");
            if let Some(customer) = store
                .find_customer(&target.channel, &target.customer_id)
                .await?
            {
                store.set_unreachable(&customer.id, true).await?;
            }
            if let Some(conversation) = conversation {
                let detail = format!("unreachable: {why}");
                store
                    .record_event(
                        conversation,
                        EventKind::DeliveryFailed,
                        Actor::System,
                        Some(&detail),
                    )
                    .await?;
            }
            Ok(Sent::Failed(error))
        }
        Error::Permanent(ref why) => {
            tracing::warn!(channel = %target.channel, thread = %target.thread, "message refused, not retried: {why}");
            if let Some(conversation) = conversation {
                store
                    .record_event(
                        conversation,
                        EventKind::DeliveryFailed,
                        Actor::System,
                        Some(why),
                    )
                    .await?;
            }
            Ok(Sent::Failed(error))
        }
    }
}

/// How long a claimed outbox item belongs to the pass sending it.
const LEASE_MS: crate::clock::Millis = 60_000;

/// Retries the outbox until `shutdown`: every `every`, claims due messages
/// for the channels this process can deliver and sends them. Success
/// removes an item; a temporary failure retries with exponential backoff
/// (up to an hour apart); a permanent failure or an unreachable customer is
/// kept as `failed`, for the record.
pub async fn run_outbox(
    registry: Registry,
    store: crate::store::Store,
    every: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = retry_outbox_once(&registry, &store).await {
            tracing::warn!("outbox: {e}");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(every) => {},
        }
    }
}

/// One pass over the due outbox items; returns how many were delivered.
///
/// # Errors
/// On a database failure.
#[tracing::instrument(name = "outbox", skip_all)]
pub async fn retry_outbox_once(
    registry: &Registry,
    store: &crate::store::Store,
) -> Result<usize, crate::store::Error> {
    let channels: Vec<String> = registry
        .channels
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    if channels.is_empty() {
        return Ok(0);
    }
    let mut delivered = 0;
    for item in store.claim_outbox(&channels, 50, LEASE_MS).await? {
        // The item's id is its idempotency key, and its lease is renewed
        // while a slow send goes on, so no other pass sends it meanwhile;
        // only a crash between sending and settling sends it once more.
        let send = registry.deliver_keyed(&item.target, &item.message, &item.id);
        tokio::pin!(send);
        let outcome = loop {
            tokio::select! {
                outcome = &mut send => break outcome,
                () = tokio::time::sleep(std::time::Duration::from_millis(LEASE_MS as u64 / 3)) => {
                    store.renew_outbox_lease(&item.id, store.now() + LEASE_MS).await?;
                }
            }
        };
        match outcome {
            Ok(_) => {
                delivered += 1;
                store.settle_outbox(&item.id, Ok(())).await?;
            }
            Err(Error::Temporary(why)) | Err(Error::NoChannel(why)) => {
                let backoff = 5_000i64
                    .saturating_mul(1 << item.attempts.clamp(0, 10))
                    .min(3_600_000);
                let next = store.now() + backoff;
                store
                    .settle_outbox(&item.id, Err((&why, Some(next))))
                    .await?;
            }
            Err(e @ (Error::Permanent(_) | Error::Unreachable(_))) => {
                tracing::warn!(channel = %item.target.channel, "giving up on a message: {e}");
                store
                    .settle_outbox(&item.id, Err((&e.to_string(), None)))
                    .await?;
                if let Some(conversation) = &item.conversation_id {
                    store
                        .record_event(
                            conversation,
                            EventKind::DeliveryFailed,
                            Actor::System,
                            Some(&e.to_string()),
                        )
                        .await?;
                }
            }
        }
    }
    Ok(delivered)
}
