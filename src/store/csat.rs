//! Queries of the survey schedule.

use sqlx::Row;

use super::{Backend, Conversation, Error, Store, get};
use crate::button::SurveyStep;
use crate::clock::Millis;
use crate::ids::{ConversationId, CustomerId};

/// A survey row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Survey {
    /// The resolved conversation it is about.
    pub conversation_id: ConversationId,
    /// The customer.
    pub customer_id: CustomerId,
    /// Their channel.
    pub channel: String,
    /// `scheduled`, `sending`, `sent`, `answered`, `skipped`, `expired`, `failed`.
    pub state: String,
    /// When it is (or was) due.
    pub due_at: Millis,
    /// When it was sent.
    pub sent_at: Option<Millis>,
    /// How the conversation was resolved.
    pub resolution: Option<crate::conversation::Resolution>,
    /// The agent who resolved it, recorded when the survey is sent.
    pub agent: Option<String>,
    /// Ask CES in this survey.
    pub ask_ces: bool,
    /// Ask NPS in this survey.
    pub ask_nps: bool,
    /// The answer expected next (`None` before the survey is sent).
    pub step: Option<Awaiting>,
    /// When the current step was asked.
    pub step_at: Option<Millis>,
    /// 1–5.
    pub csat: Option<i64>,
    /// 1–7.
    pub ces: Option<i64>,
    /// 0–10.
    pub nps: Option<i64>,
    /// Free text.
    pub comment: Option<String>,
}

/// The answer a sent survey waits for (the `surveys.step` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// A rating question.
    Rating(SurveyStep),
    /// The free-text comment.
    Comment,
    /// Nothing: every question was answered.
    Done,
}

impl Awaiting {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Awaiting::Rating(step) => step.as_str(),
            Awaiting::Comment => "comment",
            Awaiting::Done => "done",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "csat" => Awaiting::Rating(SurveyStep::Csat),
            "ces" => Awaiting::Rating(SurveyStep::Ces),
            "nps" => Awaiting::Rating(SurveyStep::Nps),
            "comment" => Awaiting::Comment,
            "done" => Awaiting::Done,
            _ => return None,
        })
    }
}

impl serde::Serialize for Awaiting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Survey {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, Error> {
        Ok(Self {
            conversation_id: get::<String>(row, "conversation_id")?.into(),
            customer_id: get::<String>(row, "customer_id")?.into(),
            channel: get(row, "channel")?,
            state: get(row, "state")?,
            due_at: get(row, "due_at")?,
            sent_at: get(row, "sent_at")?,
            resolution: get::<Option<String>>(row, "resolution")?
                .as_deref()
                .map(crate::conversation::Resolution::parse),
            agent: get(row, "agent")?,
            ask_ces: get::<i64>(row, "ask_ces")? != 0,
            ask_nps: get::<i64>(row, "ask_nps")? != 0,
            step: get::<Option<String>>(row, "step")?
                .map(|s| {
                    Awaiting::parse(&s).ok_or_else(|| Error::Corrupt(format!("survey step `{s}`")))
                })
                .transpose()?,
            step_at: get(row, "step_at")?,
            csat: get(row, "csat")?,
            ces: get(row, "ces")?,
            nps: get(row, "nps")?,
            comment: get(row, "comment")?,
        })
    }
}

/// Which answer a survey records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Satisfaction, 1–5.
    Csat(i64),
    /// Effort, 1–7.
    Ces(i64),
    /// Recommendation, 0–10.
    Nps(i64),
}

/// How long a claimed survey may stay `sending` before another pass takes
/// it over (the process that claimed it died before it finished).
pub const STALE_CLAIM_MS: Millis = 10 * 60 * 1000;

impl Store {
    /// Schedules a survey for every conversation resolved since `since`
    /// that has none: due `delay` after resolution, or `skipped` for
    /// customers who opted out and for conversations the customer closed by
    /// starting a new one. Returns how many rows were added.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn schedule_surveys(&self, since: Millis, delay: Millis) -> Result<u64, Error> {
        let result = sqlx::query(
            "INSERT INTO surveys (conversation_id, customer_id, channel, state, due_at, resolution, created_at) \
             SELECT c.id, c.customer_id, c.channel, \
               CASE WHEN cu.surveys_opt_out = 1 OR c.resolution = 'new_conversation' \
                      OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.role = 'customer') \
                    THEN 'skipped' ELSE 'scheduled' END, \
               c.resolved_at + $1, c.resolution, $2 \
             FROM conversations c JOIN customers cu ON cu.id = c.customer_id \
             WHERE c.status = 'resolved' AND c.resolved_at >= $3 \
               AND NOT EXISTS (SELECT 1 FROM surveys s WHERE s.conversation_id = c.id) \
             ON CONFLICT (conversation_id) DO NOTHING",
        )
        .bind(delay)
        .bind(self.now())
        .bind(since)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    /// Claims up to `limit` due surveys for sending: each moves from
    /// `scheduled` to `sending` in one guarded step, so of two processes only
    /// one gets it (`FOR UPDATE SKIP LOCKED` on PostgreSQL). A survey left in
    /// `sending` for [`STALE_CLAIM_MS`] (its process died) is claimed again.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn claim_due_surveys(&self, limit: usize) -> Result<Vec<Survey>, Error> {
        let now = self.now();
        let ids: Vec<String> = match self.backend {
            Backend::Postgres => {
                let mut tx = self.writer.begin().await?;
                let rows = sqlx::query(
                    "SELECT conversation_id FROM surveys WHERE (state = 'scheduled' AND due_at <= $1) \
                       OR (state = 'sending' AND claimed_until < $2) \
                     ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
                )
                .bind(now)
                .bind(now - STALE_CLAIM_MS)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                let ids: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get("conversation_id"))
                    .collect::<Result<_, _>>()?;
                for id in &ids {
                    sqlx::query("UPDATE surveys SET state = 'sending', claimed_until = $1 WHERE conversation_id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                ids
            }
            Backend::Sqlite => {
                let rows = sqlx::query(
                    "SELECT conversation_id FROM surveys WHERE (state = 'scheduled' AND due_at <= $1) \
                       OR (state = 'sending' AND claimed_until < $2) \
                     ORDER BY due_at LIMIT $3",
                )
                .bind(now)
                .bind(now - STALE_CLAIM_MS)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                let mut ids = Vec::new();
                for row in rows {
                    let id: String = row.try_get("conversation_id")?;
                    let taken = sqlx::query(
                        "UPDATE surveys SET state = 'sending', claimed_until = $1 \
                         WHERE conversation_id = $2 AND (state = 'scheduled' \
                           OR (state = 'sending' AND claimed_until < $3))",
                    )
                    .bind(now)
                    .bind(&id)
                    .bind(now - STALE_CLAIM_MS)
                    .execute(&self.writer)
                    .await?;
                    if taken.rows_affected() == 1 {
                        ids.push(id);
                    }
                }
                ids
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let conversation = ConversationId::from(id.as_str());
            out.push(
                self.survey(&conversation)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        kind: "survey",
                        id: id.clone(),
                    })?,
            );
        }
        Ok(out)
    }

    /// The survey of a conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn survey(&self, conversation_id: &ConversationId) -> Result<Option<Survey>, Error> {
        let row = sqlx::query("SELECT * FROM surveys WHERE conversation_id = $1")
            .bind(conversation_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Survey::from_row).transpose()
    }

    /// Marks a claimed survey as sent, recording who resolved the
    /// conversation and which questions it carries.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_survey_sent(
        &self,
        conversation_id: &ConversationId,
        agent: Option<&str>,
        ask_ces: bool,
        ask_nps: bool,
    ) -> Result<(), Error> {
        let now = self.now();
        sqlx::query(
            "UPDATE surveys SET state = 'sent', sent_at = $1, agent = $2, ask_ces = $3, ask_nps = $4, \
               step = 'csat', step_at = $1, claimed_until = NULL WHERE conversation_id = $5",
        )
        .bind(now)
        .bind(agent)
        .bind(i64::from(ask_ces))
        .bind(i64::from(ask_nps))
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        sqlx::query(
            "UPDATE customers SET surveyed_at = $1 WHERE id = (SELECT customer_id FROM surveys WHERE conversation_id = $2)",
        )
        .bind(now)
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Returns a claimed survey to the schedule (`due_at`), or ends it in
    /// `state` (`expired`, `failed`).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn release_survey(
        &self,
        conversation_id: &ConversationId,
        outcome: Result<Millis, &str>,
    ) -> Result<(), Error> {
        match outcome {
            Ok(due) => {
                sqlx::query(
                    "UPDATE surveys SET state = 'scheduled', due_at = $1, claimed_until = NULL WHERE conversation_id = $2",
                )
                .bind(due)
                .bind(conversation_id.as_str())
                .execute(&self.writer)
                .await?
            }
            Err(state) => {
                sqlx::query("UPDATE surveys SET state = $1, claimed_until = NULL WHERE conversation_id = $2")
                    .bind(state)
                    .bind(conversation_id.as_str())
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(())
    }

    /// Records an answer. The first answer to each question counts; a
    /// repeat (a second click) changes nothing and returns `false`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_survey_answer(
        &self,
        conversation_id: &ConversationId,
        answer: Answer,
    ) -> Result<bool, Error> {
        let (sql, value) = match answer {
            Answer::Csat(v) => (
                "UPDATE surveys SET csat = $1, csat_at = $2, state = 'answered' \
                 WHERE conversation_id = $3 AND csat IS NULL AND state IN ('sent', 'answered')",
                v,
            ),
            Answer::Ces(v) => (
                "UPDATE surveys SET ces = $1, step_at = $2 \
                 WHERE conversation_id = $3 AND ces IS NULL AND state IN ('sent', 'answered')",
                v,
            ),
            Answer::Nps(v) => (
                "UPDATE surveys SET nps = $1, step_at = $2 \
                 WHERE conversation_id = $3 AND nps IS NULL AND state IN ('sent', 'answered')",
                v,
            ),
        };
        let result = sqlx::query(sql)
            .bind(value)
            .bind(self.now())
            .bind(conversation_id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records the free-text comment (first one counts).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_survey_comment(
        &self,
        conversation_id: &ConversationId,
        comment: &str,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE surveys SET comment = $1, step = 'done', step_at = $2 \
             WHERE conversation_id = $3 AND comment IS NULL AND step = 'comment'",
        )
        .bind(comment)
        .bind(self.now())
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets the step the survey waits for.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_survey_step(
        &self,
        conversation_id: &ConversationId,
        step: Awaiting,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE surveys SET step = $1, step_at = $2 WHERE conversation_id = $3")
            .bind(step.as_str())
            .bind(self.now())
            .bind(conversation_id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The customer's most recent survey still waiting for an answer in
    /// `thread`, if it was asked after `since`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn open_survey(
        &self,
        customer_id: &CustomerId,
        thread: &str,
        since: Millis,
    ) -> Result<Option<Survey>, Error> {
        let row = sqlx::query(
            "SELECT s.* FROM surveys s JOIN conversations c ON c.id = s.conversation_id \
             WHERE s.customer_id = $1 AND c.thread_key = $2 AND s.state IN ('sent', 'answered') \
               AND s.step IS NOT NULL AND s.step <> 'done' AND s.step_at >= $3 \
             ORDER BY s.sent_at DESC LIMIT 1",
        )
        .bind(customer_id.as_str())
        .bind(thread)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Survey::from_row).transpose()
    }

    /// When the customer was last asked the NPS question.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn last_nps_asked(&self, customer_id: &CustomerId) -> Result<Option<Millis>, Error> {
        let row = sqlx::query(
            "SELECT MAX(sent_at) AS t FROM surveys WHERE customer_id = $1 AND ask_nps = 1 AND sent_at IS NOT NULL",
        )
        .bind(customer_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    /// Opts a customer out of surveys for good; drops their scheduled ones.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn opt_out_of_surveys(&self, customer_id: &CustomerId) -> Result<(), Error> {
        sqlx::query("UPDATE customers SET surveys_opt_out = 1 WHERE id = $1")
            .bind(customer_id.as_str())
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "UPDATE surveys SET state = 'skipped' WHERE customer_id = $1 AND state IN ('scheduled', 'sending')",
        )
        .bind(customer_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Bot conversations whose last bot answer is older than `before` and
    /// was not followed by a customer message.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn inactive_bot_conversations(
        &self,
        before: Millis,
    ) -> Result<Vec<Conversation>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE status = 'bot' AND last_bot_at IS NOT NULL AND last_bot_at <= $1 \
               AND (last_customer_at IS NULL OR last_customer_at <= last_bot_at) ORDER BY last_bot_at",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Conversation::from_row).collect()
    }

    /// Every survey that was sent, for reports.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn sent_surveys(&self) -> Result<Vec<Survey>, Error> {
        let rows = sqlx::query("SELECT * FROM surveys WHERE sent_at IS NOT NULL ORDER BY sent_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Survey::from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survey_steps_round_trip_their_stored_names() {
        for step in [
            Awaiting::Rating(SurveyStep::Csat),
            Awaiting::Rating(SurveyStep::Ces),
            Awaiting::Rating(SurveyStep::Nps),
            Awaiting::Comment,
            Awaiting::Done,
        ] {
            assert_eq!(Awaiting::parse(step.as_str()), Some(step));
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::json!(step.as_str())
            );
        }
        assert_eq!(Awaiting::parse("CSAT"), None);
        assert_eq!(Awaiting::parse(""), None);
    }
}
