//! The console's scripts beyond sign-in (served from the binary; the page
//! itself, `agent.js` and `agent.css` are served with the chat pages):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /static/console/inbox.js` | the inbox: tabs, search, conversation view, actions |
//! | `GET /static/console/kb.js` | the knowledge-base editor (admins) |
//! | `GET /static/console/dashboard.js` | the dashboard (admins) |
//! | `GET /static/console/gaps.js` | the knowledge-gap page (admins) |
//! | `GET /static/console/suggestions.js` | the suggested articles' review queue (admins) |
//! | `GET /static/console/settings.js` | the settings view (admins) |

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const INBOX_JS: &str = include_str!("static/console/inbox.js");
const KB_JS: &str = include_str!("static/console/kb.js");
const DASHBOARD_JS: &str = include_str!("static/console/dashboard.js");
const GAPS_JS: &str = include_str!("static/console/gaps.js");
const SUGGESTIONS_JS: &str = include_str!("static/console/suggestions.js");
const SETTINGS_JS: &str = include_str!("static/console/settings.js");

/// The console's script routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/static/console/inbox.js",
            get(|| async { script(INBOX_JS) }),
        )
        .route("/static/console/kb.js", get(|| async { script(KB_JS) }))
        .route(
            "/static/console/dashboard.js",
            get(|| async { script(DASHBOARD_JS) }),
        )
        .route("/static/console/gaps.js", get(|| async { script(GAPS_JS) }))
        .route(
            "/static/console/suggestions.js",
            get(|| async { script(SUGGESTIONS_JS) }),
        )
        .route(
            "/static/console/settings.js",
            get(|| async { script(SETTINGS_JS) }),
        )
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
