//! Where a Discord message was written (DM, help channel or forum, staff
//! channel, elsewhere), the threads the channel knows, and whether a
//! message is addressed to the bot.

use super::*;

/// Where a message was written, which decides how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlaceKind {
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

impl Discord {
    /// Where a message was written.
    pub(super) async fn place_kind(&self, ctx: Option<&Context>, message: &Message) -> PlaceKind {
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

    pub(super) fn threads(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, ChannelId>> {
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
    pub(super) fn addressed_text(&self, message: &Message, kind: PlaceKind) -> Option<String> {
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
    pub(super) async fn open_thread(&self, message: &Message, text: &str) -> Option<Place> {
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
}
