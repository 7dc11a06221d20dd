//! A local Discord: the REST API under `/api/v10` and a v10 JSON gateway
//! (no compression) on `ws://…/ws`, enough to drive the real serenity 0.12
//! client.
//!
//! * REST: point serenity at it with
//!   `HttpBuilder::new(TOKEN).proxy(&fake.url).ratelimiter_disabled(true)`
//!   (or [`FakeDiscord::http`]). Serenity's ratelimiter ignores the proxy,
//!   so it must be disabled. Every call is recorded ([`Recorded`]); calls to
//!   routes the fake does not know get Discord's 404 and are listed by
//!   [`FakeDiscord::unknown_routes`]. Failures can be injected with
//!   [`FakeDiscord::fail_next`].
//! * Gateway: `GET /gateway` (and `/gateway/bot`) hand out the ws URL;
//!   serenity connects to `<url>?v=10`. The fake sends HELLO, answers
//!   IDENTIFY with READY, heartbeats with ACK, RESUME with the missed events
//!   followed by RESUMED. [`FakeDiscord::dispatch`] pushes events, checking
//!   first that serenity can parse them (serenity drops events it cannot
//!   parse without telling anyone).
//! * State: the messages the bot posted (by channel, with edit history),
//!   interaction responses, typing, threads, registered commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The bot's user id.
pub const BOT_ID: u64 = 1000;
/// The application id (same as the bot's user id, as on Discord).
pub const APPLICATION_ID: u64 = 1000;
pub const BOT_NAME: &str = "switchboard";
/// Any token works; this one is what [`FakeDiscord::http`] uses.
pub const TOKEN: &str = "fake.discord.token";
/// The guild used when a builder needs one and none was given.
pub const DEFAULT_GUILD: u64 = 1;
/// HELLO's heartbeat interval.
pub const HEARTBEAT_INTERVAL_MS: u64 = 1000;
/// Ids the fake assigns (messages, threads, DM channels, commands) start here,
/// far above the small ids tests use for their own objects.
const FIRST_ID: u64 = 1_300_000_000_000_000_000;
/// Message flags.
pub const FLAG_EPHEMERAL: u64 = 1 << 6;
pub const FLAG_LOADING: u64 = 1 << 7;

/// One REST call as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// "GET", "POST", …
    pub method: String,
    /// The path without the `/api/v10` prefix, e.g. `/channels/5/messages`.
    pub path: String,
    /// The raw query string ("" if none).
    pub query: String,
    /// The JSON body; for multipart bodies, the `payload_json` part.
    /// `Null` when there was no body.
    pub body: Value,
    /// File names of multipart file parts.
    pub files: Vec<String>,
    /// The status the fake answered with.
    pub status: u16,
}

impl Recorded {
    /// `method` matches exactly and the path contains `path_contains`.
    pub fn is(&self, method: &str, path_contains: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path.contains(path_contains)
    }
}

/// A message in the fake's store: one the bot posted (channel message,
/// interaction response or follow-up), as it looks after every POST, PATCH
/// and DELETE.
#[derive(Clone, Debug)]
pub struct FakeMessage {
    pub id: u64,
    pub channel_id: u64,
    pub author_id: u64,
    /// The current text.
    pub content: String,
    /// The text as first posted.
    pub original_content: String,
    /// The text after each edit (PATCH), in order; empty if never edited.
    pub edits: Vec<String>,
    /// Current components (action rows) as sent by the bot.
    pub components: Value,
    /// Current embeds.
    pub embeds: Value,
    /// `allowed_mentions` of the last request that set it (`Null` if never).
    pub allowed_mentions: Value,
    pub flags: u64,
    /// File names of attachments.
    pub attachments: Vec<String>,
    /// `message_reference` as sent (`Null` if not a reply).
    pub message_reference: Value,
    /// Set for interaction responses and follow-ups.
    pub interaction_id: Option<u64>,
    pub deleted: bool,
    pub tts: bool,
    /// The `nonce` the bot sent with it, if any.
    pub nonce: Option<String>,
    kind: u8,
    timestamp: String,
    edited_timestamp: Option<String>,
    attachments_json: Vec<Value>,
}

impl FakeMessage {
    pub fn ephemeral(&self) -> bool {
        self.flags & FLAG_EPHEMERAL != 0
    }

    /// A deferred interaction response ("is thinking…") not yet edited.
    pub fn loading(&self) -> bool {
        self.flags & FLAG_LOADING != 0
    }

    /// Every `custom_id` in the components, in order.
    pub fn custom_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_strings(&self.components, "custom_id", &mut out);
        out
    }

    /// Every button/option `label` in the components, in order.
    pub fn labels(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_strings(&self.components, "label", &mut out);
        out
    }

    /// The message as Discord's REST API returns it (no `guild_id`).
    pub fn to_json(&self) -> Value {
        let mut m = json!({
            "id": self.id.to_string(),
            "channel_id": self.channel_id.to_string(),
            "author": bot_user_json(),
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": self.attachments_json,
            "embeds": self.embeds,
            "pinned": false,
            "type": self.kind,
            "flags": self.flags,
            "components": self.components,
        });
        if !self.message_reference.is_null() {
            let mut r = self.message_reference.clone();
            if r.get("channel_id").is_none() {
                r["channel_id"] = json!(self.channel_id.to_string());
            }
            m["message_reference"] = r;
        }
        if self.interaction_id.is_some() {
            m["webhook_id"] = json!(APPLICATION_ID.to_string());
            m["application_id"] = json!(APPLICATION_ID.to_string());
        }
        m
    }
}

fn collect_strings(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, key, out)),
        Value::Object(map) => {
            if let Some(Value::String(s)) = map.get(key) {
                out.push(s.clone());
            }
            for (k, child) in map {
                if k != key {
                    collect_strings(child, key, out);
                }
            }
        }
        _ => {}
    }
}

/// Extras for [`FakeDiscord::message_with`].
#[derive(Clone, Debug, Default)]
pub struct MessageOpts {
    /// Put the bot in `mentions` (and `<@1000> ` in front of the content
    /// unless it already mentions the bot).
    pub mention_bot: bool,
    /// Users mentioned besides the bot.
    pub mentions: Vec<u64>,
    /// Reply to this message (type 19, `message_reference`, and
    /// `referenced_message` if the fake knows the message, else `null`).
    pub reply_to: Option<u64>,
    /// Attachments: (file name, content type).
    pub attachments: Vec<(String, String)>,
    /// The author is a bot.
    pub author_bot: bool,
    /// Sent by a webhook.
    pub webhook_id: Option<u64>,
    /// Message type (default 0, or 19 for replies).
    pub kind: Option<u8>,
}

/// What the fake knows about an interaction it built.
#[derive(Clone, Debug)]
struct InteractionInfo {
    id: u64,
    token: String,
    kind: u8,
    channel_id: u64,
    /// Recorded as Discord keeps it; no test reads it yet.
    #[allow(dead_code)]
    guild_id: Option<u64>,
    /// Recorded as Discord keeps it; no test reads it yet.
    #[allow(dead_code)]
    user_id: u64,
    /// The message a component interaction came from.
    message_id: Option<u64>,
    created: Instant,
    /// Callback bodies, in order (only the first succeeds).
    callbacks: Vec<Value>,
    original: Option<u64>,
    followups: Vec<u64>,
}

struct Failure {
    path_contains: String,
    status: u16,
    remaining: usize,
    body: Option<Value>,
}

#[derive(Default)]
struct RestState {
    requests: Vec<Recorded>,
    unknown: Vec<Recorded>,
    failures: Vec<Failure>,
    /// Bot messages, in creation order.
    messages: Vec<FakeMessage>,
    /// Messages built for dispatch (users' messages), by id.
    user_messages: HashMap<u64, Value>,
    deleted_user_messages: Vec<u64>,
    /// Channel objects, by id.
    channels: HashMap<u64, Value>,
    /// Guild of channels seen in builders (`None` = DM).
    channel_guild: HashMap<u64, Option<u64>>,
    typing: HashMap<u64, usize>,
    interactions: HashMap<u64, InteractionInfo>,
    commands: Vec<Value>,
    guild_commands: HashMap<u64, Vec<Value>>,
    command_ids: HashMap<String, u64>,
    reactions: Vec<(u64, u64, String)>,
    next_id: u64,
    interaction_deadline: Option<Duration>,
}

impl RestState {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn bot_message(&mut self, id: u64) -> Option<&mut FakeMessage> {
        self.messages.iter_mut().find(|m| m.id == id)
    }

    fn message_json(&self, id: u64) -> Option<Value> {
        if let Some(m) = self.messages.iter().find(|m| m.id == id && !m.deleted) {
            return Some(m.to_json());
        }
        if self.deleted_user_messages.contains(&id) {
            return None;
        }
        self.user_messages.get(&id).cloned()
    }

    fn guild_of(&self, channel_id: u64) -> Option<u64> {
        if let Some(c) = self.channels.get(&channel_id) {
            return c["guild_id"].as_str().and_then(|g| g.parse().ok());
        }
        match self.channel_guild.get(&channel_id) {
            Some(g) => *g,
            None => Some(DEFAULT_GUILD),
        }
    }

    fn channel_json(&self, channel_id: u64) -> Value {
        if let Some(c) = self.channels.get(&channel_id) {
            return c.clone();
        }
        match self.guild_of(channel_id) {
            Some(guild) => text_channel_json(channel_id, guild),
            None => {
                let recipient = self
                    .user_messages
                    .values()
                    .find(|m| m["channel_id"] == json!(channel_id.to_string()))
                    .and_then(|m| m["author"]["id"].as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(1);
                dm_channel_json(channel_id, recipient)
            }
        }
    }

    fn record_channel_guild(&mut self, channel_id: u64, guild_id: Option<u64>) {
        self.channel_guild.entry(channel_id).or_insert(guild_id);
    }
}

enum Cmd {
    Text(String),
    Close(u16, String),
    Drop,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Cmd>,
    /// READY or RESUMED on the current session and not told to go away:
    /// dispatches go here.
    live: bool,
    /// The shard it identified as, and the bot's number of shards (`[id,
    /// count]` of IDENTIFY; `(0, 1)` without).
    shard: (u64, u64),
}

/// The shard Discord sends an event to: a guild's is `(guild_id >> 22) %
/// count`, and direct messages go to shard 0.
fn shard_of(data: &Value, count: u64) -> u64 {
    data["guild_id"]
        .as_str()
        .and_then(|g| g.parse::<u64>().ok())
        .map_or(0, |guild| (guild >> 22) % count.max(1))
}

#[derive(Default)]
struct Gateway {
    session_id: Option<String>,
    sessions: u64,
    seq: u64,
    /// (seq, frame, replay on resume)
    log: Vec<(u64, String, bool)>,
    conns: Vec<Conn>,
    next_conn: u64,
    identifies: Vec<Value>,
    resumes: usize,
    heartbeats: usize,
    no_heartbeat_ack: bool,
    queries: Vec<String>,
    ever_ready: bool,
    client_ops: Vec<Value>,
}

struct Inner {
    ws_url: String,
    rest: Mutex<RestState>,
    gw: Mutex<Gateway>,
}

impl Inner {
    fn rest(&self) -> MutexGuard<'_, RestState> {
        self.rest.lock().unwrap()
    }

    fn gw(&self) -> MutexGuard<'_, Gateway> {
        self.gw.lock().unwrap()
    }
}

/// The fake Discord. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeDiscord {
    /// `http://127.0.0.1:PORT`: serenity's proxy URL.
    pub url: String,
    /// `ws://127.0.0.1:PORT/ws`: what `GET /gateway` returns.
    pub ws_url: String,
    inner: Arc<Inner>,
}

impl FakeDiscord {
    /// Starts the fake on a free port. Bot user 1000 "switchboard",
    /// application 1000.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let ws_url = format!("ws://{addr}/ws");
        let inner = Arc::new(Inner {
            ws_url: ws_url.clone(),
            rest: Mutex::new(RestState {
                next_id: FIRST_ID,
                interaction_deadline: Some(Duration::from_secs(3)),
                ..RestState::default()
            }),
            gw: Mutex::new(Gateway::default()),
        });
        let app = Router::new()
            .route("/ws", get(ws_handler))
            .fallback(rest_handler)
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeDiscord { url, ws_url, inner }
    }

    pub fn bot_id(&self) -> u64 {
        BOT_ID
    }

    pub fn application_id(&self) -> u64 {
        APPLICATION_ID
    }

    /// A serenity `Http` that talks to the fake (proxy set, ratelimiter off,
    /// application id set).
    pub fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(&self.url)
            .ratelimiter_disabled(true)
            .application_id(serenity::model::id::ApplicationId::new(APPLICATION_ID))
            .build()
    }

    // ----------------------------------------------------------------------
    // Gateway
    // ----------------------------------------------------------------------

    /// Sends a dispatch (op 0) with the next sequence number to the live
    /// session. Panics if serenity could not parse it (it would silently
    /// drop it). Waits (up to 10 s) until a session has been READY once;
    /// while the bot is reconnecting the event is kept and replayed on
    /// RESUME, as Discord does.
    pub async fn dispatch(&self, event_name: &str, data: Value) {
        let check = json!({"t": event_name, "d": data});
        if let Err(e) = serde_json::from_value::<serenity::model::event::Event>(check) {
            panic!("serenity cannot parse this {event_name} (it would drop it): {e}\n{data:#}");
        }
        self.dispatch_raw(event_name, data).await;
    }

    /// [`Self::dispatch`] without the parse check.
    pub async fn dispatch_raw(&self, event_name: &str, data: Value) {
        self.wait_until(
            "a gateway session (READY)",
            |f| f.inner.gw().ever_ready,
            Duration::from_secs(10),
        )
        .await;
        {
            let mut rest = self.inner.rest();
            match event_name {
                "INTERACTION_CREATE" => {
                    if let Some(i) = data["id"]
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                        .and_then(|id| rest.interactions.get_mut(&id))
                    {
                        i.created = Instant::now();
                    }
                }
                "MESSAGE_CREATE" => {
                    if let Some(id) = data["id"].as_str().and_then(|s| s.parse::<u64>().ok())
                        && !rest.messages.iter().any(|m| m.id == id)
                    {
                        rest.user_messages.insert(id, data.clone());
                    }
                }
                _ => {}
            }
        }
        let mut gw = self.inner.gw();
        gw.seq += 1;
        let seq = gw.seq;
        let frame = json!({"op": 0, "s": seq, "t": event_name, "d": data}).to_string();
        gw.log.push((seq, frame.clone(), true));
        // With several shards, only the shard the event belongs to gets it.
        for c in gw
            .conns
            .iter()
            .filter(|c| c.live && shard_of(&data, c.shard.1) == c.shard.0)
        {
            let _ = c.tx.send(Cmd::Text(frame.clone()));
        }
    }

    /// Builds and dispatches a MESSAGE_CREATE.
    pub async fn dispatch_message(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        content: &str,
    ) {
        let m = self.message(id, channel_id, guild_id, author_id, content);
        self.dispatch("MESSAGE_CREATE", m).await;
    }

    /// Sends op 7 RECONNECT to the live session(s). Serenity then opens a
    /// new connection and sends RESUME; the fake replays what it missed and
    /// sends RESUMED. Events dispatched in between are held for the replay.
    /// Returns at once; see [`Self::wait_resumed`].
    pub async fn request_reconnect(&self) {
        let mut gw = self.inner.gw();
        for c in gw.conns.iter_mut().filter(|c| c.live) {
            let _ =
                c.tx.send(Cmd::Text(json!({"op": 7, "d": null}).to_string()));
            c.live = false;
        }
    }

    /// Closes every gateway socket abruptly (TCP close, no close frame).
    /// Serenity resumes.
    pub async fn drop_connection(&self) {
        let mut gw = self.inner.gw();
        for c in gw.conns.iter_mut() {
            let _ = c.tx.send(Cmd::Drop);
            c.live = false;
        }
    }

    /// Closes every gateway socket with a close frame (e.g. 4000 unknown
    /// error: serenity resumes; 4004 authentication failed: serenity gives up).
    pub async fn close_connection(&self, code: u16) {
        let mut gw = self.inner.gw();
        for c in gw.conns.iter_mut() {
            let _ = c.tx.send(Cmd::Close(code, "closed by fake".into()));
            c.live = false;
        }
    }

    /// Sends op 9 INVALID SESSION. If not `resumable` the session is
    /// forgotten and serenity has to IDENTIFY again (its shard queuer waits
    /// up to 5 s between IDENTIFYs).
    pub async fn invalidate_session(&self, resumable: bool) {
        let mut gw = self.inner.gw();
        for c in gw.conns.iter_mut().filter(|c| c.live) {
            let _ =
                c.tx.send(Cmd::Text(json!({"op": 9, "d": resumable}).to_string()));
            c.live = false;
        }
        if !resumable {
            gw.session_id = None;
        }
    }

    /// Stop (or resume) answering heartbeats: serenity treats the socket as
    /// a zombie after one unacknowledged interval and reconnects.
    pub fn set_heartbeat_ack(&self, ack: bool) {
        self.inner.gw().no_heartbeat_ack = !ack;
    }

    pub fn identify_count(&self) -> usize {
        self.inner.gw().identifies.len()
    }

    /// The `d` of every IDENTIFY (token, intents, shard, properties, …).
    pub fn identify_payloads(&self) -> Vec<Value> {
        self.inner.gw().identifies.clone()
    }

    /// The intents of the last IDENTIFY.
    pub fn intents(&self) -> Option<u64> {
        self.inner.gw().identifies.last()?["intents"].as_u64()
    }

    pub fn resume_count(&self) -> usize {
        self.inner.gw().resumes
    }

    pub fn heartbeat_count(&self) -> usize {
        self.inner.gw().heartbeats
    }

    /// Query strings of gateway connections (serenity: `v=10`).
    pub fn gateway_queries(&self) -> Vec<String> {
        self.inner.gw().queries.clone()
    }

    /// Every payload the client sent on the gateway, in order.
    pub fn gateway_client_payloads(&self) -> Vec<Value> {
        self.inner.gw().client_ops.clone()
    }

    /// Whether some connection is READY/RESUMED and receiving dispatches.
    pub fn connected(&self) -> bool {
        self.inner.gw().conns.iter().any(|c| c.live)
    }

    /// Waits until a session is READY (the first time) or live again.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_until("a live gateway session", |f| f.connected(), timeout)
            .await;
    }

    /// Waits until at least `n` RESUMEs have been answered and the session
    /// is live.
    pub async fn wait_resumed(&self, n: usize, timeout: Duration) {
        self.wait_until(
            &format!("{n} resume(s)"),
            |f| f.resume_count() >= n && f.connected(),
            timeout,
        )
        .await;
    }

    // ----------------------------------------------------------------------
    // Payload builders
    // ----------------------------------------------------------------------

    /// A MESSAGE_CREATE payload from a user. `guild_id: None` makes it a DM
    /// (and the channel a DM channel with that user).
    pub fn message(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        content: &str,
    ) -> Value {
        self.message_with(
            id,
            channel_id,
            guild_id,
            author_id,
            content,
            MessageOpts::default(),
        )
    }

    /// A guild message that mentions the bot (what a customer writes to
    /// ask it in a shared channel).
    pub fn mention(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: u64,
        author_id: u64,
        content: &str,
    ) -> Value {
        let opts = MessageOpts {
            mention_bot: true,
            ..Default::default()
        };
        self.message_with(id, channel_id, Some(guild_id), author_id, content, opts)
    }

    /// [`Self::message`] with mentions, a reply, attachments, a bot author
    /// or a webhook.
    pub fn message_with(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        content: &str,
        opts: MessageOpts,
    ) -> Value {
        let mut rest = self.inner.rest();
        rest.record_channel_guild(channel_id, guild_id);
        let mut author = user_json(author_id);
        if opts.author_bot {
            author["bot"] = json!(true);
        }
        let mut content = content.to_string();
        let mut mentions: Vec<Value> = opts.mentions.iter().map(|u| user_json(*u)).collect();
        if opts.mention_bot {
            if !content.contains(&format!("<@{BOT_ID}>")) {
                content = format!("<@{BOT_ID}> {content}");
            }
            mentions.insert(0, bot_user_json());
        }
        let attachments: Vec<Value> = opts
            .attachments
            .iter()
            .enumerate()
            .map(|(i, (name, ctype))| {
                let aid = id * 10 + i as u64 + 1;
                json!({
                    "id": aid.to_string(),
                    "filename": name,
                    "size": 1024,
                    "url": format!("https://cdn.discordapp.com/attachments/{channel_id}/{aid}/{name}"),
                    "proxy_url": format!("https://media.discordapp.net/attachments/{channel_id}/{aid}/{name}"),
                    "content_type": ctype,
                })
            })
            .collect();
        let kind = opts
            .kind
            .unwrap_or(if opts.reply_to.is_some() { 19 } else { 0 });
        let mut m = json!({
            "id": id.to_string(),
            "channel_id": channel_id.to_string(),
            "author": author,
            "content": content,
            "timestamp": now_ts(),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": false,
            "type": kind,
            "flags": 0,
            "components": [],
            "nonce": id.to_string(),
        });
        if let Some(g) = guild_id {
            m["guild_id"] = json!(g.to_string());
            if opts.webhook_id.is_none() {
                m["member"] = json!({
                    "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
                    "deaf": false, "mute": false, "flags": 0, "pending": false,
                    "nick": null, "avatar": null, "premium_since": null,
                });
            }
        }
        if let Some(w) = opts.webhook_id {
            m["webhook_id"] = json!(w.to_string());
            m["author"]["bot"] = json!(true);
        }
        if let Some(r) = opts.reply_to {
            let mut reference = json!({
                "type": 0,
                "message_id": r.to_string(),
                "channel_id": channel_id.to_string(),
            });
            if let Some(g) = guild_id {
                reference["guild_id"] = json!(g.to_string());
            }
            m["message_reference"] = reference;
            m["referenced_message"] = rest.message_json(r).unwrap_or(Value::Null);
        }
        rest.user_messages.insert(id, m.clone());
        m
    }

    /// An INTERACTION_CREATE payload for a slash command (type 2) with
    /// string options.
    pub fn command_interaction(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        user_id: u64,
        name: &str,
        options: &[(&str, &str)],
    ) -> Value {
        let opts: Vec<Value> = options
            .iter()
            .map(|(n, v)| json!({"name": n, "type": 3, "value": v}))
            .collect();
        let mut rest = self.inner.rest();
        let command_id = match rest.command_ids.get(name) {
            Some(id) => *id,
            None => {
                let id = rest.next_id();
                rest.command_ids.insert(name.to_string(), id);
                id
            }
        };
        let mut data = json!({
            "id": command_id.to_string(),
            "name": name,
            "type": 1,
            "options": opts,
        });
        if let Some(g) = guild_id {
            data["guild_id"] = json!(g.to_string());
        }
        let mut i = interaction_base(id, 2, channel_id, guild_id, user_id);
        i["data"] = data;
        rest.record_channel_guild(channel_id, guild_id);
        register_interaction(&mut rest, id, 2, channel_id, guild_id, user_id, None);
        i
    }

    /// An INTERACTION_CREATE payload for a button press (type 3) on
    /// `message_id`. If the bot posted that message (through the fake), the
    /// payload carries it as the bot sees it now, components included.
    pub fn component_interaction(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
    ) -> Value {
        self.component_interaction_with(
            id,
            channel_id,
            guild_id,
            user_id,
            message_id,
            json!({"custom_id": custom_id, "component_type": 2}),
        )
    }

    /// A select-menu choice (component type 3) on `message_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn select_interaction(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
        values: &[&str],
    ) -> Value {
        self.component_interaction_with(
            id,
            channel_id,
            guild_id,
            user_id,
            message_id,
            json!({"custom_id": custom_id, "component_type": 3, "values": values}),
        )
    }

    fn component_interaction_with(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        user_id: u64,
        message_id: u64,
        data: Value,
    ) -> Value {
        let mut rest = self.inner.rest();
        let message = rest.message_json(message_id).unwrap_or_else(|| {
            json!({
                "id": message_id.to_string(), "channel_id": channel_id.to_string(),
                "author": bot_user_json(), "content": "", "timestamp": now_ts(),
                "edited_timestamp": null, "tts": false, "mention_everyone": false,
                "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": false, "type": 0, "flags": 0, "components": [],
            })
        });
        let mut i = interaction_base(id, 3, channel_id, guild_id, user_id);
        i["data"] = data;
        i["message"] = message;
        rest.record_channel_guild(channel_id, guild_id);
        register_interaction(
            &mut rest,
            id,
            3,
            channel_id,
            guild_id,
            user_id,
            Some(message_id),
        );
        i
    }

    /// A THREAD_CREATE payload: a public thread (type 11) in a forum
    /// channel `parent_id` (registered as a forum, type 15, if unknown).
    pub fn thread_create(
        &self,
        thread_id: u64,
        parent_id: u64,
        guild_id: u64,
        owner_id: u64,
        name: &str,
    ) -> Value {
        let mut rest = self.inner.rest();
        rest.channels
            .entry(parent_id)
            .or_insert_with(|| forum_channel_json(parent_id, guild_id));
        let mut t = thread_json(thread_id, parent_id, guild_id, owner_id, name);
        rest.channels.insert(thread_id, t.clone());
        rest.channel_guild.insert(thread_id, Some(guild_id));
        t["newly_created"] = json!(true);
        t["member"] = json!({
            "id": thread_id.to_string(), "user_id": owner_id.to_string(),
            "join_timestamp": now_ts(), "flags": 1,
        });
        t
    }

    /// A forum post: (THREAD_CREATE payload, MESSAGE_CREATE payload of its
    /// first message). As on Discord, the first message has the thread's id.
    pub fn forum_post(
        &self,
        thread_id: u64,
        parent_id: u64,
        guild_id: u64,
        owner_id: u64,
        title: &str,
        content: &str,
    ) -> (Value, Value) {
        let thread = self.thread_create(thread_id, parent_id, guild_id, owner_id, title);
        let mut message = self.message(thread_id, thread_id, Some(guild_id), owner_id, content);
        message["position"] = json!(0);
        self.inner
            .rest()
            .user_messages
            .insert(thread_id, message.clone());
        (thread, message)
    }

    /// Dispatches a forum post: THREAD_CREATE, then MESSAGE_CREATE.
    pub async fn dispatch_forum_post(
        &self,
        thread_id: u64,
        parent_id: u64,
        guild_id: u64,
        owner_id: u64,
        title: &str,
        content: &str,
    ) {
        let (t, m) = self.forum_post(thread_id, parent_id, guild_id, owner_id, title, content);
        self.dispatch("THREAD_CREATE", t).await;
        self.dispatch("MESSAGE_CREATE", m).await;
    }

    /// Registers a channel object (for `GET /channels/{id}`), e.g. a forum
    /// (type 15) or a text channel with a topic. `id` and `type` required.
    pub fn add_channel(&self, channel: Value) {
        let id = channel["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| channel["id"].as_u64())
            .expect("channel needs an id");
        let mut rest = self.inner.rest();
        let guild = channel["guild_id"].as_str().and_then(|s| s.parse().ok());
        rest.channel_guild.insert(id, guild);
        rest.channels.insert(id, channel);
    }

    // ----------------------------------------------------------------------
    // REST recording and state
    // ----------------------------------------------------------------------

    /// Every REST call so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.rest().requests.clone()
    }

    /// Calls matching `method` whose path contains `path_contains`.
    pub fn requests_to(&self, method: &str, path_contains: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.is(method, path_contains))
            .collect()
    }

    /// Calls to routes the fake does not implement (answered 404).
    pub fn unknown_routes(&self) -> Vec<Recorded> {
        self.inner.rest().unknown.clone()
    }

    /// Panics if any call hit an unknown route.
    pub fn assert_no_unknown_routes(&self) {
        let unknown = self.unknown_routes();
        assert!(
            unknown.is_empty(),
            "calls to routes the fake Discord does not know: {unknown:#?}"
        );
    }

    /// Waits until a recorded call matches; panics after `timeout` with the
    /// calls seen.
    pub async fn wait_for(&self, pred: impl Fn(&Recorded) -> bool, timeout: Duration) -> Recorded {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.inner.rest().requests.iter().find(|r| pred(r)) {
                return r.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for a matching Discord call; calls: {:#?}",
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` calls match.
    pub async fn wait_for_count(
        &self,
        pred: impl Fn(&Recorded) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Recorded> = self
                .inner
                .rest()
                .requests
                .iter()
                .filter(|r| pred(r))
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {n} matching Discord calls (saw {}); calls: {:#?}",
                    found.len(),
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `check` holds; panics after `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        check: impl Fn(&FakeDiscord) -> bool,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; Discord calls: {:#?}",
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next `times` calls whose "METHOD /path" contains `path_contains`
    /// fail with `status`: 429 comes with Discord's rate-limit body
    /// (`retry_after` 0.2) and headers, others with Discord's error shape.
    pub fn fail_next(&self, path_contains: &str, status: u16, times: usize) {
        self.inner.rest().failures.push(Failure {
            path_contains: path_contains.to_string(),
            status,
            remaining: times,
            body: None,
        });
    }

    /// [`Self::fail_next`] with a given JSON body.
    pub fn fail_next_with(&self, path_contains: &str, status: u16, times: usize, body: Value) {
        self.inner.rest().failures.push(Failure {
            path_contains: path_contains.to_string(),
            status,
            remaining: times,
            body: Some(body),
        });
    }

    /// The bot's messages in a channel (not deleted), in posting order.
    /// Interaction responses and follow-ups count (in the interaction's
    /// channel).
    pub fn channel_messages(&self, channel_id: u64) -> Vec<FakeMessage> {
        self.inner
            .rest()
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id && !m.deleted)
            .cloned()
            .collect()
    }

    /// Every message the bot posted anywhere, deleted ones included.
    pub fn all_messages(&self) -> Vec<FakeMessage> {
        self.inner.rest().messages.clone()
    }

    /// A bot message by id (deleted ones included).
    pub fn message_by_id(&self, id: u64) -> Option<FakeMessage> {
        self.inner
            .rest()
            .messages
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }

    /// Ids of messages deleted in a channel (the bot's and others').
    pub fn deleted_message_ids(&self, channel_id: u64) -> Vec<u64> {
        let rest = self.inner.rest();
        let mut out: Vec<u64> = rest
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id && m.deleted)
            .map(|m| m.id)
            .collect();
        out.extend(rest.deleted_user_messages.iter().filter(|id| {
            rest.user_messages.get(id).map(|m| m["channel_id"].clone())
                == Some(json!(channel_id.to_string()))
        }));
        out
    }

    /// `POST /channels/{id}/typing` calls.
    pub fn typing_count(&self, channel_id: u64) -> usize {
        self.inner
            .rest()
            .typing
            .get(&channel_id)
            .copied()
            .unwrap_or(0)
    }

    /// Callback bodies (`{type, data}`) posted for an interaction, in order;
    /// only the first one is accepted, as on Discord.
    pub fn interaction_callbacks(&self, interaction_id: u64) -> Vec<Value> {
        self.inner
            .rest()
            .interactions
            .get(&interaction_id)
            .map(|i| i.callbacks.clone())
            .unwrap_or_default()
    }

    /// Callback types (1 pong, 4 message, 5 deferred, 6 deferred update,
    /// 7 update message, 9 modal) of an interaction, in order.
    pub fn interaction_callback_types(&self, interaction_id: u64) -> Vec<u64> {
        self.interaction_callbacks(interaction_id)
            .iter()
            .filter_map(|c| c["type"].as_u64())
            .collect()
    }

    /// The message the interaction's response shows: for types 4/5 the
    /// response message, for 6/7 the component's message.
    pub fn original_response(&self, interaction_id: u64) -> Option<FakeMessage> {
        let rest = self.inner.rest();
        let id = rest.interactions.get(&interaction_id)?.original?;
        rest.messages.iter().find(|m| m.id == id).cloned()
    }

    /// Follow-up messages of an interaction.
    pub fn followups(&self, interaction_id: u64) -> Vec<FakeMessage> {
        let rest = self.inner.rest();
        let Some(i) = rest.interactions.get(&interaction_id) else {
            return Vec::new();
        };
        i.followups
            .iter()
            .filter_map(|id| rest.messages.iter().find(|m| m.id == *id).cloned())
            .collect()
    }

    /// How long after dispatch an interaction may still get its first
    /// callback (Discord: 3 s; later ones get 404 Unknown interaction).
    /// `None` disables the check.
    pub fn set_interaction_deadline(&self, deadline: Option<Duration>) {
        self.inner.rest().interaction_deadline = deadline;
    }

    /// Commands registered globally (`PUT /applications/{app}/commands`), as
    /// returned.
    pub fn global_commands(&self) -> Vec<Value> {
        self.inner.rest().commands.clone()
    }

    /// Commands registered for a guild.
    pub fn guild_commands(&self, guild_id: u64) -> Vec<Value> {
        self.inner
            .rest()
            .guild_commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// A channel object as `GET /channels/{id}` returns it.
    pub fn channel(&self, channel_id: u64) -> Value {
        self.inner.rest().channel_json(channel_id)
    }

    /// Reactions the bot added: (channel, message, emoji as in the path).
    pub fn reactions(&self) -> Vec<(u64, u64, String)> {
        self.inner.rest().reactions.clone()
    }
}

// --------------------------------------------------------------------------
// JSON shapes
// --------------------------------------------------------------------------

fn now_ts() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// A user object (`username` "user{id}").
pub fn user_json(id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "username": format!("user{id}"),
        "discriminator": "0",
        "global_name": format!("User {id}"),
        "avatar": null,
        "bot": false,
    })
}

pub fn bot_user_json() -> Value {
    json!({
        "id": BOT_ID.to_string(),
        "username": BOT_NAME,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": true,
    })
}

fn current_user_json() -> Value {
    let mut u = bot_user_json();
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(false);
    u["flags"] = json!(0);
    u["email"] = Value::Null;
    u["locale"] = json!("en-US");
    u
}

fn member_json(user_id: u64) -> Value {
    json!({
        "user": user_json(user_id),
        "roles": [],
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "nick": null,
        "avatar": null,
        "premium_since": null,
        "permissions": "2248473465835073",
    })
}

fn text_channel_json(id: u64, guild_id: u64) -> Value {
    json!({
        "id": id.to_string(), "type": 0, "guild_id": guild_id.to_string(),
        "name": format!("channel-{id}"), "position": 0, "permission_overwrites": [],
        "nsfw": false, "topic": null, "last_message_id": null, "parent_id": null,
        "rate_limit_per_user": 0, "flags": 0,
    })
}

fn forum_channel_json(id: u64, guild_id: u64) -> Value {
    json!({
        "id": id.to_string(), "type": 15, "guild_id": guild_id.to_string(),
        "name": format!("forum-{id}"), "position": 0, "permission_overwrites": [],
        "nsfw": false, "topic": null, "last_message_id": null, "parent_id": null,
        "rate_limit_per_user": 0, "flags": 0, "available_tags": [],
        "default_reaction_emoji": null, "default_sort_order": null, "default_forum_layout": 0,
    })
}

fn dm_channel_json(id: u64, recipient: u64) -> Value {
    json!({
        "id": id.to_string(), "type": 1, "last_message_id": null, "flags": 0,
        "recipients": [user_json(recipient)],
    })
}

fn thread_json(id: u64, parent_id: u64, guild_id: u64, owner_id: u64, name: &str) -> Value {
    let ts = now_ts();
    json!({
        "id": id.to_string(), "type": 11, "guild_id": guild_id.to_string(),
        "parent_id": parent_id.to_string(), "owner_id": owner_id.to_string(),
        "name": name, "last_message_id": null, "message_count": 0, "member_count": 1,
        "rate_limit_per_user": 0, "flags": 0, "total_message_sent": 0, "applied_tags": [],
        "thread_metadata": {
            "archived": false, "auto_archive_duration": 4320, "archive_timestamp": ts,
            "locked": false, "create_timestamp": ts,
        },
    })
}

fn interaction_base(
    id: u64,
    kind: u8,
    channel_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
) -> Value {
    let mut i = json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": kind,
        "channel_id": channel_id.to_string(),
        "channel": {"id": channel_id.to_string(), "type": if guild_id.is_some() { 0 } else { 1 }},
        "token": token_for(id),
        "version": 1,
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild_id.unwrap_or(0).to_string()},
        "context": if guild_id.is_some() { 0 } else { 1 },
        "attachment_size_limit": 26_214_400,
    });
    match guild_id {
        Some(g) => {
            i["guild_id"] = json!(g.to_string());
            i["guild_locale"] = json!("en-US");
            i["member"] = member_json(user_id);
        }
        None => i["user"] = user_json(user_id),
    }
    i
}

fn token_for(interaction_id: u64) -> String {
    format!("aW50ZXJhY3Rpb24-{interaction_id}-fake")
}

fn register_interaction(
    rest: &mut RestState,
    id: u64,
    kind: u8,
    channel_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
    message_id: Option<u64>,
) {
    rest.interactions.insert(
        id,
        InteractionInfo {
            id,
            token: token_for(id),
            kind,
            channel_id,
            guild_id,
            user_id,
            message_id,
            created: Instant::now(),
            callbacks: Vec::new(),
            original: None,
            followups: Vec::new(),
        },
    );
}

// --------------------------------------------------------------------------
// Gateway server
// --------------------------------------------------------------------------

async fn ws_handler(
    State(inner): State<Arc<Inner>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    inner.gw().queries.push(query.unwrap_or_default());
    ws.on_upgrade(move |socket| run_connection(inner, socket))
}

async fn run_connection(inner: Arc<Inner>, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = {
        let mut gw = inner.gw();
        gw.next_conn += 1;
        let id = gw.next_conn;
        gw.conns.push(Conn {
            id,
            tx: tx.clone(),
            live: false,
            shard: (0, 1),
        });
        id
    };
    let (mut sink, mut stream) = socket.split();
    let hello =
        json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}});
    let mut ok = sink
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_ok();
    while ok {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Text(t)) => ok = sink.send(WsMessage::Text(t.into())).await.is_ok(),
                Some(Cmd::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    // Give the client a moment to read the frame.
                    let _ = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                    ok = false;
                }
                Some(Cmd::Drop) | None => ok = false,
            },
            msg = stream.next() => match msg {
                Some(Ok(WsMessage::Text(t))) => handle_client_payload(&inner, conn_id, &tx, t.as_str()),
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => ok = false,
                Some(Ok(_)) => {}
            },
        }
    }
    inner.gw().conns.retain(|c| c.id != conn_id);
    // Dropping both halves drops the socket without a close frame.
}

fn handle_client_payload(inner: &Inner, conn_id: u64, tx: &mpsc::UnboundedSender<Cmd>, text: &str) {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        let _ = tx.send(Cmd::Close(4002, "Error while decoding payload.".into()));
        return;
    };
    let mut gw = inner.gw();
    gw.client_ops.push(payload.clone());
    match payload["op"].as_u64() {
        Some(1) => {
            gw.heartbeats += 1;
            if !gw.no_heartbeat_ack {
                let _ = tx.send(Cmd::Text(json!({"op": 11, "d": null}).to_string()));
            }
        }
        Some(2) => {
            let d = payload["d"].clone();
            gw.identifies.push(d.clone());
            gw.sessions += 1;
            let session_id = format!("fake-session-{}", gw.sessions);
            gw.session_id = Some(session_id.clone());
            gw.seq = 1;
            gw.log.clear();
            gw.ever_ready = true;
            let shard = if d["shard"].is_array() {
                d["shard"].clone()
            } else {
                json!([0, 1])
            };
            let this = (
                shard[0].as_u64().unwrap_or(0),
                shard[1].as_u64().unwrap_or(1),
            );
            // A new session replaces the one of the same shard; other
            // shards' sessions (other processes) go on.
            for c in gw.conns.iter_mut() {
                if c.id == conn_id {
                    c.live = true;
                    c.shard = this;
                } else if c.shard.0 == this.0 || this.1 <= 1 {
                    c.live = false;
                }
            }
            let ready = json!({
                "op": 0, "s": 1, "t": "READY",
                "d": {
                    "v": 10,
                    "user": current_user_json(),
                    "guilds": [],
                    "session_id": session_id,
                    "resume_gateway_url": inner.ws_url,
                    "shard": shard,
                    "application": {"id": APPLICATION_ID.to_string(), "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                },
            })
            .to_string();
            gw.log.push((1, ready.clone(), false));
            let _ = tx.send(Cmd::Text(ready));
        }
        Some(6) => {
            // One session is resumable: the latest identified (sharded
            // bots' other shards re-identify instead).
            let d = &payload["d"];
            let matches =
                gw.session_id.is_some() && d["session_id"].as_str() == gw.session_id.as_deref();
            if !matches {
                let _ = tx.send(Cmd::Text(json!({"op": 9, "d": false}).to_string()));
                return;
            }
            let from = d["seq"].as_u64().unwrap_or(0);
            gw.resumes += 1;
            for (_, frame, _) in gw
                .log
                .iter()
                .filter(|(seq, _, replay)| *seq > from && *replay)
            {
                let _ = tx.send(Cmd::Text(frame.clone()));
            }
            gw.seq += 1;
            let seq = gw.seq;
            let resumed = json!({"op": 0, "s": seq, "t": "RESUMED", "d": {}}).to_string();
            gw.log.push((seq, resumed.clone(), false));
            let _ = tx.send(Cmd::Text(resumed));
            for c in gw.conns.iter_mut() {
                c.live = c.id == conn_id;
            }
        }
        _ => {}
    }
}

// --------------------------------------------------------------------------
// REST server
// --------------------------------------------------------------------------

enum Reply {
    Json(u16, Value),
    NoContent,
    UnknownRoute,
}

fn ok(v: Value) -> Reply {
    Reply::Json(200, v)
}

fn api_error(status: u16, code: u64, message: &str) -> Reply {
    Reply::Json(status, json!({"code": code, "message": message}))
}

fn form_error(field: &str, code: &str, message: &str) -> Reply {
    let mut errors = json!({});
    let mut cursor = &mut errors;
    for part in field.split('.') {
        cursor[part] = json!({});
        cursor = &mut cursor[part];
    }
    cursor["_errors"] = json!([{"code": code, "message": message}]);
    Reply::Json(
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": errors}),
    )
}

fn unknown_message() -> Reply {
    api_error(404, 10008, "Unknown Message")
}

fn unknown_interaction() -> Reply {
    api_error(404, 10062, "Unknown interaction")
}

fn unknown_webhook() -> Reply {
    api_error(404, 10015, "Unknown Webhook")
}

async fn rest_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full_path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (json_body, files) = if content_type.starts_with("multipart/") {
        parse_multipart(&content_type, &body)
    } else if body.is_empty() {
        (Value::Null, Vec::new())
    } else {
        (
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
            Vec::new(),
        )
    };
    let known_prefix = full_path.starts_with("/api/v10/");
    let path = full_path
        .strip_prefix("/api/v10")
        .unwrap_or(&full_path)
        .to_string();
    let mut rec = Recorded {
        method: method.as_str().to_string(),
        path: path.clone(),
        query: query.clone(),
        body: json_body.clone(),
        files: files.iter().map(|(n, _)| n.clone()).collect(),
        status: 0,
    };

    let mut rest = inner.rest();
    // Injected failures.
    let key = format!("{} {}", rec.method, path);
    if let Some(f) = rest
        .failures
        .iter_mut()
        .find(|f| f.remaining > 0 && key.contains(&f.path_contains))
    {
        f.remaining -= 1;
        let status = f.status;
        let body = f.body.clone();
        rest.failures.retain(|f| f.remaining > 0);
        rec.status = status;
        rest.requests.push(rec);
        return failure_response(status, body);
    }

    let reply = if known_prefix {
        route(
            &inner,
            &mut rest,
            method.as_str(),
            &path,
            &json_body,
            &files,
        )
    } else {
        Reply::UnknownRoute
    };
    let (status, response) = match reply {
        Reply::Json(status, v) => (
            status,
            (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response(),
        ),
        Reply::NoContent => (204, StatusCode::NO_CONTENT.into_response()),
        Reply::UnknownRoute => {
            rec.status = 404;
            rest.unknown.push(rec.clone());
            (
                404,
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"message": "404: Not Found", "code": 0})),
                )
                    .into_response(),
            )
        }
    };
    rec.status = status;
    rest.requests.push(rec);
    response
}

fn failure_response(status: u16, body: Option<Value>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == 429 {
        let body = body.unwrap_or_else(|| {
            json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false})
        });
        let mut r = (code, axum::Json(body)).into_response();
        let h = r.headers_mut();
        h.insert("retry-after", HeaderValue::from_static("1"));
        h.insert("x-ratelimit-limit", HeaderValue::from_static("5"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset-after", HeaderValue::from_static("0.200"));
        h.insert("x-ratelimit-bucket", HeaderValue::from_static("fakebucket"));
        h.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
        return r;
    }
    let body = body.unwrap_or_else(|| match status {
        400 => json!({"code": 50035, "message": "Invalid Form Body"}),
        401 => json!({"code": 0, "message": "401: Unauthorized"}),
        403 => json!({"code": 50013, "message": "Missing Permissions"}),
        404 => json!({"code": 10003, "message": "Unknown Channel"}),
        502 => json!({"code": 0, "message": "502: Bad Gateway"}),
        _ => json!({"code": 0, "message": format!("{status}: {}", code.canonical_reason().unwrap_or("Error"))}),
    });
    (code, axum::Json(body)).into_response()
}

/// `(payload_json, [(file name, size)])` of a multipart body.
fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<(String, usize)>) {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return (Value::Null, Vec::new());
    };
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let delimiter = delimiter.as_bytes();
    let mut payload = Value::Null;
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter) {
        rest = &rest[start + delimiter.len()..];
        let end = find(rest, delimiter).unwrap_or(rest.len());
        let part = &rest[..end];
        if let Some(split) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..split]);
            let mut value = &part[split + 4..];
            if value.ends_with(b"\r\n") {
                value = &value[..value.len() - 2];
            }
            let attr = |name: &str| {
                head.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_string)
            };
            if let Some(filename) = attr("filename") {
                files.push((filename, value.len()));
            } else if attr("name").as_deref() == Some("payload_json") {
                payload = serde_json::from_slice(value).unwrap_or(Value::Null);
            }
        }
    }
    (payload, files)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn route(
    inner: &Inner,
    rest: &mut RestState,
    method: &str,
    path: &str,
    body: &Value,
    files: &[(String, usize)],
) -> Reply {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |i: usize| segs.get(i).and_then(|s| parse_id(s));
    match (method, segs.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({"url": inner.ws_url})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": inner.ws_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })),
        ("GET", ["users", "@me"]) => ok(current_user_json()),
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            ok(json!({
                "id": APPLICATION_ID.to_string(), "name": BOT_NAME, "icon": null,
                "description": "", "rpc_origins": [], "bot_public": true,
                "bot_require_code_grant": false, "verify_key": "0".repeat(64),
                "owner": user_json(1), "team": null, "flags": 0, "bot": bot_user_json(),
                "summary": "", "hook": true, "integration_types_config": {},
            }))
        }
        ("GET", ["users", user]) => match parse_id(user) {
            Some(u) if u == BOT_ID => ok(bot_user_json()),
            Some(u) => ok(user_json(u)),
            None => Reply::UnknownRoute,
        },
        ("POST", ["users", "@me", "channels"]) => {
            let Some(recipient) = body["recipient_id"]
                .as_str()
                .and_then(parse_id)
                .or_else(|| body["recipient_id"].as_u64())
            else {
                return form_error(
                    "recipient_id",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                );
            };
            let existing = rest.channels.iter().find_map(|(cid, c)| {
                (c["type"] == 1 && c["recipients"][0]["id"] == json!(recipient.to_string()))
                    .then_some(*cid)
            });
            let existing = existing.or_else(|| {
                rest.channel_guild
                    .iter()
                    .filter(|(_, g)| g.is_none())
                    .map(|(c, _)| *c)
                    .find(|c| {
                        rest.user_messages.values().any(|m| {
                            m["channel_id"] == json!(c.to_string())
                                && m["author"]["id"] == json!(recipient.to_string())
                        })
                    })
            });
            let cid = match existing {
                Some(c) => c,
                None => rest.next_id(),
            };
            let channel = dm_channel_json(cid, recipient);
            rest.channels.insert(cid, channel.clone());
            rest.channel_guild.insert(cid, None);
            ok(channel)
        }
        ("GET", ["channels", _]) => match id(1) {
            Some(c) => ok(rest.channel_json(c)),
            None => api_error(404, 10003, "Unknown Channel"),
        },
        ("PATCH", ["channels", _]) => {
            let Some(c) = id(1) else {
                return api_error(404, 10003, "Unknown Channel");
            };
            let mut channel = rest.channel_json(c);
            if let (Some(obj), Some(changes)) = (channel.as_object_mut(), body.as_object()) {
                for (k, v) in changes {
                    if matches!(
                        k.as_str(),
                        "archived" | "locked" | "auto_archive_duration" | "invitable"
                    ) {
                        obj.entry("thread_metadata")
                            .or_insert_with(|| json!({}))
                            .as_object_mut()
                            .map(|m| m.insert(k.clone(), v.clone()));
                    } else {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            rest.channels.insert(c, channel.clone());
            ok(channel)
        }
        ("GET", ["channels", _, "messages"]) => ok(json!([])),
        ("POST", ["channels", _, "messages"]) => {
            let Some(c) = id(1) else {
                return api_error(404, 10003, "Unknown Channel");
            };
            if let Some(err) = validate_message(body, true, files) {
                return err;
            }
            // As Discord: with `enforce_nonce`, a second create with the
            // same nonce returns the first message instead of a new one.
            if body["enforce_nonce"] == true
                && let Some(nonce) = body["nonce"].as_str()
                && let Some(first) = rest
                    .messages
                    .iter()
                    .find(|m| m.channel_id == c && m.nonce.as_deref() == Some(nonce))
            {
                return ok(first.to_json());
            }
            let m = new_message(rest, c, body, files, None);
            ok(m.to_json())
        }
        ("GET", ["channels", _, "messages", _]) => match id(3).and_then(|m| rest.message_json(m)) {
            Some(m) => ok(m),
            None => unknown_message(),
        },
        ("PATCH", ["channels", _, "messages", _]) => {
            let Some(mid) = id(3) else {
                return unknown_message();
            };
            if let Some(err) = validate_message(body, false, files) {
                return err;
            }
            let someone_elses = rest.user_messages.contains_key(&mid);
            match rest.bot_message(mid) {
                Some(m) if !m.deleted => {
                    edit_message(m, body, files);
                    ok(m.to_json())
                }
                _ if someone_elses => {
                    api_error(403, 50005, "Cannot edit a message authored by another user")
                }
                _ => unknown_message(),
            }
        }
        ("DELETE", ["channels", _, "messages", _]) => {
            let Some(mid) = id(3) else {
                return unknown_message();
            };
            if let Some(m) = rest.bot_message(mid).filter(|m| !m.deleted) {
                m.deleted = true;
                Reply::NoContent
            } else if rest.user_messages.contains_key(&mid)
                && !rest.deleted_user_messages.contains(&mid)
            {
                rest.deleted_user_messages.push(mid);
                Reply::NoContent
            } else {
                unknown_message()
            }
        }
        ("POST", ["channels", _, "typing"]) => {
            let Some(c) = id(1) else {
                return api_error(404, 10003, "Unknown Channel");
            };
            *rest.typing.entry(c).or_default() += 1;
            Reply::NoContent
        }
        ("PUT" | "DELETE", ["channels", _, "messages", _, "reactions", emoji, "@me"]) => {
            if let (Some(c), Some(m)) = (id(1), id(3))
                && method == "PUT"
            {
                rest.reactions.push((c, m, emoji.to_string()));
            }
            Reply::NoContent
        }
        ("PUT" | "DELETE", ["channels", _, "thread-members", _]) => Reply::NoContent,
        ("POST", ["channels", _, "messages", _, "threads"]) => {
            let (Some(c), Some(mid)) = (id(1), id(3)) else {
                return unknown_message();
            };
            let Some(guild) = rest.guild_of(c) else {
                return api_error(400, 50024, "Cannot execute action on this channel type");
            };
            if let Some(err) = validate_thread_name(body) {
                return err;
            }
            if rest.channels.contains_key(&mid) {
                return api_error(
                    400,
                    160004,
                    "A thread has already been created for this message",
                );
            }
            let name = body["name"].as_str().unwrap_or_default();
            let mut thread = thread_json(mid, c, guild, BOT_ID, name);
            if let Some(d) = body["auto_archive_duration"].as_u64() {
                thread["thread_metadata"]["auto_archive_duration"] = json!(d);
            }
            rest.channels.insert(mid, thread.clone());
            rest.channel_guild.insert(mid, Some(guild));
            ok(thread)
        }
        ("POST", ["channels", _, "threads"]) => {
            let Some(c) = id(1) else {
                return api_error(404, 10003, "Unknown Channel");
            };
            let Some(guild) = rest.guild_of(c) else {
                return api_error(400, 50024, "Cannot execute action on this channel type");
            };
            if let Some(err) = validate_thread_name(body) {
                return err;
            }
            let tid = rest.next_id();
            let name = body["name"].as_str().unwrap_or_default();
            let mut thread = thread_json(tid, c, guild, BOT_ID, name);
            if let Some(kind) = body["type"].as_u64() {
                thread["type"] = json!(kind);
            }
            if let Some(d) = body["auto_archive_duration"].as_u64() {
                thread["thread_metadata"]["auto_archive_duration"] = json!(d);
            }
            if let Some(tags) = body.get("applied_tags") {
                thread["applied_tags"] = tags.clone();
            }
            rest.channels.insert(tid, thread.clone());
            rest.channel_guild.insert(tid, Some(guild));
            if body["message"].is_object() {
                // A forum post: the starter message has the thread's id.
                if let Some(err) = validate_message(&body["message"], true, files) {
                    return err;
                }
                let m = new_message(rest, tid, &body["message"], files, Some(tid));
                thread["message"] = m.to_json();
                thread["message_count"] = json!(1);
                thread["last_message_id"] = json!(tid.to_string());
            }
            ok(thread)
        }
        (_, ["applications", app, "commands", ..])
        | (_, ["applications", app, "guilds", _, "commands", ..])
            if parse_id(app) != Some(APPLICATION_ID) =>
        {
            api_error(403, 50001, "Missing Access")
        }
        ("GET", ["applications", _, "commands"]) => ok(json!(rest.commands)),
        ("GET", ["applications", _, "guilds", _, "commands"]) => {
            let g = id(3).unwrap_or(0);
            ok(json!(
                rest.guild_commands.get(&g).cloned().unwrap_or_default()
            ))
        }
        ("PUT", ["applications", _, "commands"]) => {
            let Some(list) = body.as_array() else {
                return form_error("_", "BASE_TYPE_ARRAY", "Must be an array");
            };
            let out: Vec<Value> = list.iter().map(|c| command_json(rest, c, None)).collect();
            rest.commands = out.clone();
            ok(json!(out))
        }
        ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            let Some(list) = body.as_array() else {
                return form_error("_", "BASE_TYPE_ARRAY", "Must be an array");
            };
            let g = id(3).unwrap_or(0);
            let out: Vec<Value> = list
                .iter()
                .map(|c| command_json(rest, c, Some(g)))
                .collect();
            rest.guild_commands.insert(g, out.clone());
            ok(json!(out))
        }
        ("POST", ["applications", _, "commands"]) => {
            let c = command_json(rest, body, None);
            let name = c["name"].clone();
            rest.commands.retain(|x| x["name"] != name);
            rest.commands.push(c.clone());
            ok(c)
        }
        ("POST", ["applications", _, "guilds", _, "commands"]) => {
            let g = id(3).unwrap_or(0);
            let c = command_json(rest, body, Some(g));
            let name = c["name"].clone();
            let list = rest.guild_commands.entry(g).or_default();
            list.retain(|x| x["name"] != name);
            list.push(c.clone());
            ok(c)
        }
        ("POST", ["interactions", _, token, "callback"]) => {
            let Some(iid) = id(1) else {
                return unknown_interaction();
            };
            interaction_callback(rest, iid, token, body, files)
        }
        (_, ["webhooks", app, token, rest_path @ ..]) => {
            if parse_id(app) != Some(APPLICATION_ID) {
                return unknown_webhook();
            }
            let Some(iid) = rest
                .interactions
                .values()
                .find(|i| i.token == *token)
                .map(|i| i.id)
            else {
                return unknown_webhook();
            };
            webhook(rest, method, iid, rest_path, body, files)
        }
        _ => Reply::UnknownRoute,
    }
}

fn validate_thread_name(body: &Value) -> Option<Reply> {
    let name = body["name"].as_str().unwrap_or_default();
    let n = name.chars().count();
    if n == 0 {
        return Some(form_error(
            "name",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    }
    if n > 100 {
        return Some(form_error(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    None
}

/// Discord's checks on a message body that matter in practice.
fn validate_message(body: &Value, creating: bool, files: &[(String, usize)]) -> Option<Reply> {
    let content = body["content"].as_str().unwrap_or_default();
    if content.chars().count() > 2000 {
        return Some(form_error(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        ));
    }
    let empty = |k: &str| body[k].as_array().is_none_or(|a| a.is_empty());
    if creating
        && content.is_empty()
        && empty("embeds")
        && empty("components")
        && empty("sticker_ids")
        && files.is_empty()
        && body.get("poll").is_none()
    {
        return Some(api_error(400, 50006, "Cannot send an empty message"));
    }
    if let Some(rows) = body["components"].as_array() {
        if rows.len() > 5 {
            return Some(form_error(
                "components",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            ));
        }
        for (r, row) in rows.iter().enumerate() {
            let items = row["components"].as_array().cloned().unwrap_or_default();
            if row["type"] != 1 || items.is_empty() || items.len() > 5 {
                return Some(form_error(
                    &format!("components.{r}.components"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                ));
            }
            for (c, item) in items.iter().enumerate() {
                if let Some(id) = item["custom_id"].as_str()
                    && (id.is_empty() || id.chars().count() > 100)
                {
                    return Some(form_error(
                        &format!("components.{r}.components.{c}.custom_id"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ));
                }
                if item["label"]
                    .as_str()
                    .is_some_and(|l| l.chars().count() > 80)
                {
                    return Some(form_error(
                        &format!("components.{r}.components.{c}.label"),
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 80 or fewer in length.",
                    ));
                }
                if item["type"] == 2 && item["style"] != 5 && item["custom_id"].is_null() {
                    return Some(form_error(
                        &format!("components.{r}.components.{c}.custom_id"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
            }
        }
    }
    if let Some(embeds) = body["embeds"].as_array() {
        if embeds.len() > 10 {
            return Some(form_error(
                "embeds",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 10 or fewer in length.",
            ));
        }
        for (i, e) in embeds.iter().enumerate() {
            if e["description"]
                .as_str()
                .is_some_and(|d| d.chars().count() > 4096)
            {
                return Some(form_error(
                    &format!("embeds.{i}.description"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 4096 or fewer in length.",
                ));
            }
            if e["title"].as_str().is_some_and(|d| d.chars().count() > 256) {
                return Some(form_error(
                    &format!("embeds.{i}.title"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 256 or fewer in length.",
                ));
            }
        }
    }
    None
}

fn normalize_embeds(v: &Value) -> Value {
    let mut embeds = v.as_array().cloned().unwrap_or_default();
    for e in &mut embeds {
        if e.get("type").is_none() {
            e["type"] = json!("rich");
        }
    }
    Value::Array(embeds)
}

fn normalize_components(v: &Value) -> Value {
    let mut rows = v.as_array().cloned().unwrap_or_default();
    for row in &mut rows {
        if let Some(items) = row["components"].as_array_mut() {
            for item in items {
                if item["type"] == 2 && item.get("disabled").is_none() {
                    item["disabled"] = json!(false);
                }
            }
        }
    }
    Value::Array(rows)
}

fn attachments_json(
    channel_id: u64,
    first_id: u64,
    files: &[(String, usize)],
    body: &Value,
) -> Vec<Value> {
    files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let aid = first_id + i as u64;
            let description = body["attachments"]
                .as_array()
                .and_then(|a| a.get(i))
                .map(|a| a["description"].clone())
                .unwrap_or(Value::Null);
            json!({
                "id": aid.to_string(), "filename": name, "size": size,
                "description": description,
                "url": format!("https://cdn.discordapp.com/attachments/{channel_id}/{aid}/{name}"),
                "proxy_url": format!("https://media.discordapp.net/attachments/{channel_id}/{aid}/{name}"),
                "content_type": content_type_of(name),
            })
        })
        .collect()
}

fn content_type_of(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" | "log" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn new_message(
    rest: &mut RestState,
    channel_id: u64,
    body: &Value,
    files: &[(String, usize)],
    id: Option<u64>,
) -> FakeMessage {
    let id = id.unwrap_or_else(|| rest.next_id());
    let first_attachment = rest.next_id();
    for _ in 1..files.len() {
        rest.next_id();
    }
    let content = body["content"].as_str().unwrap_or_default().to_string();
    let reference = body["message_reference"].clone();
    let is_reply = reference["message_id"].is_string() || reference["message_id"].is_u64();
    let m = FakeMessage {
        id,
        channel_id,
        author_id: BOT_ID,
        original_content: content.clone(),
        content,
        edits: Vec::new(),
        components: normalize_components(&body["components"]),
        embeds: normalize_embeds(&body["embeds"]),
        allowed_mentions: body["allowed_mentions"].clone(),
        flags: body["flags"].as_u64().unwrap_or(0),
        attachments: files.iter().map(|(n, _)| n.clone()).collect(),
        message_reference: reference,
        interaction_id: None,
        deleted: false,
        tts: body["tts"].as_bool().unwrap_or(false),
        nonce: body["nonce"].as_str().map(str::to_string),
        kind: if is_reply { 19 } else { 0 },
        timestamp: now_ts(),
        edited_timestamp: None,
        attachments_json: attachments_json(channel_id, first_attachment, files, body),
    };
    rest.messages.push(m.clone());
    m
}

fn edit_message(m: &mut FakeMessage, body: &Value, files: &[(String, usize)]) {
    if let Some(obj) = body.as_object() {
        if obj.contains_key("content") {
            m.content = body["content"].as_str().unwrap_or_default().to_string();
        }
        if obj.contains_key("components") {
            m.components = normalize_components(&body["components"]);
        }
        if obj.contains_key("embeds") {
            m.embeds = normalize_embeds(&body["embeds"]);
        }
        if obj.contains_key("allowed_mentions") {
            m.allowed_mentions = body["allowed_mentions"].clone();
        }
        if let Some(flags) = body["flags"].as_u64() {
            m.flags = flags | (m.flags & FLAG_EPHEMERAL);
        }
        if let Some(keep) = body["attachments"].as_array() {
            let keep: Vec<&Value> = keep.iter().map(|a| &a["id"]).collect();
            let mut kept_names = Vec::new();
            m.attachments_json.retain(|a| {
                let k = keep.contains(&&a["id"]);
                if k {
                    kept_names.push(a["filename"].as_str().unwrap_or_default().to_string());
                }
                k
            });
            m.attachments = kept_names;
        }
    }
    if !files.is_empty() {
        let base = m.id.wrapping_mul(31) % 1_000_000_000_000 + 7;
        m.attachments_json
            .extend(attachments_json(m.channel_id, base, files, body));
        m.attachments.extend(files.iter().map(|(n, _)| n.clone()));
    }
    m.flags &= !FLAG_LOADING;
    m.edits.push(m.content.clone());
    m.edited_timestamp = Some(now_ts());
}

fn command_json(rest: &mut RestState, c: &Value, guild_id: Option<u64>) -> Value {
    let name = c["name"].as_str().unwrap_or_default().to_string();
    let id = match rest.command_ids.get(&name) {
        Some(id) => *id,
        None => {
            let id = rest.next_id();
            rest.command_ids.insert(name.clone(), id);
            id
        }
    };
    let mut out = json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "version": (id + 1).to_string(),
        "type": c["type"].as_u64().unwrap_or(1),
        "name": name,
        "description": c["description"].as_str().unwrap_or_default(),
        "options": c["options"].as_array().cloned().unwrap_or_default(),
        "default_member_permissions": c["default_member_permissions"].clone(),
        "dm_permission": c["dm_permission"].as_bool().unwrap_or(true),
        "nsfw": c["nsfw"].as_bool().unwrap_or(false),
    });
    for key in [
        "name_localizations",
        "description_localizations",
        "contexts",
        "integration_types",
    ] {
        if let Some(v) = c.get(key) {
            out[key] = v.clone();
        }
    }
    if let Some(g) = guild_id {
        out["guild_id"] = json!(g.to_string());
    }
    out
}

fn interaction_callback(
    rest: &mut RestState,
    iid: u64,
    token: &str,
    body: &Value,
    files: &[(String, usize)],
) -> Reply {
    let deadline = rest.interaction_deadline;
    let Some(info) = rest.interactions.get_mut(&iid) else {
        return unknown_interaction();
    };
    if info.token != token {
        return api_error(401, 50027, "Invalid Webhook Token");
    }
    info.callbacks.push(body.clone());
    if info.callbacks.len() > 1 {
        return api_error(400, 40060, "Interaction has already been acknowledged.");
    }
    if deadline.is_some_and(|d| info.created.elapsed() > d) {
        return unknown_interaction();
    }
    let info = info.clone();
    let data = &body["data"];
    let kind = body["type"].as_u64().unwrap_or(0);
    match kind {
        1 | 8 | 9 | 10 | 12 => Reply::NoContent,
        4 | 5 => {
            if kind == 4
                && let Some(err) = validate_message(data, true, files)
            {
                rest.interactions.get_mut(&iid).unwrap().callbacks.pop();
                return err;
            }
            let mut msg_body = if kind == 4 { data.clone() } else { json!({}) };
            let flags = data["flags"].as_u64().unwrap_or(0);
            msg_body["flags"] = json!(if kind == 5 {
                flags | FLAG_LOADING
            } else {
                flags
            });
            let mut m = new_message(rest, info.channel_id, &msg_body, files, None);
            m.interaction_id = Some(iid);
            m.kind = if info.kind == 2 { 20 } else { 0 };
            *rest.bot_message(m.id).unwrap() = m.clone();
            rest.interactions.get_mut(&iid).unwrap().original = Some(m.id);
            Reply::NoContent
        }
        6 | 7 => {
            let Some(source) = info.message_id else {
                rest.interactions.get_mut(&iid).unwrap().callbacks.pop();
                return form_error(
                    "type",
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    "Interaction response type is invalid for this interaction.",
                );
            };
            if kind == 7 {
                if let Some(err) = validate_message(data, false, files) {
                    rest.interactions.get_mut(&iid).unwrap().callbacks.pop();
                    return err;
                }
                if let Some(m) = rest.bot_message(source) {
                    edit_message(m, data, files);
                }
            }
            rest.interactions.get_mut(&iid).unwrap().original = Some(source);
            Reply::NoContent
        }
        _ => form_error(
            "type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.",
        ),
    }
}

fn webhook(
    rest: &mut RestState,
    method: &str,
    iid: u64,
    path: &[&str],
    body: &Value,
    files: &[(String, usize)],
) -> Reply {
    let info = rest.interactions.get(&iid).cloned().unwrap();
    let acknowledged = info.original.is_some();
    let target = match path {
        [] => None,
        ["messages", "@original"] => match info.original {
            Some(id) => Some(id),
            None => return unknown_message(),
        },
        ["messages", mid] => match parse_id(mid) {
            Some(id) if info.followups.contains(&id) || info.original == Some(id) => Some(id),
            _ => return unknown_message(),
        },
        _ => return Reply::UnknownRoute,
    };
    match (method, target) {
        ("POST", None) => {
            if !acknowledged {
                return unknown_webhook();
            }
            if let Some(err) = validate_message(body, true, files) {
                return err;
            }
            let mut m = new_message(rest, info.channel_id, body, files, None);
            m.interaction_id = Some(iid);
            *rest.bot_message(m.id).unwrap() = m.clone();
            rest.interactions
                .get_mut(&iid)
                .unwrap()
                .followups
                .push(m.id);
            ok(m.to_json())
        }
        ("GET", Some(id)) => match rest.bot_message(id).filter(|m| !m.deleted) {
            Some(m) => ok(m.to_json()),
            None => unknown_message(),
        },
        ("PATCH", Some(id)) => {
            if let Some(err) = validate_message(body, false, files) {
                return err;
            }
            match rest.bot_message(id).filter(|m| !m.deleted) {
                Some(m) => {
                    edit_message(m, body, files);
                    ok(m.to_json())
                }
                None => unknown_message(),
            }
        }
        ("DELETE", Some(id)) => match rest.bot_message(id).filter(|m| !m.deleted) {
            Some(m) => {
                m.deleted = true;
                Reply::NoContent
            }
            None => unknown_message(),
        },
        _ => Reply::UnknownRoute,
    }
}
