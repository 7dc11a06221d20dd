//! The web server's and the chat widget's settings (`[web]`, `[widget]`).

use super::*;

/// `[web]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// Whether `run` serves HTTP at all.
    pub enabled: bool,
    /// Address of the HTTP server, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Sites allowed to embed the widget in a frame (CSP `frame-ancestors`),
    /// e.g. `["https://www.example.com"]`; empty means this server only.
    pub allowed_origins: Vec<String>,
    /// A second address for `/metrics`, the agent API and the console
    /// page; unset serves them on `listen`.
    pub admin_listen: Option<String>,
    /// Open connections at most (per listener); more wait in the kernel's
    /// backlog until one closes.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests per minute one IP address may make to the public API and
    /// pages (after a burst of `ip_burst`).
    pub ip_requests_per_minute: u32,
    /// Requests one IP address may make at once before the per-minute rate
    /// applies.
    pub ip_burst: u32,
    /// As `ip_requests_per_minute`, for the agent API (counted apart).
    pub agent_requests_per_minute: u32,
    /// As `ip_burst`, for the agent API.
    pub agent_burst: u32,
    /// Anonymous web-widget hand-offs to a person per minute (the whole
    /// server); past it the customer is asked to try again shortly.
    /// 0 turns the limit off.
    pub handoffs_per_minute: u32,
    /// Whether the console's session cookie is marked `Secure` (sent over
    /// HTTPS only; browsers also send it to `http://localhost`). Turn off
    /// only for a console reached over plain HTTP on a trusted network.
    pub cookie_secure: bool,
    /// Key of the widget's visitor tokens (HMAC-SHA256); normally from
    /// `SWITCHBOARD_WEB__VISITOR_SECRET`. Unset: a key is generated once
    /// and kept in the database.
    pub visitor_secret: Option<Secret>,
    /// Widget event streams (`GET /api/chat/stream`) open at once, in all;
    /// past it widgets poll. Keep it under `max_connections`.
    pub max_streams: usize,
    /// Event streams one visitor may have open at once (tabs).
    pub max_streams_per_visitor: usize,
    /// Seconds an open event stream waits at most before reading its
    /// mailbox when no bell rang, and between keep-alive comments. Bells
    /// from other processes sharing a PostgreSQL database normally wake it
    /// at once; this is the fallback for one missed while that connection
    /// was down.
    pub stream_check_secs: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            allowed_origins: Vec::new(),
            admin_listen: None,
            max_connections: 1024,
            header_read_timeout_secs: 10,
            max_body_bytes: 64 * 1024,
            ip_requests_per_minute: 120,
            ip_burst: 40,
            agent_requests_per_minute: 600,
            agent_burst: 60,
            handoffs_per_minute: 10,
            cookie_secure: true,
            visitor_secret: None,
            max_streams: 512,
            max_streams_per_visitor: 4,
            stream_check_secs: 15,
        }
    }
}

/// `[widget]`: how the web chat looks (standalone page and embedded).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetSettings {
    /// Header of the chat panel and the page title.
    pub title: String,
    /// First message a visitor sees.
    pub greeting: String,
    /// Colour of the header, the launcher and the visitor's bubbles, as
    /// `#rgb` or `#rrggbb`.
    pub accent: String,
    /// Corner of the launcher on the host page: `right` or `left`.
    pub position: String,
    /// Text of the launcher button.
    pub launcher: String,
    /// An image file (PNG, JPEG, GIF, WebP or SVG, at most 64 KB) shown in
    /// the chat's header; read at start and served from this server.
    pub logo: Option<PathBuf>,
    /// The widget's fixed texts in other languages (or English ones
    /// replaced), by language code: `[widget.texts.fr] send = "Envoyer"`.
    /// Keys: [`WIDGET_TEXT_KEYS`]. The widget uses the language the embed
    /// script's `data-lang` names, else the browser's first language found
    /// here.
    pub texts: BTreeMap<String, BTreeMap<String, String>>,
}

/// The widget's fixed texts that `[widget.texts.LANG]` may set.
pub const WIDGET_TEXT_KEYS: &[&str] = &[
    "title",
    "greeting",
    "placeholder",
    "send",
    "your_message",
    "conversation",
    "close",
    "sending",
    "sent",
    "not_sent",
    "retry",
    "writing",
    "unreachable",
];

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            title: "Support".into(),
            greeting: "Ask anything about our product. Type /human to talk to a person.".into(),
            accent: "#1d4ed8".into(),
            position: "right".into(),
            launcher: "Chat with us".into(),
            logo: None,
            texts: BTreeMap::new(),
        }
    }
}
