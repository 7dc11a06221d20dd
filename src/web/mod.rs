//! The HTTP server's router: health, metrics, and (with later channels) the
//! chat widget, agent API and webhooks.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::assistant::Assistant;

mod agent;
mod chat;

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
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/agent", agent::routes())
        .merge(chat::routes())
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // Serving means: the database answers and every enabled channel runs.
    if let Err(e) = match state.assistant.store().status("healthz-probe").await {
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
