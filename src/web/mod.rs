//! The HTTP server: routers, limits, security headers and serving.
//!
//! Two routers: the public one (`/healthz`, the chat page and its API,
//! webhooks) and the admin one (`/metrics`, the agent console and API).
//! They share one listener unless `web.admin_listen` is set.
//!
//! Every response carries a Content-Security-Policy without inline script
//! (`frame-ancestors` from `web.allowed_origins`), `X-Content-Type-Options:
//! nosniff` and a Referrer-Policy. The chat API and pages are limited per
//! IP address, the agent API separately (tower_governor, 429 with a JSON
//! error); request bodies are capped at `web.max_body_bytes`. The chat API
//! answers cross-origin requests (CORS) from `web.allowed_origins` only.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use governor::middleware::NoOpMiddleware;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::assistant::Assistant;
use crate::config::WebSettings;
use crate::limits::LogOnce;

mod agent;
mod chat;
mod console;
mod dashboard;
pub mod embed;
mod inbox;
pub mod kb_editor;
mod kb_history;
pub mod live;
pub mod markdown;
pub mod serve;
pub mod settings;
mod shown;
mod suggestions;
mod svg;
pub mod visitor;

pub use chat::InFlight;
pub use embed::Pages;
pub use visitor::Visitors;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub assistant: Assistant,
    /// The agents' desk (agent API).
    pub desk: crate::desk::Desk,
    /// Channel states (`/healthz`).
    pub health: crate::health::Health,
    /// Dead letters (a request whose handler panicked).
    pub inbound: crate::inbound::Inbound,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Refused agent-API tokens, logged once per address per minute.
    pub auth_log: Arc<LogOnce>,
    /// Widget answers being made, by client message id.
    pub answers: InFlight,
    /// Console sign-in.
    pub auth: crate::auth::ConsoleAuth,
    /// Whether the session cookie is marked `Secure` (`web.cookie_secure`).
    pub cookie_secure: bool,
    /// Signs and checks widget visitor tokens.
    pub visitors: Visitors,
    /// The chat pages and the embed script.
    pub pages: Arc<Pages>,
    /// Live events of widget sessions (the event stream).
    pub live: crate::channels::live::Live,
    /// The widget channel (on the channel driver).
    pub web: crate::channels::web::Web,
    /// What the admin settings view shows of the settings (no secrets).
    pub settings: Arc<serde_json::Value>,
}

/// The public routes: health, the chat page and API.
pub fn public_router(state: Arc<AppState>, web: &WebSettings) -> Router {
    let chat = chat::routes()
        .merge(live::routes())
        .merge(embed::routes())
        .layer(cors(web))
        .layer(per_ip(web.ip_requests_per_minute, web.ip_burst))
        .with_state(state.clone());
    let health = Router::new()
        .route("/healthz", get(healthz))
        .with_state(state);
    finish(health.merge(chat), web)
}

/// The admin routes: metrics, the agent console page and the agent API.
pub fn admin_router(state: Arc<AppState>, web: &WebSettings) -> Router {
    let agent = Router::new()
        .nest("/api/agent", agent::routes())
        .nest("/api/admin/kb", kb_editor::routes())
        .nest("/api/admin/dashboard", dashboard::routes())
        .nest("/api/admin/suggestions", suggestions::admin_routes())
        .nest("/api/admin/settings", settings::routes())
        .layer(per_ip(web.agent_requests_per_minute, web.agent_burst))
        .with_state(state.clone());
    // The console page and its scripts are served from memory and not
    // counted: a busy console (or several agents behind one address) must
    // not get its own page refused, half loaded, by the API's limit.
    let page = chat::console_routes()
        .merge(console::routes())
        .with_state(state.clone());
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    finish(metrics.merge(agent).merge(page), web)
}

/// Every route on one listener.
pub fn router(state: Arc<AppState>, web: &WebSettings) -> Router {
    public_router(state.clone(), web).merge(admin_router(state, web))
}

/// Body limit, security headers and request tracing for every response
/// of `router` (also for routers merged in from elsewhere, as webhooks).
pub fn finish(router: Router, web: &WebSettings) -> Router {
    secure(router, web)
        .layer(DefaultBodyLimit::max(web.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Adds the security headers of `web` to every response of `router`.
fn secure(router: Router, web: &WebSettings) -> Router {
    let mut ancestors = String::from("'self'");
    for origin in &web.allowed_origins {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors {ancestors}"
    );
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
        "default-src 'self'; frame-ancestors 'self'",
    ));
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
}

/// Cross-origin requests to the chat API from the sites allowed to embed
/// the widget (none when `web.allowed_origins` is empty).
fn cors(web: &WebSettings) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    let origins: Vec<HeaderValue> = web
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static(chat::TOKEN_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}

type PerIp = GovernorLayer<PeerIpKeyExtractor, NoOpMiddleware, axum::body::Body>;

/// A per-IP limit of `per_minute` requests after a burst of `burst`,
/// answering 429 with a JSON error and `Retry-After`. Addresses not seen
/// for a while are forgotten by a background task that ends with the
/// limit.
fn per_ip(per_minute: u32, burst: u32) -> PerIp {
    let period = Duration::from_secs(60) / per_minute.max(1);
    let config: Arc<GovernorConfig<PeerIpKeyExtractor, NoOpMiddleware>> = Arc::new(
        GovernorConfigBuilder::default()
            .period(period.max(Duration::from_nanos(1)))
            .burst_size(burst.max(1))
            .finish()
            .unwrap_or_default(),
    );
    forget_idle(Arc::downgrade(&config));
    GovernorLayer::new(config).error_handler(|e| {
        let (status, retry, message) = match e {
            tower_governor::GovernorError::TooManyRequests { wait_time, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                wait_time.max(1),
                "too many requests from your address; please wait a moment and try again",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                1,
                "something went wrong on our side; please try again",
            ),
        };
        metrics::counter!("switchboard_limited_total", "limit" => "per_ip").increment(1);
        (
            status,
            [(header::RETRY_AFTER, retry.to_string())],
            axum::Json(serde_json::json!({"error": message})),
        )
            .into_response()
    })
}

fn forget_idle(config: Weak<GovernorConfig<PeerIpKeyExtractor, NoOpMiddleware>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(config) = config.upgrade() else {
                return;
            };
            config.limiter().retain_recent();
        }
    });
}

/// The peer address of a request, for logs (`unknown` when served
/// without one, as in router tests).
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Runs the Prometheus recorder's upkeep (histogram buckets are drained
/// and idle series forgotten) every few seconds until `stop`.
pub async fn metrics_upkeep(handle: PrometheusHandle, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // Serving means: the database answers and every enabled channel runs.
    if let Err(e) = match state
        .assistant
        .store()
        .status(&"healthz-probe".into())
        .await
    {
        Ok(_) | Err(crate::store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    } {
        tracing::error!("health check: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable\n".to_string(),
        );
    }
    let down = state.health.down();
    if down.is_empty() {
        return (StatusCode::OK, "ok\n".to_string());
    }
    let lines: String = down
        .iter()
        .map(|(channel, why)| format!("channel {channel} is down: {why}\n"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, lines)
}

/// A handler panicked: counted as a dead letter, answered with a 500.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!("an HTTP handler panicked: {message}");
    metrics::counter!("switchboard_dead_letters_total", "channel" => "http").increment(1);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(
            serde_json::json!({"error": "something went wrong on our side; please try again"}),
        ),
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let kb = state.assistant.kb();
    let mut body = state.metrics.render();
    body.push_str(&format!(
        "# TYPE switchboard_kb_articles gauge\nswitchboard_kb_articles {}\n# TYPE switchboard_kb_passages gauge\nswitchboard_kb_passages {}\n",
        kb.articles().len(),
        kb.passages()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
