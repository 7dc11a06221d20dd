//! Support metrics computed from the conversation log.
//!
//! Definitions (also in the README):
//! - *escalation rate*: conversations handed to a person ÷ all conversations;
//! - *containment rate*: conversations resolved without a hand-off ÷ all;
//! - *first response* and *resolution* (the contract's keys) are the human
//!   ones, measured from the hand-off, so bot time never inflates agents'
//!   figures; the `bot_*` keys measure bot-only conversations from their
//!   start;
//! - *first-contact resolution*: resolved conversations after which the same
//!   customer opened no new conversation within 7 days ÷ resolved ones.
//!
//! Ratios are 0–1; a figure with no data behind it is `null`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Millis;
use crate::conversation::EventKind;
use crate::store::{self, Conversation, Store};

const WEEK_MS: Millis = 7 * 24 * 3600 * 1000;

/// Filters for a report.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only conversations created at or after this time.
    pub since: Option<Millis>,
    /// Only conversations created before this time.
    pub until: Option<Millis>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only conversations this agent worked.
    pub agent: Option<String>,
}

/// The report; field names are the contract's `report --json` keys.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    /// Conversations in the window.
    pub conversations: u64,
    /// Messages in those conversations (customer, bot and agent).
    pub messages: u64,
    /// Resolved without a hand-off.
    pub bot_resolved: u64,
    /// Handed to a person.
    pub escalated: u64,
    /// `escalated / conversations`.
    pub escalation_rate: Option<f64>,
    /// `bot_resolved / conversations`.
    pub containment_rate: Option<f64>,
    /// Human first response, seconds from the hand-off, median.
    pub first_response_secs_p50: Option<f64>,
    /// Human first response, 90th percentile.
    pub first_response_secs_p90: Option<f64>,
    /// Human resolution, seconds from the hand-off, median.
    pub resolution_secs_p50: Option<f64>,
    /// Human resolution, 90th percentile.
    pub resolution_secs_p90: Option<f64>,
    /// Bot first answer, seconds from the first message, median.
    pub bot_first_response_secs_p50: Option<f64>,
    /// Bot first answer, 90th percentile.
    pub bot_first_response_secs_p90: Option<f64>,
    /// Bot-only resolution, seconds from the start, median.
    pub bot_resolution_secs_p50: Option<f64>,
    /// Resolved with no new conversation from the customer within 7 days.
    pub first_contact_resolution_rate: Option<f64>,
    /// CSAT answers received.
    pub csat_responses: u64,
    /// Share of 4–5 ratings, 0–100.
    pub csat_score: Option<f64>,
    /// Mean rating, 1–5.
    pub csat_average: Option<f64>,
    /// % promoters − % detractors, −100…100.
    pub nps: Option<f64>,
    /// Mean customer effort, 1–7.
    pub ces_average: Option<f64>,
    /// Surveys sent.
    pub surveys_sent: u64,
    /// Surveys with a CSAT answer ÷ surveys sent.
    pub csat_response_rate: Option<f64>,
    /// NPS answers.
    pub nps_responses: u64,
    /// CES answers.
    pub ces_responses: u64,
    /// Hand-offs by reason.
    pub handoff_reasons: BTreeMap<String, u64>,
    /// Resolved conversations by how (`agent`, `customer`, `inactivity`,
    /// `new_conversation`).
    pub resolutions: BTreeMap<String, u64>,
    /// Answers by mode (`llm`, `extractive`, `handoff`).
    pub answers_by_mode: BTreeMap<String, u64>,
}

/// The `q` quantile (0–1) of `values` by nearest rank; `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

fn mean(values: &[i64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<i64>() as f64 / values.len() as f64)
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn secs(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

/// What a report is computed from, read once so that many reports (one
/// per day of a chart, one per channel) can be computed from one read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every conversation (first-contact resolution looks past the window).
    pub conversations: Vec<Conversation>,
    /// Messages of conversations created since the snapshot's start.
    pub messages: Vec<store::Message>,
    /// Surveys sent.
    pub surveys: Vec<store::Survey>,
    /// When it was read.
    pub now: Millis,
}

impl Snapshot {
    /// Reads what reports on conversations created since `since` need.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn load(store: &Store, since: Option<Millis>) -> Result<Self, store::Error> {
        Ok(Self {
            conversations: store.conversations_since(None).await?,
            messages: store.messages_since(since).await?,
            surveys: store.sent_surveys().await?,
            now: store.now(),
        })
    }
}

impl Filter {
    /// Whether `c` is in the report.
    pub fn keeps(&self, c: &Conversation) -> bool {
        self.since.is_none_or(|s| c.created_at >= s)
            && self.until.is_none_or(|u| c.created_at < u)
            && self.channel.as_ref().is_none_or(|ch| &c.channel == ch)
            && self
                .agent
                .as_ref()
                .is_none_or(|a| c.assigned_agent.as_ref().is_some_and(|b| b == a))
    }
}

/// Computes the report.
///
/// # Errors
/// On a database failure.
pub async fn build(store: &Store, filter: &Filter) -> Result<Report, store::Error> {
    Ok(compute(&Snapshot::load(store, filter.since).await?, filter))
}

/// Computes the report from `data`, which must have been loaded with a
/// start no later than `filter.since`.
pub fn compute(data: &Snapshot, filter: &Filter) -> Report {
    let all = &data.conversations;
    let selected: Vec<&Conversation> = all.iter().filter(|c| filter.keeps(c)).collect();
    let ids: std::collections::HashSet<&str> = selected.iter().map(|c| c.id.as_str()).collect();
    let messages = &data.messages;
    let mut report = Report {
        conversations: selected.len() as u64,
        ..Report::default()
    };
    for m in messages
        .iter()
        .filter(|m| ids.contains(m.conversation_id.as_str()))
    {
        report.messages += 1;
        if let Some(mode) = m.mode {
            *report
                .answers_by_mode
                .entry(mode.as_str().to_string())
                .or_default() += 1;
        }
    }
    let mut human_first = Vec::new();
    let mut human_resolution = Vec::new();
    let mut bot_first = Vec::new();
    let mut bot_resolution = Vec::new();
    let (mut resolved, mut fcr) = (0u64, 0u64);
    let now = data.now;
    for c in &selected {
        match c.handoff_at {
            Some(handoff) => {
                report.escalated += 1;
                let reason = c.handoff_reason.clone().unwrap_or_else(|| "unknown".into());
                *report.handoff_reasons.entry(reason).or_default() += 1;
                if let Some(t) = c.first_human_response_at {
                    human_first.push(secs(handoff, t));
                }
                if let Some(t) = c.resolved_at {
                    human_resolution.push(secs(handoff, t));
                }
            }
            None => {
                if let Some(t) = c.first_bot_response_at {
                    bot_first.push(secs(c.created_at, t));
                }
                if let Some(t) = c.resolved_at {
                    report.bot_resolved += 1;
                    bot_resolution.push(secs(c.created_at, t));
                }
            }
        }
        if let Some(how) = &c.resolution {
            *report.resolutions.entry(how.to_string()).or_default() += 1;
        }
        if let Some(t) = c.resolved_at {
            // Only judge conversations whose 7-day window has passed or
            // already shows a return.
            let returned = all.iter().any(|o| {
                o.customer_id == c.customer_id
                    && o.id != c.id
                    && o.created_at >= t
                    && o.created_at < t + WEEK_MS
            });
            if returned || now >= t + WEEK_MS {
                resolved += 1;
                if !returned {
                    fcr += 1;
                }
            }
        }
    }
    report.escalation_rate = ratio(report.escalated, report.conversations);
    report.containment_rate = ratio(report.bot_resolved, report.conversations);
    report.first_response_secs_p50 = quantile(&mut human_first, 0.5);
    report.first_response_secs_p90 = quantile(&mut human_first, 0.9);
    report.resolution_secs_p50 = quantile(&mut human_resolution, 0.5);
    report.resolution_secs_p90 = quantile(&mut human_resolution, 0.9);
    report.bot_first_response_secs_p50 = quantile(&mut bot_first, 0.5);
    report.bot_first_response_secs_p90 = quantile(&mut bot_first, 0.9);
    report.bot_resolution_secs_p50 = quantile(&mut bot_resolution, 0.5);
    report.first_contact_resolution_rate = ratio(fcr, resolved);
    let surveys: Vec<_> = data
        .surveys
        .iter()
        .filter(|s| ids.contains(s.conversation_id.as_str()))
        .filter(|s| {
            filter
                .agent
                .as_ref()
                .is_none_or(|a| s.agent.as_ref() == Some(a))
        })
        .collect();
    report.surveys_sent = surveys.len() as u64;
    let csat: Vec<i64> = surveys.iter().filter_map(|s| s.csat).collect();
    report.csat_responses = csat.len() as u64;
    report.csat_response_rate = ratio(report.csat_responses, report.surveys_sent);
    report.csat_score = ratio(
        csat.iter().filter(|v| **v >= 4).count() as u64,
        csat.len() as u64,
    )
    .map(|r| r * 100.0);
    report.csat_average = mean(&csat);
    let ces: Vec<i64> = surveys.iter().filter_map(|s| s.ces).collect();
    report.ces_responses = ces.len() as u64;
    report.ces_average = mean(&ces);
    let nps: Vec<i64> = surveys.iter().filter_map(|s| s.nps).collect();
    report.nps_responses = nps.len() as u64;
    if !nps.is_empty() {
        let promoters = nps.iter().filter(|v| **v >= 9).count() as f64;
        let detractors = nps.iter().filter(|v| **v <= 6).count() as f64;
        report.nps = Some((promoters - detractors) / nps.len() as f64 * 100.0);
    }
    report
}

/// A group of questions the bot could not answer (or whose answer got 👎),
/// named by their most common term.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gap {
    /// The shared term (stemmed).
    pub term: String,
    /// How many questions.
    pub count: usize,
    /// Up to three of them.
    pub examples: Vec<String>,
}

/// Knowledge gaps: questions the bot could not answer and questions whose
/// answer got 👎, grouped by their most common term, biggest group first.
///
/// # Errors
/// On a database failure.
pub async fn gaps(store: &Store, filter: &Filter) -> Result<Vec<Gap>, store::Error> {
    let conversations = store.conversations_since(filter.since).await?;
    let mut questions: Vec<String> = Vec::new();
    for c in conversations
        .iter()
        .filter(|c| filter.channel.as_ref().is_none_or(|ch| &c.channel == ch))
        .filter(|c| filter.until.is_none_or(|u| c.created_at < u))
    {
        for e in store.events(&c.id).await? {
            if e.kind == EventKind::NoAnswer {
                questions.extend(e.detail);
            }
        }
        let messages = store.messages(&c.id).await?;
        for pair in messages.windows(2) {
            if pair[0].role == crate::store::Role::Customer && pair[1].feedback == Some(-1) {
                questions.push(pair[0].text.clone());
            }
        }
    }
    let mut analyzer = crate::kb::analyzer();
    let analyzed: Vec<(String, Vec<String>)> = questions
        .into_iter()
        .map(|q| {
            let terms = crate::kb::terms(&mut analyzer, &q);
            (q, terms)
        })
        .collect();
    let mut frequency: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, terms) in &analyzed {
        for t in terms {
            *frequency.entry(t.as_str()).or_default() += 1;
        }
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (question, terms) in &analyzed {
        let key = terms
            .iter()
            .max_by_key(|t| {
                (
                    frequency.get(t.as_str()).copied().unwrap_or(0),
                    std::cmp::Reverse(t.len()),
                )
            })
            .cloned()
            .unwrap_or_else(|| "(no words)".into());
        groups.entry(key).or_default().push(question.clone());
    }
    let mut out: Vec<Gap> = groups
        .into_iter()
        .map(|(term, qs)| Gap {
            term,
            count: qs.len(),
            examples: qs.into_iter().take(3).collect(),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.term.cmp(&b.term)));
    Ok(out)
}

/// Parses `24h`, `7d`, `30m`, `90s`, `2w` into milliseconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration; use a number and a unit, e.g. 24h, 7d, 30d")
    })?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit; use s, m, h, d or w (e.g. 7d)"
            ));
        }
    };
    Ok(n.saturating_mul(unit_ms))
}

/// The report as the `report` command prints it: one figure a line.
pub fn render(r: &Report) -> String {
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
    let num = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    let secs = |v: Option<f64>| {
        v.map_or("—".to_string(), |v| {
            humanize(std::time::Duration::from_secs_f64(v.max(0.0)))
        })
    };
    let mut rows = vec![
        ("Conversations", r.conversations.to_string()),
        ("Messages", r.messages.to_string()),
        ("Resolved by the bot", r.bot_resolved.to_string()),
        ("Escalated to a person", r.escalated.to_string()),
        ("Escalation rate", pct(r.escalation_rate)),
        ("Bot containment rate", pct(r.containment_rate)),
        (
            "Human first response p50 / p90",
            format!(
                "{} / {}",
                secs(r.first_response_secs_p50),
                secs(r.first_response_secs_p90)
            ),
        ),
        (
            "Human resolution p50 / p90",
            format!(
                "{} / {}",
                secs(r.resolution_secs_p50),
                secs(r.resolution_secs_p90)
            ),
        ),
        (
            "Bot first response p50 / p90",
            format!(
                "{} / {}",
                secs(r.bot_first_response_secs_p50),
                secs(r.bot_first_response_secs_p90)
            ),
        ),
        ("Bot resolution p50", secs(r.bot_resolution_secs_p50)),
        (
            "First-contact resolution",
            pct(r.first_contact_resolution_rate),
        ),
        ("Surveys sent", r.surveys_sent.to_string()),
        (
            "CSAT responses (rate)",
            format!("{} ({})", r.csat_responses, pct(r.csat_response_rate)),
        ),
        (
            "CSAT score (4–5)",
            r.csat_score.map_or("—".into(), |v| format!("{v:.1}%")),
        ),
        ("CSAT average (1–5)", num(r.csat_average)),
        ("NPS", num(r.nps)),
        ("CES average (1–7)", num(r.ces_average)),
    ];
    for (how, n) in &r.resolutions {
        rows.push(("  resolved by", format!("{how}: {n}")));
    }
    for (reason, n) in &r.handoff_reasons {
        rows.push(("  hand-off reason", format!("{reason}: {n}")));
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000));
        assert!(parse_duration("7 days").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn quantiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        assert_eq!(quantile(&mut v, 0.9), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
