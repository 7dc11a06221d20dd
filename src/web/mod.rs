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
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // Serving means: the database answers.
    match state.assistant.store().status("healthz-probe").await {
        Ok(_) | Err(crate::store::Error::NotFound { .. }) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!("health check: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
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
