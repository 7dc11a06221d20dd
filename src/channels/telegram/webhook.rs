//! The webhook endpoint: updates pushed by Telegram, checked against the
//! secret token.

use super::*;

/// The webhook endpoint, for the HTTP server.
pub fn webhook_routes(telegram: Telegram) -> axum::Router {
    use axum::http::{Extensions, HeaderMap, StatusCode};
    // Refusals are logged once per address per minute.
    let refused = std::sync::Arc::new(crate::limits::LogOnce::per_minute(crate::clock::system()));
    axum::Router::new().route(
        WEBHOOK_PATH,
        axum::routing::post(move |extensions: Extensions, headers: HeaderMap, body: axum::body::Bytes| {
            let telegram = telegram.clone();
            let refused = refused.clone();
            async move {
                let given = headers
                    .get("x-telegram-bot-api-secret-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let expected = telegram.webhook_secret().unwrap_or_default();
                if expected.is_empty() || !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                    let source = extensions
                        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
                    if let Some(held) = refused.check(&source) {
                        tracing::warn!(%source, "telegram webhook: refused a request with a wrong secret token ({held} more from this address in the last minute were not logged)");
                    }
                    return StatusCode::UNAUTHORIZED;
                }
                let update: Update = match serde_json::from_slice(&body) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!("telegram webhook: unreadable update: {e}");
                        return StatusCode::BAD_REQUEST;
                    }
                };
                match telegram.accept(update).await {
                    Ok(()) => StatusCode::OK,
                    // Not stored: Telegram will deliver it again.
                    Err(e) => {
                        tracing::error!("telegram webhook: update not stored: {e}");
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }
        }),
    )
}
