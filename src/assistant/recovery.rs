//! Crash recovery: customer messages a previous process stored and never answered, answered once (by the recovery pass or a client's retry).

use super::*;

impl Assistant {
    /// Answers customer messages that were stored but never answered (the
    /// process stopped in between), on the customer's channel. Looks at
    /// messages stored up to `before` (this process's start) by a process
    /// that is gone, or by none; messages another live process stored are
    /// its to answer. Messages older than `max_age_ms` are left alone: a
    /// late answer to an old question would confuse more than help.
    /// Returns how many were answered.
    ///
    /// # Errors
    /// On a database failure.
    #[tracing::instrument(name = "recovery", skip_all)]
    pub async fn answer_pending(
        &self,
        registry: &crate::delivery::Registry,
        max_age_ms: i64,
        before: crate::clock::Millis,
    ) -> Result<usize, Error> {
        let store = &self.inner.store;
        let live = store.live_instances().await?;
        let mut answered = 0;
        let pending = store.unanswered(store.now() - max_age_ms, before).await?;
        for (conversation, messages) in pending {
            if !registry.can_deliver(&conversation.channel) {
                continue;
            }
            let messages = messages
                .into_iter()
                .filter(|m| !self.answered_elsewhere(m, &live))
                .collect();
            answered += self.answer_left(registry, conversation, messages).await?;
        }
        Ok(answered)
    }

    /// Answers the customer messages that process `gone` stored in the last
    /// `max_age_ms` and never answered; each is claimed first, so when
    /// several processes notice at once exactly one answers it. Returns how
    /// many this process answered.
    ///
    /// # Errors
    /// On a database failure.
    #[tracing::instrument(name = "recovery", skip(self, registry))]
    pub async fn answer_left_by(
        &self,
        registry: &crate::delivery::Registry,
        gone: &str,
        max_age_ms: i64,
    ) -> Result<usize, Error> {
        use futures::StreamExt;
        let store = &self.inner.store;
        let now = store.now();
        let conversations = store.conversations_owned_by(gone, now - max_age_ms).await?;
        // Conversations at once (each in order): what a process left can be
        // many answers, each as slow as the model.
        let results: Vec<Result<usize, Error>> = futures::stream::iter(conversations)
            .map(|conversation_id| async move {
                let conversation_id = crate::ids::ConversationId::from(conversation_id);
                let conversation = store.conversation(&conversation_id).await?;
                if conversation.status != crate::conversation::Status::Bot
                    || !registry.can_deliver(&conversation.channel)
                {
                    return Ok(0);
                }
                let messages = store
                    .waiting_in(&conversation_id, now)
                    .await?
                    .into_iter()
                    .filter(|m| m.owner.as_deref() == Some(gone))
                    .collect();
                self.answer_left(registry, conversation, messages).await
            })
            .buffer_unordered(TAKE_OVER_AT_ONCE)
            .collect()
            .await;
        results.into_iter().sum()
    }

    /// Whether another process that is alive stored `message` (so it is
    /// answering it).
    fn answered_elsewhere(
        &self,
        message: &Message,
        live: &std::collections::HashSet<String>,
    ) -> bool {
        message
            .owner
            .as_deref()
            .is_some_and(|owner| owner != self.inner.store.instance() && live.contains(owner))
    }

    /// Answers `messages` (waiting ones of `conversation`, oldest first)
    /// that this process can claim and no earlier pass answered, while the
    /// conversation stays with the bot.
    async fn answer_left(
        &self,
        registry: &crate::delivery::Registry,
        conversation: Conversation,
        messages: Vec<Message>,
    ) -> Result<usize, Error> {
        if messages.is_empty() {
            return Ok(0);
        }
        let store = &self.inner.store;
        let customer = store.customer(&conversation.customer_id).await?;
        // A message answered by an earlier pass is not answered again.
        let recovered = self.recovered(&conversation.id).await?;
        let mut answered = 0;
        for message in messages {
            if recovered.iter().any(|id| *id == message.id) {
                continue;
            }
            let conversation = store.conversation(&conversation.id).await?;
            if conversation.status != crate::conversation::Status::Bot {
                break;
            }
            if !self.claim(&message).await? {
                continue;
            }
            if self
                .recover(registry, &customer, conversation, message)
                .await?
            {
                answered += 1;
            }
        }
        Ok(answered)
    }

    /// Makes this process the one answering `message`: `false` when another
    /// process claimed it first.
    async fn claim(&self, message: &Message) -> Result<bool, Error> {
        let store = &self.inner.store;
        match message.owner.as_deref() {
            Some(owner) if owner == store.instance() => Ok(true),
            owner => Ok(store.claim_message(&message.id, owner).await?),
        }
    }

    /// Answers a customer message a previous process stored and never
    /// answered, now that the client sent it again (a retry with the same
    /// platform id after a crash): the retry gets the answer at once rather
    /// than after the recovery pass, which by then may find the customer
    /// moved on. `false` when the message is not such a message (unknown,
    /// being answered by this or another live process, answered, or with a
    /// person now).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn answer_orphan(
        &self,
        registry: &crate::delivery::Registry,
        channel: &str,
        platform_message_id: &str,
    ) -> Result<bool, Error> {
        let store = &self.inner.store;
        let Some(message) = store.customer_message(channel, platform_message_id).await? else {
            return Ok(false);
        };
        let mine = message.owner.as_deref() == Some(store.instance());
        if (mine && message.created_at >= self.inner.started)
            || (!mine && self.answered_elsewhere(&message, &store.live_instances().await?))
            || store
                .reply_to(channel, platform_message_id)
                .await?
                .is_some()
        {
            return Ok(false);
        }
        let answered_before = self
            .recovered(&message.conversation_id)
            .await?
            .iter()
            .any(|id| *id == message.id);
        let conversation = store.conversation(&message.conversation_id).await?;
        if answered_before
            || conversation.status != crate::conversation::Status::Bot
            || !self.claim(&message).await?
        {
            return Ok(false);
        }
        let customer = store.customer(&conversation.customer_id).await?;
        self.recover(registry, &customer, conversation, message)
            .await
    }

    /// Ids of the messages of `conversation_id` that crash recovery has
    /// answered (in any process).
    pub(super) async fn recovered(
        &self,
        conversation_id: &crate::ids::ConversationId,
    ) -> Result<Vec<String>, Error> {
        Ok(self
            .inner
            .store
            .events(conversation_id)
            .await?
            .into_iter()
            .filter(|e| e.kind == EventKind::Recovered)
            .filter_map(|e| e.detail)
            .collect())
    }

    /// Answers one message left by a crash, unless this process has taken
    /// it on already; marks it answered.
    pub(super) async fn recover(
        &self,
        registry: &crate::delivery::Registry,
        customer: &crate::store::Customer,
        conversation: Conversation,
        message: Message,
    ) -> Result<bool, Error> {
        let taken = self
            .inner
            .recovering
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(message.id.to_string());
        if !taken {
            return Ok(false);
        }
        let (conversation_id, message_id) = (conversation.id.clone(), message.id.clone());
        let answered = self
            .answer_stored(registry, customer, conversation, message)
            .await?;
        // After the answer: a crash in between answers it once more.
        self.inner
            .store
            .record_event(
                &conversation_id,
                EventKind::Recovered,
                Actor::System,
                Some(&message_id),
            )
            .await?;
        Ok(answered)
    }

    /// Answers one stored customer message on its channel (or through the
    /// outbox); `false` when the decision was to stay silent.
    pub(super) async fn answer_stored(
        &self,
        registry: &crate::delivery::Registry,
        customer: &crate::store::Customer,
        conversation: Conversation,
        message: Message,
    ) -> Result<bool, Error> {
        let store = &self.inner.store;
        {
            let turn = Turn {
                channel: conversation.channel.clone(),
                customer_id: customer.external_id.clone(),
                customer_name: customer.display_name.clone(),
                thread: conversation.thread_key.clone(),
                platform_message_id: None,
                text: message.text.clone(),
            };
            let reply = self
                .decide(customer, conversation.clone(), &turn, None)
                .await?;
            if reply.is_silent() {
                return Ok(false);
            }
            let target = crate::delivery::Target {
                channel: conversation.channel.clone(),
                customer_id: customer.external_id.clone(),
                thread: conversation.thread_key.clone(),
            };
            let outgoing = crate::delivery::Outgoing {
                text: crate::delivery::plain_reply(&reply.answer, &reply.sources),
                buttons: reply.buttons(),
                notice: false,
            };
            crate::delivery::send_or_queue(
                registry,
                store,
                &target,
                &outgoing,
                Some(&conversation.id),
                crate::delivery::Retry::Outbox,
            )
            .await?;
        }
        Ok(true)
    }
}

/// Conversations a process answers at once when it takes over from a gone
/// one.
const TAKE_OVER_AT_ONCE: usize = 8;

/// Messages older than this are not answered by crash recovery.
pub const MAX_AGE_MS: i64 = 3_600_000;

/// This process's part among the processes sharing the database: beats,
/// and answers what the processes that stopped beating left.
pub struct Watch {
    assistant: Assistant,
    registry: crate::delivery::Registry,
    /// Gone processes whose messages this one has gone through.
    passed: std::collections::HashSet<String>,
}

impl Watch {
    /// The watch of the process `assistant` runs in (registered with
    /// [`Store::register_instance`]).
    pub fn new(assistant: Assistant, registry: crate::delivery::Registry) -> Self {
        Self {
            assistant,
            registry,
            passed: Default::default(),
        }
    }

    /// Answers what each process gone since the last pass left (one that
    /// stopped beating, or stopped cleanly); forgets processes gone for
    /// longer than crash recovery looks back. Returns how many messages it
    /// answered.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn take_over(&mut self) -> Result<usize, Error> {
        let store = self.assistant.store().clone();
        let now = store.now();
        let mut answered = 0;
        for instance in store.instances().await? {
            if instance.id == store.instance() || instance.seen_at >= now - store.lease_ms() {
                continue;
            }
            if instance.seen_at < now - MAX_AGE_MS {
                // Nothing it left is answered any more.
                store.forget_instance(&instance.id).await?;
                self.passed.remove(&instance.id);
                continue;
            }
            if self.passed.contains(&instance.id) {
                continue;
            }
            tracing::info!(instance = %instance.id, host = %instance.host, pid = instance.pid, "a process sharing the database is gone");
            answered += self
                .assistant
                .answer_left_by(&self.registry, &instance.id, MAX_AGE_MS)
                .await?;
            self.passed.insert(instance.id);
        }
        Ok(answered)
    }

    /// Beats every `every` until `stop`, and as often takes over what gone
    /// processes left; then marks this process gone so the others take over
    /// at once what it leaves. The beat has a task of its own: answering
    /// what another process left takes as long as the model does, and a
    /// process busy with that must not look gone itself.
    pub async fn run(
        mut self,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let first = tokio::time::Instant::now() + every;
        let store = self.assistant.store().clone();
        let beats = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(first, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = store.beat().await {
                    tracing::warn!("instance beat: {e}");
                }
            }
        });
        let mut ticks = tokio::time::interval_at(first, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticks.tick() => match self.take_over().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("answered {n} message(s) left by a process that is gone"),
                    Err(e) => tracing::warn!("taking over from a gone process: {e}"),
                },
            }
        }
        beats.abort();
        let store = self.assistant.store();
        if let Err(e) = store.mark_gone(store.instance()).await {
            tracing::warn!("marking this process gone: {e}");
        }
    }
}
