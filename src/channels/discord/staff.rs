//! The agents' channel as a staff desk: a card per conversation with a
//! thread under it.

use serenity::all::MessageId;

use super::platform::Sent;
use super::*;
use crate::channels::driver::StaffPlatform;
use crate::delivery;
use crate::desk::{Card, PostedCard};

/// How a message the bot posted in the agents' channel is remembered.
fn post_ref(id: MessageId) -> String {
    driver::post_ref::<Discord>(Sent::Message(id))
}

impl Discord {
    fn agents_channel(&self) -> Result<ChannelId, delivery::Error> {
        self.inner
            .agents_channel
            .ok_or_else(|| delivery::Error::Permanent("no agents channel".into()))
    }
}

/// The agents' channel: a card per conversation with a thread under it
/// (or replies to the card when no thread can be opened).
#[async_trait::async_trait]
impl StaffPlatform for Discord {
    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error> {
        let channel = self.agents_channel()?;
        let place = Place {
            channel,
            kind: PlaceKind::Staff,
            reply_to: None,
            customer: None,
        };
        let text: String = render::split(&card.text()).join("\n");
        let text: String = text.chars().take(render::LIMIT).collect();
        let id = retrying(|| self.post(&place, &text, &card.buttons, None))
            .await
            .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
        let name = card.thread_name(90);
        let http = &self.inner.http;
        match retrying(|| {
            channel.create_thread_from_message(http, id, CreateThread::new(name.clone()))
        })
        .await
        {
            Ok(thread) => {
                self.threads().insert(thread.id, channel);
                Ok(PostedCard {
                    thread_ref: format!("thread:{}", thread.id.get()),
                    posts: vec![post_ref(id)],
                })
            }
            Err(e) => {
                tracing::info!("discord: no thread under the card ({e}); agents reply to the card");
                Ok(PostedCard {
                    thread_ref: post_ref(id),
                    posts: vec![post_ref(id)],
                })
            }
        }
    }

    fn staff_place(&self, thread_ref: &str) -> Result<Surface, delivery::Error> {
        let channel = self.agents_channel()?;
        let place = match thread_ref.split_once(':') {
            Some(("thread", t)) => Place {
                channel: t
                    .parse::<u64>()
                    .ok()
                    .filter(|&t| t != 0)
                    .map(ChannelId::new)
                    .ok_or_else(|| {
                        delivery::Error::Permanent(format!("bad thread {thread_ref}"))
                    })?,
                kind: PlaceKind::Staff,
                reply_to: None,
                customer: None,
            },
            Some(("msg", m)) => Place {
                channel,
                kind: PlaceKind::Staff,
                reply_to: m
                    .parse::<u64>()
                    .ok()
                    .filter(|&m| m != 0)
                    .map(MessageId::new),
                customer: None,
            },
            _ => {
                return Err(delivery::Error::Permanent(format!(
                    "bad thread reference {thread_ref}"
                )));
            }
        };
        Ok(Surface::Channel(place))
    }
}
