//! Carrying out the decision for one customer message: the rules' [`Decision`], then retrieval and generation.

use super::*;

impl Assistant {
    pub(super) async fn decide(
        &self,
        customer: &Customer,
        conversation: Conversation,
        turn: &Turn,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        let history = self.history(&conversation).await?;
        let vip = self.inner.rules.is_vip(&turn.channel, &turn.customer_id);
        let question = match decision::decide(&turn.text, vip, &history) {
            Decision::Reply(template) => return self.info(&conversation, turn, template).await,
            Decision::UnknownCommand(name) => {
                let help = self.render(Template::Help, serde_json::json!({}))?;
                let text = format!("Unknown command /{name}. {help}");
                return self
                    .finish(&conversation, turn, BotMessage::info(text))
                    .await;
            }
            Decision::StopSurveys => {
                let text = match &self.inner.surveys {
                    Some(surveys) => surveys.opt_out(&customer.id).await?,
                    None => {
                        self.inner.store.opt_out_of_surveys(&customer.id).await?;
                        self.render(Template::SurveysStopped, serde_json::json!({}))?
                    }
                };
                return self
                    .finish(&conversation, turn, BotMessage::info(text))
                    .await;
            }
            Decision::Restart => return self.restart(customer, &conversation, turn).await,
            Decision::HandOff(reason, detail) => {
                return self.hand_off(&conversation, turn, reason, detail).await;
            }
            Decision::Solved => return self.resolve_solved(&conversation, turn).await,
            Decision::NotSolved => return self.not_solved(&conversation, turn).await,
            Decision::Ask(question) => question,
        };
        let earlier: Vec<Earlier> = history
            .iter()
            .map(|m| Earlier {
                role: if m.role == Role::Customer {
                    context::Role::Customer
                } else {
                    context::Role::Bot
                },
                text: m.text.clone(),
            })
            .collect();
        let retrieval = match self.assess_in(question, &earlier).await? {
            Assessment::HandOff(reason, detail) => {
                return self
                    .hand_off(&conversation, turn, reason, detail.as_deref())
                    .await;
            }
            Assessment::Reply(template) => return self.info(&conversation, turn, template).await,
            Assessment::Answer(retrieval) => retrieval,
            Assessment::NotCovered(_) => return self.offer_human(&conversation, turn).await,
        };
        if let Some(model) = self.inner.model.clone() {
            let started = Instant::now();
            let (messages, sources) = self.build_prompt(question, &retrieval.hits, &earlier)?;
            let outcome = self.generate(model.as_ref(), &messages, deltas).await;
            let latency = started.elapsed();
            metrics::histogram!("switchboard_llm_latency_seconds").record(latency.as_secs_f64());
            match outcome {
                Ok((text, usage)) if decline::is_decline(&text) => {
                    if conversation.llm_failures > 0 {
                        self.inner
                            .store
                            .note_llm_result(&conversation.id, false)
                            .await?;
                    }
                    tracing::debug!(usage.completion, "model says the sources do not answer");
                    return self.offer_human(&conversation, turn).await;
                }
                Ok((text, usage)) => {
                    if conversation.llm_failures > 0 {
                        self.inner
                            .store
                            .note_llm_result(&conversation.id, false)
                            .await?;
                    }
                    let cited = cited_sources(&text, &sources);
                    let generated = Generated {
                        model: model.name().to_string(),
                        usage,
                        latency,
                    };
                    return self
                        .finish(
                            &conversation,
                            turn,
                            BotMessage {
                                generated: Some(&generated),
                                ..BotMessage::answer(text, Mode::Llm, cited)
                            },
                        )
                        .await;
                }
                Err(llm::Error::Busy) => {
                    let text = self.render_or(Template::Busy, serde_json::json!({}), BUSY)?;
                    return self
                        .finish(&conversation, turn, BotMessage::info(text))
                        .await;
                }
                Err(e) => {
                    metrics::counter!("switchboard_llm_errors_total").increment(1);
                    tracing::warn!(conversation = %conversation.id, "LLM failed, answering extractively: {e}");
                    let failures = self
                        .inner
                        .store
                        .note_llm_result(&conversation.id, true)
                        .await?;
                    if failures >= 2 {
                        let detail = e.to_string();
                        return self
                            .hand_off(&conversation, turn, Reason::LlmFailure, Some(&detail))
                            .await;
                    }
                }
            }
        }
        self.extractive(&conversation, turn, &retrieval).await
    }
}

/// Records the question the bot could not answer, for `report gaps`.
pub(super) async fn store_gap(
    store: &Store,
    conversation: &Conversation,
    turn: &Turn,
) -> Result<(), Error> {
    let question: String = turn.text.chars().take(500).collect();
    store
        .record_event(
            &conversation.id,
            EventKind::NoAnswer,
            Actor::Bot,
            Some(&question),
        )
        .await?;
    Ok(())
}
