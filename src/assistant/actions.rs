//! What a decision does: replies, hand-offs, resolving, surveys, moving and restarting conversations, extractive answers, and storing the bot's message.

use super::decide::store_gap;
use super::*;

impl Assistant {
    pub(super) fn silent(&self, conversation: &Conversation, action: Action) -> Reply {
        Reply {
            conversation_id: conversation.id.clone(),
            message_id: None,
            answer: String::new(),
            mode: Mode::Handoff,
            sources: Vec::new(),
            handoff: conversation.status != Status::Bot,
            action,
            survey_buttons: Vec::new(),
        }
    }

    pub(super) async fn info(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        template: Template,
    ) -> Result<Reply, Error> {
        let text = self.render(template, serde_json::json!({}))?;
        self.finish(conversation, turn, BotMessage::info(text))
            .await
    }

    pub(super) async fn offer_human(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        store_gap(&self.inner.store, conversation, turn).await?;
        let already = conversation.offered_human;
        let text = self.render(Template::NoAnswer, serde_json::json!({"offer": !already}))?;
        self.inner
            .store
            .mark_offered_human(&conversation.id)
            .await?;
        self.finish(conversation, turn, BotMessage::offer(text))
            .await
    }

    /// Hands the conversation to people: moves it to `waiting_for_agent`,
    /// records why, and tells the customer.
    pub(super) async fn hand_off(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        reason: Reason,
        detail: Option<&str>,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        if let Some(limited) = self.handoff_limited(conversation, turn).await? {
            return Ok(limited);
        }
        let change = Change {
            handoff_reason: Some(reason.as_str()),
            handoff_detail: detail,
            ..Change::default()
        };
        let conversation = match self
            .move_conversation(conversation, Transition::HandOff, Actor::Bot, &change)
            .await?
        {
            Ok(c) => c,
            Err(silent) => return Ok(silent),
        };
        metrics::counter!("switchboard_handoffs_total", "reason" => reason.as_str()).increment(1);
        let position = store.queue_position(&conversation.id).await?;
        let back_at = self.inner.desk.as_ref().and_then(Desk::back_at);
        let text = self.render(
            Template::Handoff,
            serde_json::json!({"reason": reason.as_str(), "queue_position": position, "back_at": back_at}),
        )?;
        if let Some(desk) = &self.inner.desk {
            desk.poke();
        }
        let message = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Bot,
            text: &text,
            mode: Some(Mode::Handoff.into()),
            channel: &turn.channel,
            ..NewMessage::default()
        };
        let message_id = store.insert_message(&message).await?;
        metrics::counter!("switchboard_answers_total", "mode" => Mode::Handoff.as_str())
            .increment(1);
        Ok(Reply {
            conversation_id: conversation.id.clone(),
            message_id,
            answer: text,
            mode: Mode::Handoff,
            sources: Vec::new(),
            handoff: true,
            action: Action::HandOff(reason),
            survey_buttons: Vec::new(),
        })
    }

    /// `Some` reply instead of a hand-off when the customer already waits
    /// for a person in another conversation (one place in the queue per
    /// customer), or when an anonymous channel is over its hand-offs per
    /// minute.
    pub(super) async fn handoff_limited(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Option<Reply>, Error> {
        let store = &self.inner.store;
        let (template, default, limit) = if store
            .waiting_elsewhere(&conversation.customer_id, &conversation.id)
            .await?
            .is_some()
        {
            (
                Template::AlreadyWaiting,
                ALREADY_WAITING,
                "one_waiting_handoff",
            )
        } else if self
            .inner
            .limits
            .as_ref()
            .is_some_and(|l| !l.allow_handoff(&turn.channel))
        {
            (Template::HandoffBusy, HANDOFF_BUSY, "anonymous_handoffs")
        } else {
            return Ok(None);
        };
        metrics::counter!("switchboard_limited_total", "limit" => limit).increment(1);
        let text = self.render_or(template, serde_json::json!({}), default)?;
        self.finish(conversation, turn, BotMessage::info(text))
            .await
            .map(Some)
    }

    /// The customer confirmed the answer solved it: resolve (a survey
    /// follows later).
    pub(super) async fn resolve_solved(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let text = self.render(Template::Solved, serde_json::json!({}))?;
        let reply = self
            .finish(conversation, turn, BotMessage::info(text))
            .await?;
        let change = Change {
            resolution: Some(&Resolution::Customer),
            event_detail: Some("customer confirmed the answer solved it"),
            ..Change::default()
        };
        match self
            .inner
            .store
            .transition(
                &conversation.id,
                Transition::Resolve,
                Actor::Customer,
                &change,
            )
            .await
        {
            Ok(_) | Err(store::Error::Conflict(_) | store::Error::Illegal(_)) => Ok(reply),
            Err(e) => Err(e.into()),
        }
    }

    /// A typed answer to a survey (a rating number or the comment), stored
    /// in the surveyed conversation without reopening it.
    pub(super) async fn survey_answer(
        &self,
        customer: &Customer,
        turn: &Turn,
    ) -> Result<Option<Reply>, Error> {
        let Some(surveys) = &self.inner.surveys else {
            return Ok(None);
        };
        // Only customers recently sent a survey can be answering one.
        let now = self.inner.store.now();
        if customer
            .surveyed_at
            .is_none_or(|t| now - t > crate::csat::TYPED_WINDOW_MS)
        {
            return Ok(None);
        }
        let Some((survey, next)) = surveys
            .typed(&customer.id, &turn.thread, &turn.text)
            .await?
        else {
            return Ok(None);
        };
        let store = &self.inner.store;
        let inbound = NewMessage {
            conversation_id: &survey.conversation_id,
            role: Role::Customer,
            text: &turn.text,
            mode: Some(store::MessageMode::Survey),
            channel: &turn.channel,
            platform_message_id: turn.platform_message_id.as_deref(),
            ..NewMessage::default()
        };
        store.insert_message(&inbound).await?;
        Ok(Some(Reply {
            conversation_id: survey.conversation_id.clone(),
            message_id: None,
            answer: next.text,
            mode: Mode::Extractive,
            sources: Vec::new(),
            handoff: false,
            action: Action::Info,
            survey_buttons: next.buttons,
        }))
    }

    /// Applies a transition; when someone else moved the conversation first
    /// (an agent took it), returns the silent reply to give instead.
    pub(super) async fn move_conversation(
        &self,
        conversation: &Conversation,
        transition: Transition,
        actor: Actor<'_>,
        change: &Change<'_>,
    ) -> Result<Result<Conversation, Reply>, Error> {
        let store = &self.inner.store;
        match store
            .transition(&conversation.id, transition, actor, change)
            .await
        {
            Ok(c) => Ok(Ok(c)),
            Err(store::Error::Conflict(_) | store::Error::Illegal(_)) => {
                let fresh = store.conversation(&conversation.id).await?;
                Ok(Err(self.silent(&fresh, Action::ToAgent)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn withdraw(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let change = Change {
            event_detail: Some("customer withdrew the request"),
            ..Change::default()
        };
        let back = match self
            .move_conversation(conversation, Transition::Withdraw, Actor::Customer, &change)
            .await?
        {
            Ok(c) => c,
            Err(silent) => return Ok(silent),
        };
        if let Some(desk) = &self.inner.desk {
            desk.poke();
        }
        let text = self.render(Template::GivenBack, serde_json::json!({}))?;
        self.finish(&back, turn, BotMessage::info(text)).await
    }

    pub(super) async fn restart(
        &self,
        customer: &Customer,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        let change = Change {
            resolution: Some(&Resolution::NewConversation),
            event_detail: Some("customer started a new conversation"),
            ..Change::default()
        };
        store
            .transition(
                &conversation.id,
                Transition::Resolve,
                Actor::Customer,
                &change,
            )
            .await?;
        let fresh = store
            .start_conversation(customer, &turn.thread, Some(&conversation.id))
            .await?;
        let text = self.render(Template::Welcome, serde_json::json!({}))?;
        self.finish(
            &fresh,
            turn,
            BotMessage {
                action: Action::NewConversation,
                ..BotMessage::info(text)
            },
        )
        .await
    }

    pub(super) async fn extractive(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        retrieval: &Retrieval,
    ) -> Result<Reply, Error> {
        let Some(best) = retrieval.hits.first() else {
            return self.offer_human(conversation, turn).await;
        };
        let quote = quote_of(&best.markdown);
        let link = self.inner.kb.link(&best.slug, best.url.as_deref());
        let text = self.render(
            Template::Extractive,
            serde_json::json!({"title": best.title, "heading": best.heading, "quote": quote, "url": link}),
        )?;
        let mut sources = vec![source_of(best)];
        if let Some(next) = retrieval
            .hits
            .iter()
            .find(|h| h.slug != best.slug && h.score >= best.score * 0.8)
        {
            sources.push(source_of(next));
        }
        self.finish(
            conversation,
            turn,
            BotMessage::answer(text, Mode::Extractive, sources),
        )
        .await
    }

    /// Stores the bot's reply, unless the conversation left the bot while
    /// the reply was being made (then the reply is dropped, silently).
    pub(super) async fn finish(
        &self,
        conversation: &Conversation,
        turn: &Turn,
        said: BotMessage<'_>,
    ) -> Result<Reply, Error> {
        let store = &self.inner.store;
        let BotMessage {
            text,
            mode,
            sources,
            action,
            generated,
        } = said;
        let message = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Bot,
            text: &text,
            mode: Some(mode.into()),
            sources: &sources,
            model: generated.map(|g| g.model.as_str()),
            prompt_tokens: generated.map(|g| g.usage.prompt).filter(|t| *t > 0),
            completion_tokens: generated.map(|g| g.usage.completion).filter(|t| *t > 0),
            latency_ms: generated.map(|g| g.latency.as_millis() as i64),
            channel: &turn.channel,
            ..NewMessage::default()
        };
        // Stored only if the conversation is still with the bot, in the
        // same statement: no answer slips out after a hand-off.
        let Some(message_id) = store.insert_if_with_bot(&message).await? else {
            let fresh = store.conversation(&conversation.id).await?;
            return Ok(self.silent(&fresh, Action::ToAgent));
        };
        let message_id = Some(message_id);
        if action == Action::Answer || action == Action::OfferHuman {
            metrics::counter!("switchboard_answers_total", "mode" => mode.as_str()).increment(1);
        }
        Ok(Reply {
            conversation_id: conversation.id.clone(),
            message_id,
            answer: text,
            mode,
            sources,
            handoff: mode == Mode::Handoff,
            action,
            survey_buttons: Vec::new(),
        })
    }

    /// Earlier messages of the conversation that the bot may use as context:
    /// a conversation given back by an agent starts its context afresh, so
    /// the bot does not carry on as if the hand-off never happened. Excludes
    /// the message just stored.
    pub(super) async fn history(&self, conversation: &Conversation) -> Result<Vec<Message>, Error> {
        let keep = self.inner.settings.history_messages + 1;
        let mut messages = self
            .inner
            .store
            .recent_messages(&conversation.id, keep)
            .await?;
        messages.pop();
        if let Some(after) = conversation.context_after_seq {
            messages.retain(|m| m.seq > after);
        }
        messages.retain(|m| matches!(m.role, Role::Customer | Role::Bot | Role::Agent));
        Ok(messages)
    }
}
