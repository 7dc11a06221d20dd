//! Keeping the staff places in step with the log: cards posted and updated for hand-offs, unclaimed chats announced again.

use super::*;

impl Desk {
    /// Runs the desk loop until `shutdown`: posts cards, forwards customer
    /// messages and status changes to every staff desk, re-pings unclaimed
    /// conversations. A pass runs when something changed, else every
    /// `every` (`handoff.desk_sync_secs`).
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.sync_once().await {
                tracing::warn!("desk sync: {e}");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.inner.poke.notified() => {},
                () = tokio::time::sleep(every) => {},
            }
        }
    }

    /// One pass of the desk loop (tests call it directly).
    ///
    /// # Errors
    /// On a database failure; desk delivery errors are logged and retried.
    #[tracing::instrument(name = "desk", skip_all)]
    pub async fn sync_once(&self) -> Result<(), Error> {
        let store = &self.inner.store;
        self.inner
            .agents
            .set_accounts(store.agent_accounts().await?);
        let staff: Vec<Arc<dyn StaffDesk>> = self
            .inner
            .staff
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for desk in &staff {
            for (conversation, thread) in store.desk_pending(desk.name()).await? {
                if let Err(e) = self
                    .sync_conversation(desk.as_ref(), &conversation, thread)
                    .await
                {
                    tracing::warn!(desk = desk.name(), conversation = %conversation.id, "staff desk: {e}");
                }
            }
        }
        if let Err(e) = self.send_stale_notices().await {
            tracing::warn!("notices: {e}");
        }
        self.reping().await
    }

    pub(super) async fn sync_conversation(
        &self,
        desk: &dyn StaffDesk,
        conversation: &Conversation,
        thread: Option<store::StaffThread>,
    ) -> Result<(), Error> {
        let store = &self.inner.store;
        let thread = match thread {
            None => {
                if !store
                    .reserve_staff_thread(&conversation.id, desk.name())
                    .await?
                {
                    return Ok(());
                }
                return self.post_new_card(desk, conversation).await;
            }
            // Another pass (of this process or another) holds it.
            Some(_)
                if !store
                    .claim_staff_sync(&conversation.id, desk.name())
                    .await? =>
            {
                return Ok(());
            }
            // As it is now that this pass holds it.
            Some(_) => match store.staff_thread(&conversation.id, desk.name()).await? {
                Some(thread) => thread,
                None => return Ok(()),
            },
        };
        let Some(thread_ref) = thread.thread_ref.clone() else {
            // Its card's posting was interrupted (a crash) and the lease
            // ran out.
            return self.post_new_card(desk, conversation).await;
        };
        let card = self.card(conversation).await?;
        let mut forwarded = thread.forwarded_seq;
        let pending = store
            .customer_messages_after(&conversation.id, forwarded)
            .await?;
        for m in pending {
            if matches!(
                conversation.status,
                Status::WaitingForAgent | Status::WithAgent
            ) {
                match desk.post(&thread_ref, &card, &m.text, false).await {
                    Ok(posts) => {
                        store
                            .add_staff_posts(desk.name(), &conversation.id, &posts)
                            .await?;
                    }
                    Err(e) => {
                        store
                            .update_staff_thread(
                                &conversation.id,
                                desk.name(),
                                None,
                                forwarded,
                                None,
                            )
                            .await?;
                        tracing::warn!(
                            desk = desk.name(),
                            "message not forwarded, will retry: {e}"
                        );
                        return Ok(());
                    }
                }
            }
            forwarded = m.seq;
        }
        let mut notified = None;
        if thread.notified_status.as_deref() != Some(conversation.status.as_str()) {
            let notice = match conversation.status {
                Status::WithAgent => format!(
                    "Claimed by {}.",
                    conversation.assigned_agent.as_deref().unwrap_or("an agent")
                ),
                Status::Bot => "Given back to the bot.".to_string(),
                Status::Resolved => format!(
                    "Resolved{}.",
                    conversation
                        .resolved_by
                        .as_deref()
                        .map(|by| format!(" by {by}"))
                        .unwrap_or_default()
                ),
                Status::WaitingForAgent => "Waiting for an agent again.".to_string(),
            };
            match desk.post(&thread_ref, &card, &notice, true).await {
                Ok(posts) => {
                    store
                        .add_staff_posts(desk.name(), &conversation.id, &posts)
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(desk = desk.name(), "status not posted, will retry: {e}")
                }
            }
            notified = Some(conversation.status.as_str());
        }
        store
            .update_staff_thread(&conversation.id, desk.name(), None, forwarded, notified)
            .await?;
        Ok(())
    }

    /// Posts the card of `conversation` in `desk`, whose thread this pass
    /// reserved; on failure the reservation is dropped, to be tried again.
    async fn post_new_card(
        &self,
        desk: &dyn StaffDesk,
        conversation: &Conversation,
    ) -> Result<(), Error> {
        let store = &self.inner.store;
        let card = self.card(conversation).await?;
        let last_seq = card.recent.iter().map(|m| m.seq).max().unwrap_or(0);
        match desk.post_card(&card).await {
            Ok(PostedCard { thread_ref, posts }) => {
                store
                    .add_staff_posts(desk.name(), &conversation.id, &posts)
                    .await?;
                let all = store.messages(&conversation.id).await?;
                let max_seq = all.iter().map(|m| m.seq).max().unwrap_or(last_seq);
                store
                    .update_staff_thread(
                        &conversation.id,
                        desk.name(),
                        Some(&thread_ref),
                        max_seq,
                        Some(conversation.status.as_str()),
                    )
                    .await?;
            }
            Err(e) => {
                store
                    .release_staff_thread(&conversation.id, desk.name())
                    .await?;
                tracing::warn!(desk = desk.name(), "card not posted, will retry: {e}");
            }
        }
        Ok(())
    }

    pub(super) async fn reping(&self) -> Result<(), Error> {
        let store = &self.inner.store;
        let before = store.now() - self.inner.reping_after;
        let staff: Vec<Arc<dyn StaffDesk>> = self
            .inner
            .staff
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for conversation in store.unclaimed_since(before).await? {
            if !store.mark_repinged(&conversation.id).await? {
                continue;
            }
            store
                .record_event(
                    &conversation.id,
                    EventKind::Reping,
                    Actor::System,
                    Some("nobody claimed it in time"),
                )
                .await?;
            let card = self.card(&conversation).await?;
            for desk in &staff {
                if let Some(thread) = store.staff_thread(&conversation.id, desk.name()).await?
                    && let Some(thread_ref) = thread.thread_ref
                {
                    let text = "Still waiting for an agent: please claim this conversation.";
                    match desk.post(&thread_ref, &card, text, true).await {
                        Ok(posts) => {
                            store
                                .add_staff_posts(desk.name(), &conversation.id, &posts)
                                .await?;
                        }
                        Err(e) => tracing::warn!(desk = desk.name(), "re-ping not posted: {e}"),
                    }
                }
            }
            let text = self.render(
                Template::StillWaiting,
                serde_json::json!({"back_at": self.back_at()}),
            )?;
            self.send_to_customer(&conversation, &Outgoing::text(text))
                .await?;
        }
        Ok(())
    }
}
