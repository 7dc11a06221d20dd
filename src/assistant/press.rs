//! Button presses: what a press acts on, checked against its owner and moment, then carried out.

use super::*;

impl Assistant {
    /// Handles a button press. `turn.text` is the button's data;
    /// `turn.channel` and `turn.customer_id` identify the presser (platform
    /// user id, web session); `turn.platform_message_id` should identify the
    /// press (callback id) so a repeated delivery is ignored.
    ///
    /// A press counts only when its conversation belongs to the presser and
    /// it still applies: an offer or "solved?" button only while its message
    /// is the conversation's latest bot message and the bot still has the
    /// conversation, a survey button only for the question still open.
    /// Anything else is [`Pressed::Stale`] and changes nothing.
    ///
    /// # Errors
    /// As [`Assistant::handle`].
    #[tracing::instrument(
        name = "press",
        skip_all,
        fields(channel = %turn.channel, press = turn.platform_message_id.as_deref().unwrap_or("-"))
    )]
    pub async fn press(&self, turn: Turn) -> Result<Pressed, Error> {
        let Some(data) = ButtonData::parse(&turn.text) else {
            return Ok(Pressed::Stale);
        };
        let store = &self.inner.store;
        let Some(customer) = store
            .find_customer(&turn.channel, &turn.customer_id)
            .await?
        else {
            return Ok(Pressed::Stale);
        };
        let conversation = match store.conversation(data.conversation()).await {
            Ok(c) => c,
            Err(store::Error::NotFound { .. }) => return Ok(Pressed::Stale),
            Err(e) => return Err(e.into()),
        };
        if conversation.customer_id != customer.id {
            tracing::warn!(
                channel = %turn.channel,
                conversation = %conversation.id,
                "refused a press on another customer's conversation"
            );
            return Ok(Pressed::Stale);
        }
        match data {
            ButtonData::OfferYes { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::AcceptOffer)
                    .await
            }
            ButtonData::OfferNo { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::DeclineOffer)
                    .await
            }
            ButtonData::SolvedYes { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::Solved)
                    .await
            }
            ButtonData::SolvedNo { message, .. } => {
                self.press_intent(&conversation, &message, turn, Intent::NotSolved)
                    .await
            }
            ButtonData::Feedback { message, up, .. } => {
                let rated = store.message(&message).await?;
                if !rated
                    .is_some_and(|m| m.conversation_id == conversation.id && m.role == Role::Bot)
                {
                    return Ok(Pressed::Stale);
                }
                let value = if up { 1 } else { -1 };
                let stored = store
                    .set_feedback(&conversation.id, &message, value)
                    .await?;
                Ok(Pressed::Feedback(stored))
            }
            ButtonData::Survey { step, value, .. } => {
                let Some(surveys) = &self.inner.surveys else {
                    return Ok(Pressed::Stale);
                };
                Ok(match surveys.press(&conversation.id, step, value).await? {
                    Some(next) => Pressed::Message(next),
                    None => Pressed::Stale,
                })
            }
            ButtonData::StopSurveys { .. } => {
                let text = match &self.inner.surveys {
                    Some(surveys) => surveys.opt_out(&customer.id).await?,
                    None => {
                        store.opt_out_of_surveys(&customer.id).await?;
                        self.render(Template::SurveysStopped, serde_json::json!({}))?
                    }
                };
                Ok(Pressed::Message(crate::delivery::Outgoing::text(text)))
            }
            // Card buttons are for agents, in staff places.
            ButtonData::Desk { .. } => Ok(Pressed::Stale),
        }
    }

    /// An offer or "solved?" press on `message`, checked against the
    /// conversation's current state, then decided as `intent`. The press is
    /// stored as the customer's message (its label), so the log and the
    /// agents' card show what they chose.
    pub(super) async fn press_intent(
        &self,
        conversation: &Conversation,
        message: &str,
        mut turn: Turn,
        intent: Intent,
    ) -> Result<Pressed, Error> {
        let store = &self.inner.store;
        if conversation.status != Status::Bot {
            return Ok(Pressed::Stale);
        }
        let Some(last) = store.last_bot_message(&conversation.id).await? else {
            return Ok(Pressed::Stale);
        };
        let offer = last.mode == Some(MessageMode::Handoff);
        let answer = last.mode.is_some_and(MessageMode::is_answer) && !last.sources.is_empty();
        let (fits, label) = match intent {
            Intent::AcceptOffer => (offer, button::OFFER_YES_LABEL),
            Intent::DeclineOffer => (offer, button::OFFER_NO_LABEL),
            Intent::Solved => (answer, button::SOLVED_YES_LABEL),
            Intent::NotSolved => (answer, button::SOLVED_NO_LABEL),
        };
        if last.id != message || !fits {
            return Ok(Pressed::Stale);
        }
        turn.text = label.to_string();
        turn.thread = conversation.thread_key.clone();
        let inbound = NewMessage {
            conversation_id: &conversation.id,
            role: Role::Customer,
            text: label,
            channel: &turn.channel,
            platform_message_id: turn.platform_message_id.as_deref(),
            ..NewMessage::default()
        };
        if store.insert_message(&inbound).await?.is_none() {
            return Ok(Pressed::Unknown);
        }
        let reply = match intent {
            Intent::AcceptOffer => {
                self.hand_off(conversation, &turn, Reason::KnowledgeGap, None)
                    .await?
            }
            Intent::DeclineOffer => {
                self.info(conversation, &turn, Template::OfferDeclined)
                    .await?
            }
            Intent::Solved => self.resolve_solved(conversation, &turn).await?,
            Intent::NotSolved => self.not_solved(conversation, &turn).await?,
        };
        Ok(Pressed::Reply(reply))
    }

    /// The customer says the answer did not solve it: offer a person.
    pub(super) async fn not_solved(
        &self,
        conversation: &Conversation,
        turn: &Turn,
    ) -> Result<Reply, Error> {
        let text = self.render(Template::NotSolved, serde_json::json!({}))?;
        self.inner
            .store
            .mark_offered_human(&conversation.id)
            .await?;
        self.finish(conversation, turn, BotMessage::offer(text))
            .await
    }
}
