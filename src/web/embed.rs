//! The chat as a page and as a widget other sites embed.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the standalone chat page |
//! | `GET /embed` | the same chat as the panel of the embedded widget (an iframe) |
//! | `GET /widget.js` | the script a site embeds: a launcher button and the panel |
//!
//! A site embeds the widget with
//! `<script src="https://support.example/widget.js" async></script>`
//! (optional `data-position="left|right"`, `data-accent="#rrggbb"`,
//! `data-open="true"`). The script adds a launcher in a shadow root and, once
//! opened, an iframe of `/embed`: the host's CSS cannot reach the chat and
//! the chat cannot touch the host page. Framing is allowed to the sites in
//! `web.allowed_origins` (CSP `frame-ancestors`, set in [`super`]).
//!
//! The pages are rendered once at start from `[widget]`; the settings reach
//! the chat script through `data-` attributes (the CSP allows no inline
//! script), HTML-escaped.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::AppState;
use crate::config::WidgetSettings;

const PAGE: &str = include_str!("static/widget.html");
const LOADER: &str = include_str!("static/embed.js");

/// The chat pages and the loader script, rendered from settings.
#[derive(Debug, Clone)]
pub struct Pages {
    standalone: String,
    embedded: String,
    loader: String,
}

impl Pages {
    /// Renders the pages of `widget`; `max_chars` is the longest message
    /// the assistant accepts (the input's limit and counter).
    pub fn new(widget: &WidgetSettings, max_chars: usize) -> Self {
        let page = |mode: &str| {
            PAGE.replace("{{title}}", &escape(&widget.title))
                .replace("{{mode}}", mode)
                .replace("{{greeting}}", &escape(&widget.greeting))
                .replace("{{accent}}", &escape(&widget.accent))
                .replace("{{max}}", &max_chars.to_string())
        };
        // JSON is a JavaScript expression; `<` is escaped so the text can
        // never close a script element.
        let config = serde_json::json!({
            "title": widget.title,
            "accent": widget.accent,
            "position": widget.position,
            "launcher": widget.launcher,
        })
        .to_string()
        .replace('<', "\\u003c");
        Self {
            standalone: page("page"),
            embedded: page("embed"),
            loader: LOADER.replace("/*CONFIG*/{}", &config),
        }
    }
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Routes of the pages and the loader.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            get(|State(s): State<Arc<AppState>>| async move { Html(s.pages.standalone.clone()) }),
        )
        .route(
            "/embed",
            get(|State(s): State<Arc<AppState>>| async move { Html(s.pages.embedded.clone()) }),
        )
        .route(
            "/widget.js",
            get(|State(s): State<Arc<AppState>>| async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=300"),
                        // Host pages load it from their own origin.
                        (
                            header::HeaderName::from_static("cross-origin-resource-policy"),
                            "cross-origin",
                        ),
                    ],
                    s.pages.loader.clone(),
                )
                    .into_response()
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_escaped_into_the_pages_and_the_loader() {
        let widget = WidgetSettings {
            title: "Help <script>alert(1)</script>".into(),
            greeting: "Hi \"there\" & welcome".into(),
            launcher: "</script><script>alert(2)</script>".into(),
            ..WidgetSettings::default()
        };
        let pages = Pages::new(&widget, 4000);
        assert!(!pages.standalone.contains("<script>alert"));
        assert!(pages.standalone.contains("Help &lt;script&gt;"));
        assert!(
            pages
                .embedded
                .contains("data-greeting=\"Hi &quot;there&quot; &amp; welcome\"")
        );
        assert!(pages.embedded.contains("data-mode=\"embed\""));
        assert!(pages.standalone.contains("data-max=\"4000\""));
        assert!(!pages.loader.contains("</script><script>alert(2)"));
        assert!(!pages.loader.contains("/*CONFIG*/"));
        assert!(pages.loader.contains("\\u003c/script>"));
    }
}
