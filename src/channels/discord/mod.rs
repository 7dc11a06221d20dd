//! The Discord channel (serenity: REST + gateway websocket).
//!
//! Customers write in DMs, mention the bot (or reply to it) in server
//! channels, use the `/ask`, `/human` and `/new` slash commands, or post in
//! a help channel (`discord.help_channel_ids`): every new message there gets
//! a thread of its own, every new post in a help forum is answered in its
//! thread. Each message is stored by the core before it is answered and
//! de-duplicated by its Discord id, so a gateway resume that re-delivers
//! events never answers twice. Answers are streamed into one message edited
//! at most about once a second; mentions in answers never ping.
//!
//! Agents work hand-offs in `discord.agents_channel_id`: a card per
//! conversation with a thread under it, where whatever an agent writes goes
//! to the customer on the customer's own channel.

mod address;
mod errors;
mod gateway;
mod intake;
mod places;
mod platform;
pub mod render;
mod replay;
mod staff;

use errors::{gateway_hint, http_client, retrying, status};
use places::PlaceKind;
pub use platform::{Place, Sent, Surface};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{
    ChannelId, Client, ClientBuilder, Command, CommandDataOptionValue, CommandInteraction,
    CommandOptionType, ComponentInteraction, Context, CreateAllowedMentions, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseMessage, CreateThread,
    EditInteractionResponse, GatewayIntents, GuildChannel, GuildId, Http, Interaction, Message,
    UserId,
};

use super::driver::{self, ChannelCore, StaffMember, StaffMessage};
use super::text::{self, discord::NOT_AN_AGENT};
use crate::assistant::{Assistant, Turn};
use crate::button::ButtonData;
use crate::config::DiscordSettings;
use crate::desk::Desk;
use crate::inbound::Inbound;

/// Channel name in the log.
pub const CHANNEL: &str = "discord";
/// Discord shows "typing…" for 10 s; renewed while the answer is awaited.
const TYPING_EVERY: Duration = Duration::from_secs(8);

/// A start-up failure, in one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token.
    #[error(
        "discord.enabled is true but DISCORD_TOKEN is not set; create a bot in the Discord developer portal and export its token"
    )]
    NoToken,
    /// Discord refused the token.
    #[error("Discord refused the bot token ({0}); check DISCORD_TOKEN")]
    BadToken(String),
    /// The API cannot be reached.
    #[error("cannot reach the Discord API at {0}: {1}; check discord.api_url and the network")]
    Unreachable(String, String),
    /// The gateway stopped for good (e.g. intents not enabled in the portal).
    #[error("Discord gateway: {0}")]
    Gateway(String),
}

/// The running channel. Cheap to clone.
#[derive(Clone)]
pub struct Discord {
    inner: Arc<Inner>,
}

struct Inner {
    http: Arc<Http>,
    token: crate::config::Secret,
    api_url: String,
    core: ChannelCore,
    inbound: Inbound,
    bot_id: UserId,
    help_channels: HashSet<ChannelId>,
    agents_channel: Option<ChannelId>,
    guild_id: Option<GuildId>,
    /// The gateway shards this process runs: first, last, total.
    shards: (u32, u32, u32),
    /// Threads known to belong to a help channel (customer threads) or to
    /// the agents' channel (staff threads), learnt from THREAD_CREATE, from
    /// the threads the bot opens and from the cache.
    threads: Mutex<HashMap<ChannelId, ChannelId>>,
}

impl Discord {
    /// Connects over REST: checks the token and the gateway, registers the
    /// slash commands and plugs the channel into the core (delivery, staff
    /// desk). [`Discord::run`] then opens the gateway.
    ///
    /// # Errors
    /// [`Error`] naming what is wrong.
    pub async fn connect(
        settings: &DiscordSettings,
        assistant: Assistant,
        desk: Desk,
        inbound: Inbound,
    ) -> Result<Self, Error> {
        let token = settings.token.as_ref().ok_or(Error::NoToken)?;
        let http = http_client(token.expose(), &settings.api_url);
        let me = match http.get_current_user().await {
            Ok(me) => me,
            Err(e) if status(&e).is_some_and(|s| s == 401 || s == 403) => {
                return Err(Error::BadToken(e.to_string()));
            }
            Err(e) => return Err(Error::Unreachable(settings.api_url.clone(), e.to_string())),
        };
        if let Err(e) = http.get_gateway().await {
            return Err(Error::Unreachable(
                format!("{}/api/v10/gateway", settings.api_url),
                e.to_string(),
            ));
        }
        match http.get_current_application_info().await {
            Ok(app) => http.set_application_id(app.id),
            // Bots' application id is their user id.
            Err(_) => http.set_application_id(me.id.get().into()),
        }
        let discord = Self {
            inner: Arc::new(Inner {
                http: Arc::new(http),
                token: token.clone(),
                api_url: settings.api_url.clone(),
                core: ChannelCore::new(assistant, desk.clone()),
                inbound: inbound.clone(),
                bot_id: me.id,
                help_channels: settings
                    .help_channel_ids
                    .iter()
                    .map(|&id| ChannelId::new(id))
                    .collect(),
                agents_channel: settings.agents_channel_id.map(ChannelId::new),
                guild_id: settings.guild_id.map(GuildId::new),
                shards: settings.shard_range(),
                threads: Mutex::new(HashMap::new()),
            }),
        };
        discord.register_commands().await;
        desk.registry()
            .register(CHANNEL, Arc::new(driver::Delivery(discord.clone())));
        inbound.register(CHANNEL, Arc::new(discord.clone()));
        if discord.inner.agents_channel.is_some() {
            desk.add_staff_desk(Arc::new(driver::Staff(discord.clone())));
        }
        tracing::info!(bot = %me.name, "discord connected");
        Ok(discord)
    }

    /// The gateway intents needed: guild and DM messages, and message
    /// content only where the bot must read messages that do not mention
    /// it (help channels, the agents' channel).
    pub fn intents(&self) -> GatewayIntents {
        let mut intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES;
        if !self.inner.help_channels.is_empty() || self.inner.agents_channel.is_some() {
            intents |= GatewayIntents::MESSAGE_CONTENT;
        }
        intents
    }

    async fn register_commands(&self) {
        let commands: Vec<CreateCommand> = text::discord::COMMANDS
            .iter()
            .map(|(name, description)| {
                let command = CreateCommand::new(*name).description(*description);
                if *name == "ask" {
                    command.add_option(
                        CreateCommandOption::new(
                            CommandOptionType::String,
                            "question",
                            "Your question",
                        )
                        .required(true),
                    )
                } else {
                    command
                }
            })
            .collect();
        let http = &self.inner.http;
        let result = match self.inner.guild_id {
            Some(guild) => retrying(|| guild.set_commands(http, commands.clone()))
                .await
                .map(|_| ()),
            None => retrying(|| Command::set_global_commands(http, commands.clone()))
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!("discord: registering slash commands failed: {e}");
        }
    }

    /// Runs the gateway until `shutdown`. serenity reconnects (and resumes)
    /// by itself after a drop.
    ///
    /// # Errors
    /// When the gateway refuses the session for good (bad token, intents
    /// not enabled in the developer portal).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let intents = self.intents();
        // The gateway client gets an HTTP client of its own, set up alike.
        let http = http_client(self.inner.token.expose(), &self.inner.api_url);
        if let Some(id) = self.inner.http.application_id() {
            http.set_application_id(id);
        }
        let mut client: Client = ClientBuilder::new_with_http(http, intents)
            .event_handler(gateway::Handler {
                discord: self.clone(),
                intake: Default::default(),
            })
            .await
            .map_err(|e| Error::Gateway(e.to_string()))?;
        let shards = client.shard_manager.clone();
        let (first, last, total) = self.inner.shards;
        if total > 1 {
            tracing::info!(
                first,
                last,
                total,
                "discord: running shards {first}-{last} of {total}"
            );
        }
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {
                shards.shutdown_all().await;
                Ok(())
            }
            // serenity's range is inclusive at both ends (`4..7` runs 4 to 7).
            result = client.start_shard_range(first..last, total) => {
                result.map_err(|e| Error::Gateway(gateway_hint(&e)))
            }
        }
    }

    /// A MESSAGE_CREATE. Stores what must be stored, then answers in the
    /// background. Returns `Err` only when the message could not be stored.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn on_message(
        &self,
        ctx: Option<&Context>,
        message: Message,
    ) -> Result<(), crate::assistant::Error> {
        if message.author.bot
            || message.webhook_id.is_some()
            || message.author.id == self.inner.bot_id
        {
            return Ok(());
        }
        let kind = self.place_kind(ctx, &message).await;
        if kind == PlaceKind::Staff {
            // Awaited, so an agent's messages reach the customer in order.
            self.agent_message(message).await;
            return Ok(());
        }
        let addressed = self.addressed_text(&message, kind);
        let Some(text) = addressed else {
            if message.content.trim().is_empty()
                && !message.attachments.is_empty()
                && kind != PlaceKind::Elsewhere
            {
                let place = Surface::Channel(Place::reply_to(&message, kind));
                driver::say_in_order(self, place, text::TEXT_ONLY);
            }
            return Ok(());
        };
        let mut place = Place::reply_to(&message, kind);
        if kind == PlaceKind::HelpChannel {
            // One thread per question keeps conversations apart.
            place = self.open_thread(&message, &text).await.unwrap_or(place);
        }
        let turn = Turn {
            channel: CHANNEL.into(),
            customer_id: message.author.id.get().to_string(),
            customer_name: Some(display_name(&message.author)),
            thread: place.key(),
            platform_message_id: Some(format!("msg:{}", message.id.get())),
            text,
        };
        driver::receive(self, Surface::Channel(place), turn).await
    }

    /// An INTERACTION_CREATE: slash commands and button clicks. Every
    /// interaction is acknowledged at once, well inside Discord's 3 s.
    pub async fn on_interaction(&self, interaction: Interaction) {
        match interaction {
            Interaction::Command(command) => self.on_command(command).await,
            Interaction::Component(component) => self.on_component(component).await,
            _ => {}
        }
    }

    async fn on_command(&self, command: CommandInteraction) {
        let http = &self.inner.http;
        // Deferred: "thinking…" until the answer edits the response.
        if let Err(e) = command
            .create_response(
                http,
                CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new()),
            )
            .await
        {
            tracing::warn!("discord: could not acknowledge /{}: {e}", command.data.name);
            return;
        }
        let name = command.data.name.clone();
        let text = match name.as_str() {
            "ask" => command
                .data
                .options
                .iter()
                .find(|o| o.name == "question")
                .and_then(|o| match &o.value {
                    CommandDataOptionValue::String(s) => Some(s.trim().to_string()),
                    _ => None,
                })
                .unwrap_or_default(),
            other => format!("/{other}"),
        };
        let (place, turn) = self.interaction_turn(
            command.guild_id,
            command.channel_id,
            &command.user,
            command.id.get(),
            text,
        );
        let surface = Surface::command(place, command);
        if turn.text.is_empty() {
            driver::send_text(self, &surface, text::discord::ASK_WHAT, Vec::new()).await;
            return;
        }
        let received = match self.inner.core.assistant.receive(turn).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("discord: /{name} not stored: {e}");
                driver::send_text(self, &surface, text::NOT_STORED, Vec::new()).await;
                return;
            }
        };
        if received.is_duplicate() {
            return;
        }
        if let Err(e) = driver::answer_in_order(self, surface, received).await {
            tracing::error!("discord: /{name} not answered: {e}");
        }
    }

    /// Where an interaction's answer goes and the customer turn it makes.
    fn interaction_turn(
        &self,
        guild: Option<GuildId>,
        channel: ChannelId,
        user: &serenity::all::User,
        id: u64,
        text: String,
    ) -> (Place, Turn) {
        let kind = if guild.is_none() {
            PlaceKind::Dm
        } else {
            match self.threads().get(&channel) {
                Some(p) if self.inner.help_channels.contains(p) => PlaceKind::HelpThread,
                _ => PlaceKind::Elsewhere,
            }
        };
        let place = Place {
            channel,
            kind,
            reply_to: None,
            customer: Some(user.id),
        };
        let turn = Turn {
            channel: CHANNEL.into(),
            customer_id: user.id.get().to_string(),
            customer_name: Some(display_name(user)),
            thread: place.key(),
            platform_message_id: Some(format!("interaction:{id}")),
            text,
        };
        (place, turn)
    }

    /// A button click. It is acknowledged before anything else runs (the
    /// work behind it may take longer than Discord's 3 s): agents get a
    /// private "thinking…" that becomes the outcome, customers' clicks a
    /// silent acknowledgement followed by the answer.
    async fn on_component(&self, component: ComponentInteraction) {
        let http = &self.inner.http;
        let data = component.data.custom_id.clone();
        if let Some(ButtonData::Desk { .. }) = ButtonData::parse(&data) {
            let thinking = CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            );
            if let Err(e) = component.create_response(http, thinking).await {
                tracing::warn!("discord: could not acknowledge a click: {e}");
            }
            let member = self.staff_member(
                &component.user,
                component.member.as_ref().map(|m| &m.roles[..]),
            );
            let text = driver::staff_press(self, &data, &member, NOT_AN_AGENT).await;
            let edit = EditInteractionResponse::new()
                .content(text)
                .allowed_mentions(CreateAllowedMentions::new());
            if let Err(e) = retrying(|| component.edit_response(http, edit.clone())).await {
                tracing::warn!("discord: could not answer a click: {e}");
            }
            return;
        }
        if let Err(e) = component
            .create_response(http, CreateInteractionResponse::Acknowledge)
            .await
        {
            tracing::warn!("discord: could not acknowledge a click: {e}");
        }
        let (place, turn) = self.interaction_turn(
            component.guild_id,
            component.channel_id,
            &component.user,
            component.id.get(),
            data,
        );
        if let Err(e) = driver::press(self, Surface::Channel(place), &component, turn).await {
            tracing::error!("discord: button press failed: {e}");
        }
    }

    /// A user in the agents' channel: an agent by user id or role.
    fn staff_member(
        &self,
        user: &serenity::all::User,
        roles: Option<&[serenity::all::RoleId]>,
    ) -> StaffMember {
        let roles: Vec<u64> = roles.unwrap_or_default().iter().map(|r| r.get()).collect();
        let agent =
            self.inner
                .core
                .desk
                .agents()
                .by_discord(user.id.get(), &roles, &display_name(user));
        StaffMember::new::<Self>(agent, user.id.get())
    }

    /// An agent writing in the agents' channel or a staff thread.
    async fn agent_message(&self, message: Message) {
        let replied = message
            .referenced_message
            .as_ref()
            .map(|m| m.id)
            .or_else(|| message.message_reference.as_ref()?.message_id);
        let in_thread =
            message.channel_id != self.inner.agents_channel.unwrap_or(message.channel_id);
        let staff = StaffMessage {
            place: Surface::Channel(Place {
                channel: message.channel_id,
                kind: PlaceKind::Staff,
                reply_to: Some(message.id),
                customer: None,
            }),
            text: message.content.clone(),
            member: self.staff_member(
                &message.author,
                message.member.as_ref().map(|m| &m.roles[..]),
            ),
            thread: Some(format!("thread:{}", message.channel_id.get())),
            replied: replied.map(|id| driver::post_ref::<Self>(platform::Sent::Message(id))),
            ask_which: in_thread || message.referenced_message.is_some(),
        };
        driver::agent_message(self, staff, text::discord::WHICH_CONVERSATION, NOT_AN_AGENT).await;
    }
}

fn display_name(user: &serenity::all::User) -> String {
    user.global_name
        .clone()
        .unwrap_or_else(|| user.name.clone())
}

#[cfg(test)]
mod tests {
    use super::platform::components;
    use super::*;
    use crate::delivery::Button;

    #[test]
    fn place_keys_round_trip() {
        for key in ["dm:42", "thread:7", "ch:9"] {
            assert_eq!(Place::from_key(key, None).unwrap().key(), key);
        }
        assert!(Place::from_key("dm:0", None).is_none());
        assert!(Place::from_key("x:1", None).is_none());
        assert!(Place::from_key("dm:abc", None).is_none());
    }

    #[test]
    fn buttons_fit_discord_limits() {
        let row: Vec<Button> = (0..7)
            .map(|i| Button {
                label: "l".repeat(100),
                data: format!("{i}{}", "d".repeat(150)),
            })
            .collect();
        let rows = components(&[row]);
        assert_eq!(rows.len(), 2);
        let json = serde_json::to_value(&rows).unwrap();
        for row in json.as_array().unwrap() {
            for b in row["components"].as_array().unwrap() {
                assert!(b["label"].as_str().unwrap().chars().count() <= 80);
                assert!(b["custom_id"].as_str().unwrap().chars().count() <= 100);
            }
        }
    }

    #[test]
    fn answers_never_ping() {
        let place = Place::from_key("ch:1", Some(UserId::new(5))).unwrap();
        let json = serde_json::to_value(place.mentions()).unwrap();
        assert_eq!(json["parse"], serde_json::json!([]));
        assert_eq!(json["replied_user"], serde_json::json!(false));
    }
}
