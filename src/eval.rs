//! `switchboard eval`: retrieval and hand-off quality on a labelled set.
//!
//! Each case goes through [`Assistant::assess_in`] with its `history`, the
//! same retrieval and decision path customers get, without logging a
//! conversation. Retrieval
//! is scored on in-scope cases (an article counts once however many of its
//! passages match); the refuse/hand-off decision on every case.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::assistant::{Assessment, Assistant, Earlier};

/// A case's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The knowledge base answers it; `gold` names the articles.
    InScope,
    /// Not about the product: the bot should say it does not know.
    OutOfScope,
    /// The customer asks for a person.
    Handoff,
}

/// One line of the eval file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Case {
    /// The question.
    pub q: String,
    /// Slugs of the articles that answer it.
    #[serde(default)]
    pub gold: Vec<String>,
    /// What the case is.
    pub kind: Kind,
    /// Earlier turns of the conversation, oldest first.
    #[serde(default)]
    pub history: Vec<Earlier>,
    /// A reference answer (token F1 with `--answers`).
    #[serde(default)]
    pub answer: Option<String>,
}

/// An eval failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("{}: {}", .0.display(), .1)]
    Io(std::path::PathBuf, #[source] std::io::Error),
    /// A line is not a case.
    #[error("{}:{line}: {message}; each line must be {{\"q\": \"…\", \"gold\": [\"slug\"], \"kind\": \"in_scope|out_of_scope|handoff\"}}", .path.display())]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file has no cases.
    #[error("{}: no cases", .0.display())]
    Empty(std::path::PathBuf),
    /// Retrieval failed.
    #[error(transparent)]
    Assistant(#[from] Box<crate::assistant::Error>),
}

/// Reads a JSON Lines file of cases (blank lines allowed).
///
/// # Errors
/// [`Error::Line`] naming the first bad line.
pub fn load(path: &Path) -> Result<Vec<Case>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| Error::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(Error::Empty(path.to_path_buf()));
    }
    Ok(cases)
}

/// The figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// In-scope cases.
    pub in_scope: usize,
    /// Out-of-scope and hand-off cases.
    pub should_refuse: usize,
    /// Share of in-scope cases whose first article is a gold one.
    pub hit_at_1: Option<f64>,
    /// Share with a gold article in the first five.
    pub hit_at_5: Option<f64>,
    /// Mean reciprocal rank of the first gold article within five.
    pub mrr_at_5: Option<f64>,
    /// Of the cases refused or handed off, the share that should have been.
    pub refuse_precision: Option<f64>,
    /// Of the cases that should be refused or handed off, the share that were.
    pub refuse_recall: Option<f64>,
    /// Share of in-scope cases wrongly refused or handed off.
    pub in_scope_refused: Option<f64>,
    /// Share of hand-off requests handed off (not merely refused).
    pub handoff_recall: Option<f64>,
    /// Cases of each kind.
    pub kinds: Counts,
    /// What the decision did with each kind of case.
    pub confusion: Confusion,
    /// Decision latency, median, milliseconds.
    pub latency_p50_ms: f64,
    /// Decision latency, 99th percentile, milliseconds.
    pub latency_p99_ms: f64,
    /// With `--answers`: generated answers to the in-scope cases the bot
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
}

/// Cases per kind.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Counts {
    /// In-scope cases.
    pub in_scope: usize,
    /// Out-of-scope cases.
    pub out_of_scope: usize,
    /// Hand-off requests.
    pub handoff: usize,
}

/// What the decision did with the cases of one kind.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Outcomes {
    /// Answered from the knowledge base (or a canned reply).
    pub answered: usize,
    /// Refused: the knowledge base does not cover it.
    pub refused: usize,
    /// Handed to a person.
    pub handed_off: usize,
}

/// The refused/answered confusion, per kind of case.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Confusion {
    /// In-scope cases.
    pub in_scope: Outcomes,
    /// Out-of-scope cases.
    pub out_of_scope: Outcomes,
    /// Hand-off requests.
    pub handoff: Outcomes,
}

/// Generated answers (`--answers`).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Answers {
    /// Answers generated (the model answered, in-scope cases).
    pub generated: usize,
    /// Of those, answers citing a gold article.
    pub cite_gold: usize,
    /// Share of generated answers citing a gold article.
    pub cite_gold_rate: Option<f64>,
    /// Times the model said the sources do not answer (any kind).
    pub declined: usize,
    /// Times the model failed (timeout, error).
    pub failed: usize,
    /// Share of in-scope cases not answered: refused by retrieval or
    /// declined by the model.
    pub answerable_declined: Option<f64>,
    /// Share of out-of-scope cases the model answered.
    pub unanswerable_answered: Option<f64>,
    /// Mean token F1 against the reference `answer` over in-scope cases that
    /// have one (a case not answered scores 0).
    pub token_f1: Option<f64>,
    /// The same over the cases the model answered.
    pub token_f1_answered: Option<f64>,
    /// Time per generated answer, median, milliseconds.
    pub answer_p50_ms: Option<f64>,
    /// Time per generated answer, 95th percentile, milliseconds.
    pub answer_p95_ms: Option<f64>,
}

/// Token F1 of `answer` against `reference` (SQuAD style: lower case,
/// punctuation and articles dropped, tokens counted with multiplicity).
pub fn token_f1(answer: &str, reference: &str) -> f64 {
    fn tokens(text: &str) -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !matches!(*w, "a" | "an" | "the"))
            .map(str::to_string)
            .collect()
    }
    let (a, r) = (tokens(answer), tokens(reference));
    if a.is_empty() || r.is_empty() {
        return if a.is_empty() && r.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let mut counts: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for t in &r {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut common = 0;
    for t in &a {
        if let Some(c) = counts.get_mut(t.as_str())
            && *c > 0
        {
            *c -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / a.len() as f64;
    let recall = common as f64 / r.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// Articles in rank order, each once.
fn ranked_articles(assessment: &Assessment) -> Vec<String> {
    let hits = match assessment {
        Assessment::Answer(r) | Assessment::NotCovered(r) => &r.hits,
        _ => return Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for h in hits {
        if !out.contains(&h.slug) {
            out.push(h.slug.clone());
        }
    }
    out
}

/// Runs every case; `on_progress(done, total)` after each.
///
/// # Errors
/// On an index failure.
pub async fn run(
    assistant: &Assistant,
    cases: &[Case],
    answers: bool,
    on_progress: &dyn Fn(usize, usize),
) -> Result<Report, Error> {
    let mut drafts = answers.then(Answers::default);
    let mut report = Report {
        cases: cases.len(),
        ..Report::default()
    };
    let (mut hit1, mut hit5, mut rr) = (0usize, 0usize, 0f64);
    let (mut refused_right, mut refused_wrong, mut handed_off) = (0usize, 0usize, 0usize);
    let mut latencies = Vec::with_capacity(cases.len());
    let mut answer_times = Vec::new();
    let (mut not_answered, mut oos_answered) = (0usize, 0usize);
    let (mut f1_sum, mut f1_cases, mut f1_answered_sum, mut f1_answered) =
        (0f64, 0usize, 0f64, 0usize);
    for (i, case) in cases.iter().enumerate() {
        let started = Instant::now();
        let assessment = assistant
            .assess_in(&case.q, &case.history)
            .await
            .map_err(Box::new)?;
        latencies.push(started.elapsed());
        let refused = matches!(
            assessment,
            Assessment::HandOff(..) | Assessment::NotCovered(_)
        );
        let outcomes = match case.kind {
            Kind::InScope => {
                report.kinds.in_scope += 1;
                &mut report.confusion.in_scope
            }
            Kind::OutOfScope => {
                report.kinds.out_of_scope += 1;
                &mut report.confusion.out_of_scope
            }
            Kind::Handoff => {
                report.kinds.handoff += 1;
                &mut report.confusion.handoff
            }
        };
        match &assessment {
            Assessment::HandOff(..) => outcomes.handed_off += 1,
            Assessment::NotCovered(_) => outcomes.refused += 1,
            Assessment::Answer(_) | Assessment::Reply(_) => outcomes.answered += 1,
        }
        if let Assessment::Answer(retrieval) | Assessment::NotCovered(retrieval) = &assessment {
            tracing::debug!(
                q = %case.q,
                kind = ?case.kind,
                confidence = retrieval.confidence,
                best_score = retrieval.best_score,
                relevance = retrieval.relevance,
                covered = !refused,
                "eval case"
            );
        }
        // With --answers: the model's answer wherever the decision answers.
        let mut draft = None;
        if let (Some(drafts), Assessment::Answer(retrieval)) = (&mut drafts, &assessment) {
            let started = Instant::now();
            match assistant.draft_in(&case.q, &case.history, retrieval).await {
                Ok(d) => {
                    answer_times.push(started.elapsed());
                    tracing::debug!(q = %case.q, kind = ?case.kind, declined = d.declined, text = %d.text, "eval answer");
                    if d.declined {
                        drafts.declined += 1;
                    }
                    draft = Some(d);
                }
                Err(e) => {
                    tracing::warn!("eval: no answer generated for {:?}: {e}", case.q);
                    drafts.failed += 1;
                }
            }
        }
        let answered = draft.as_ref().filter(|d| !d.declined);
        match case.kind {
            Kind::InScope => {
                report.in_scope += 1;
                let ranked = ranked_articles(&assessment);
                if let Some(rank) = ranked
                    .iter()
                    .take(5)
                    .position(|slug| case.gold.contains(slug))
                {
                    hit5 += 1;
                    rr += 1.0 / (rank + 1) as f64;
                    if rank == 0 {
                        hit1 += 1;
                    }
                }
                if refused {
                    refused_wrong += 1;
                }
                if let Some(drafts) = &mut drafts {
                    match answered {
                        Some(d) => {
                            drafts.generated += 1;
                            if d.sources.iter().any(|s| case.gold.contains(&s.slug)) {
                                drafts.cite_gold += 1;
                            }
                        }
                        None => not_answered += 1,
                    }
                    if let Some(reference) = &case.answer {
                        let f1 = answered.map_or(0.0, |d| token_f1(&d.text, reference));
                        f1_sum += f1;
                        f1_cases += 1;
                        if answered.is_some() {
                            f1_answered_sum += f1;
                            f1_answered += 1;
                        }
                    }
                }
            }
            Kind::OutOfScope | Kind::Handoff => {
                report.should_refuse += 1;
                if refused {
                    refused_right += 1;
                }
                if case.kind == Kind::Handoff && matches!(assessment, Assessment::HandOff(..)) {
                    handed_off += 1;
                }
                if case.kind == Kind::OutOfScope && answered.is_some() {
                    oos_answered += 1;
                }
            }
        }
        on_progress(i + 1, cases.len());
    }
    report.hit_at_1 = ratio(hit1, report.in_scope);
    report.hit_at_5 = ratio(hit5, report.in_scope);
    report.mrr_at_5 = (report.in_scope > 0).then(|| rr / report.in_scope as f64);
    report.refuse_precision = ratio(refused_right, refused_right + refused_wrong);
    report.refuse_recall = ratio(refused_right, report.should_refuse);
    report.in_scope_refused = ratio(refused_wrong, report.in_scope);
    report.handoff_recall = ratio(handed_off, report.kinds.handoff);
    latencies.sort();
    report.latency_p50_ms = percentile(&latencies, 0.5).as_secs_f64() * 1000.0;
    report.latency_p99_ms = percentile(&latencies, 0.99).as_secs_f64() * 1000.0;
    answer_times.sort();
    let in_scope = report.in_scope;
    let out_of_scope = report.kinds.out_of_scope;
    report.answers = drafts.map(|mut d| {
        d.cite_gold_rate = ratio(d.cite_gold, d.generated);
        d.answerable_declined = ratio(not_answered, in_scope);
        d.unanswerable_answered = ratio(oos_answered, out_of_scope);
        d.token_f1 = (f1_cases > 0).then(|| f1_sum / f1_cases as f64);
        d.token_f1_answered = (f1_answered > 0).then(|| f1_answered_sum / f1_answered as f64);
        let ms = |p| percentile(&answer_times, p).as_secs_f64() * 1000.0;
        d.answer_p50_ms = (!answer_times.is_empty()).then(|| ms(0.5));
        d.answer_p95_ms = (!answer_times.is_empty()).then(|| ms(0.95));
        d
    });
    Ok(report)
}

/// The report as a readable table.
pub fn render(r: &Report) -> String {
    let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    let row = |name: &str, n: usize, o: &Outcomes| {
        if n == 0 {
            String::new()
        } else {
            format!(
                "  {:<24} {} / {} / {}\n",
                format!("{name} ({n})"),
                o.answered,
                o.refused,
                o.handed_off
            )
        }
    };
    format!(
        "cases                      {}\n\
         in scope                   {}\n\
         should refuse / hand off   {}\n\
         hit@1                      {}\n\
         hit@5                      {}\n\
         MRR@5                      {}\n\
         refuse precision           {}\n\
         refuse recall              {}\n\
         in-scope wrongly refused   {}\n\
         hand-off requests handed   {}\n\
         latency p50 / p99          {:.2} ms / {:.2} ms\n\
         {:<26} answered / refused / handed off\n\
         {}{}{}",
        r.cases,
        r.in_scope,
        r.should_refuse,
        f(r.hit_at_1),
        f(r.hit_at_5),
        f(r.mrr_at_5),
        f(r.refuse_precision),
        f(r.refuse_recall),
        f(r.in_scope_refused),
        f(r.handoff_recall),
        r.latency_p50_ms,
        r.latency_p99_ms,
        "decisions",
        row("in scope", r.kinds.in_scope, &r.confusion.in_scope),
        row(
            "out of scope",
            r.kinds.out_of_scope,
            &r.confusion.out_of_scope
        ),
        row("hand-off requests", r.kinds.handoff, &r.confusion.handoff),
    ) + &r.answers.as_ref().map_or(String::new(), |a| {
        let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0} ms"));
        format!(
            "answers generated          {}\n\
             citing a gold article      {} ({})\n\
             model declined / failed    {} / {}\n\
             answerable not answered    {}\n\
             unanswerable answered      {}\n\
             token F1 (all / answered)  {} / {}\n\
             answer time p50 / p95      {} / {}\n",
            a.generated,
            a.cite_gold,
            f(a.cite_gold_rate),
            a.declined,
            a.failed,
            f(a.answerable_declined),
            f(a.unanswerable_answered),
            f(a.token_f1),
            f(a.token_f1_answered),
            ms(a.answer_p50_ms),
            ms(a.answer_p95_ms),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_f1_counts_shared_tokens() {
        assert_eq!(
            token_f1("The refund takes five days.", "refund takes five days"),
            1.0
        );
        assert_eq!(token_f1("nothing alike", "refund takes five days"), 0.0);
        let f = token_f1("refunds take five days", "refund takes five days");
        assert!((f - 0.5).abs() < 1e-9, "{f}");
        assert_eq!(token_f1("", "x"), 0.0);
        assert_eq!(token_f1("¿¡ 🎉", "🎉"), 1.0);
    }

    #[test]
    fn cases_read_history_and_answer() {
        let dir = std::env::temp_dir().join(format!("sb-eval-case-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cases.jsonl");
        std::fs::write(
            &path,
            r#"{"q": "and on Android?", "gold": ["a"], "kind": "in_scope", "history": [{"role": "customer", "text": "How do I sync?"}, {"role": "bot", "text": "Open settings."}], "answer": "Same steps.", "collection": "x"}
{"q": "hi", "kind": "out_of_scope"}
"#,
        )
        .unwrap();
        let cases = load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cases[0].history.len(), 2);
        assert_eq!(
            cases[0].history[1].role,
            crate::assistant::context::Role::Bot
        );
        assert_eq!(cases[0].answer.as_deref(), Some("Same steps."));
        assert!(cases[1].history.is_empty() && cases[1].answer.is_none());
    }
}
