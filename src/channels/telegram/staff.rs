//! The agents' group as a staff desk: a card per conversation (a forum
//! topic where the group has topics).

use std::sync::atomic::Ordering;

use super::*;
use crate::channels::driver::StaffPlatform;
use crate::delivery;
use crate::desk::{Card, PostedCard};

/// The agents' group: a card per conversation, in a topic of its own where
/// the group has topics (learnt on the first card), else replies to it.
#[async_trait::async_trait]
impl StaffPlatform for Telegram {
    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error> {
        let chat = self.agents_chat()?;
        let mut place = Place {
            chat,
            thread: None,
            reply_to: None,
        };
        if self.inner.forum.load(Ordering::Relaxed) {
            let bot = &self.inner.bot;
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
                    self.inner.forum.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(delivery::Error::Temporary(e.to_string())),
            }
        }
        let html = render::fit(&card.text());
        let id = driver::post_card(self, &place, &html, &card.buttons).await?;
        let post = driver::post_ref::<Telegram>(id);
        Ok(PostedCard {
            thread_ref: match place.thread {
                Some(t) => format!("topic:{}", t.0.0),
                None => post.clone(),
            },
            posts: vec![post],
        })
    }

    fn staff_place(&self, thread_ref: &str) -> Result<Place, delivery::Error> {
        let chat = self.agents_chat()?;
        match thread_ref.split_once(':') {
            Some(("topic", t)) => Ok(Place {
                chat,
                thread: t.parse().ok().map(|t| ThreadId(MessageId(t))),
                reply_to: None,
            }),
            Some(("msg", m)) => Ok(Place {
                chat,
                thread: None,
                reply_to: m.parse().ok().map(MessageId),
            }),
            _ => Err(delivery::Error::Permanent(format!(
                "bad thread reference {thread_ref}"
            ))),
        }
    }
}

impl Telegram {
    /// The agents' group.
    fn agents_chat(&self) -> Result<ChatId, delivery::Error> {
        self.inner
            .agents_chat
            .ok_or_else(|| delivery::Error::Permanent("no agents chat".into()))
    }
}
