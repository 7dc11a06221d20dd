//! What the customer is told about the desk's transitions (an agent joined, transferred, gave back, closed), and agents' messages to customers.

use super::*;

impl Desk {
    /// Sends the conversation's notices that have not gone out yet, oldest
    /// first, each at most once: it is taken in the store before it is sent
    /// (so a repeated or concurrent action never sends it twice), then
    /// delivered or queued in the outbox like any message to the customer.
    pub(super) async fn send_notices(&self, conversation: &Conversation) -> Result<(), Error> {
        let store = &self.inner.store;
        for event in store.unsent_notices(&conversation.id).await? {
            self.send_notice(conversation, &event).await?;
        }
        Ok(())
    }

    pub(super) async fn send_notice(
        &self,
        conversation: &Conversation,
        event: &store::Event,
    ) -> Result<(), Error> {
        let Some(text) = &event.notice else {
            return Ok(());
        };
        if !self.inner.store.claim_notice(&event.id).await? {
            return Ok(());
        }
        self.send_to_customer(conversation, &Outgoing::notice(text.as_str()))
            .await
    }

    /// Notices a stopped process recorded but never sent (it stopped between
    /// the state change and the send).
    pub(super) async fn send_stale_notices(&self) -> Result<(), Error> {
        let store = &self.inner.store;
        for event in store.stale_notices(store.now() - NOTICE_GRACE_MS).await? {
            let conversation = store.conversation(&event.conversation_id).await?;
            self.send_notice(&conversation, &event).await?;
        }
        Ok(())
    }

    /// Sends to the customer on their own channel; a failed send goes to the
    /// outbox (retried later), a blocked customer is marked unreachable.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn send_to_customer(
        &self,
        conversation: &Conversation,
        message: &Outgoing,
    ) -> Result<(), Error> {
        let store = &self.inner.store;
        let customer = store.customer(&conversation.customer_id).await?;
        let target = Target {
            channel: customer.channel.clone(),
            customer_id: customer.external_id.clone(),
            thread: conversation.thread_key.clone(),
        };
        delivery::send_or_queue(
            &self.inner.registry,
            store,
            &target,
            message,
            Some(&conversation.id),
            Retry::Outbox,
        )
        .await?;
        Ok(())
    }
}
