//! The order messages come in on the gateway.
//!
//! serenity hands every event to a task of its own, and those tasks start
//! in any order (tokio runs the task spawned last first when it can), so
//! two messages that arrive together could be stored, and answered, in the
//! wrong order. serenity calls its collectors in the shard's own loop, in
//! gateway order, before it spawns the handlers: a collector takes each
//! message's turn in its channel's queue there, and the message's handler
//! waits for the messages before it to be received before receiving its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serenity::all::{Event, MessageId, ShardId, ShardMessenger};
use serenity::gateway::CollectorCallback;

use crate::channels::{PlaceQueues, Ticket};

/// Turns taken in gateway order, waiting for their messages' handlers.
#[derive(Default)]
pub(super) struct Intake {
    queues: PlaceQueues,
    arrived: Mutex<HashMap<MessageId, Ticket>>,
    /// The newest collector of each shard; an older one (from before the
    /// shard identified again) removes itself.
    generations: Mutex<HashMap<ShardId, Arc<AtomicU64>>>,
}

impl Intake {
    /// Watches a shard's messages (called on READY, once per session).
    pub(super) fn watch(self: &Arc<Self>, shard: ShardId, messenger: &ShardMessenger) {
        let generation = {
            let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(generations.entry(shard).or_default())
        };
        let mine = generation.fetch_add(1, Ordering::SeqCst) + 1;
        let intake = Arc::downgrade(self);
        messenger.add_collector(CollectorCallback(Box::new(move |event| {
            let Some(intake) = intake.upgrade() else {
                return false;
            };
            if generation.load(Ordering::SeqCst) != mine {
                return false;
            }
            if let Event::MessageCreate(created) = event {
                intake.arrived(created.message.channel_id.get(), created.message.id);
            }
            true
        })));
    }

    /// A message came in: its turn in its channel.
    fn arrived(&self, channel: u64, id: MessageId) {
        let ticket = self.queues.ticket(&channel.to_string());
        let mut arrived = self.arrived.lock().unwrap_or_else(|p| p.into_inner());
        if arrived.len() > 10_000 {
            // Handlers that never ran (a shut-down runtime): nothing waits
            // on a turn that old.
            arrived.clear();
        }
        arrived.insert(id, ticket);
    }

    /// The turn of a message, once the messages before it in its channel
    /// are received; hold it while receiving this one. `None` when the
    /// message came before the shard was watched (it is received at once).
    pub(super) async fn turn(&self, id: MessageId) -> Option<Ticket> {
        let ticket = self
            .arrived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let mut ticket = ticket?;
        ticket.wait().await;
        Some(ticket)
    }
}
