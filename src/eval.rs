//! `switchboard eval`: retrieval and hand-off quality on a labelled set.
//!
//! Each case goes through [`Assistant::assess`], the same retrieval and
//! decision path customers get, without logging a conversation. Retrieval
//! is scored on in-scope cases (an article counts once however many of its
//! passages match); the refuse/hand-off decision on every case.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::assistant::{Assessment, Assistant};

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
    /// Decision latency, median, milliseconds.
    pub latency_p50_ms: f64,
    /// Decision latency, 99th percentile, milliseconds.
    pub latency_p99_ms: f64,
    /// With `--answers`: generated answers to the in-scope cases the bot
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
}

/// How generated answers cite (`--answers`).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Answers {
    /// Answers generated.
    pub generated: usize,
    /// Of those, answers citing a gold article.
    pub cite_gold: usize,
    /// Share of generated answers citing a gold article.
    pub cite_gold_rate: Option<f64>,
    /// Times the model said the sources do not answer.
    pub declined: usize,
    /// Times the model failed (timeout, error).
    pub failed: usize,
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
    for (i, case) in cases.iter().enumerate() {
        let started = Instant::now();
        let assessment = assistant.assess(&case.q).await.map_err(Box::new)?;
        latencies.push(started.elapsed());
        let refused = matches!(
            assessment,
            Assessment::HandOff(..) | Assessment::NotCovered(_)
        );
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
                if let (Some(drafts), Assessment::Answer(retrieval)) = (&mut drafts, &assessment) {
                    match assistant.draft(&case.q, retrieval).await {
                        Ok(d) if d.declined => drafts.declined += 1,
                        Ok(d) => {
                            drafts.generated += 1;
                            if d.sources.iter().any(|s| case.gold.contains(&s.slug)) {
                                drafts.cite_gold += 1;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("eval: no answer generated for {:?}: {e}", case.q);
                            drafts.failed += 1;
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
            }
        }
        on_progress(i + 1, cases.len());
    }
    let handoff_cases = cases.iter().filter(|c| c.kind == Kind::Handoff).count();
    report.hit_at_1 = ratio(hit1, report.in_scope);
    report.hit_at_5 = ratio(hit5, report.in_scope);
    report.mrr_at_5 = (report.in_scope > 0).then(|| rr / report.in_scope as f64);
    report.refuse_precision = ratio(refused_right, refused_right + refused_wrong);
    report.refuse_recall = ratio(refused_right, report.should_refuse);
    report.in_scope_refused = ratio(refused_wrong, report.in_scope);
    report.handoff_recall = ratio(handed_off, handoff_cases);
    latencies.sort();
    let at = |p: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    report.latency_p50_ms = at(0.5).as_secs_f64() * 1000.0;
    report.latency_p99_ms = at(0.99).as_secs_f64() * 1000.0;
    report.answers = drafts.map(|mut d| {
        d.cite_gold_rate = ratio(d.cite_gold, d.generated);
        d
    });
    Ok(report)
}

/// The report as a readable table.
pub fn render(r: &Report) -> String {
    let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
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
         latency p50 / p99          {:.2} ms / {:.2} ms\n",
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
    ) + &r.answers.as_ref().map_or(String::new(), |a| {
        format!(
            "answers generated          {}\n\
             citing a gold article      {} ({})\n\
             model declined / failed    {} / {}\n",
            a.generated,
            a.cite_gold,
            f(a.cite_gold_rate),
            a.declined,
            a.failed
        )
    })
}
