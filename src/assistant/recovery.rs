//! Crash recovery: customer messages a previous process stored and never answered, answered once (by the recovery pass or a client's retry).

use super::*;

impl Assistant {
    /// Answers customer messages that were stored but never answered (the
    /// process stopped in between), on the customer's channel. Messages older
    /// than `max_age_ms` are left alone: a late answer to an old question
    /// would confuse more than help. Returns how many were answered.
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
        let mut answered = 0;
        let pending = store.unanswered(store.now() - max_age_ms, before).await?;
        for (conversation, messages) in pending {
            if !registry.can_deliver(&conversation.channel) {
                continue;
            }
            let customer = store.customer(&conversation.customer_id).await?;
            // A message answered by an earlier pass is not answered again.
            let recovered = self.recovered(&conversation.id).await?;
            for message in messages {
                if recovered.contains(&message.id) {
                    continue;
                }
                let conversation = store.conversation(&conversation.id).await?;
                if conversation.status != crate::conversation::Status::Bot {
                    break;
                }
                if self
                    .recover(registry, &customer, conversation, message)
                    .await?
                {
                    answered += 1;
                }
            }
        }
        Ok(answered)
    }

    /// Answers a customer message a previous process stored and never
    /// answered, now that the client sent it again (a retry with the same
    /// platform id after a crash): the retry gets the answer at once rather
    /// than after the recovery pass, which by then may find the customer
    /// moved on. `false` when the message is not such a message (unknown,
    /// stored by this process, answered, or with a person now).
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
        if message.created_at >= self.inner.started
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
            .contains(&message.id);
        let conversation = store.conversation(&message.conversation_id).await?;
        if answered_before || conversation.status != crate::conversation::Status::Bot {
            return Ok(false);
        }
        let customer = store.customer(&conversation.customer_id).await?;
        self.recover(registry, &customer, conversation, message)
            .await
    }

    /// Ids of the messages of `conversation_id` that crash recovery has
    /// answered (in any process).
    pub(super) async fn recovered(&self, conversation_id: &str) -> Result<Vec<String>, Error> {
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
            .insert(message.id.clone());
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
                "system",
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
