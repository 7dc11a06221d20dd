//! The Telegram channel (teloxide, Bot API over HTTPS).
//!
//! Customers write in private chats, or in groups by mentioning the bot,
//! replying to it, or with `/ask`. Each update is stored by the core before
//! it is confirmed to Telegram (the polling offset only moves past an update
//! once [`Assistant::receive`] returned; in webhook mode the HTTP 200 waits
//! for it), and answered afterwards, streamed into a message that is edited
//! at most about once a second. Agents work hand-offs in the agents' group
//! (`telegram.agents_chat_id`): one card per conversation, a forum topic per
//! conversation when the group is a forum, otherwise replies to the card.

mod address;
mod errors;
mod platform;
pub mod render;
mod replay;
mod staff;
mod webhook;

use crate::agents::constant_time_eq;
use errors::retrying;
pub use webhook::webhook_routes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use teloxide::RequestError;
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQuery, ChatId, MaybeInaccessibleMessage, Message, MessageId,
    ThreadId, Update, UpdateKind,
};

use super::driver::{self, ChannelCore, Platform, StaffMember, StaffMessage};
use super::text::{self, telegram::NOT_AN_AGENT};
use crate::assistant::Turn;
use crate::config::TelegramSettings;
use crate::desk::Desk;
use crate::inbound::{self, Inbound, guarded};

/// Channel name in the log.
pub const CHANNEL: &str = "telegram";
/// Path of the webhook endpoint on the HTTP server.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";
/// Long-polling timeout; below teloxide's 17 s client timeout.
const POLL_SECS: u32 = 10;

/// A start-up failure, in one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token.
    #[error(
        "telegram.enabled is true but TELEGRAM_BOT_TOKEN is not set; create a bot with @BotFather and export its token"
    )]
    NoToken,
    /// `telegram.api_url` is not a URL.
    #[error("telegram.api_url: {0}")]
    BadUrl(String),
    /// Telegram refused the token.
    #[error("Telegram refused the bot token (getMe: {0}); check TELEGRAM_BOT_TOKEN")]
    BadToken(String),
    /// The database (the webhook secret is kept there).
    #[error("database: {0}")]
    Store(#[from] crate::store::Error),
    /// The Bot API cannot be reached.
    #[error("cannot reach the Telegram Bot API at {0}: {1}")]
    Unreachable(String, String),
}

/// The running channel. Cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    inner: Arc<Inner>,
}

struct Inner {
    bot: teloxide::Bot,
    core: ChannelCore,
    inbound: Inbound,
    /// Failed attempts to store an update, by update id (cleared once it is
    /// stored or quarantined).
    failures: std::sync::Mutex<std::collections::HashMap<u32, i64>>,
    username: String,
    bot_id: u64,
    agents_chat: Option<ChatId>,
    webhook_secret: Option<String>,
    /// Whether the agents' group takes forum topics; learnt on the first
    /// card.
    forum: AtomicBool,
}

impl Telegram {
    /// Connects: checks the token with `getMe`, registers the commands,
    /// and plugs the channel into the core (delivery, staff desk).
    ///
    /// # Errors
    /// [`Error`] naming what is wrong.
    pub async fn connect(
        settings: &TelegramSettings,
        assistant: crate::assistant::Assistant,
        desk: Desk,
        inbound: Inbound,
    ) -> Result<Self, Error> {
        let token = settings.token.as_ref().ok_or(Error::NoToken)?;
        let api = url::Url::parse(&settings.api_url).map_err(|e| Error::BadUrl(e.to_string()))?;
        let bot = teloxide::Bot::new(token.expose()).set_api_url(api);
        let me = match bot.get_me().send().await {
            Ok(me) => me,
            Err(RequestError::Api(e)) => return Err(Error::BadToken(e.to_string())),
            Err(e) => return Err(Error::Unreachable(settings.api_url.clone(), e.to_string())),
        };
        let commands: Vec<BotCommand> = text::telegram::COMMANDS
            .iter()
            .map(|(c, d)| BotCommand::new(*c, *d))
            .collect();
        if let Err(e) = retrying(|| bot.set_my_commands(commands.clone()).send()).await {
            tracing::warn!("telegram: setMyCommands failed: {e}");
        }
        // Without a configured secret, one kept in the database: every
        // process behind the webhook URL checks the same one.
        let webhook_secret = match (&settings.webhook_url, &settings.webhook_secret) {
            (None, _) => None,
            (Some(_), Some(secret)) => Some(secret.expose().to_string()),
            (Some(_), None) => Some(
                assistant
                    .store()
                    .secret("telegram.webhook_secret", || {
                        crate::store::new_id().replace('-', "")
                    })
                    .await?,
            ),
        };
        let telegram = Self {
            inner: Arc::new(Inner {
                bot,
                core: ChannelCore::new(assistant, desk.clone()),
                inbound: inbound.clone(),
                failures: Default::default(),
                username: me.user.username.clone().unwrap_or_default(),
                bot_id: me.user.id.0,
                agents_chat: settings.agents_chat_id.map(ChatId),
                webhook_secret,
                forum: AtomicBool::new(true),
            }),
        };
        desk.registry()
            .register(CHANNEL, Arc::new(driver::Delivery(telegram.clone())));
        inbound.register(CHANNEL, Arc::new(telegram.clone()));
        if telegram.inner.agents_chat.is_some() {
            desk.add_staff_desk(Arc::new(driver::Staff(telegram.clone())));
        }
        tracing::info!(bot = %telegram.inner.username, "telegram connected");
        Ok(telegram)
    }

    /// Long polling until `shutdown`.
    pub async fn run_polling(self, shutdown: impl Future<Output = ()>) {
        let bot = &self.inner.bot;
        if let Err(e) = bot.delete_webhook().send().await {
            tracing::warn!("telegram: deleteWebhook failed: {e}");
        }
        tokio::pin!(shutdown);
        let mut offset: i32 = 0;
        let mut backoff = Duration::from_millis(500);
        // Waits between attempts to store an update; after
        // `inbound::MAX_ATTEMPTS` it is quarantined, so this only grows
        // while the database refuses even that.
        let mut store_backoff = Duration::from_millis(100);
        loop {
            let request = bot
                .get_updates()
                .offset(offset)
                .timeout(POLL_SECS)
                .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
            let updates = tokio::select! {
                () = &mut shutdown => return,
                result = request.send() => result,
            };
            let updates = match updates {
                Ok(u) => {
                    backoff = Duration::from_millis(500);
                    u
                }
                Err(RequestError::RetryAfter(secs)) => {
                    tokio::time::sleep(secs.duration()).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("telegram: getUpdates failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            for update in updates {
                let id = update.id.0 as i32;
                match self.accept(update).await {
                    // Stored (or quarantined): confirm it with the next offset.
                    Ok(()) => {
                        offset = id + 1;
                        store_backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        // Not stored: do not confirm; Telegram sends it again.
                        tracing::error!("telegram: update {id} not stored, will retry: {e}");
                        tokio::time::sleep(store_backoff).await;
                        store_backoff = (store_backoff * 2).min(Duration::from_secs(30));
                        break;
                    }
                }
            }
        }
    }

    /// Registers the webhook with Telegram.
    ///
    /// # Errors
    /// When Telegram refuses it.
    pub async fn set_webhook(&self, url: &str) -> Result<(), Error> {
        let url = url::Url::parse(url).map_err(|e| Error::BadUrl(e.to_string()))?;
        let mut request = self.inner.bot.set_webhook(url);
        if let Some(secret) = &self.inner.webhook_secret {
            request = request.secret_token(secret.clone());
        }
        request
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .send()
            .await
            .map_err(|e| Error::Unreachable("setWebhook".into(), e.to_string()))?;
        Ok(())
    }

    /// The secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`.
    pub fn webhook_secret(&self) -> Option<&str> {
        self.inner.webhook_secret.as_deref()
    }

    /// Stores what must be stored and schedules the answer, inside a
    /// boundary: an update that panics, or that could not be stored
    /// [`inbound::MAX_ATTEMPTS`] times, is quarantined as a dead letter and
    /// counts as accepted. Returns `Err` only when the update could be
    /// neither stored nor quarantined (it must not be confirmed).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn accept(&self, update: Update) -> Result<(), crate::assistant::Error> {
        let update_id = update.id.0;
        let payload = serde_json::to_string(&update).unwrap_or_default();
        let error = match guarded(self.accept_once(update)).await {
            Ok(Ok(())) => {
                self.forget_failures(update_id);
                return Ok(());
            }
            Ok(Err(e)) => {
                let attempts = {
                    let mut failures = self
                        .inner
                        .failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let n = failures.entry(update_id).or_default();
                    *n += 1;
                    *n
                };
                if attempts < inbound::MAX_ATTEMPTS {
                    return Err(e);
                }
                format!("not stored after {attempts} attempts: {e}")
            }
            Err(panic) => panic.to_string(),
        };
        self.inner
            .inbound
            .quarantine(
                CHANNEL,
                "update",
                &format!("update:{update_id}"),
                &payload,
                &error,
            )
            .await?;
        self.forget_failures(update_id);
        Ok(())
    }

    fn forget_failures(&self, update_id: u32) {
        let mut failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        failures.remove(&update_id);
    }

    /// [`Telegram::accept`] without the boundary. Button presses and staff
    /// messages are kept before they are confirmed and processed in the
    /// background; customer messages are stored by the assistant.
    async fn accept_once(&self, update: Update) -> Result<(), crate::assistant::Error> {
        let update_id = update.id.0;
        let staff = matches!(&update.kind, UpdateKind::Message(m)
            if Some(m.chat.id) == self.inner.agents_chat
                && m.from.as_ref().is_some_and(|f| !f.is_bot));
        if staff || matches!(update.kind, UpdateKind::CallbackQuery(_)) {
            let payload = serde_json::to_string(&update).unwrap_or_default();
            let Some(id) = self
                .inner
                .inbound
                .keep(CHANNEL, "update", &format!("update:{update_id}"), &payload)
                .await?
            else {
                return Ok(()); // kept before: a retry of the same update
            };
            let this = self.clone();
            tokio::spawn(async move {
                let span = tracing::info_span!("press", channel = CHANNEL, update = update_id);
                let _enter = span.enter();
                this.inner
                    .inbound
                    .process(&id, CHANNEL, 0, this.process_kept(update))
                    .await;
            });
            return Ok(());
        }
        match update.kind {
            UpdateKind::Message(message) => self.accept_message(update_id, message).await,
            // Edits, channel posts and the rest change nothing already answered.
            _ => Ok(()),
        }
    }

    /// Processes a kept update: a button press or a staff message.
    async fn process_kept(&self, update: Update) -> Result<(), String> {
        match update.kind {
            UpdateKind::CallbackQuery(query) => self.callback(query).await,
            UpdateKind::Message(message) => {
                self.agent_message(message).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn accept_message(
        &self,
        update_id: u32,
        message: Message,
    ) -> Result<(), crate::assistant::Error> {
        let Some(from) = message.from.clone() else {
            return Ok(()); // channel posts, anonymous admins
        };
        if from.is_bot || message.sender_chat.is_some() {
            return Ok(());
        }
        if Some(message.chat.id) == self.inner.agents_chat {
            // Kept and processed by `accept_once`; reached here only by a
            // replay of a customer update.
            return Ok(());
        }
        let private = message.chat.is_private();
        let Some(raw) = message.text() else {
            if private
                && (message.photo().is_some()
                    || message.sticker().is_some()
                    || message.voice().is_some()
                    || message.document().is_some()
                    || message.video().is_some())
            {
                driver::say_in_order(self, Place::of(&message, false), text::TEXT_ONLY);
            }
            return Ok(());
        };
        let Some(text) = self.addressed_text(&message, raw, private) else {
            return Ok(()); // group chatter
        };
        let place = Place::of(&message, !private);
        let turn = Turn {
            channel: CHANNEL.into(),
            customer_id: from.id.0.to_string(),
            customer_name: Some(from.full_name()),
            thread: place.key(),
            platform_message_id: Some(format!("update:{update_id}")),
            text,
        };
        driver::receive(self, place, turn).await
    }

    /// The text to answer in a group (mention removed), or `None` when the
    /// bot is not addressed. In private chats every text is addressed.
    fn addressed_text(&self, message: &Message, text: &str, private: bool) -> Option<String> {
        if private {
            return Some(text.to_string());
        }
        let replied_to_bot = message
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id.0 == self.inner.bot_id);
        address::addressed(text, &self.inner.username, replied_to_bot)
    }

    /// A button press: on a staff card in the agents' group, or under an
    /// answer or survey question.
    async fn callback(&self, query: CallbackQuery) -> Result<(), String> {
        let data = query.data.clone().unwrap_or_default();
        let message = match &query.message {
            Some(MaybeInaccessibleMessage::Regular(m)) => Some(m.as_ref().clone()),
            _ => None,
        };
        let Some(message) = message else {
            self.acknowledge(&query.id, None).await;
            return Ok(());
        };
        if Some(message.chat.id) == self.inner.agents_chat {
            let member = self.staff_member(&query.from);
            let outcome = driver::staff_press(self, &data, &member, NOT_AN_AGENT).await;
            self.acknowledge(&query.id, Some(&outcome)).await;
            return Ok(());
        }
        let place = Place::of(&message, !message.chat.is_private());
        let turn = Turn {
            channel: CHANNEL.into(),
            customer_id: query.from.id.0.to_string(),
            customer_name: Some(query.from.full_name()),
            thread: place.key(),
            platform_message_id: Some(format!("callback:{}", query.id.0)),
            text: data,
        };
        // An error is kept: retried by the inbound pass, then quarantined.
        driver::press(self, place, &query.id, turn)
            .await
            .map(|_| ())
            .map_err(|e| format!("button press failed: {e}"))
    }

    /// A user in the agents' group, recognised by their Telegram user id.
    fn staff_member(&self, user: &teloxide::types::User) -> StaffMember {
        let agent = self.core().desk.agents().by_telegram(user.id.0 as i64);
        StaffMember::new::<Self>(agent, user.id.0)
    }

    /// An agent writing in the agents' group: in the topic of a
    /// conversation, or replying to the bot's post about it.
    async fn agent_message(&self, message: Message) {
        let (Some(text), Some(from)) = (message.text(), message.from.as_ref()) else {
            return;
        };
        let staff = StaffMessage {
            place: Place::of(&message, true),
            text: text.to_string(),
            member: self.staff_member(from),
            thread: message
                .thread_id
                .filter(|_| message.is_topic_message)
                .map(|t| format!("topic:{}", t.0.0)),
            replied: message
                .reply_to_message()
                .map(|m| driver::post_ref::<Self>(m.id)),
            ask_which: message.reply_to_message().is_some() || message.thread_id.is_some(),
        };
        driver::agent_message(
            self,
            staff,
            text::telegram::WHICH_CONVERSATION,
            NOT_AN_AGENT,
        )
        .await;
    }
}

/// Where a message goes: chat, forum topic, and the message it replies to.
#[derive(Debug, Clone)]
pub struct Place {
    chat: ChatId,
    thread: Option<ThreadId>,
    reply_to: Option<MessageId>,
}

impl Place {
    fn of(message: &Message, reply: bool) -> Self {
        Self {
            chat: message.chat.id,
            thread: message.thread_id.filter(|_| message.is_topic_message),
            reply_to: reply.then_some(message.id),
        }
    }

    /// The conversation place key: `chat` or `chat:topic`.
    fn key(&self) -> String {
        match self.thread {
            Some(t) => format!("{}:{}", self.chat.0, t.0.0),
            None => self.chat.0.to_string(),
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        let (chat, thread) = match key.split_once(':') {
            Some((c, t)) => (c, Some(t)),
            None => (key, None),
        };
        Some(Self {
            chat: ChatId(chat.parse().ok()?),
            thread: match thread {
                Some(t) => Some(ThreadId(MessageId(t.parse().ok()?))),
                None => None,
            },
            reply_to: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_keys_round_trip() {
        let p = Place {
            chat: ChatId(-100123),
            thread: Some(ThreadId(MessageId(7))),
            reply_to: None,
        };
        assert_eq!(p.key(), "-100123:7");
        let back = Place::from_key("-100123:7").unwrap();
        assert_eq!((back.chat, back.thread), (p.chat, p.thread));
        assert_eq!(Place::from_key("42").unwrap().thread, None);
        assert!(Place::from_key("abc").is_none());
    }
}
