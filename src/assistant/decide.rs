//! The decision for one customer message: commands, rules, offers and answers pending, then retrieval and generation.

use super::*;

impl Assistant {
    pub(super) async fn decide(
        &self,
        customer: &Customer,
        conversation: Conversation,
        turn: &Turn,
        deltas: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Reply, Error> {
        let text = turn.text.trim();
        let mut question = text;
        match parse_command(text) {
            Some(Command::Start) => return self.info(&conversation, turn, "welcome.md").await,
            Some(Command::Help) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::Human) => {
                return self
                    .hand_off(&conversation, turn, Reason::CustomerRequest, None)
                    .await;
            }
            Some(Command::New) => return self.restart(customer, &conversation, turn).await,
            Some(Command::Cancel) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::StopSurveys) => {
                let text = match &self.inner.surveys {
                    Some(surveys) => surveys.opt_out(&customer.id).await?,
                    None => {
                        self.inner.store.opt_out_of_surveys(&customer.id).await?;
                        self.render("surveys_stopped.md", serde_json::json!({}))?
                    }
                };
                return self
                    .finish(
                        &conversation,
                        turn,
                        text,
                        Mode::Extractive,
                        Vec::new(),
                        Action::Info,
                        None,
                    )
                    .await;
            }
            Some(Command::Ask("")) => return self.info(&conversation, turn, "help.md").await,
            Some(Command::Ask(q)) => question = q,
            Some(Command::Unknown(name)) => {
                let help = self.render("help.md", serde_json::json!({}))?;
                let text = format!("Unknown command /{name}. {help}");
                return self
                    .finish(
                        &conversation,
                        turn,
                        text,
                        Mode::Extractive,
                        Vec::new(),
                        Action::Info,
                        None,
                    )
                    .await;
            }
            None => {}
        }
        let normal = handoff::normalise(question);
        let rules = &self.inner.rules;
        if rules.is_vip(&turn.channel, &turn.customer_id) {
            return self.hand_off(&conversation, turn, Reason::Vip, None).await;
        }
        let history = self.history(&conversation).await?;
        let last_bot = history.iter().rev().find(|m| m.role == Role::Bot);
        let offer_pending =
            last_bot.is_some_and(|m| m.mode.as_deref() == Some(Mode::Handoff.as_str()));
        if offer_pending && YES.contains(&normal.as_str()) {
            return self
                .hand_off(&conversation, turn, Reason::KnowledgeGap, None)
                .await;
        }
        if offer_pending && NO.contains(&normal.as_str()) {
            return self.info(&conversation, turn, "offer_declined.md").await;
        }
        let after_answer = last_bot.is_some_and(|m| {
            matches!(m.mode.as_deref(), Some("llm" | "extractive")) && !m.sources.is_empty()
        });
        if after_answer && YES.contains(&normal.as_str()) {
            return self.resolve_solved(&conversation, turn).await;
        }
        if after_answer && NO.contains(&normal.as_str()) && stuck(&history, &normal).is_none() {
            return self.not_solved(&conversation, turn).await;
        }
        if let Some(detail) = stuck(&history, &normal) {
            return self
                .hand_off(&conversation, turn, Reason::Frustration, Some(detail))
                .await;
        }
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
                            text,
                            Mode::Llm,
                            cited,
                            Action::Answer,
                            Some(&generated),
                        )
                        .await;
                }
                Err(llm::Error::Busy) => {
                    let text = self.render_or("busy.md", serde_json::json!({}), BUSY)?;
                    return self
                        .finish(
                            &conversation,
                            turn,
                            text,
                            Mode::Extractive,
                            Vec::new(),
                            Action::Info,
                            None,
                        )
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

/// Whether the customer is stuck: the same question for the third time, or
/// "no / that didn't help" after two answers in a row.
pub(super) fn stuck(history: &[Message], normal: &str) -> Option<&'static str> {
    let customer: Vec<String> = history
        .iter()
        .filter(|m| m.role == Role::Customer)
        .map(|m| handoff::normalise(&m.text))
        .collect();
    let repeats = customer.iter().rev().take_while(|t| *t == normal).count();
    if !normal.is_empty() && repeats + 1 >= REPEATS_FOR_FRUSTRATION {
        return Some("asked the same question three times");
    }
    if handoff::is_negative_feedback(normal) {
        let earlier_negative = customer
            .iter()
            .rev()
            .take(2)
            .filter(|t| handoff::is_negative_feedback(t))
            .count();
        if earlier_negative >= 1 {
            return Some("said twice that answers did not help");
        }
    }
    None
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
            "bot",
            Some(&question),
        )
        .await?;
    Ok(())
}
