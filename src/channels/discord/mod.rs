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
mod outgoing;
pub mod render;
mod staff;

use errors::{
    gateway_hint, http_client, is_transient, is_unreachable, part_nonce, retrying, status,
};
use staff::{StaffDeskImpl, post_ref};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{
    ButtonStyle, ChannelId, Client, ClientBuilder, Command, CommandDataOptionValue,
    CommandInteraction, CommandOptionType, ComponentInteraction, Context, CreateActionRow,
    CreateAllowedMentions, CreateButton, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, CreateThread, EditInteractionResponse, EditMessage, EventHandler,
    GatewayIntents, GuildChannel, GuildId, Http, HttpBuilder, Interaction, Message, MessageId,
    Ready, UserId,
};
use serenity::http::HttpError;
use tokio::sync::mpsc;

use super::PlaceLocks;
use super::stream::{Sink, Streamer};
use crate::assistant::{Assistant, Pressed, Reply, Turn};
use crate::button::{ButtonData, NO_LONGER_AVAILABLE};
use crate::config::DiscordSettings;
use crate::delivery::{self, Button, Deliver, Outgoing, Target};
use crate::desk::{Card, Desk, PostedCard, StaffDesk};
use crate::inbound::{self, Inbound, Replay, guarded};
use crate::store::{InboundItem, Store};

/// Channel name in the log.
pub const CHANNEL: &str = "discord";
/// Discord shows "typing…" for 10 s; renewed while the answer is awaited.
const TYPING_EVERY: Duration = Duration::from_secs(8);

/// Reply to attachments without text.
pub const TEXT_ONLY: &str = "Sorry, I can read text only for now. Please type your question.";
/// Answer to a 👍/👎 press.
pub const FEEDBACK_THANKS: &str = "Thanks for the feedback!";
/// Shown to someone who is not a configured agent.
pub const NOT_AN_AGENT: &str = "Only configured agents can do that here. An admin can add your Discord user id as `discord_id` under [[agents]], or give you a role listed in discord.agent_role_ids.";
/// Shown in the agents' channel when a message cannot be tied to a conversation.
pub const WHICH_CONVERSATION: &str =
    "Which conversation? Write in the thread under a hand-off card to answer the customer.";
/// Prefix of a customer's message forwarded to agents.
pub const CUSTOMER_PREFIX: &str = "👤 Customer: ";
/// Prefix of a status notice in a staff thread.
pub const NOTICE_PREFIX: &str = "ℹ️ ";
/// `/ask` without a question.
pub const ASK_WHAT: &str = "What is your question? Use `/ask question: …`.";

/// The slash commands registered at start.
pub const COMMANDS: &[(&str, &str)] = &[
    ("ask", "Ask a question"),
    ("human", "Talk to a person"),
    ("new", "Start a fresh conversation"),
];

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
    assistant: Assistant,
    desk: Desk,
    store: Store,
    inbound: Inbound,
    bot_id: UserId,
    help_channels: HashSet<ChannelId>,
    agents_channel: Option<ChannelId>,
    guild_id: Option<GuildId>,
    /// Threads known to belong to a help channel (customer threads) or to
    /// the agents' channel (staff threads), learnt from THREAD_CREATE, from
    /// the threads the bot opens and from the cache.
    threads: Mutex<HashMap<ChannelId, ChannelId>>,
    /// Answers in one place are sent in order.
    locks: PlaceLocks,
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
        let store = assistant.store().clone();
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
                assistant,
                desk: desk.clone(),
                store,
                inbound: inbound.clone(),
                bot_id: me.id,
                help_channels: settings
                    .help_channel_ids
                    .iter()
                    .map(|&id| ChannelId::new(id))
                    .collect(),
                agents_channel: settings.agents_channel_id.map(ChannelId::new),
                guild_id: settings.guild_id.map(GuildId::new),
                threads: Mutex::new(HashMap::new()),
                locks: PlaceLocks::default(),
            }),
        };
        discord.register_commands().await;
        desk.registry().register(CHANNEL, Arc::new(discord.clone()));
        inbound.register(CHANNEL, Arc::new(discord.clone()));
        if discord.inner.agents_channel.is_some() {
            desk.add_staff_desk(Arc::new(StaffDeskImpl {
                discord: discord.clone(),
            }));
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
        let commands: Vec<CreateCommand> = COMMANDS
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
            .event_handler(Handler {
                discord: self.clone(),
            })
            .await
            .map_err(|e| Error::Gateway(e.to_string()))?;
        let shards = client.shard_manager.clone();
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {
                shards.shutdown_all().await;
                Ok(())
            }
            result = client.start() => result.map_err(|e| Error::Gateway(gateway_hint(&e))),
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
            let this = self.clone();
            tokio::spawn(async move { this.agent_message(message).await });
            return Ok(());
        }
        let addressed = self.addressed_text(&message, kind);
        let Some(text) = addressed else {
            if message.content.trim().is_empty()
                && !message.attachments.is_empty()
                && kind != PlaceKind::Elsewhere
            {
                let this = self.clone();
                let place = Place::reply_to(&message, kind);
                tokio::spawn(async move { this.send_text(&place, TEXT_ONLY, Vec::new()).await });
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
        let received = self.inner.assistant.receive(turn).await?;
        if received.is_duplicate() {
            return Ok(());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let lock = this.inner.locks.of(&place.key());
            let _guard = lock.lock().await;
            if let Err(panic) = guarded(this.answer(Surface::Channel(place), received)).await {
                // Stored, so `answer_pending` tries again after a restart.
                tracing::error!(channel = CHANNEL, "answer {panic}");
                metrics::counter!("switchboard_answer_panics_total", "channel" => CHANNEL)
                    .increment(1);
            }
        });
        Ok(())
    }

    /// Where a message was written.
    async fn place_kind(&self, ctx: Option<&Context>, message: &Message) -> PlaceKind {
        if message.guild_id.is_none() {
            return PlaceKind::Dm;
        }
        let channel = message.channel_id;
        if self.inner.help_channels.contains(&channel) {
            return PlaceKind::HelpChannel;
        }
        if Some(channel) == self.inner.agents_channel {
            return PlaceKind::Staff;
        }
        let mut parent = self.thread_parent(ctx, message.guild_id, channel);
        if parent.is_none() && message.id.get() == channel.get() {
            // The first message of a forum post has the post's (thread's)
            // id. Its THREAD_CREATE may still be in another handler, so ask
            // Discord which forum it is in; rare, so one REST call is fine.
            parent = self.fetch_parent(channel).await;
        }
        match parent {
            Some(p) if Some(p) == self.inner.agents_channel => PlaceKind::Staff,
            Some(p) if self.inner.help_channels.contains(&p) => PlaceKind::HelpThread,
            _ => PlaceKind::Elsewhere,
        }
    }

    async fn fetch_parent(&self, thread: ChannelId) -> Option<ChannelId> {
        let channel = retrying(|| self.inner.http.get_channel(thread)).await;
        let parent = match channel {
            Ok(serenity::all::Channel::Guild(c)) => c.parent_id?,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!("discord: cannot look up thread {thread}: {e}");
                return None;
            }
        };
        self.threads().insert(thread, parent);
        Some(parent)
    }

    fn thread_parent(
        &self,
        ctx: Option<&Context>,
        guild: Option<GuildId>,
        channel: ChannelId,
    ) -> Option<ChannelId> {
        if let Some(p) = self.threads().get(&channel) {
            return Some(*p);
        }
        let parent = ctx.zip(guild).and_then(|(ctx, guild)| {
            let guild = ctx.cache.guild(guild)?;
            guild
                .threads
                .iter()
                .find(|t| t.id == channel)
                .and_then(|t| t.parent_id)
        })?;
        self.threads().insert(channel, parent);
        Some(parent)
    }

    fn threads(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, ChannelId>> {
        self.inner.threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A THREAD_CREATE: remembers threads of help channels and forums (a
    /// forum post arrives as a new thread, then its first message) and of
    /// the agents' channel.
    pub fn on_thread(&self, thread: &GuildChannel) {
        if let Some(parent) = thread.parent_id
            && (self.inner.help_channels.contains(&parent)
                || Some(parent) == self.inner.agents_channel)
        {
            self.threads().insert(thread.id, parent);
        }
    }

    /// The text to answer, or `None` when the bot is not addressed. In DMs,
    /// help channels and help threads every text is addressed; elsewhere
    /// only a mention of the bot or a reply to it.
    fn addressed_text(&self, message: &Message, kind: PlaceKind) -> Option<String> {
        let bot = self.inner.bot_id;
        let mentioned = message.mentions_user_id(bot);
        let replied = message
            .referenced_message
            .as_ref()
            .is_some_and(|m| m.author.id == bot);
        if kind == PlaceKind::Elsewhere && !(mentioned || replied) {
            return None;
        }
        address::without_mentions(&message.content, bot.get())
    }

    /// Opens a thread on a help-channel message.
    async fn open_thread(&self, message: &Message, text: &str) -> Option<Place> {
        let name: String = text.chars().take(90).collect();
        let name = if name.trim().is_empty() {
            "Question".to_string()
        } else {
            name
        };
        let http = &self.inner.http;
        let builder = CreateThread::new(name)
            .auto_archive_duration(serenity::all::AutoArchiveDuration::OneDay);
        match retrying(|| {
            message
                .channel_id
                .create_thread_from_message(http, message.id, builder.clone())
        })
        .await
        {
            Ok(thread) => {
                self.threads().insert(thread.id, message.channel_id);
                Some(Place {
                    channel: thread.id,
                    kind: PlaceKind::HelpThread,
                    reply_to: None,
                    customer: Some(message.author.id),
                })
            }
            Err(e) => {
                tracing::warn!("discord: could not open a thread, answering in the channel: {e}");
                None
            }
        }
    }

    /// Answers a stored message: typing, then the streamed answer, then the
    /// final text with sources and buttons.
    async fn answer(&self, surface: Surface, received: crate::assistant::Received) {
        let typing = match &surface {
            Surface::Channel(place) => {
                let http = Arc::clone(&self.inner.http);
                let channel = place.channel;
                Some(tokio::spawn(async move {
                    loop {
                        let _ = channel.broadcast_typing(&http).await;
                        tokio::time::sleep(TYPING_EVERY).await;
                    }
                }))
            }
            Surface::Interaction(_) => None,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let assistant = self.inner.assistant.clone();
        let work = tokio::spawn(async move { assistant.answer(received, Some(tx)).await });
        let mut stream = Answer::stream(self.clone(), surface);
        while let Some(piece) = rx.recv().await {
            if let Some(t) = &typing {
                t.abort();
            }
            stream.push(&piece).await;
        }
        if let Some(t) = typing {
            t.abort();
        }
        match work.await {
            Ok(Ok(reply)) => finish(&mut stream, &reply).await,
            Ok(Err(e)) => tracing::error!("discord: answering failed: {e}"),
            Err(e) => tracing::error!("discord: answer task failed: {e}"),
        }
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
        let text = match command.data.name.as_str() {
            "ask" => {
                let question = command
                    .data
                    .options
                    .iter()
                    .find(|o| o.name == "question")
                    .and_then(|o| match &o.value {
                        CommandDataOptionValue::String(s) => Some(s.trim().to_string()),
                        _ => None,
                    })
                    .unwrap_or_default();
                if question.is_empty() {
                    let surface = Surface::Interaction(Box::new(command));
                    let mut stream = Answer::stream(self.clone(), surface);
                    stream.finish(&[ASK_WHAT.to_string()], &[]).await;
                    return;
                }
                question
            }
            "human" => "/human".to_string(),
            "new" => "/new".to_string(),
            other => format!("/{other}"),
        };
        let (place, turn) = self.interaction_turn(
            command.guild_id,
            command.channel_id,
            &command.user,
            command.id.get(),
            text,
        );
        let received = match self.inner.assistant.receive(turn).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("discord: /{} not stored: {e}", command.data.name);
                let mut stream =
                    Answer::stream(self.clone(), Surface::Interaction(Box::new(command)));
                stream
                    .finish(
                        &["Sorry, something went wrong on our side. Please try again in a moment."
                            .to_string()],
                        &[],
                    )
                    .await;
                return;
            }
        };
        if received.is_duplicate() {
            return;
        }
        let lock = self.inner.locks.of(&place.key());
        let _guard = lock.lock().await;
        self.answer(Surface::Interaction(Box::new(command)), received)
            .await;
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
        if let Some(ButtonData::Desk {
            action,
            conversation,
        }) = ButtonData::parse(&data)
        {
            let thinking = CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            );
            if let Err(e) = component.create_response(http, thinking).await {
                tracing::warn!("discord: could not acknowledge a click: {e}");
            }
            let roles = member_roles(component.member.as_ref().map(|m| &m.roles[..]));
            let agent = self.inner.desk.agents().by_discord(
                component.user.id.get(),
                &roles,
                &display_name(&component.user),
            );
            let who = format!("discord:{}", component.user.id.get());
            let text = self
                .inner
                .desk
                .act_in_chat(
                    agent.as_ref(),
                    &who,
                    &conversation,
                    action.into(),
                    NOT_AN_AGENT,
                )
                .await
                .map_or_else(
                    |e| e,
                    |c| format!("Done: the conversation is now {}", c.status),
                );
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
        match self.inner.assistant.press(turn).await {
            Ok(Pressed::Reply(reply)) => {
                if !reply.is_silent() {
                    let mut stream = Answer::stream(self.clone(), Surface::Channel(place));
                    finish(&mut stream, &reply).await;
                }
            }
            Ok(Pressed::Message(m)) => self.send_text(&place, &m.text, m.buttons).await,
            Ok(Pressed::Feedback(_)) => {
                let thanks = CreateInteractionResponseFollowup::new()
                    .content(FEEDBACK_THANKS)
                    .ephemeral(true)
                    .allowed_mentions(CreateAllowedMentions::new());
                if let Err(e) = component.create_followup(http, thanks).await {
                    tracing::warn!("discord: could not thank for feedback: {e}");
                }
            }
            Ok(Pressed::Unknown) => {}
            Ok(Pressed::Stale) => {
                let stale = CreateInteractionResponseFollowup::new()
                    .content(NO_LONGER_AVAILABLE)
                    .ephemeral(true)
                    .allowed_mentions(CreateAllowedMentions::new());
                if let Err(e) = component.create_followup(http, stale).await {
                    tracing::warn!("discord: could not answer a stale click: {e}");
                }
            }
            Err(e) => tracing::error!("discord: button press failed: {e}"),
        }
    }

    /// An agent writing in the agents' channel or a staff thread.
    async fn agent_message(&self, message: Message) {
        let text = message.content.trim().to_string();
        if text.is_empty() {
            return;
        }
        let conversation = self.conversation_of_staff_message(&message).await;
        let place = Place {
            channel: message.channel_id,
            kind: PlaceKind::Staff,
            reply_to: Some(message.id),
            customer: None,
        };
        let Some(conversation) = conversation else {
            if message.channel_id != self.inner.agents_channel.unwrap_or(message.channel_id)
                || message.referenced_message.is_some()
            {
                self.send_text(&place, WHICH_CONVERSATION, Vec::new()).await;
            }
            return;
        };
        let action = match Desk::parse_command(&text) {
            Ok(a) => a,
            Err(help) => {
                self.send_text(&place, &help, Vec::new()).await;
                return;
            }
        };
        let roles = member_roles(message.member.as_ref().map(|m| &m.roles[..]));
        let agent = self.inner.desk.agents().by_discord(
            message.author.id.get(),
            &roles,
            &display_name(&message.author),
        );
        let who = format!("discord:{}", message.author.id.get());
        if let Err(explain) = self
            .inner
            .desk
            .act_in_chat(agent.as_ref(), &who, &conversation, action, NOT_AN_AGENT)
            .await
        {
            self.send_text(&place, &explain, Vec::new()).await;
        }
    }

    /// The conversation an agent's message is about, from stored mappings
    /// only: the staff thread of the conversation, or the bot's post (card,
    /// forwarded message, notice) the agent replied to. Text in the replied
    /// message is never read: a customer may have written it.
    async fn conversation_of_staff_message(&self, message: &Message) -> Option<String> {
        let store = &self.inner.store;
        let key = format!("thread:{}", message.channel_id.get());
        match store.conversation_by_staff_thread(CHANNEL, &key).await {
            Ok(Some(c)) => return Some(c.id),
            Ok(None) => {}
            Err(e) => tracing::warn!("discord: staff thread lookup failed: {e}"),
        }
        let replied = message
            .referenced_message
            .as_ref()
            .map(|m| m.id)
            .or_else(|| message.message_reference.as_ref()?.message_id)?;
        match store
            .conversation_by_staff_post(CHANNEL, &post_ref(replied))
            .await
        {
            Ok(found) => found.map(|c| c.id),
            Err(e) => {
                tracing::warn!("discord: staff post lookup failed: {e}");
                None
            }
        }
    }

    /// Sends text with buttons; retries, then the outbox.
    async fn send_text(&self, place: &Place, text: &str, buttons: Vec<Vec<Button>>) {
        let parts = render::split(text);
        let mut stream = Answer::stream(self.clone(), Surface::Channel(place.clone()));
        stream.finish(&parts, &buttons).await;
    }

    async fn post(
        &self,
        place: &Place,
        content: &str,
        buttons: &[Vec<Button>],
        nonce: Option<String>,
    ) -> Result<MessageId, serenity::Error> {
        let http = &self.inner.http;
        let sent = retrying(|| {
            let mut builder = CreateMessage::new()
                .content(content)
                .allowed_mentions(place.mentions())
                .components(components(buttons));
            if let Some(nonce) = &nonce {
                builder = builder
                    .nonce(serenity::all::Nonce::String(nonce.clone()))
                    .enforce_nonce(true);
            }
            if let Some(id) = place.reply_to {
                builder = builder.reference_message((place.channel, id));
            }
            place.channel.send_message(http, builder)
        })
        .await?;
        Ok(sent.id)
    }

    async fn edit(
        &self,
        place: &Place,
        id: MessageId,
        content: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), serenity::Error> {
        let http = &self.inner.http;
        retrying(|| {
            place.channel.edit_message(
                http,
                id,
                EditMessage::new()
                    .content(content)
                    .allowed_mentions(place.mentions())
                    .components(components(buttons)),
            )
        })
        .await
        .map(|_| ())
    }

    /// A send that finally failed: mark a customer who cannot be written
    /// to, else keep the text in the outbox to be retried.
    async fn give_up(
        &self,
        place: &Place,
        parts: &[String],
        buttons: &[Vec<Button>],
        error: &serenity::Error,
    ) {
        let store = &self.inner.store;
        if is_unreachable(error) {
            if let Some(user) = place.customer
                && let Ok(c) = store
                    .upsert_customer(CHANNEL, &user.get().to_string(), None)
                    .await
            {
                let _ = store.set_unreachable(&c.id, true).await;
            }
            tracing::warn!(
                channel = place.channel.get(),
                "discord: customer unreachable: {error}"
            );
            return;
        }
        let Some(customer) = place.customer else {
            tracing::warn!(
                channel = place.channel.get(),
                "discord: send failed: {error}"
            );
            return;
        };
        let target = Target {
            channel: CHANNEL.into(),
            customer_id: customer.get().to_string(),
            thread: place.key(),
        };
        let message = Outgoing {
            text: parts.join("\n"),
            buttons: buttons.to_vec(),
            notice: false,
        };
        delivery::queue_failed(store, &target, &message, &error.to_string()).await;
    }
}

/// Where a message was written, which decides how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlaceKind {
    /// A direct message.
    Dm,
    /// A help channel: each new message opens a thread.
    HelpChannel,
    /// A thread under a help channel or forum (a post).
    HelpThread,
    /// The agents' channel or one of its threads.
    Staff,
    /// Any other server channel: answered when mentioned or replied to.
    Elsewhere,
}

/// Where an answer goes.
#[derive(Debug, Clone)]
struct Place {
    channel: ChannelId,
    kind: PlaceKind,
    reply_to: Option<MessageId>,
    /// The customer, when known: the only user an answer may mention.
    customer: Option<UserId>,
}

impl Place {
    fn reply_to(message: &Message, kind: PlaceKind) -> Self {
        Self {
            channel: message.channel_id,
            kind,
            // In DMs and threads the answer follows the question anyway.
            reply_to: (kind == PlaceKind::Elsewhere).then_some(message.id),
            customer: Some(message.author.id),
        }
    }

    /// The conversation's place key: `dm:ID`, `thread:ID` or `ch:ID`.
    fn key(&self) -> String {
        let id = self.channel.get();
        match self.kind {
            PlaceKind::Dm => format!("dm:{id}"),
            PlaceKind::HelpChannel | PlaceKind::HelpThread => format!("thread:{id}"),
            PlaceKind::Staff | PlaceKind::Elsewhere => format!("ch:{id}"),
        }
    }

    fn from_key(key: &str, customer: Option<UserId>) -> Option<Self> {
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
    fn mentions(&self) -> CreateAllowedMentions {
        CreateAllowedMentions::new().replied_user(false)
    }
}

/// Where a streamed answer is written: a channel, or the response to a
/// slash command.
enum Surface {
    Channel(Place),
    Interaction(Box<CommandInteraction>),
}

/// A message of a streamed answer.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Message(MessageId),
    /// The command's original (deferred) response.
    Original,
}

/// A Discord channel or command response as the sink of a streamed answer.
struct Answer {
    discord: Discord,
    surface: Surface,
    /// Whether the command's original response has been written.
    responded: bool,
}

impl Answer {
    fn stream(discord: Discord, surface: Surface) -> Streamer<Answer> {
        Streamer::new(Self {
            discord,
            surface,
            responded: false,
        })
    }
}

/// The final messages of a reply: answer, sources, buttons. A silent reply
/// (an agent has the conversation) still replaces a command's "thinking…".
async fn finish(stream: &mut Streamer<Answer>, reply: &Reply) {
    if reply.is_silent() {
        let command = matches!(stream.sink().surface, Surface::Interaction(_));
        if command && !stream.has_sent() {
            stream.finish(&["…".to_string()], &[]).await;
        }
        return;
    }
    let parts = render::with_sources(&reply.answer, &reply.sources);
    stream.finish(&parts, &reply.buttons()).await;
}

#[async_trait::async_trait]
impl Sink for Answer {
    type Id = Sent;
    type Error = serenity::Error;

    fn partial_limit(&self) -> usize {
        render::LIMIT - 100
    }

    fn render_partial(&self, text: &str) -> String {
        text.to_string()
    }

    async fn send(&mut self, text: &str, buttons: &[Vec<Button>]) -> Result<Sent, serenity::Error> {
        let command = match &self.surface {
            Surface::Channel(place) => {
                return self
                    .discord
                    .post(place, text, buttons, None)
                    .await
                    .map(Sent::Message);
            }
            Surface::Interaction(command) => command,
        };
        let http = &self.discord.inner.http;
        if self.responded {
            return retrying(|| command.create_followup(http, followup(text, buttons)))
                .await
                .map(|m| Sent::Message(m.id));
        }
        retrying(|| command.edit_response(http, original(text, buttons))).await?;
        self.responded = true;
        Ok(Sent::Original)
    }

    async fn edit(
        &mut self,
        sent: Sent,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), serenity::Error> {
        match (&self.surface, sent) {
            (Surface::Channel(place), Sent::Message(id)) => {
                self.discord.edit(place, id, text, buttons).await
            }
            (Surface::Interaction(command), Sent::Original) => {
                let http = &self.discord.inner.http;
                retrying(|| command.edit_response(http, original(text, buttons)))
                    .await
                    .map(|_| ())
            }
            (Surface::Interaction(command), Sent::Message(id)) => {
                let http = &self.discord.inner.http;
                retrying(|| command.edit_followup(http, id, followup(text, buttons)))
                    .await
                    .map(|_| ())
            }
            (Surface::Channel(_), Sent::Original) => Ok(()),
        }
    }

    async fn give_up(&mut self, rest: &[String], buttons: &[Vec<Button>], error: &serenity::Error) {
        match &self.surface {
            Surface::Channel(place) => self.discord.give_up(place, rest, buttons, error).await,
            Surface::Interaction(_) => {
                tracing::warn!("discord: could not answer a slash command: {error}");
            }
        }
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
fn components(buttons: &[Vec<Button>]) -> Vec<CreateActionRow> {
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

fn member_roles(roles: Option<&[serenity::all::RoleId]>) -> Vec<u64> {
    roles.unwrap_or_default().iter().map(|r| r.get()).collect()
}

fn display_name(user: &serenity::all::User) -> String {
    user.global_name
        .clone()
        .unwrap_or_else(|| user.name.clone())
}

/// serenity's event handler: forwards to [`Discord`].
struct Handler {
    discord: Discord,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "discord gateway ready");
    }

    async fn message(&self, ctx: Context, message: Message) {
        let id = message.id;
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

#[cfg(test)]
mod tests {
    use super::*;

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
