//! The `switchboard` command line. The only home of `anyhow`: every error
//! ends here as one line on stderr and a non-zero exit code.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use switchboard::app::{App, Core};
use switchboard::channels::console;
use switchboard::channels::driver::ChannelCore;
use switchboard::config::Settings;
use switchboard::{clock, export, report, telemetry};

#[path = "main/args.rs"]
mod args;
#[path = "main/kb.rs"]
mod kb_command;

use args::{AgentsCommand, Cli, Command, ExportFormat, ReportView};
use kb_command::kb_command;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Run);
    // Interactive commands log only warnings, so logs don't mix with answers.
    telemetry::init(if quiet { "warn" } else { "info" }, std::io::stderr);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("switchboard: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Console sign-in over the configured database, with the agents added
/// from the console loaded.
async fn console_auth(settings: &Settings) -> Result<switchboard::auth::ConsoleAuth> {
    let agents = switchboard::agents::Agents::from_settings(settings);
    let store = switchboard::store::Store::open(&settings.database.url, 1, clock::system()).await?;
    let auth = switchboard::auth::ConsoleAuth::new(store, agents);
    auth.reload().await?;
    Ok(auth)
}

/// `http://` and `web.listen`, with an any-address host read as localhost.
fn listen_url(listen: &str) -> String {
    let listen = listen
        .replacen("0.0.0.0:", "localhost:", 1)
        .replacen("[::]:", "localhost:", 1);
    format!("http://{listen}")
}

/// A new password from the terminal (asked twice) or from standard input
/// (one line, or the same line twice).
fn read_new_password(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("new console password for {name}: "))?;
        let second = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ; nothing changed");
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)?;
    let lines: Vec<&str> = input.lines().collect();
    match lines.as_slice() {
        [one] => Ok((*one).to_string()),
        [first, second] if first == second => Ok((*first).to_string()),
        [_, _] => anyhow::bail!("the two lines differ; nothing changed"),
        _ => anyhow::bail!(
            "expected the password on one line (or the same line twice) on standard input"
        ),
    }
}

fn load_settings(path: &Path) -> Result<Settings> {
    Ok(Settings::load(path)?)
}

/// A progress bar that only appears when there is enough work to watch.
fn progress_callback() -> impl Fn(usize, usize) {
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("indexing {bar:40} {pos}/{len} articles ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    move |done, total| {
        if total < 200 || !std::io::stderr().is_terminal() {
            return;
        }
        if bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
        if done == total {
            bar.finish_and_clear();
        }
    }
}

async fn core(settings: Settings) -> Result<Core> {
    Ok(Core::build(settings, clock::system(), &progress_callback()).await?)
}

/// What the console channel uses of the core.
fn channel_core(core: &Core) -> ChannelCore {
    ChannelCore::new(core.assistant.clone(), core.desk.clone())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let mut stdout = std::io::stdout();
    // Commands that only read the knowledge base or a file also work in a
    // folder without config.toml (defaults, bundled prompts).
    let reading = matches!(
        cli.command,
        Command::Chat | Command::Ask { .. } | Command::Kb(_) | Command::Eval { .. }
    );
    // A file named explicitly must exist; the default may be absent.
    let config = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let settings = if reading && (cli.config.is_none() || config.exists()) {
        let settings = Settings::load_for_reading(&config)?;
        if !matches!(cli.command, Command::Eval { kb: Some(_), .. }) {
            settings.check_knowledge_base()?;
        }
        settings
    } else {
        load_settings(&config)?
    };
    match cli.command {
        Command::Run => {
            let app = App::build(settings, clock::system()).await?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Chat => {
            let core = core(settings).await?;
            let interactive = std::io::stdin().is_terminal();
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let out: console::SharedOut =
                std::sync::Arc::new(std::sync::Mutex::new(Box::new(std::io::stdout())));
            console::chat(channel_core(&core), stdin, out, interactive).await?;
        }
        Command::Ask { question, json } => {
            let core = core(settings).await?;
            if json {
                let reply = console::ask(channel_core(&core), &question, None).await?;
                writeln!(stdout, "{}", serde_json::to_string(&reply)?)?;
            } else {
                let out = Box::new(std::io::stdout());
                console::ask(channel_core(&core), &question, Some(out)).await?;
            }
        }
        Command::Kb(command) => return kb_command(settings, command),
        Command::Report {
            view,
            since,
            channel,
            agent,
            json,
        } => {
            let core = core(settings).await?;
            let since = since_millis(since.as_deref(), &core)?;
            let filter = report::Filter {
                since,
                until: None,
                channel,
                agent,
            };
            if view == Some(ReportView::Gaps) {
                let gaps = report::gaps(&core.store, &filter).await?;
                if json {
                    writeln!(stdout, "{}", serde_json::to_string_pretty(&gaps)?)?;
                } else if gaps.is_empty() {
                    writeln!(stdout, "no unanswered or down-voted questions")?;
                } else {
                    for g in &gaps {
                        writeln!(stdout, "{:>4}  {}", g.count, g.term)?;
                        for q in &g.examples {
                            writeln!(stdout, "        {q}")?;
                        }
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let report = report::build(&core.store, &filter).await?;
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(stdout, "{}", report::render(&report))?;
            }
        }
        Command::Export { since, format } => {
            let core = core(settings).await?;
            let since = since_millis(since.as_deref(), &core)?;
            let format = match format {
                ExportFormat::Jsonl => export::Format::Jsonl,
                ExportFormat::Csv => export::Format::Csv,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            export::write(&core.store, since, format, &mut out).await?;
            out.flush()?;
        }
        Command::Eval {
            file,
            kb,
            json,
            answers,
        } => {
            let cases = switchboard::eval::load(&file)?;
            let mut settings = settings;
            // Nothing is logged: an in-memory database.
            settings.database.url = "sqlite::memory:".into();
            let scratch = tempfile_dir()?;
            if let Some(kb) = kb {
                settings.knowledge_base.path = kb;
                settings.knowledge_base.index_path = scratch.join("index");
                settings.check_knowledge_base()?;
            }
            let core = core(settings).await?;
            let bar = if std::io::stderr().is_terminal() {
                ProgressBar::new(cases.len() as u64)
            } else {
                ProgressBar::hidden()
            };
            if answers && !core.assistant.has_model() {
                anyhow::bail!(
                    "--answers needs an LLM: set llm.base_url (or SWITCHBOARD_LLM__BASE_URL) and, for hosted APIs, OPENAI_API_KEY"
                );
            }
            let report = switchboard::eval::run(&core.assistant, &cases, answers, &|done, _| {
                bar.set_position(done as u64)
            })
            .await?;
            bar.finish_and_clear();
            let _ = std::fs::remove_dir_all(&scratch);
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(stdout, "{}", switchboard::eval::render(&report))?;
            }
        }
        Command::Agents(AgentsCommand::Passwd { name }) => {
            let auth = console_auth(&settings).await?;
            if auth.agents().by_name(&name).is_none() {
                anyhow::bail!(switchboard::auth::Error::UnknownAgent(name));
            }
            let password = read_new_password(&name)?;
            auth.set_password(&name, &password).await?;
            writeln!(
                stdout,
                "password set for {name}; they sign in at /agent (their other sessions were ended)"
            )?;
        }
        Command::Agents(AgentsCommand::Invite {
            name,
            admin,
            base_url,
        }) => {
            let auth = console_auth(&settings).await?;
            let by = "switchboard agents invite";
            let known = auth
                .agents()
                .listing()
                .into_iter()
                .find(|l| l.agent.name == name);
            match known {
                None => {
                    auth.add_agent(&name, admin, by).await?;
                    let role = if admin { "an admin" } else { "an agent" };
                    writeln!(stdout, "added {name} as {role} (console only)")?;
                }
                Some(l) if l.disabled => anyhow::bail!(
                    "{name} is disabled; an admin enables them in the console's Settings first"
                ),
                Some(l) if admin && !l.agent.admin => writeln!(
                    stdout,
                    "{name} exists and is not an admin; --admin only applies to new agents (change the role in the console's settings)"
                )?,
                Some(_) => {}
            }
            let invite = auth.invite(&name, by).await?;
            let base = base_url.unwrap_or_else(|| listen_url(&settings.web.listen));
            let expires = chrono::DateTime::from_timestamp_millis(invite.expires_at)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            writeln!(
                stdout,
                "send this link to {name}; it works once, until {expires}:\n{}{}",
                base.trim_end_matches('/'),
                invite.path()
            )?;
        }
        Command::DeadLetters { retry, limit, json } => {
            let store =
                switchboard::store::Store::open(&settings.database.url, 1, clock::system()).await?;
            if let Some(id) = retry {
                let item = store.retry_dead_letter(&id).await?;
                writeln!(
                    stdout,
                    "dead letter {} ({} {}) handed back to {}; a running `switchboard run` processes it within seconds",
                    item.id, item.channel, item.kind, item.channel
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let letters = store.dead_letters(limit).await?;
            if json {
                let rows: Vec<serde_json::Value> = letters
                    .iter()
                    .map(|l| {
                        serde_json::json!({
                            "id": l.id, "channel": l.channel, "kind": l.kind, "key": l.key,
                            "attempts": l.attempts, "error": l.error, "payload": l.payload,
                            "created_at": l.created_at, "updated_at": l.updated_at,
                        })
                    })
                    .collect();
                writeln!(stdout, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else if letters.is_empty() {
                writeln!(stdout, "no dead letters")?;
            } else {
                for l in &letters {
                    let when = chrono::DateTime::from_timestamp_millis(l.updated_at)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let error: String =
                        l.error.as_deref().unwrap_or("").chars().take(120).collect();
                    writeln!(
                        stdout,
                        "{}  {when}  {} {} {}  attempts {}  {}",
                        l.id,
                        l.channel,
                        l.kind,
                        l.key,
                        l.attempts,
                        error.escape_debug()
                    )?;
                }
                writeln!(
                    stdout,
                    "retry one with: switchboard dead-letters --retry ID"
                )?;
            }
        }
        Command::Migrate => {
            let store =
                switchboard::store::Store::connect(&settings.database.url, 1, clock::system())
                    .await?;
            store.migrate().await.context("applying migrations")?;
            eprintln!("database is up to date");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A scratch folder for an index that is thrown away afterwards.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("switchboard-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn since_millis(since: Option<&str>, core: &Core) -> Result<Option<i64>> {
    match since {
        None => Ok(None),
        Some(text) => {
            let ms = report::parse_duration(text).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            Ok(Some(core.store.now() - ms))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
