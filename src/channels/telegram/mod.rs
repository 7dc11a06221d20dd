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
mod outgoing;
pub mod render;
mod staff;
pub mod text;
mod webhook;

use crate::agents::constant_time_eq;
use errors::{is_transient, is_unreachable, retrying};
use staff::{StaffDeskImpl, post_ref};
pub use webhook::webhook_routes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, GetUpdatesSetters, SendMessageSetters,
    SetWebhookSetters,
};
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQuery, ChatAction, ChatId, InlineKeyboardButton,
    InlineKeyboardMarkup, MaybeInaccessibleMessage, Message, MessageId, ParseMode, ReplyParameters,
    ThreadId, Update, UpdateKind,
};
use tokio::sync::mpsc;

use super::PlaceLocks;
use super::stream::{Sink, Streamer};
use crate::assistant::{Assistant, Pressed, Reply, Turn};
use crate::button::{ButtonData, NO_LONGER_AVAILABLE};
use crate::config::TelegramSettings;
use crate::delivery::{self, Button, Deliver, Outgoing, Target};
use crate::desk::{Card, Desk, PostedCard, StaffDesk};
use crate::inbound::{self, Inbound, Replay, guarded};
use crate::store::{InboundItem, Store};

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
    assistant: Assistant,
    desk: Desk,
    store: Store,
    inbound: Inbound,
    /// Failed attempts to store an update, by update id (cleared once it is
    /// stored or quarantined).
    failures: std::sync::Mutex<std::collections::HashMap<u32, i64>>,
    username: String,
    bot_id: u64,
    agents_chat: Option<ChatId>,
    webhook_secret: Option<String>,
    /// Answers in one chat are sent in order.
    chat_locks: PlaceLocks,
}

impl Telegram {
    /// Connects: checks the token with `getMe`, registers the commands,
    /// and plugs the channel into the core (delivery, staff desk).
    ///
    /// # Errors
    /// [`Error`] naming what is wrong.
    pub async fn connect(
        settings: &TelegramSettings,
        assistant: Assistant,
        desk: Desk,
        inbound: Inbound,
    ) -> Result<Self, Error> {
        let token = settings.token.as_ref().ok_or(Error::NoToken)?;
        let store = assistant.store().clone();
        let api = url::Url::parse(&settings.api_url).map_err(|e| Error::BadUrl(e.to_string()))?;
        let bot = teloxide::Bot::new(token.expose()).set_api_url(api);
        let me = match bot.get_me().send().await {
            Ok(me) => me,
            Err(RequestError::Api(e)) => return Err(Error::BadToken(e.to_string())),
            Err(e) => return Err(Error::Unreachable(settings.api_url.clone(), e.to_string())),
        };
        let commands: Vec<BotCommand> = text::COMMANDS
            .iter()
            .map(|(c, d)| BotCommand::new(*c, *d))
            .collect();
        if let Err(e) = retrying(|| bot.set_my_commands(commands.clone()).send()).await {
            tracing::warn!("telegram: setMyCommands failed: {e}");
        }
        let webhook_secret = settings.webhook_url.as_ref().map(|_| {
            settings
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().to_string())
                .unwrap_or_else(|| crate::store::new_id().replace('-', ""))
        });
        let telegram = Self {
            inner: Arc::new(Inner {
                bot,
                assistant,
                desk: desk.clone(),
                store,
                inbound: inbound.clone(),
                failures: Default::default(),
                username: me.user.username.clone().unwrap_or_default(),
                bot_id: me.user.id.0,
                agents_chat: settings.agents_chat_id.map(ChatId),
                webhook_secret,
                chat_locks: PlaceLocks::default(),
            }),
        };
        desk.registry()
            .register(CHANNEL, Arc::new(telegram.clone()));
        inbound.register(CHANNEL, Arc::new(telegram.clone()));
        if telegram.inner.agents_chat.is_some() {
            desk.add_staff_desk(Arc::new(StaffDeskImpl {
                telegram: telegram.clone(),
                forum: AtomicBool::new(true),
            }));
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
                let this = self.clone();
                tokio::spawn(async move {
                    let place = Place::of(&message, false);
                    this.send_text(&place, text::TEXT_ONLY, Vec::new()).await;
                });
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
        let received = self.inner.assistant.receive(turn).await?;
        if received.is_duplicate() {
            return Ok(());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let lock = this.inner.chat_locks.of(&place.key());
            let _guard = lock.lock().await;
            if let Err(panic) = guarded(this.answer(place, received)).await {
                // Stored, so `answer_pending` tries again after a restart.
                tracing::error!(channel = CHANNEL, update = update_id, "answer {panic}");
                metrics::counter!("switchboard_answer_panics_total", "channel" => CHANNEL)
                    .increment(1);
            }
        });
        Ok(())
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

    /// Answers a stored message: typing, then the streamed answer, then the
    /// final text with sources and buttons.
    async fn answer(&self, place: Place, received: crate::assistant::Received) {
        let bot = &self.inner.bot;
        let _ = bot
            .send_chat_action(place.chat, ChatAction::Typing)
            .send()
            .await;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let assistant = self.inner.assistant.clone();
        let work = tokio::spawn(async move { assistant.answer(received, Some(tx)).await });
        let mut stream = self.streamer(&place);
        while let Some(piece) = rx.recv().await {
            stream.push(&piece).await;
        }
        match work.await {
            Ok(Ok(reply)) => finish(&mut stream, &reply).await,
            Ok(Err(e)) => tracing::error!("telegram: answering failed: {e}"),
            Err(e) => tracing::error!("telegram: answer task failed: {e}"),
        }
    }

    async fn callback(&self, query: CallbackQuery) -> Result<(), String> {
        let bot = &self.inner.bot;
        let data = query.data.clone().unwrap_or_default();
        let message = match &query.message {
            Some(MaybeInaccessibleMessage::Regular(m)) => Some(m.as_ref().clone()),
            _ => None,
        };
        let mut ack: Option<String> = None;
        if message
            .as_ref()
            .is_some_and(|m| Some(m.chat.id) == self.inner.agents_chat)
        {
            ack = Some(self.staff_button(&query, &data).await);
        } else if let Some(message) = message {
            let place = Place::of(&message, !message.chat.is_private());
            let turn = Turn {
                channel: CHANNEL.into(),
                customer_id: query.from.id.0.to_string(),
                customer_name: Some(query.from.full_name()),
                thread: place.key(),
                platform_message_id: Some(format!("callback:{}", query.id.0)),
                text: data,
            };
            match self.inner.assistant.press(turn).await {
                Ok(Pressed::Reply(reply)) => {
                    let _ = bot.answer_callback_query(query.id.clone()).send().await;
                    finish(&mut self.streamer(&place), &reply).await;
                    return Ok(());
                }
                Ok(Pressed::Message(m)) => {
                    let _ = bot.answer_callback_query(query.id.clone()).send().await;
                    self.send_text(&place, &m.text, m.buttons).await;
                    return Ok(());
                }
                Ok(Pressed::Feedback(_)) => ack = Some(text::FEEDBACK_THANKS.into()),
                Ok(Pressed::Unknown) => {}
                Ok(Pressed::Stale) => ack = Some(NO_LONGER_AVAILABLE.into()),
                // Kept: retried by the inbound pass, then quarantined.
                Err(e) => return Err(format!("button press failed: {e}")),
            }
        }
        let mut answer = bot.answer_callback_query(query.id.clone());
        if let Some(text) = ack {
            answer = answer.text(text);
        }
        if let Err(e) = answer.send().await {
            tracing::warn!("telegram: answerCallbackQuery failed: {e}");
        }
        Ok(())
    }

    /// A Claim / Resolve / Give back button on a card; the presser is
    /// recognised by their Telegram user id.
    async fn staff_button(&self, query: &CallbackQuery, data: &str) -> String {
        let Some(ButtonData::Desk {
            action,
            conversation,
        }) = ButtonData::parse(data)
        else {
            return NO_LONGER_AVAILABLE.into();
        };
        let agent = self
            .inner
            .desk
            .agents()
            .by_telegram(query.from.id.0 as i64)
            .cloned();
        let who = format!("telegram:{}", query.from.id.0);
        self.inner
            .desk
            .act_in_chat(
                agent.as_ref(),
                &who,
                &conversation,
                action.into(),
                text::NOT_AN_AGENT,
            )
            .await
            .map_or_else(
                |e| e,
                |c| format!("Done: the conversation is now {}", c.status),
            )
    }

    /// An agent writing in the agents' group.
    async fn agent_message(&self, message: Message) {
        let Some(text) = message.text().map(str::to_string) else {
            return;
        };
        let Some(from) = message.from.clone() else {
            return;
        };
        let conversation = self.conversation_of_staff_message(&message).await;
        let place = Place::of(&message, true);
        let Some(conversation) = conversation else {
            if message.reply_to_message().is_some() || message.thread_id.is_some() {
                self.send_text(&place, text::WHICH_CONVERSATION, Vec::new())
                    .await;
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
        let agent = self
            .inner
            .desk
            .agents()
            .by_telegram(from.id.0 as i64)
            .cloned();
        let who = format!("telegram:{}", from.id.0);
        if let Err(explain) = self
            .inner
            .desk
            .act_in_chat(
                agent.as_ref(),
                &who,
                &conversation,
                action,
                text::NOT_AN_AGENT,
            )
            .await
        {
            self.send_text(&place, &explain, Vec::new()).await;
        }
    }

    /// The conversation an agent's message is about, from stored mappings
    /// only: the forum topic of the conversation, or the bot's post (card,
    /// forwarded message, notice) the agent replied to. Text in the replied
    /// message is never read: a customer may have written it.
    async fn conversation_of_staff_message(&self, message: &Message) -> Option<String> {
        let store = &self.inner.store;
        if message.is_topic_message
            && let Some(thread) = message.thread_id
        {
            let key = format!("topic:{}", thread.0.0);
            match store.conversation_by_staff_thread(CHANNEL, &key).await {
                Ok(Some(c)) => return Some(c.id),
                Ok(None) => {}
                Err(e) => tracing::warn!("telegram: staff topic lookup failed: {e}"),
            }
        }
        let replied = message.reply_to_message()?;
        match store
            .conversation_by_staff_post(CHANNEL, &post_ref(replied.id))
            .await
        {
            Ok(found) => found.map(|c| c.id),
            Err(e) => {
                tracing::warn!("telegram: staff post lookup failed: {e}");
                None
            }
        }
    }

    /// Sends plain text (escaped) with buttons; retries, then the outbox.
    async fn send_text(&self, place: &Place, text: &str, buttons: Vec<Vec<Button>>) {
        let parts: Vec<String> = render::split(text)
            .iter()
            .map(|p| render::escape(p))
            .collect();
        self.send_parts(place, &parts, buttons).await
    }

    async fn send_parts(&self, place: &Place, parts: &[String], buttons: Vec<Vec<Button>>) {
        self.streamer(place).finish(parts, &buttons).await;
    }

    fn streamer(&self, place: &Place) -> Streamer<ChatSink> {
        Streamer::new(ChatSink {
            telegram: self.clone(),
            place: place.clone(),
        })
    }

    async fn send_html(
        &self,
        place: &Place,
        html: &str,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> Result<MessageId, RequestError> {
        let bot = &self.inner.bot;
        let sent = retrying(|| {
            let mut request = bot
                .send_message(place.chat, html.to_string())
                .parse_mode(ParseMode::Html)
                .link_preview_options(teloxide::types::LinkPreviewOptions {
                    is_disabled: true,
                    url: None,
                    prefer_small_media: false,
                    prefer_large_media: false,
                    show_above_text: false,
                });
            if let Some(thread) = place.thread {
                request = request.message_thread_id(thread);
            }
            if let Some(reply_to) = place.reply_to {
                request = request
                    .reply_parameters(ReplyParameters::new(reply_to).allow_sending_without_reply());
            }
            if let Some(k) = keyboard.clone() {
                request = request.reply_markup(k);
            }
            request.send()
        })
        .await?;
        Ok(sent.id)
    }

    async fn edit_html(
        &self,
        place: &Place,
        id: MessageId,
        html: &str,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> Result<(), RequestError> {
        let bot = &self.inner.bot;
        let result = retrying(|| {
            let mut request = bot
                .edit_message_text(place.chat, id, html.to_string())
                .parse_mode(ParseMode::Html);
            if let Some(k) = keyboard.clone() {
                request = request.reply_markup(k);
            }
            request.send()
        })
        .await;
        match result {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A send that finally failed: mark a blocked customer, else keep it
    /// in the outbox to be retried.
    async fn give_up(
        &self,
        place: &Place,
        parts: &[String],
        buttons: &[Vec<Button>],
        error: &RequestError,
    ) {
        let store = &self.inner.store;
        if is_unreachable(error) {
            if let Ok(Some(c)) = self.customer_of(place).await {
                let _ = store.set_unreachable(&c, true).await;
            }
            tracing::warn!(
                chat = place.chat.0,
                "telegram: customer unreachable: {error}"
            );
            return;
        }
        let target = Target {
            channel: CHANNEL.into(),
            customer_id: place.chat.0.to_string(),
            thread: place.key(),
        };
        // The outbox holds plain text; the parts are HTML, so unescape.
        let text = parts
            .iter()
            .map(|p| unescape(p))
            .collect::<Vec<_>>()
            .join("\n");
        let message = Outgoing {
            text,
            buttons: buttons.to_vec(),
            notice: false,
        };
        delivery::queue_failed(store, &target, &message, &error.to_string()).await;
    }

    async fn customer_of(&self, place: &Place) -> Result<Option<String>, crate::store::Error> {
        // In private chats the chat id is the user id.
        if place.chat.0 > 0 {
            let c = self
                .inner
                .store
                .upsert_customer(CHANNEL, &place.chat.0.to_string(), None)
                .await?;
            return Ok(Some(c.id));
        }
        Ok(None)
    }
}

/// Where a message goes: chat, forum topic, and the message it replies to.
#[derive(Debug, Clone)]
struct Place {
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

/// A Telegram chat as the sink of a streamed answer.
struct ChatSink {
    telegram: Telegram,
    place: Place,
}

#[async_trait::async_trait]
impl Sink for ChatSink {
    type Id = MessageId;
    type Error = RequestError;

    fn partial_limit(&self) -> usize {
        render::LIMIT - 200
    }

    fn render_partial(&self, text: &str) -> String {
        // The limit above counts characters before escaping; `&` escapes to
        // five and an emoji counts as two UTF-16 units, so show only what
        // fits (the first of the final parts).
        let first = render::split(text).into_iter().next().unwrap_or_default();
        render::escape(&first)
    }

    async fn send(
        &mut self,
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<MessageId, RequestError> {
        self.telegram
            .send_html(&self.place, body, keyboard(buttons))
            .await
    }

    async fn edit(
        &mut self,
        id: MessageId,
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), RequestError> {
        self.telegram
            .edit_html(&self.place, id, body, keyboard(buttons))
            .await
    }

    async fn give_up(&mut self, rest: &[String], buttons: &[Vec<Button>], error: &RequestError) {
        self.telegram
            .give_up(&self.place, rest, buttons, error)
            .await;
    }
}

/// The final messages of a reply: answer, sources, buttons.
async fn finish(stream: &mut Streamer<ChatSink>, reply: &Reply) {
    if !reply.is_silent() {
        let parts = render::with_sources(&reply.answer, &reply.sources);
        stream.finish(&parts, &reply.buttons()).await;
    }
}

fn keyboard(buttons: &[Vec<Button>]) -> Option<InlineKeyboardMarkup> {
    if buttons.is_empty() {
        return None;
    }
    Some(InlineKeyboardMarkup::new(buttons.iter().map(|row| {
        row.iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
            .collect::<Vec<_>>()
    })))
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
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
