//! Discord as a [`Platform`]: what the channel driver needs from the REST
//! API (messages that never ping, buttons as components, slash-command
//! responses, ephemeral follow-ups).

use std::sync::atomic::{AtomicBool, Ordering};

use serenity::all::{
    ButtonStyle, CreateActionRow, CreateButton, CreateInteractionResponseFollowup, CreateMessage,
    EditMessage, MessageId,
};

use super::errors::{is_transient, is_unreachable, nonce};
use super::*;
use crate::assistant::Reply;
use crate::channels::driver::Platform;
use crate::delivery::{self, Button, Target};

/// Where an answer goes in a channel, DM or thread.
#[derive(Debug, Clone)]
pub struct Place {
    pub(super) channel: ChannelId,
    pub(super) kind: PlaceKind,
    pub(super) reply_to: Option<MessageId>,
    /// The customer, when known: the only user an answer may mention.
    pub(super) customer: Option<UserId>,
}

impl Place {
    pub(super) fn reply_to(message: &Message, kind: PlaceKind) -> Self {
        Self {
            channel: message.channel_id,
            kind,
            // In DMs and threads the answer follows the question anyway.
            reply_to: (kind == PlaceKind::Elsewhere).then_some(message.id),
            customer: Some(message.author.id),
        }
    }

    /// The conversation's place key: `dm:ID`, `thread:ID` or `ch:ID`.
    pub(super) fn key(&self) -> String {
        let id = self.channel.get();
        match self.kind {
            PlaceKind::Dm => format!("dm:{id}"),
            PlaceKind::HelpChannel | PlaceKind::HelpThread => format!("thread:{id}"),
            PlaceKind::Staff | PlaceKind::Elsewhere => format!("ch:{id}"),
        }
    }

    pub(super) fn from_key(key: &str, customer: Option<UserId>) -> Option<Self> {
        let (kind, id) = key.split_once(':')?;
        let kind = match kind {
            "dm" => PlaceKind::Dm,
            "thread" => PlaceKind::HelpThread,
            "ch" => PlaceKind::Elsewhere,
            _ => return None,
        };
        let id: u64 = id.parse().ok().filter(|&id| id != 0)?;
        Some(Self {
            channel: ChannelId::new(id),
            kind,
            reply_to: None,
            customer,
        })
    }

    /// Answers never ping anyone: no `@everyone`, roles or users, and a
    /// reply does not ping its author.
    pub(super) fn mentions(&self) -> CreateAllowedMentions {
        CreateAllowedMentions::new().replied_user(false)
    }
}

/// Where an answer is written: a channel, or the response to a slash
/// command (its deferred original response, then follow-ups).
#[derive(Debug, Clone)]
pub enum Surface {
    /// A channel, DM or thread.
    Channel(Place),
    /// A slash command's response.
    Command {
        /// Where the command was used.
        place: Place,
        /// The command.
        command: Arc<CommandInteraction>,
        /// Whether the original response has been written.
        responded: Arc<AtomicBool>,
    },
}

impl Surface {
    pub(super) fn command(place: Place, command: CommandInteraction) -> Self {
        Self::Command {
            place,
            command: Arc::new(command),
            responded: Arc::new(AtomicBool::new(false)),
        }
    }

    fn place(&self) -> &Place {
        match self {
            Self::Channel(place) | Self::Command { place, .. } => place,
        }
    }
}

/// A message of an answer.
#[derive(Debug, Clone, Copy)]
pub enum Sent {
    /// A message.
    Message(MessageId),
    /// A command's original (deferred) response.
    Original,
}

#[async_trait::async_trait]
impl Platform for Discord {
    const CHANNEL: &'static str = CHANNEL;
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    type Place = Surface;
    type Id = Sent;
    type Error = serenity::Error;
    type Press = ComponentInteraction;

    fn core(&self) -> &ChannelCore {
        &self.inner.core
    }

    fn key(surface: &Surface) -> String {
        surface.place().key()
    }

    fn place_of(target: &Target) -> Option<Surface> {
        let customer = target
            .customer_id
            .parse::<u64>()
            .ok()
            .filter(|&id| id != 0)
            .map(UserId::new);
        Place::from_key(&target.thread, customer).map(Surface::Channel)
    }

    fn target_of(surface: &Surface) -> Option<Target> {
        let Surface::Channel(place) = surface else {
            return None; // a command's token expires: nothing to retry
        };
        place.customer.map(|customer| Target {
            channel: CHANNEL.into(),
            customer_id: customer.get().to_string(),
            thread: place.key(),
        })
    }

    fn message_ref(sent: Sent) -> String {
        match sent {
            Sent::Message(id) => id.get().to_string(),
            Sent::Original => "original".into(),
        }
    }

    fn partial_limit(&self, _place: &Self::Place) -> usize {
        render::LIMIT - 100
    }

    fn render_partial(&self, text: &str) -> String {
        text.to_string()
    }

    fn render_reply(&self, reply: &Reply) -> Vec<String> {
        render::with_sources(&reply.answer, &reply.sources)
    }

    fn render_text(&self, text: &str) -> Vec<String> {
        render::split(text)
    }

    /// In a shared channel, name the customer (without pinging); the first
    /// part keeps room for the mention.
    fn render_delivery(&self, surface: &Surface, text: &str) -> Vec<String> {
        let place = surface.place();
        match (place.kind, place.customer) {
            (PlaceKind::Elsewhere, Some(user)) => {
                render::split_prefixed(&format!("<@{user}> "), text)
            }
            _ => render::split(text),
        }
    }

    fn awaits_answer(surface: &Surface) -> bool {
        matches!(surface, Surface::Command { .. })
    }

    async fn send(
        &self,
        surface: &Surface,
        text: &str,
        buttons: &[Vec<Button>],
        key: Option<&str>,
    ) -> Result<Sent, serenity::Error> {
        let http = &self.inner.http;
        match surface {
            Surface::Channel(place) => self
                .post(place, text, buttons, key.map(nonce))
                .await
                .map(Sent::Message),
            Surface::Command {
                command, responded, ..
            } if responded.load(Ordering::SeqCst) => command
                .create_followup(http, followup(text, buttons))
                .await
                .map(|m| Sent::Message(m.id)),
            Surface::Command {
                command, responded, ..
            } => {
                command.edit_response(http, original(text, buttons)).await?;
                responded.store(true, Ordering::SeqCst);
                Ok(Sent::Original)
            }
        }
    }

    async fn edit(
        &self,
        surface: &Surface,
        sent: Sent,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), serenity::Error> {
        let http = &self.inner.http;
        match (surface, sent) {
            (Surface::Channel(place), Sent::Message(id)) => {
                let edit = EditMessage::new()
                    .content(text)
                    .allowed_mentions(place.mentions())
                    .components(components(buttons));
                place.channel.edit_message(http, id, edit).await.map(|_| ())
            }
            (Surface::Command { command, .. }, Sent::Original) => command
                .edit_response(http, original(text, buttons))
                .await
                .map(|_| ()),
            (Surface::Command { command, .. }, Sent::Message(id)) => command
                .edit_followup(http, id, followup(text, buttons))
                .await
                .map(|_| ()),
            (Surface::Channel(_), Sent::Original) => Ok(()),
        }
    }

    async fn typing(&self, surface: &Surface) {
        if let Surface::Channel(place) = surface {
            let _ = place.channel.broadcast_typing(&self.inner.http).await;
        }
    }

    fn typing_every() -> Option<Duration> {
        Some(TYPING_EVERY)
    }

    /// A click was acknowledged when it arrived; a text goes to the
    /// presser alone.
    async fn acknowledge(&self, press: &ComponentInteraction, text: Option<&str>) {
        let Some(text) = text else {
            return;
        };
        let message = CreateInteractionResponseFollowup::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(CreateAllowedMentions::new());
        if let Err(e) = press.create_followup(&self.inner.http, message).await {
            tracing::warn!("discord: could not answer a click: {e}");
        }
    }

    fn failure(error: &serenity::Error) -> delivery::Error {
        if is_unreachable(error) {
            delivery::Error::Unreachable(error.to_string())
        } else if is_transient(error) || status(error).is_none() {
            delivery::Error::Temporary(error.to_string())
        } else {
            delivery::Error::Permanent(error.to_string())
        }
    }

    /// Retries 429s and 5xx with back-off. serenity's rate limiter, when
    /// on, has already waited out any `retry_after` before a 429 reaches
    /// here; without it (a proxy) a 429 waits at least a second.
    fn retry_wait(error: &serenity::Error, backoff: Duration) -> Option<Duration> {
        let pause = if status(error) == Some(429) {
            backoff.max(Duration::from_millis(1000))
        } else {
            backoff
        };
        is_transient(error).then(|| {
            tracing::debug!("discord: retrying in {pause:?}: {error}");
            pause
        })
    }
}

impl Discord {
    /// Posts a message in a channel (one attempt); with `nonce`, Discord
    /// refuses to create it twice.
    pub(super) async fn post(
        &self,
        place: &Place,
        content: &str,
        buttons: &[Vec<Button>],
        nonce: Option<String>,
    ) -> Result<MessageId, serenity::Error> {
        let mut builder = CreateMessage::new()
            .content(content)
            .allowed_mentions(place.mentions())
            .components(components(buttons));
        if let Some(nonce) = nonce {
            builder = builder
                .nonce(serenity::all::Nonce::String(nonce))
                .enforce_nonce(true);
        }
        if let Some(id) = place.reply_to {
            builder = builder.reference_message((place.channel, id));
        }
        let sent = place
            .channel
            .send_message(&self.inner.http, builder)
            .await?;
        Ok(sent.id)
    }
}

/// A command's original response: text and buttons, no pings.
fn original(text: &str, buttons: &[Vec<Button>]) -> EditInteractionResponse {
    EditInteractionResponse::new()
        .content(text)
        .allowed_mentions(CreateAllowedMentions::new())
        .components(components(buttons))
}

/// A command's follow-up message: text and buttons, no pings.
fn followup(text: &str, buttons: &[Vec<Button>]) -> CreateInteractionResponseFollowup {
    CreateInteractionResponseFollowup::new()
        .content(text)
        .allowed_mentions(CreateAllowedMentions::new())
        .components(components(buttons))
}

/// Buttons as action rows (Discord allows 5 buttons a row, 5 rows).
pub(super) fn components(buttons: &[Vec<Button>]) -> Vec<CreateActionRow> {
    buttons
        .iter()
        .flat_map(|row| row.chunks(5))
        .take(5)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|b| {
                        let label: String = b.label.chars().take(80).collect();
                        CreateButton::new(b.data.chars().take(100).collect::<String>())
                            .label(label)
                            .style(ButtonStyle::Secondary)
                    })
                    .collect(),
            )
        })
        .collect()
}
