//! The command line's shape (clap): commands, their arguments and flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Omnichannel AI support assistant"
)]
pub(crate) struct Cli {
    /// Configuration file [default: config.toml].
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Start everything that is enabled (HTTP, channels, hot reload).
    Run,
    /// Chat with the bot on the terminal.
    Chat,
    /// Ask one question and print the answer.
    Ask {
        /// The question.
        question: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Knowledge-base commands.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Support metrics; `report gaps` lists what the knowledge base is missing.
    Report {
        /// `gaps`: questions the bot could not answer or that got 👎, grouped by term.
        #[arg(value_enum)]
        view: Option<ReportView>,
        /// Only conversations started within this long (e.g. 24h, 7d, 30d).
        #[arg(long)]
        since: Option<String>,
        /// Only this channel (console, telegram, discord, web).
        #[arg(long)]
        channel: Option<String>,
        /// Only conversations this agent worked.
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every conversation with its messages, to stdout.
    Export {
        /// Only conversations started within this long.
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Apply database migrations.
    Migrate,
    /// Agents' console sign-in.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Inputs that were quarantined (they panicked or kept failing): list
    /// them, or hand one back to its channel with --retry.
    DeadLetters {
        /// Hand this dead letter back to its channel; a running
        /// `switchboard run` processes it within seconds.
        #[arg(long, value_name = "ID")]
        retry: Option<String>,
        /// How many to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure retrieval and hand-off decisions on a JSON Lines question set.
    Eval {
        /// Cases: {"q": "…", "gold": ["slug"], "kind": "in_scope|out_of_scope|handoff"} per line.
        file: PathBuf,
        /// Evaluate against this folder of articles instead of knowledge_base.path.
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also generate answers with the configured LLM and count those
        /// citing a gold article.
        #[arg(long)]
        answers: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum AgentsCommand {
    /// Set an agent's console password (and end their sessions). Read from
    /// the terminal, or from standard input when it is not a terminal: one
    /// line, or the same line twice.
    Passwd {
        /// The agent's `name` (in [[agents]] or added from the console).
        name: String,
    },
    /// Print an invite link with which the agent sets their own password
    /// (one use, valid 7 days; earlier links for them stop working). An
    /// unknown NAME is added as a console agent first.
    Invite {
        /// The agent's name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Add a new agent as an admin.
        #[arg(long)]
        admin: bool,
        /// Where agents reach the console, e.g. https://support.example.com
        /// (default: `web.listen`).
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum KbCommand {
    /// Rebuild the search index from the knowledge-base folder.
    Index,
    /// Ranked passages for a query.
    Search {
        /// The query (any text).
        query: String,
        /// How many passages.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List articles.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate every article; print each problem with file and line.
    Check,
    /// Add or replace an article (file and index together).
    Add {
        /// The Markdown file.
        file: PathBuf,
        /// Slug to store it under (default: the file name), e.g. billing/refunds.
        #[arg(long)]
        slug: Option<String>,
    },
    /// Remove an article (file and index together).
    Rm {
        /// The slug, as `kb list` shows it.
        slug: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportView {
    /// Knowledge gaps.
    Gaps,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    Jsonl,
    Csv,
}
