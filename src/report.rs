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
use crate::store::{self, Conversation, Store};

const WEEK_MS: Millis = 7 * 24 * 3600 * 1000;

/// Filters for a report.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only conversations created at or after this time.
    pub since: Option<Millis>,
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
    /// Hand-offs by reason.
    pub handoff_reasons: BTreeMap<String, u64>,
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

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn secs(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

/// Computes the report.
///
/// # Errors
/// On a database failure.
pub async fn build(store: &Store, filter: &Filter) -> Result<Report, store::Error> {
    let all = store.conversations_since(None).await?;
    let keep = |c: &Conversation| {
        filter.since.is_none_or(|s| c.created_at >= s)
            && filter.channel.as_ref().is_none_or(|ch| &c.channel == ch)
            && filter
                .agent
                .as_ref()
                .is_none_or(|a| c.assigned_agent.as_ref() == Some(a))
    };
    let selected: Vec<&Conversation> = all.iter().filter(|c| keep(c)).collect();
    let ids: std::collections::HashSet<&str> = selected.iter().map(|c| c.id.as_str()).collect();
    let messages = store.messages_since(filter.since).await?;
    let mut report = Report {
        conversations: selected.len() as u64,
        ..Report::default()
    };
    for m in messages
        .iter()
        .filter(|m| ids.contains(m.conversation_id.as_str()))
    {
        report.messages += 1;
        if let Some(mode) = &m.mode {
            *report.answers_by_mode.entry(mode.clone()).or_default() += 1;
        }
    }
    let mut human_first = Vec::new();
    let mut human_resolution = Vec::new();
    let mut bot_first = Vec::new();
    let mut bot_resolution = Vec::new();
    let (mut resolved, mut fcr) = (0u64, 0u64);
    let now = store.now();
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
    Ok(report)
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
