//! Surveys after resolution: CSAT (1–5), optionally CES (1–7) and NPS
//! (0–10, at most once per customer per period), then an optional comment.
//!
//! The schedule lives in the database (`surveys`): [`Surveys::tick`]
//! resolves inactive bot conversations, schedules a survey for every newly
//! resolved conversation, and sends the due ones after claiming each
//! atomically, so a survey goes out once even across restarts and with
//! several processes on one database. Time comes from the store's clock, so
//! tests move it instead of sleeping.

use std::time::Duration;

use crate::button::{ButtonData, SurveyStep};
use crate::clock::Millis;
use crate::config::CsatSettings;
use crate::conversation::{Actor, Resolution, Transition};
use crate::delivery::{self, Button, Outgoing, Registry, Retry, Sent, Target};
use crate::ids::ConversationId;
use crate::store::{self, Answer, Awaiting, Change, Conversation, Store, Survey};
use crate::templates::{Prompts, Template};

/// How long after a question a typed answer still counts.
pub const TYPED_WINDOW_MS: Millis = 24 * 3600 * 1000;
/// How long after the comment invitation a message counts as the comment.
const COMMENT_WINDOW_MS: Millis = 15 * 60 * 1000;
/// Surveys resolved before this much ago are never scheduled (e.g. the
/// history of a database that predates surveys).
const SCHEDULE_LOOKBACK_MS: Millis = 7 * 24 * 3600 * 1000;
/// A survey that cannot be delivered now is retried this much later.
const RETRY_MS: Millis = 60_000;

/// A survey failure (only the database can fail; delivery problems are
/// retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A template failed.
    #[error(transparent)]
    Prompt(#[from] crate::templates::Error),
}

/// What one [`Surveys::tick`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Bot conversations resolved for inactivity.
    pub resolved_inactive: usize,
    /// Surveys scheduled.
    pub scheduled: u64,
    /// Surveys sent.
    pub sent: usize,
    /// Surveys that could not be sent and ended as `failed`.
    pub failed: usize,
}

/// The survey service. Cheap to clone.
#[derive(Clone)]
pub struct Surveys {
    store: Store,
    registry: Registry,
    prompts: Prompts,
    settings: CsatSettings,
}

impl Surveys {
    /// The service. `prompts` carry the common values (`product_name`).
    pub fn new(store: Store, registry: Registry, prompts: Prompts, settings: CsatSettings) -> Self {
        Self {
            store,
            registry,
            prompts,
            settings,
        }
    }

    fn render(&self, template: Template, extra: serde_json::Value) -> Result<String, Error> {
        Ok(self.prompts.render(template, extra)?)
    }

    /// Runs [`Surveys::tick`] every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!("surveys: {e}");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {},
            }
        }
    }

    /// Resolves inactive conversations, schedules and sends due surveys.
    ///
    /// # Errors
    /// On a database failure.
    #[tracing::instrument(name = "surveys", skip_all)]
    pub async fn tick(&self) -> Result<Tick, Error> {
        let store = &self.store;
        let now = store.now();
        let mut tick = Tick::default();
        let idle = (self.settings.inactivity_resolve_secs as Millis).saturating_mul(1000);
        for c in store.inactive_bot_conversations(now - idle).await? {
            let change = Change {
                resolution: Some(&Resolution::Inactivity),
                event_detail: Some("no customer message after the last answer"),
                ..Change::default()
            };
            match store
                .transition(&c.id, Transition::Resolve, Actor::System, &change)
                .await
            {
                Ok(_) => tick.resolved_inactive += 1,
                Err(store::Error::Conflict(_) | store::Error::Illegal(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !self.settings.enabled {
            return Ok(tick);
        }
        let delay = (self.settings.delay_secs as Millis).saturating_mul(1000);
        tick.scheduled = store
            .schedule_surveys(now - SCHEDULE_LOOKBACK_MS, delay)
            .await?;
        for survey in store.claim_due_surveys(50).await? {
            // One survey that cannot be sent must not hold up the others
            // or stay claimed: it ends as `failed`, for the record.
            match self.send(&survey).await {
                Ok(true) => tick.sent += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(conversation = %survey.conversation_id, "survey failed: {e}");
                    tick.failed += 1;
                    if let Err(e) = store
                        .release_survey(&survey.conversation_id, Err("failed"))
                        .await
                    {
                        tracing::warn!(conversation = %survey.conversation_id, "survey left claimed: {e}");
                    }
                }
            }
        }
        Ok(tick)
    }

    async fn send(&self, survey: &Survey) -> Result<bool, Error> {
        let store = &self.store;
        let conversation = store.conversation(&survey.conversation_id).await?;
        let customer = store.customer(&survey.customer_id).await?;
        if customer.surveys_opt_out || customer.unreachable {
            store
                .release_survey(&survey.conversation_id, Err("skipped"))
                .await?;
            return Ok(false);
        }
        let ask_nps = self.settings.nps && {
            let period = (self.settings.nps_period_days as Millis).saturating_mul(86_400_000);
            store
                .last_nps_asked(&customer.id)
                .await?
                .is_none_or(|t| store.now() - t >= period)
        };
        let target = target_of(&conversation, &customer.external_id);
        let message = self.question(
            Awaiting::Rating(SurveyStep::Csat),
            &conversation.id,
            &target.channel,
        )?;
        let sent = delivery::send_or_queue(
            &self.registry,
            store,
            &target,
            &message,
            Some(&conversation.id),
            Retry::Caller,
        )
        .await?;
        match sent {
            Sent::Delivered(_) | Sent::Queued => {
                let agent = conversation
                    .resolved_by
                    .as_deref()
                    .filter(|by| !crate::conversation::is_non_agent_actor(by));
                store
                    .mark_survey_sent(&conversation.id, agent, self.settings.ces, ask_nps)
                    .await?;
                Ok(true)
            }
            Sent::Held(_) => {
                let expire = (self.settings.expire_secs as Millis).saturating_mul(1000);
                if store.now() - survey.due_at > expire {
                    store
                        .release_survey(&conversation.id, Err("expired"))
                        .await?;
                } else {
                    store
                        .release_survey(&conversation.id, Ok(store.now() + RETRY_MS))
                        .await?;
                }
                Ok(false)
            }
            Sent::Failed(e) => {
                tracing::info!(conversation = %conversation.id, "survey not delivered: {e}");
                store
                    .release_survey(&conversation.id, Err("failed"))
                    .await?;
                Ok(false)
            }
        }
    }

    /// The message asking for `step` (a rating or the comment) with its
    /// buttons.
    fn question(
        &self,
        step: Awaiting,
        conversation_id: &ConversationId,
        channel: &str,
    ) -> Result<Outgoing, Error> {
        let typed = channel == "console";
        let scale = |step: SurveyStep, range: std::ops::RangeInclusive<u8>| -> Vec<Button> {
            range
                .map(|value| {
                    ButtonData::Survey {
                        conversation: conversation_id.clone(),
                        step,
                        value,
                    }
                    .button()
                })
                .collect()
        };
        let (template, buttons) = match step {
            Awaiting::Rating(SurveyStep::Csat) => (
                Template::Csat,
                vec![
                    scale(SurveyStep::Csat, SurveyStep::Csat.range()),
                    vec![
                        ButtonData::StopSurveys {
                            conversation: conversation_id.clone(),
                        }
                        .button(),
                    ],
                ],
            ),
            Awaiting::Rating(SurveyStep::Ces) => (
                Template::Ces,
                vec![scale(SurveyStep::Ces, SurveyStep::Ces.range())],
            ),
            // Two rows: eleven buttons do not fit one on a phone.
            Awaiting::Rating(SurveyStep::Nps) => (
                Template::Nps,
                vec![
                    scale(SurveyStep::Nps, 0..=5),
                    scale(SurveyStep::Nps, 6..=10),
                ],
            ),
            Awaiting::Comment | Awaiting::Done => (Template::SurveyComment, Vec::new()),
        };
        let text = self.render(template, serde_json::json!({"typed": typed}))?;
        Ok(Outgoing {
            text,
            buttons,
            notice: false,
        })
    }

    /// The next question after the answers so far, or `None` when done.
    fn next_step(&self, survey: &Survey) -> Awaiting {
        if survey.ask_ces && survey.ces.is_none() {
            Awaiting::Rating(SurveyStep::Ces)
        } else if survey.ask_nps && survey.nps.is_none() {
            Awaiting::Rating(SurveyStep::Nps)
        } else if self.settings.comment && survey.comment.is_none() {
            Awaiting::Comment
        } else {
            Awaiting::Done
        }
    }

    /// A pressed survey answer, already checked to come from the surveyed
    /// customer. It counts only while `step` is the question the survey
    /// waits for; returns the message to show next (the next question,
    /// thanks), or `None` for a stale press (an earlier question, a repeated
    /// click, a finished survey), which changes nothing.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn press(
        &self,
        conversation_id: &ConversationId,
        step: SurveyStep,
        value: u8,
    ) -> Result<Option<Outgoing>, Error> {
        let Some(survey) = self.store.survey(conversation_id).await? else {
            return Ok(None);
        };
        if survey.step != Some(Awaiting::Rating(step)) || !step.range().contains(&value) {
            return Ok(None);
        }
        let value = i64::from(value);
        let answer = match step {
            SurveyStep::Csat => Answer::Csat(value),
            SurveyStep::Ces => Answer::Ces(value),
            SurveyStep::Nps => Answer::Nps(value),
        };
        self.answer(conversation_id, answer).await
    }

    async fn answer(
        &self,
        conversation_id: &ConversationId,
        answer: Answer,
    ) -> Result<Option<Outgoing>, Error> {
        let store = &self.store;
        if !store.record_survey_answer(conversation_id, answer).await? {
            return Ok(None);
        }
        let Some(survey) = store.survey(conversation_id).await? else {
            return Ok(None);
        };
        let step = self.next_step(&survey);
        store.set_survey_step(conversation_id, step).await?;
        if step == Awaiting::Done {
            return Ok(Some(Outgoing::text(
                self.render(Template::SurveyThanks, serde_json::json!({}))?,
            )));
        }
        Ok(Some(self.question(
            step,
            conversation_id,
            &survey.channel,
        )?))
    }

    /// Opts a customer out (the `/stop-surveys` command).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn opt_out(&self, customer_id: &crate::ids::CustomerId) -> Result<String, Error> {
        self.store.opt_out_of_surveys(customer_id).await?;
        self.render(Template::SurveysStopped, serde_json::json!({}))
    }

    /// A typed answer to an open survey in this place: a number for a
    /// rating question, or the comment. Returns the reply, or `None` when the
    /// text is not a survey answer (then it is a new question).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn typed(
        &self,
        customer_id: &crate::ids::CustomerId,
        thread: &str,
        text: &str,
    ) -> Result<Option<(Survey, Outgoing)>, Error> {
        let store = &self.store;
        let now = store.now();
        let Some(survey) = store
            .open_survey(customer_id, thread, now - TYPED_WINDOW_MS)
            .await?
        else {
            return Ok(None);
        };
        let text = text.trim();
        let step = survey.step.unwrap_or(Awaiting::Done);
        if step == Awaiting::Comment {
            let recent = survey.step_at.is_some_and(|t| now - t <= COMMENT_WINDOW_MS);
            if !recent || text.starts_with('/') || text.is_empty() {
                return Ok(None);
            }
            if store
                .record_survey_comment(&survey.conversation_id, text)
                .await?
            {
                let thanks =
                    Outgoing::text(self.render(Template::SurveyThanks, serde_json::json!({}))?);
                return Ok(Some((survey, thanks)));
            }
            return Ok(None);
        }
        let Awaiting::Rating(step) = step else {
            return Ok(None);
        };
        let Some(answer) = typed_rating(step, text) else {
            return Ok(None);
        };
        match self.answer(&survey.conversation_id, answer).await? {
            Some(next) => Ok(Some((survey, next))),
            None => Ok(None),
        }
    }
}

fn target_of(conversation: &Conversation, external_id: &str) -> Target {
    Target {
        channel: conversation.channel.clone(),
        customer_id: external_id.to_string(),
        thread: conversation.thread_key.clone(),
    }
}

/// A rating typed in answer to survey question `step`: a whole number in
/// the step's range, spaces around allowed.
pub fn typed_rating(step: SurveyStep, text: &str) -> Option<Answer> {
    let n: u8 = text.trim().parse().ok()?;
    if !step.range().contains(&n) {
        return None;
    }
    let n = i64::from(n);
    Some(match step {
        SurveyStep::Csat => Answer::Csat(n),
        SurveyStep::Ces => Answer::Ces(n),
        SurveyStep::Nps => Answer::Nps(n),
    })
}
