//! `switchboard kb …`: index, search, list, check, add and remove articles.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use switchboard::config::Settings;
use switchboard::kb::{self, KnowledgeBase};

use super::args::KbCommand;
use super::progress_callback;

/// Runs one `kb` command.
pub(crate) fn kb_command(settings: Settings, command: KbCommand) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let kb_settings = &settings.knowledge_base;
    let open = || -> Result<KnowledgeBase> {
        KnowledgeBase::open(kb_settings, &progress_callback()).context("opening the knowledge base")
    };
    match command {
        KbCommand::Index => {
            let kb = open()?;
            let started = std::time::Instant::now();
            let report = kb.rebuild(&progress_callback())?;
            eprintln!(
                "indexed {} articles ({} passages) in {:.2?}",
                report.added + report.updated,
                kb.passages(),
                started.elapsed()
            );
            let target = settings.assistant.refusal_target;
            let calibration = kb.calibration();
            if let (Some(threshold), Some(negatives)) = (
                calibration.threshold(target),
                calibration.negatives_refused(target),
            ) {
                let positives = calibration
                    .positives_refused(target)
                    .map_or("—".to_string(), |p| format!("{:.0}%", p * 100.0));
                eprintln!(
                    "calibrated: a best score of {threshold:.1} or more counts as covered; refuses {:.0}% of generic off-topic questions and {positives} of questions made from the articles",
                    negatives * 100.0
                );
            }
        }
        KbCommand::Search { query, limit, json } => {
            let kb = open()?;
            let hits = kb.search(&query, limit)?;
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&hits)?)?;
            } else if hits.is_empty() {
                writeln!(stdout, "no passages match")?;
            } else {
                for (i, h) in hits.iter().enumerate() {
                    writeln!(
                        stdout,
                        "{:>2}. {:>7.3}  {} — {}\n    {}",
                        i + 1,
                        h.score,
                        h.slug,
                        h.heading,
                        h.snippet
                    )?;
                }
            }
        }
        KbCommand::List { json } => {
            let kb = open()?;
            let articles = kb.articles();
            if json {
                let list: Vec<_> = articles
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "slug": a.slug, "title": a.title, "tags": a.tags,
                            "url": kb.link(&a.slug, a.url.as_deref()), "locale": a.locale,
                            "passages": a.passages.len(),
                        })
                    })
                    .collect();
                writeln!(stdout, "{}", serde_json::to_string(&list)?)?;
            } else {
                for a in &articles {
                    writeln!(stdout, "{:<40} {}", a.slug, a.title)?;
                }
                eprintln!("{} articles", articles.len());
            }
        }
        KbCommand::Check => {
            let (files, problems) = kb::check_folder(&kb_settings.path)?;
            for p in &problems {
                let level = if p.problem.fatal { "error" } else { "warning" };
                writeln!(
                    stdout,
                    "{}:{}: {level}: {}",
                    p.path.display(),
                    p.problem.line,
                    p.problem.message
                )?;
            }
            if problems.is_empty() {
                eprintln!("{files} articles checked, no problems");
            } else {
                eprintln!("{files} articles checked, {} problems", problems.len());
                return Ok(ExitCode::FAILURE);
            }
        }
        KbCommand::Add { file, slug } => {
            let kb = open()?;
            let slug = kb.add(&file, slug.as_deref())?;
            eprintln!("added {slug}");
        }
        KbCommand::Rm { slug } => {
            let kb = open()?;
            kb.remove(&slug)?;
            eprintln!("removed {slug}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
