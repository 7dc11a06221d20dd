#![allow(dead_code)] // Shared by several test crates; each uses part of it.
//! The one test harness: a scratch deployment (knowledge base, prompts, a
//! fresh database), the fakes a test asks for, the app started on port 0,
//! and handles that run its background work on demand.
//!
//! ```ignore
//! let t = spawn_app(Options::new().telegram().settings("[csat]\ndelay_secs = 0")).await;
//! t.telegram().push(update);
//! t.surveys_tick().await;          // instead of waiting for the scheduler
//! t.stop().await;
//! ```
//!
//! Background loops (surveys, outbox, inbound replay, the desk's timer) run
//! once when the app starts and then only every [`MANUAL_SECS`]; crash
//! recovery and the process's beat (which takes over what gone processes
//! left) wait that long before their first pass, so a test that needs one
//! calls its handle rather than sleeping for a period; an open widget
//! event stream reads its mailbox without a bell only that often too;
//! [`Options::background`] keeps the production periods.

pub mod console;
pub use switchboard_fakes::{discord_fake, openai_fake, telegram_fake};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard::app::{App, Core};
use switchboard::clock::{Millis, SharedClock, system};
use switchboard::config::Settings;
use switchboard::csat::Tick;

/// A terminal that keeps what is written to it (the console channel's
/// output in tests).
#[derive(Clone, Default)]
pub struct Screen(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Screen {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl std::io::Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port free on 127.0.0.1 now, for a process the test starts and must
/// then reach (taken again by the time it binds only by bad luck).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The refunds article every test knowledge base starts with.
pub const REFUNDS: &str = "---\ntitle: Refunds\nurl: https://help.example/refunds\ntags: [billing]\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within 14 days of the charge. Refunds reach your card in 5–10 business days.\n";
/// Its path in the knowledge base (slug `billing/refunds`).
pub const REFUNDS_PATH: &str = "billing/refunds.md";
/// A second article, so that retrieval has something to tell apart.
pub const PASSWORD: &str = "# Reset your password\n\n## Forgot password\nTo reset a forgotten password, click \"Forgot password\" on the sign-in page and follow the email link.\n";
/// Its path in the knowledge base (slug `password`).
pub const PASSWORD_PATH: &str = "password.md";

/// The period of every background loop unless [`Options::background`]:
/// longer than any test, so only the pass at start-up and the handles run.
pub const MANUAL_SECS: u64 = 3_600;

/// How long a wait for a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The prompts shipped with Switchboard.
pub fn prompts_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/prompts")
}

/// Writes the fixture knowledge base ([`REFUNDS`] and [`PASSWORD`]) under
/// `root`.
pub fn write_fixture_kb(root: &Path) {
    write_article(root, REFUNDS_PATH, REFUNDS);
    write_article(root, PASSWORD_PATH, PASSWORD);
}

/// Writes one article (creating its folders).
pub fn write_article(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("kb folder");
    std::fs::write(path, text).expect("article");
}

/// Which knowledge base the deployment has.
#[derive(Clone, Debug, Default)]
pub enum Kb {
    /// [`REFUNDS`] and [`PASSWORD`] plus [`Options::article`]s.
    #[default]
    Fixture,
    /// Only the [`Options::article`]s.
    Empty,
    /// The knowledge base bundled with Switchboard (`knowledge-base/`).
    Bundled,
}

/// What to start.
#[derive(Clone, Default)]
pub struct Options {
    settings: Vec<String>,
    telegram: bool,
    discord: bool,
    openai: bool,
    llm: Option<String>,
    web: Option<bool>,
    clock: Option<SharedClock>,
    postgres: bool,
    kb: Kb,
    articles: Vec<(String, String)>,
    background: bool,
}

impl Options {
    /// SQLite, the fixture knowledge base, the web server on port 0, no
    /// channel fakes, no model (extractive answers), the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// TOML merged over the harness's settings: tables merge key by key,
    /// anything else (values, arrays such as `[[agents]]`) replaces. Several
    /// calls merge in order.
    pub fn settings(mut self, toml: impl Into<String>) -> Self {
        self.settings.push(toml.into());
        self
    }

    /// Starts the Telegram fake and enables the Telegram channel.
    pub fn telegram(mut self) -> Self {
        self.telegram = true;
        self
    }

    /// Starts the Discord fake and enables the Discord channel (help
    /// channels, staff channel and guild from [`discord_ids`]); the app is
    /// returned once its gateway session is live.
    pub fn discord(mut self) -> Self {
        self.discord = true;
        self
    }

    /// Starts the OpenAI fake and answers through it ([`TestApp::openai`]).
    pub fn openai(mut self) -> Self {
        self.openai = true;
        self
    }

    /// Answers through the OpenAI-compatible server at `base_url`.
    pub fn llm(mut self, base_url: impl Into<String>) -> Self {
        self.llm = Some(base_url.into());
        self
    }

    /// Answers through `base_url` when `Some`, extractively otherwise.
    pub fn llm_opt(mut self, base_url: Option<String>) -> Self {
        self.llm = base_url;
        self
    }

    /// Without the HTTP server (`web.enabled = false`).
    pub fn no_web(mut self) -> Self {
        self.web = Some(false);
        self
    }

    /// An injected clock instead of the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A fresh PostgreSQL database (dropped by [`TestApp::stop`] or
    /// [`Deployment::finish`]) instead of a SQLite file. Needs
    /// `SWITCHBOARD_TEST_POSTGRES_URL`: mark such tests
    /// `#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]`.
    pub fn postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    /// Which knowledge base (default: the fixture).
    pub fn kb(mut self, kb: Kb) -> Self {
        self.kb = kb;
        self
    }

    /// One more article at `rel` (or one that replaces the fixture's).
    pub fn article(mut self, rel: &str, text: &str) -> Self {
        self.articles.push((rel.into(), text.into()));
        self
    }

    /// Background loops at their production periods (not on demand).
    pub fn background(mut self) -> Self {
        self.background = true;
        self
    }
}

/// The Discord ids [`Options::discord`] configures.
pub mod discord_ids {
    /// The guild.
    pub const GUILD: u64 = 1;
    /// A help channel (every message answered in a thread).
    pub const HELP: u64 = 200;
    /// A help forum.
    pub const FORUM: u64 = 201;
    /// The staff channel.
    pub const AGENTS: u64 = 300;
}

/// A scratch deployment: a folder with the knowledge base and the index,
/// and a fresh database. Cheap to clone; outlives the apps started on it
/// (restarts), and is removed with its last clone.
#[derive(Clone)]
pub struct Deployment(Arc<Scratch>);

/// What a [`Deployment`] holds.
pub struct Scratch {
    dir: tempfile::TempDir,
    db_url: String,
    pg: tokio::sync::Mutex<Option<FreshPostgres>>,
    kb: PathBuf,
}

impl std::ops::Deref for Deployment {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Deployment {
    /// A folder with the knowledge base `options` asks for and a fresh
    /// database.
    pub async fn new(options: &Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kb = match options.kb {
            Kb::Bundled => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge-base")),
            Kb::Fixture | Kb::Empty => dir.path().join("kb"),
        };
        if !matches!(options.kb, Kb::Bundled) {
            std::fs::create_dir_all(&kb).expect("kb folder");
            if matches!(options.kb, Kb::Fixture) {
                write_fixture_kb(&kb);
            }
            for (rel, text) in &options.articles {
                write_article(&kb, rel, text);
            }
        }
        let (db_url, pg) = if options.postgres {
            let pg = FreshPostgres::create("sb_test").await;
            (pg.url.clone(), Some(pg))
        } else {
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, None)
        };
        Self(Arc::new(Scratch {
            dir,
            db_url,
            pg: tokio::sync::Mutex::new(pg),
            kb,
        }))
    }

    /// `database.url`.
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// The deployment's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The knowledge-base folder.
    pub fn kb_path(&self) -> &Path {
        &self.kb
    }

    /// The settings for `options` (without fakes: `telegram_api` and
    /// `discord_api` are their URLs when started).
    pub fn settings(&self, options: &Options) -> Settings {
        self.settings_with(options, None, None, None)
    }

    fn settings_with(
        &self,
        options: &Options,
        telegram_api: Option<&str>,
        discord_api: Option<&str>,
        llm: Option<&str>,
    ) -> Settings {
        let period = |production: u64| {
            if options.background {
                production
            } else {
                MANUAL_SECS
            }
        };
        let mut base = format!(
            r#"
[database]
url = "{db}"
outbox_retry_secs = {outbox}
inbound_retry_secs = {inbound}
heartbeat_secs = {beat}
[knowledge_base]
path = "{kb}"
index_path = "{index}"
watch = false
[prompts]
path = "{prompts}"
[web]
enabled = {web}
listen = "127.0.0.1:0"
stream_check_secs = {stream_check}
[assistant]
recovery_delay_secs = {recovery}
[handoff]
desk_sync_secs = {desk}
[csat]
tick_secs = {surveys}
"#,
            db = self.db_url,
            outbox = period(2),
            inbound = period(5),
            beat = period(5),
            kb = self.kb.display(),
            index = self.dir.path().join("index").display(),
            prompts = prompts_dir(),
            web = options.web.unwrap_or(true),
            recovery = period(3),
            desk = period(1),
            surveys = period(5),
            stream_check = period(15),
        );
        if let Some(api) = telegram_api {
            base.push_str(&format!(
                "[telegram]\nenabled = true\napi_url = \"{api}\"\ntoken = \"{}\"\n",
                telegram_fake::TOKEN
            ));
        }
        if let Some(api) = discord_api {
            use discord_ids::*;
            base.push_str(&format!(
                "[discord]\nenabled = true\napi_url = \"{api}\"\ntoken = \"{}\"\nguild_id = {GUILD}\nhelp_channel_ids = [{HELP}, {FORUM}]\nagents_channel_id = {AGENTS}\n",
                discord_fake::TOKEN
            ));
        }
        if let Some(base_url) = llm.or(options.llm.as_deref()) {
            base.push_str(&format!(
                "[llm]\nbase_url = \"{base_url}\"\nmodel = \"gpt-test\"\ntimeout_secs = 5\n"
            ));
        }
        let mut table: toml::Table = base.parse().expect("harness settings");
        for extra in &options.settings {
            let extra: toml::Table = extra
                .parse()
                .unwrap_or_else(|e| panic!("Options::settings is not TOML: {e}\n{extra}"));
            merge(&mut table, extra);
        }
        let text = toml::to_string(&table).expect("settings serialise");
        Settings::from_toml_str(&text).unwrap_or_else(|e| panic!("settings: {e}\n{text}"))
    }

    /// Builds the core only (no channels, no server, no loops).
    pub async fn core(&self, options: &Options) -> Core {
        let clock = options.clock.clone().unwrap_or_else(system);
        Core::build(self.settings(options), clock, &|_, _| {})
            .await
            .expect("core builds")
    }

    /// Drops the PostgreSQL database, if any (every app and core on it must
    /// be stopped).
    pub async fn finish(&self) {
        if let Some(pg) = self.pg.lock().await.take() {
            pg.drop().await;
        }
    }
}

/// Merges `extra` into `base`: tables key by key, anything else replaces.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A running app, its fakes and its deployment.
pub struct TestApp {
    /// The channel-independent core (store, assistant, desk, surveys…).
    pub core: Core,
    /// `http://127.0.0.1:PORT` of the web server, when enabled.
    pub base: Option<String>,
    /// `http://…` of `web.admin_listen`, when set.
    pub admin: Option<String>,
    telegram: Option<Arc<telegram_fake::Fake>>,
    discord: Option<discord_fake::FakeDiscord>,
    openai: Option<Arc<openai_fake::Fake>>,
    /// Store time when the app started: what crash recovery looks before.
    pub started: Millis,
    deployment: Deployment,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the app `options` describe on a fresh deployment.
pub async fn spawn_app(options: Options) -> TestApp {
    let deployment = Deployment::new(&options).await;
    spawn_on(deployment, options).await
}

/// Starts the app `options` describe on `deployment` (a restart).
pub async fn spawn_on(deployment: Deployment, options: Options) -> TestApp {
    try_spawn_on(deployment, options)
        .await
        .unwrap_or_else(|(e, _)| panic!("app builds: {e}"))
}

/// [`spawn_on`], returning the start-up error (and the deployment) when
/// the app does not build.
pub async fn try_spawn_on(
    deployment: Deployment,
    options: Options,
) -> Result<TestApp, (switchboard::app::Error, Deployment)> {
    let telegram = match options.telegram {
        true => Some(telegram_fake::start().await),
        false => None,
    };
    let discord = match options.discord {
        true => Some(discord_fake::FakeDiscord::start().await),
        false => None,
    };
    let openai = match options.openai {
        true => Some(openai_fake::start().await),
        false => None,
    };
    let settings = deployment.settings_with(
        &options,
        telegram.as_ref().map(|(_, api)| api.as_str()),
        discord.as_ref().map(|d| d.url.as_str()),
        openai.as_ref().map(|(_, base)| base.as_str()),
    );
    let clock = options.clock.clone().unwrap_or_else(system);
    let app = match App::build(settings, clock).await {
        Ok(app) => app,
        Err(e) => return Err((e, deployment)),
    };
    let core = app.core().clone();
    let started = core.store.now();
    let base = app.local_addr().map(|a| format!("http://{a}"));
    let admin = app.admin_addr().map(|a| format!("http://{a}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("app runs");
    });
    if let Some(discord) = &discord {
        discord.wait_ready(DEADLINE).await;
    }
    Ok(TestApp {
        core,
        base,
        admin,
        telegram: telegram.map(|(fake, _)| fake),
        discord,
        openai: openai.map(|(fake, _)| fake),
        started,
        deployment,
        stop,
        task,
    })
}

impl TestApp {
    /// The web server's base URL (panics when `web.enabled = false`).
    pub fn base(&self) -> &str {
        self.base.as_deref().expect("the web server is enabled")
    }

    /// The Telegram fake ([`Options::telegram`]).
    pub fn telegram(&self) -> &telegram_fake::Fake {
        self.telegram.as_deref().expect("Options::telegram")
    }

    /// The Discord fake ([`Options::discord`]).
    pub fn discord(&self) -> &discord_fake::FakeDiscord {
        self.discord.as_ref().expect("Options::discord")
    }

    /// The OpenAI fake ([`Options::openai`]).
    pub fn openai(&self) -> &Arc<openai_fake::Fake> {
        self.openai.as_ref().expect("Options::openai")
    }

    /// The deployment (folder, knowledge base, database).
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// One pass of the survey scheduler: resolves inactive conversations,
    /// sends due surveys.
    pub async fn surveys_tick(&self) -> Tick {
        self.core.surveys.tick().await.expect("survey tick")
    }

    /// One pass over the outbox; returns how many messages were delivered.
    pub async fn outbox_retry_once(&self) -> usize {
        switchboard::delivery::retry_outbox_once(&self.core.registry, &self.core.store)
            .await
            .expect("outbox pass")
    }

    /// Messages waiting in the outbox for a retry.
    pub async fn outbox_pending(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(self.core.store.pool())
            .await
            .expect("outbox count")
    }

    /// One pass of the desk: cards, forwarded messages, re-pings.
    pub async fn desk_sync_once(&self) {
        self.core.desk.sync_once().await.expect("desk pass");
    }

    /// One pass over kept inputs; returns how many were replayed.
    pub async fn inbound_once(&self) -> usize {
        self.core.inbound.run_once().await.expect("inbound pass")
    }

    /// Crash recovery: answers what was stored before this run started and
    /// never answered; returns how many.
    pub async fn recover_once(&self) -> usize {
        self.core
            .assistant
            .answer_pending(&self.core.registry, 3_600_000, self.started)
            .await
            .expect("recovery pass")
    }

    /// Waits until every input so far is processed: the Telegram fake has
    /// no unconfirmed update, no kept input is pending, and no customer
    /// message of a bot conversation is waiting for its answer.
    pub async fn settled(&self) {
        let store = self.core.store.clone();
        let telegram = self.telegram.clone();
        wait_for_async("every input processed", || {
            let store = store.clone();
            let telegram = telegram.clone();
            async move {
                if telegram.is_some_and(|t| !t.unconfirmed().is_empty()) {
                    return false;
                }
                let pending: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM inbound WHERE status = 'pending'")
                        .fetch_one(store.pool())
                        .await
                        .expect("inbound count");
                pending == 0
                    && store
                        .unanswered(0, Millis::MAX)
                        .await
                        .expect("unanswered")
                        .is_empty()
            }
        })
        .await;
    }

    /// Stops the app and returns its deployment (for a restart with
    /// [`spawn_on`]).
    pub async fn shutdown(self) -> Deployment {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.deployment
    }

    /// Stops the app; drops its PostgreSQL database unless the deployment
    /// is still used elsewhere.
    pub async fn stop(self) {
        let deployment = self.shutdown().await;
        if Arc::strong_count(&deployment.0) == 1 {
            deployment.finish().await;
        }
    }
}

/// Polls `condition` until it holds; fails the test after [`DEADLINE`].
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for_async(what, || std::future::ready(condition())).await;
}

/// [`wait_for`] with an async condition.
pub async fn wait_for_async<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `probe` until it returns `Some`; fails the test after
/// [`DEADLINE`].
pub async fn wait_for_value<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `SWITCHBOARD_TEST_POSTGRES_URL` a test marked
/// `#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]` needs.
pub fn postgres_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").expect(
        "SWITCHBOARD_TEST_POSTGRES_URL is not set: this test needs PostgreSQL \
         (e.g. postgres://postgres@127.0.0.1:5432/test)",
    )
}

/// A fresh PostgreSQL database on the server `SWITCHBOARD_TEST_POSTGRES_URL`
/// names; [`FreshPostgres::drop`] removes it.
pub struct FreshPostgres {
    /// Its URL.
    pub url: String,
    admin: String,
    name: String,
}

impl FreshPostgres {
    /// Creates `<prefix>_<random>`.
    pub async fn create(prefix: &str) -> Self {
        use sqlx::Connection;
        let admin = postgres_url();
        sqlx::any::install_default_drivers();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .expect("PostgreSQL answers at SWITCHBOARD_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (server, _) = admin
            .rsplit_once('/')
            .expect("SWITCHBOARD_TEST_POSTGRES_URL ends with a database name");
        Self {
            url: format!("{server}/{name}"),
            admin,
            name,
        }
    }

    /// Drops the database (closing what is still connected).
    pub async fn drop(self) {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&self.admin)
            .await
            .expect("PostgreSQL answers");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop database");
    }
}
