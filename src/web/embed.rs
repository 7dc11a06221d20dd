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
//! script), HTML-escaped: among them the fixed texts in other languages
//! (`data-texts`, JSON), which the chat script applies for the language
//! the embed script's `data-lang` names (`/embed?lang=`) or the browser's.
//! The logo (`widget.logo`) is read at start and served at `/static/logo`.

use std::path::PathBuf;
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

/// Largest logo accepted, in bytes.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

/// The logo could not be used.
#[derive(Debug, thiserror::Error)]
#[error("widget.logo {}: {why}", path.display())]
pub struct Error {
    path: PathBuf,
    why: String,
}

/// The chat pages and the loader script, rendered from settings.
#[derive(Debug, Clone)]
pub struct Pages {
    standalone: String,
    embedded: String,
    loader: String,
    /// Content type and bytes.
    logo: Option<(&'static str, Vec<u8>)>,
}

/// The logo file at `path`: its content type (by extension) and bytes.
fn read_logo(path: &std::path::Path) -> Result<(&'static str, Vec<u8>), Error> {
    let fail = |why: String| Error {
        path: path.to_path_buf(),
        why,
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => return Err(fail("use a .png, .jpg, .gif, .webp or .svg file".into())),
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(fail(format!(
            "{} bytes; a logo may have at most {MAX_LOGO_BYTES}",
            bytes.len()
        )));
    }
    Ok((kind, bytes))
}

impl Pages {
    /// Renders the pages of `widget`; `max_chars` is the longest message
    /// the assistant accepts (the input's limit and counter).
    ///
    /// # Errors
    /// When `widget.logo` cannot be read or is not an image file.
    pub fn new(widget: &WidgetSettings, max_chars: usize) -> Result<Self, Error> {
        let logo = widget.logo.as_deref().map(read_logo).transpose()?;
        let logo_tag = match &logo {
            Some(_) => r#"<img id="logo" src="/static/logo" alt="">"#,
            None => "",
        };
        let texts = serde_json::to_string(&widget.texts).unwrap_or_else(|_| "{}".into());
        let page = |mode: &str| {
            PAGE.replace("{{logo}}", logo_tag)
                .replace("{{title}}", &escape(&widget.title))
                .replace("{{mode}}", mode)
                .replace("{{greeting}}", &escape(&widget.greeting))
                .replace("{{accent}}", &escape(&widget.accent))
                .replace("{{on_accent}}", on_accent(&widget.accent))
                .replace("{{max}}", &max_chars.to_string())
                // Last: nothing in the texts is taken for a placeholder.
                .replace("{{texts}}", &escape(&texts))
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
        Ok(Self {
            standalone: page("page"),
            embedded: page("embed"),
            loader: LOADER.replace("/*CONFIG*/{}", &config),
            logo,
        })
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
            "/static/logo",
            get(|State(s): State<Arc<AppState>>| async move {
                match &s.pages.logo {
                    Some((kind, bytes)) => (
                        [
                            (header::CONTENT_TYPE, *kind),
                            (header::CACHE_CONTROL, "public, max-age=300"),
                        ],
                        bytes.clone(),
                    )
                        .into_response(),
                    None => axum::http::StatusCode::NOT_FOUND.into_response(),
                }
            }),
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

/// The text colour for `accent` (`#rgb` or `#rrggbb`): black or white,
/// whichever contrasts more by WCAG's relative luminance. One of the two
/// always reaches 4.58:1, so text on any accent meets AA (4.5:1). Anything
/// that is not such a colour gets white (the default accent's).
pub fn on_accent(accent: &str) -> &'static str {
    let Some(hex) = accent.strip_prefix('#') else {
        return "#fff";
    };
    let long: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_string(),
        _ => return "#fff",
    };
    let mut channels = [0f64; 3];
    for (i, c) in channels.iter_mut().enumerate() {
        let Some(Ok(v)) = long
            .get(i * 2..i * 2 + 2)
            .map(|h| u8::from_str_radix(h, 16))
        else {
            return "#fff";
        };
        let v = f64::from(v) / 255.0;
        *c = if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        };
    }
    let luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    if contrast(1.0, luminance) >= contrast(luminance, 0.0) {
        "#fff"
    } else {
        "#000"
    }
}

/// WCAG contrast ratio of two relative luminances.
fn contrast(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

#[cfg(test)]
mod contrast_tests {
    use super::*;
    use proptest::prelude::*;

    fn luminance(hex: &str) -> f64 {
        let v: Vec<f64> = (0..3)
            .map(|i| {
                let c =
                    f64::from(u8::from_str_radix(&hex[1 + i * 2..3 + i * 2], 16).unwrap()) / 255.0;
                if c <= 0.04045 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            })
            .collect();
        0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]
    }

    #[test]
    fn the_page_carries_the_text_colour_for_its_accent() {
        let light = WidgetSettings {
            accent: "#fde047".into(),
            ..WidgetSettings::default()
        };
        let pages = Pages::new(&light, 4000).unwrap();
        assert!(pages.standalone.contains(r##"data-on-accent="#000""##));
        assert!(pages.embedded.contains(r##"data-on-accent="#000""##));
        let dark = Pages::new(&WidgetSettings::default(), 4000).unwrap();
        assert!(dark.standalone.contains(r##"data-on-accent="#fff""##));
    }

    #[test]
    fn light_accents_get_black_text_dark_ones_white() {
        assert_eq!(on_accent("#1d4ed8"), "#fff");
        assert_eq!(on_accent("#0f766e"), "#fff");
        assert_eq!(on_accent("#fde047"), "#000");
        assert_eq!(on_accent("#fff"), "#000");
        assert_eq!(on_accent("#000"), "#fff");
        assert_eq!(on_accent("not a colour"), "#fff");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_accent_gets_text_that_meets_aa(rgb in any::<[u8; 3]>()) {
            let hex = format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
            let text = if on_accent(&hex) == "#fff" { 1.0 } else { 0.0 };
            prop_assert!(contrast(luminance(&hex), text) >= 4.5, "{hex}");
        }

        #[test]
        fn hostile_accents_never_panic(s in crate::hostile::text()) {
            let text = on_accent(&s);
            prop_assert!(text == "#fff" || text == "#000");
            let hashed = on_accent(&format!("#{s}"));
            prop_assert!(hashed == "#fff" || hashed == "#000");
        }
    }
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
        let pages = Pages::new(&widget, 4000).unwrap();
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

#[cfg(test)]
mod logo_and_texts {
    use super::*;

    #[test]
    fn texts_reach_the_page_escaped_and_the_logo_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.svg");
        std::fs::write(&logo, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
        let mut texts = std::collections::BTreeMap::new();
        texts.insert(
            "fr".to_string(),
            [("send".to_string(), "Envoyer \"<b>\"".to_string())].into(),
        );
        let widget = WidgetSettings {
            logo: Some(logo.clone()),
            texts,
            ..WidgetSettings::default()
        };
        let pages = Pages::new(&widget, 4000).unwrap();
        assert!(
            pages
                .embedded
                .contains(r#"<img id="logo" src="/static/logo" alt="">"#)
        );
        assert!(
            pages
                .embedded
                .contains("data-texts=\"{&quot;fr&quot;:{&quot;send&quot;:&quot;Envoyer \\&quot;&lt;b&gt;\\&quot;&quot;}}\""),
            "{}",
            pages.embedded
        );
        assert_eq!(pages.logo.as_ref().map(|l| l.0), Some("image/svg+xml"));

        // Not an image, too big, missing: refused with the path.
        for (name, bytes) in [
            ("logo.exe", vec![0u8; 10]),
            ("big.png", vec![0u8; MAX_LOGO_BYTES + 1]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let widget = WidgetSettings {
                logo: Some(path),
                ..WidgetSettings::default()
            };
            let e = Pages::new(&widget, 4000).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        let widget = WidgetSettings {
            logo: Some(dir.path().join("missing.png")),
            ..WidgetSettings::default()
        };
        assert!(Pages::new(&widget, 4000).is_err());
        // No logo: no image.
        let pages = Pages::new(&WidgetSettings::default(), 4000).unwrap();
        assert!(!pages.embedded.contains("<img"));
    }
}
