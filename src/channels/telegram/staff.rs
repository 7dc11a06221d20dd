//! The agents' group as a staff desk: a card per conversation (a forum
//! topic where the group has topics).

use std::sync::atomic::Ordering;

use super::*;
use crate::delivery;
use crate::desk::{Card, PostedCard, StaffDesk};

/// The agents' group as a staff desk.
pub(super) struct StaffDeskImpl {
    pub(super) telegram: Telegram,
    /// Whether the group takes forum topics; learnt on the first card.
    pub(super) forum: AtomicBool,
}

impl StaffDeskImpl {
    fn chat(&self) -> Result<ChatId, delivery::Error> {
        self.telegram
            .inner
            .agents_chat
            .ok_or_else(|| delivery::Error::Permanent("no agents chat".into()))
    }
}

#[async_trait::async_trait]
impl StaffDesk for StaffDeskImpl {
    fn name(&self) -> &str {
        CHANNEL
    }

    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error> {
        let chat = self.chat()?;
        let mut place = Place {
            chat,
            thread: None,
            reply_to: None,
        };
        if self.forum.load(Ordering::Relaxed) {
            let bot = &self.telegram.inner.bot;
            match bot
                .create_forum_topic(chat, card.thread_name(120))
                .send()
                .await
            {
                Ok(topic) => place.thread = Some(topic.thread_id),
                Err(RequestError::Api(e)) => {
                    tracing::info!(
                        "telegram: agents chat has no topics ({e}); using replies to cards"
                    );
                    self.forum.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(delivery::Error::Temporary(e.to_string())),
            }
        }
        let html = render::fit(&card.text());
        let id = driver::post_card(&self.telegram, &place, &html, &card.buttons).await?;
        let post = driver::post_ref::<Telegram>(id);
        Ok(PostedCard {
            thread_ref: match place.thread {
                Some(t) => format!("topic:{}", t.0.0),
                None => post.clone(),
            },
            posts: vec![post],
        })
    }

    async fn post(
        &self,
        thread_ref: &str,
        _card: &Card,
        body: &str,
        notice: bool,
    ) -> Result<Vec<String>, delivery::Error> {
        let chat = self.chat()?;
        let place = match thread_ref.split_once(':') {
            Some(("topic", t)) => Place {
                chat,
                thread: t.parse().ok().map(|t| ThreadId(MessageId(t))),
                reply_to: None,
            },
            Some(("msg", m)) => Place {
                chat,
                thread: None,
                reply_to: m.parse().ok().map(MessageId),
            },
            _ => {
                return Err(delivery::Error::Permanent(format!(
                    "bad thread reference {thread_ref}"
                )));
            }
        };
        // Agents answer by replying to any of these posts: each is
        // remembered (by message id) as the conversation's.
        driver::post_to_staff(&self.telegram, &place, body, notice).await
    }
}
