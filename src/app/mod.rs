//! Builds every part from [`Settings`] and runs them until shutdown.
//!
//! This is the one module that knows every concrete type: the store, the
//! OpenAI client, the channels and the web server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::assistant;
use crate::channels::discord::{self, Discord};
use crate::channels::telegram::{self, Telegram};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery;
use crate::embed;
use crate::kb;
use crate::store;
use crate::web;

mod core;

pub use self::core::Core;

/// A start-up failure, naming the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database.
    #[error("database: {0}")]
    Store(#[from] store::Error),
    /// The knowledge base.
    #[error("knowledge base: {0}")]
    Kb(#[from] kb::Error),
    /// The prompt templates.
    #[error("prompts: {0}")]
    Prompts(#[from] assistant::prompts::Error),
    /// The HTTP listener.
    #[error("web.listen {0}: {1}; is another process using the port?")]
    Bind(String, std::io::Error),
    /// The Telegram channel could not start.
    #[error(transparent)]
    Telegram(#[from] telegram::Error),
    /// The Discord channel could not start.
    #[error(transparent)]
    Discord(#[from] discord::Error),
    /// The embedding model could not be loaded.
    #[error("embeddings: {0}")]
    Embeddings(#[from] embed::Error),
    /// Settings that do not fit together.
    #[error("{0}")]
    Config(String),
    /// Serving failed.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// The running service: the core plus the HTTP listener.
pub struct App {
    core: Core,
    listener: Option<TcpListener>,
    admin_listener: Option<TcpListener>,
    telegram: Option<Telegram>,
    discord: Option<Discord>,
}

impl App {
    /// Builds the core and binds `web.listen` (port 0 picks a free port).
    ///
    /// # Errors
    /// As [`Core::build`], or [`Error::Bind`].
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Self, Error> {
        let listen = settings.web.listen.clone();
        let admin_listen = settings.web.admin_listen.clone();
        let enabled = settings.web.enabled;
        let telegram_settings = settings.telegram.clone();
        let discord_settings = settings.discord.clone();
        let core = Core::build(settings, clock, &|_, _| {}).await?;
        let telegram = if telegram_settings.enabled {
            let telegram = Telegram::connect(
                &telegram_settings,
                core.assistant.clone(),
                core.desk.clone(),
                core.inbound.clone(),
            )
            .await?;
            if let Some(url) = &telegram_settings.webhook_url {
                if !enabled {
                    return Err(Error::Config(
                        "telegram.webhook_url needs the HTTP server: set web.enabled = true".into(),
                    ));
                }
                telegram.set_webhook(url).await?;
            }
            Some(telegram)
        } else {
            None
        };
        let discord = if discord_settings.enabled {
            Some(
                Discord::connect(
                    &discord_settings,
                    core.assistant.clone(),
                    core.desk.clone(),
                    core.inbound.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let listener = if enabled {
            Some(
                TcpListener::bind(&listen)
                    .await
                    .map_err(|e| Error::Bind(listen.clone(), e))?,
            )
        } else {
            None
        };
        let admin_listener = match admin_listen.filter(|_| enabled) {
            Some(admin) => Some(
                TcpListener::bind(&admin)
                    .await
                    .map_err(|e| Error::Bind(admin.clone(), e))?,
            ),
            None => None,
        };
        Ok(Self {
            core,
            listener,
            admin_listener,
            telegram,
            discord,
        })
    }

    /// The bound address, if the web server is enabled.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound `web.admin_listen` address, if set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serves until `shutdown` completes, then stops every task.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let core = self.core;
        let _watch = start_hot_reload(&core);
        let mut telegram_webhook = None;
        let stop = tokio_util::sync::CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        {
            let stop = stop.clone();
            tasks.spawn(core.desk.clone().run(
                Duration::from_secs(core.settings.handoff.desk_sync_secs),
                async move { stop.cancelled().await },
            ));
        }
        {
            let stop = stop.clone();
            tasks.spawn(delivery::run_outbox(
                core.registry.clone(),
                core.store.clone(),
                Duration::from_secs(core.settings.database.outbox_retry_secs),
                async move { stop.cancelled().await },
            ));
        }
        {
            let stop = stop.clone();
            tasks.spawn(core.surveys.clone().run(
                Duration::from_secs(core.settings.csat.tick_secs),
                async move { stop.cancelled().await },
            ));
        }
        {
            let stop = stop.clone();
            tasks.spawn(core.inbound.clone().run(
                Duration::from_secs(core.settings.database.inbound_retry_secs),
                async move { stop.cancelled().await },
            ));
        }
        {
            // Widget messages kept by other processes sharing the database.
            let stop = stop.clone();
            tasks.spawn(
                core.web
                    .clone()
                    .ring_from_elsewhere(async move { stop.cancelled().await }),
            );
        }
        if let Some(telegram) = self.telegram {
            if core.settings.telegram.webhook_url.is_some() {
                telegram_webhook = Some(telegram);
            } else {
                let (health, stop) = (core.health.clone(), stop.clone());
                tasks.spawn(async move {
                    health
                        .supervise(telegram::CHANNEL, stop, |stop| {
                            let telegram = telegram.clone();
                            async move {
                                telegram
                                    .run_polling(async move { stop.cancelled().await })
                                    .await;
                                Ok(())
                            }
                        })
                        .await
                });
            }
        }
        if let Some(discord) = self.discord {
            let (health, stop) = (core.health.clone(), stop.clone());
            tasks.spawn(async move {
                health
                    .supervise(discord::CHANNEL, stop, |stop| {
                        let discord = discord.clone();
                        async move {
                            discord
                                .run(async move { stop.cancelled().await })
                                .await
                                .map_err(|e| e.to_string())
                        }
                    })
                    .await
            });
        }
        {
            // This process among those sharing the database: it beats, and
            // answers what a process that stopped beating left.
            core.store.register_instance().await?;
            let watch = crate::assistant::recovery::Watch::new(
                core.assistant.clone(),
                core.registry.clone(),
            );
            let stop = stop.clone();
            tasks.spawn(watch.run(
                Duration::from_secs(core.settings.database.heartbeat_secs),
                async move { stop.cancelled().await },
            ));
        }
        {
            // Messages stored just before a crash are answered once the
            // channels have had a moment to connect.
            let assistant = core.assistant.clone();
            let registry = core.registry.clone();
            // Only what the last run left: messages this run receives are
            // answered by their channel, not twice.
            let started = core.store.now();
            let delay = Duration::from_secs(core.settings.assistant.recovery_delay_secs);
            let stop = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(delay) => {
                        match assistant.answer_pending(&registry, crate::assistant::recovery::MAX_AGE_MS, started).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!("answered {n} message(s) left unanswered by the last run"),
                            Err(e) => tracing::warn!("answering pending messages: {e}"),
                        }
                    }
                }
            });
        }
        let visitors = match &core.settings.web.visitor_secret {
            Some(secret) => web::Visitors::new(secret.expose().as_bytes()),
            None => web::Visitors::new(
                core.store
                    .secret("web.visitor_secret", web::Visitors::generate_key)
                    .await?
                    .as_bytes(),
            ),
        };
        let metrics = crate::telemetry::metrics_handle();
        {
            let stop = stop.clone();
            tasks.spawn(web::metrics_upkeep(metrics.clone(), async move {
                stop.cancelled().await
            }));
        }
        let state = Arc::new(web::AppState {
            assistant: core.assistant.clone(),
            desk: core.desk.clone(),
            health: core.health.clone(),
            inbound: core.inbound.clone(),
            metrics,
            auth_log: Arc::new(crate::limits::LogOnce::per_minute(crate::clock::system())),
            answers: web::InFlight::default(),
            auth: crate::auth::ConsoleAuth::new(core.store.clone(), core.desk.agents().clone()),
            cookie_secure: core.settings.web.cookie_secure,
            visitors,
            live: core.live.clone(),
            web: core.web.clone(),
            settings: Arc::new(web::settings::snapshot(&core.settings)),
            pages: Arc::new(
                web::Pages::new(
                    &core.settings.widget,
                    core.settings.assistant.max_message_chars,
                )
                .map_err(|e| Error::Config(e.to_string()))?,
            ),
        });
        let web_settings = &core.settings.web;
        let limits = web::serve::Limits {
            max_connections: web_settings.max_connections,
            header_read_timeout: Duration::from_secs(web_settings.header_read_timeout_secs),
        };
        match self.listener {
            Some(listener) => {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!("serving HTTP on http://{addr}");
                }
                let mut router = match &self.admin_listener {
                    Some(_) => web::public_router(state.clone(), web_settings),
                    None => web::router(state.clone(), web_settings),
                };
                if let Some(telegram) = &telegram_webhook {
                    router = router.merge(web::finish(
                        telegram::webhook_routes(telegram.clone()),
                        web_settings,
                    ));
                }
                // The admin listener stops with the main one.
                let admin_stop = tokio_util::sync::CancellationToken::new();
                let admin = self.admin_listener.map(|admin| {
                    if let Ok(addr) = admin.local_addr() {
                        tracing::info!("serving metrics and the agent API on http://{addr}");
                    }
                    let router = web::admin_router(state.clone(), web_settings);
                    let stop = admin_stop.clone();
                    tokio::spawn(web::serve::serve(admin, router, limits, async move {
                        stop.cancelled().await
                    }))
                });
                // Event streams never end by themselves: they are ended
                // first, so that the server can drain.
                let live = core.live.clone();
                let shutdown = async move {
                    shutdown.await;
                    live.close();
                };
                let served = web::serve::serve(listener, router, limits, shutdown).await;
                admin_stop.cancel();
                if let Some(admin) = admin {
                    let _ = admin.await;
                }
                served.map_err(Error::Serve)?;
            }
            None => shutdown.await,
        }
        tracing::info!("stopping");
        core.live.close();
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        core.store.close().await;
        Ok(())
    }
}

/// Watches the knowledge base and prompts folders; returns the guards.
fn start_hot_reload(core: &Core) -> Vec<kb::watch::Watch> {
    let mut guards = Vec::new();
    if !core.settings.knowledge_base.watch {
        return guards;
    }
    let kb = core.kb.clone();
    let semantic = core.assistant.semantic().cloned();
    let runtime = tokio::runtime::Handle::current();
    match kb::watch::watch(
        &[kb.root().to_path_buf()],
        Duration::from_millis(250),
        move || match kb.reload() {
            Ok(r) if r.added + r.updated + r.removed > 0 => {
                tracing::info!(
                    added = r.added,
                    updated = r.updated,
                    removed = r.removed,
                    "knowledge base reloaded"
                );
                if let Some(semantic) = semantic.clone() {
                    let kb = kb.clone();
                    runtime.spawn(async move {
                        match semantic.sync(&kb).await {
                            Ok(n) => tracing::info!(embedded = n, "passage vectors updated"),
                            Err(e) => tracing::warn!("passage vectors not updated: {e}"),
                        }
                    });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("knowledge base reload failed: {e}"),
        },
    ) {
        Ok(w) => guards.push(w),
        Err(e) => tracing::warn!("knowledge base hot reload is off: {e}"),
    }
    let prompts = core.assistant.prompts().clone();
    match kb::watch::watch(
        &[prompts.dir().to_path_buf()],
        Duration::from_millis(250),
        move || match prompts.reload() {
            Ok(()) => tracing::info!("prompts reloaded"),
            Err(e) => tracing::error!("prompts not reloaded, keeping the previous ones: {e}"),
        },
    ) {
        Ok(w) => guards.push(w),
        Err(e) => tracing::warn!("prompt hot reload is off: {e}"),
    }
    guards
}
