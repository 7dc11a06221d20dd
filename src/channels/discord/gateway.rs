//! serenity's event handler: gateway events forwarded to [`Discord`], with
//! the retries and the quarantine serenity leaves to the handler.

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{Context, EventHandler, GuildChannel, Interaction, Message, Ready};

use super::intake::Intake;
use super::{CHANNEL, Discord};
use crate::inbound::{self, guarded};

/// serenity's event handler: forwards to [`Discord`].
pub(super) struct Handler {
    pub(super) discord: Discord,
    /// Messages' turns in the order they came (see [`Intake`]).
    pub(super) intake: Arc<Intake>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.intake.watch(ctx.shard_id, &ctx.shard);
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "discord gateway ready");
    }

    async fn message(&self, ctx: Context, message: Message) {
        let id = message.id;
        // Held until this message is received (or quarantined): the next
        // one in its channel waits for it.
        let _turn = self.intake.turn(id).await;
        // serenity gives no way to refuse an event, so a message that
        // cannot be stored is retried here, then quarantined; one that
        // panics is quarantined at once.
        let mut backoff = Duration::from_millis(200);
        let mut error = String::new();
        for attempt in 1..=inbound::MAX_ATTEMPTS {
            match guarded(self.discord.on_message(Some(&ctx), message.clone())).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => {
                    tracing::error!("discord: message {id} not stored, retrying: {e}");
                    error = format!("not stored after {attempt} attempts: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(panic) => {
                    error = panic.to_string();
                    break;
                }
            }
        }
        let payload = serde_json::to_string(&message).unwrap_or_default();
        let key = format!("msg:{}", id.get());
        if let Err(e) = self
            .discord
            .inner
            .inbound
            .quarantine(CHANNEL, "message", &key, &payload, &error)
            .await
        {
            tracing::error!(
                "discord: message {id} could not be stored or quarantined and was dropped: {e}"
            );
        }
    }

    async fn thread_create(&self, _ctx: Context, thread: GuildChannel) {
        self.discord.on_thread(&thread);
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let payload = serde_json::to_string(&interaction).unwrap_or_default();
        let key = format!("interaction:{}", interaction.id().get());
        if let Err(panic) = guarded(self.discord.on_interaction(interaction)).await {
            // An interaction token lives 15 minutes: kept for the record.
            if let Err(e) = self
                .discord
                .inner
                .inbound
                .quarantine(CHANNEL, "interaction", &key, &payload, &panic.to_string())
                .await
            {
                tracing::error!("discord: interaction {key} could not be quarantined: {e}");
            }
        }
    }
}
