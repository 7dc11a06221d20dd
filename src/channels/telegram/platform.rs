//! Telegram as a [`Platform`]: what the channel driver needs from the Bot
//! API (HTML messages, inline keyboards, callback answers).

use teloxide::ApiError;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters};
use teloxide::types::{
    CallbackQueryId, ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions,
    ParseMode, ReplyParameters,
};

use super::*;
use crate::assistant::Reply;
use crate::delivery::{self, Button, Target};

#[async_trait::async_trait]
impl Platform for Telegram {
    const CHANNEL: &'static str = CHANNEL;
    const FIRST_BACKOFF: Duration = Duration::from_millis(300);
    type Place = Place;
    type Id = MessageId;
    type Error = RequestError;
    type Press = CallbackQueryId;

    fn core(&self) -> &ChannelCore {
        &self.inner.core
    }

    fn key(place: &Place) -> String {
        place.key()
    }

    fn place_of(target: &Target) -> Option<Place> {
        Place::from_key(&target.thread)
    }

    fn target_of(place: &Place) -> Option<Target> {
        // In private chats the chat id is the customer's user id.
        Some(Target {
            channel: CHANNEL.into(),
            customer_id: place.chat.0.to_string(),
            thread: place.key(),
        })
    }

    fn message_ref(id: MessageId) -> String {
        id.0.to_string()
    }

    fn partial_limit(&self, _place: &Self::Place) -> usize {
        render::LIMIT - 200
    }

    fn render_partial(&self, text: &str) -> String {
        // The limit above counts characters before escaping; `&` escapes to
        // five and an emoji counts as two UTF-16 units, so show only what
        // fits (the first of the final parts).
        let first = render::split(text).into_iter().next().unwrap_or_default();
        render::escape(&first)
    }

    fn render_reply(&self, reply: &Reply) -> Vec<String> {
        render::with_sources(&reply.answer, &reply.sources)
    }

    fn render_text(&self, text: &str) -> Vec<String> {
        render::split(text)
            .iter()
            .map(|p| render::escape(p))
            .collect()
    }

    fn plain(html: &str) -> String {
        html.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    }

    async fn send(
        &self,
        place: &Place,
        html: &str,
        buttons: &[Vec<Button>],
        _key: Option<&str>,
    ) -> Result<MessageId, RequestError> {
        let mut request = self
            .inner
            .bot
            .send_message(place.chat, html.to_string())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions {
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
        if let Some(k) = keyboard(buttons) {
            request = request.reply_markup(k);
        }
        Ok(request.send().await?.id)
    }

    async fn edit(
        &self,
        place: &Place,
        id: MessageId,
        html: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), RequestError> {
        let mut request = self
            .inner
            .bot
            .edit_message_text(place.chat, id, html.to_string())
            .parse_mode(ParseMode::Html);
        if let Some(k) = keyboard(buttons) {
            request = request.reply_markup(k);
        }
        match request.send().await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn typing(&self, place: &Place) {
        let _ = self
            .inner
            .bot
            .send_chat_action(place.chat, ChatAction::Typing)
            .send()
            .await;
    }

    async fn acknowledge(&self, press: &CallbackQueryId, text: Option<&str>) {
        let mut answer = self.inner.bot.answer_callback_query(press.clone());
        if let Some(text) = text {
            answer = answer.text(text);
        }
        if let Err(e) = answer.send().await {
            tracing::warn!("telegram: answerCallbackQuery failed: {e}");
        }
    }

    fn failure(error: &RequestError) -> delivery::Error {
        if errors::is_unreachable(error) {
            delivery::Error::Unreachable(error.to_string())
        } else if matches!(error, RequestError::Api(_)) && !errors::is_transient(error) {
            delivery::Error::Permanent(error.to_string())
        } else {
            delivery::Error::Temporary(error.to_string())
        }
    }

    /// Honours `retry_after` on 429 and backs off on 5xx and network
    /// errors. teloxide itself already waits 10 s before it reports a 5xx
    /// answer.
    fn retry_wait(error: &RequestError, backoff: Duration) -> Option<Duration> {
        match error {
            RequestError::RetryAfter(secs) => Some(secs.duration().min(Duration::from_secs(60))),
            e if errors::is_transient(e) => Some(backoff),
            _ => None,
        }
    }
}

pub(super) fn keyboard(buttons: &[Vec<Button>]) -> Option<InlineKeyboardMarkup> {
    if buttons.is_empty() {
        return None;
    }
    Some(InlineKeyboardMarkup::new(buttons.iter().map(|row| {
        row.iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
            .collect::<Vec<_>>()
    })))
}
