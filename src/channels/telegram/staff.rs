//! The agents' group as a staff desk: a card per conversation (a forum
//! topic where the group has topics).

use super::*;

/// The agents' group as a staff desk.
pub(super) struct StaffDeskImpl {
    pub(super) telegram: Telegram,
    /// Whether the group takes forum topics; learnt on the first card.
    pub(super) forum: AtomicBool,
}

#[async_trait::async_trait]
impl StaffDesk for StaffDeskImpl {
    fn name(&self) -> &str {
        CHANNEL
    }

    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error> {
        let chat = self
            .telegram
            .inner
            .agents_chat
            .ok_or_else(|| delivery::Error::Permanent("no agents chat".into()))?;
        let bot = &self.telegram.inner.bot;
        let mut place = Place {
            chat,
            thread: None,
            reply_to: None,
        };
        if self.forum.load(Ordering::Relaxed) {
            let who = card
                .customer
                .display_name
                .clone()
                .unwrap_or_else(|| card.customer.external_id.clone());
            let name: String = format!("{who} · {}", card.reason)
                .chars()
                .take(120)
                .collect();
            match bot.create_forum_topic(chat, name).send().await {
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
        let id = self
            .telegram
            .send_html(&place, &html, keyboard(&card.buttons))
            .await
            .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
        Ok(PostedCard {
            thread_ref: match place.thread {
                Some(t) => format!("topic:{}", t.0.0),
                None => post_ref(id),
            },
            posts: vec![post_ref(id)],
        })
    }

    async fn post(
        &self,
        thread_ref: &str,
        _card: &Card,
        body: &str,
        notice: bool,
    ) -> Result<Vec<String>, delivery::Error> {
        let chat = self
            .telegram
            .inner
            .agents_chat
            .ok_or_else(|| delivery::Error::Permanent("no agents chat".into()))?;
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
        let prefix = if notice {
            text::NOTICE_PREFIX
        } else {
            text::CUSTOMER_PREFIX
        };
        // Agents answer by replying to any of these posts: each is
        // remembered (by message id) as the conversation's.
        let text = format!("{prefix}{body}");
        let parts: Vec<String> = render::split(&text)
            .iter()
            .map(|p| render::escape(p))
            .collect();
        let mut posts = Vec::with_capacity(parts.len());
        for part in parts {
            let id = self
                .telegram
                .send_html(&place, &part, None)
                .await
                .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
            posts.push(post_ref(id));
        }
        Ok(posts)
    }
}

/// How a message the bot posted in the agents' group is remembered.
pub(super) fn post_ref(id: MessageId) -> String {
    format!("msg:{}", id.0)
}
