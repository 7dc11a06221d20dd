//! Live events of web-widget sessions, for the widget's event stream.
//!
//! Two kinds of news reach a session while its widget is open:
//!
//! - **mailbox messages** (agent replies, notices, surveys) are stored in
//!   `web_messages` by [`super::web::Web`]; the hub only rings the
//!   session's bell ([`Live::mailbox`]) and the stream reads them from the
//!   database after its cursor, so they are never lost nor sent twice;
//! - **passing events** (the words of an answer as the model writes them)
//!   are not stored: the hub keeps the latest of each session, numbered,
//!   for a reconnecting stream to resume from the last number it saw.
//!
//! Every event has a number (`seq`) from one counter of this process, and
//! the process has a random `boot` name: a number from another run means
//! nothing here. Kept events are bounded per session ([`KEPT_BYTES`]) and
//! sessions nobody listens to are forgotten after [`RETAIN`]. Open streams
//! are bounded per session and in all ([`Live::open`]); every stream ends
//! when [`Live::close`] is called (server shutdown).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Bytes of passing events kept per session; older ones are dropped (a
/// stream resuming before them is told so).
pub const KEPT_BYTES: usize = 64 * 1024;
/// How long a session nobody listens to keeps its passing events.
pub const RETAIN: Duration = Duration::from_secs(120);
/// How often a stream reads its mailbox even when its bell did not ring (a
/// bell from another process missed while the listening connection was
/// down: see `channels::web::Web::ring_from_elsewhere`), and sends a
/// keep-alive comment, unless `web.stream_check_secs` says otherwise.
pub const CHECK_EVERY: Duration = Duration::from_secs(15);
/// Sessions with kept events at most; past it, sessions without an open
/// stream keep nothing.
pub const MAX_SESSIONS: usize = 4096;

/// One passing event: a name and its JSON data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number.
    pub seq: u64,
    /// The SSE event name (`delta`).
    pub name: &'static str,
    /// Its data, JSON.
    pub data: Arc<str>,
}

/// What woke a stream: the newest event number and the mailbox bell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bell {
    /// The newest passing event of the session.
    pub seq: u64,
    /// Rings (counts up) when a message was left in the mailbox.
    pub mailbox: u64,
}

/// Why a stream may not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// This visitor has the most streams allowed open already.
    #[error("too many open chat streams for this visitor; close another tab")]
    Visitor,
    /// The server has the most streams allowed open.
    #[error("too many open chat streams; polling instead")]
    Server,
}

struct Slot {
    events: VecDeque<Event>,
    bytes: usize,
    /// The highest number dropped to stay under [`KEPT_BYTES`].
    dropped: u64,
    bell: watch::Sender<Bell>,
    open: usize,
    touched: Instant,
}

impl Slot {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            bell: watch::channel(Bell::default()).0,
            open: 0,
            touched: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Sessions {
    next: u64,
    slots: HashMap<String, Slot>,
    open: usize,
    swept: Option<Instant>,
}

impl Sessions {
    /// Forgets sessions nobody listens to and nothing happened in for
    /// [`RETAIN`] (at most once a second).
    fn sweep(&mut self) {
        let now = Instant::now();
        if self
            .swept
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        self.slots
            .retain(|_, s| s.open > 0 || now.duration_since(s.touched) < RETAIN);
    }

    /// The slot of `session`, made if there is room (always for `force`).
    fn slot(&mut self, session: &str, force: bool) -> Option<&mut Slot> {
        if !self.slots.contains_key(session) {
            self.sweep();
            if self.slots.len() >= MAX_SESSIONS && !force {
                return None;
            }
            self.slots.insert(session.to_string(), Slot::new());
        }
        self.slots.get_mut(session)
    }
}

struct Inner {
    boot: String,
    sessions: Mutex<Sessions>,
    stop: CancellationToken,
    max_streams: usize,
    max_per_session: usize,
}

/// The hub: cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
    check_every: Duration,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("boot", &self.inner.boot)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// A hub allowing `max_streams` open streams in all and
    /// `max_per_session` per session.
    pub fn new(max_streams: usize, max_per_session: usize) -> Self {
        let boot = format!("{:08x}", rand::random::<u32>());
        Self {
            inner: Arc::new(Inner {
                boot,
                sessions: Mutex::new(Sessions::default()),
                stop: CancellationToken::new(),
                max_streams: max_streams.max(1),
                max_per_session: max_per_session.max(1),
            }),
            check_every: CHECK_EVERY,
        }
    }

    /// The same hub whose streams read their mailbox at least every
    /// `period` ([`CHECK_EVERY`] by default; `web.stream_check_secs`).
    #[must_use]
    pub fn with_check_every(self, period: Duration) -> Self {
        Self {
            check_every: period.max(Duration::from_secs(1)),
            ..self
        }
    }

    /// How often an open stream reads its mailbox when its bell did not
    /// ring, and sends a keep-alive comment.
    pub fn check_every(&self) -> Duration {
        self.check_every
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // Every critical section leaves the map consistent.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// This process's name in event ids.
    pub fn boot(&self) -> &str {
        &self.inner.boot
    }

    /// Cancelled when the server shuts down.
    pub fn stopped(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Ends every stream (server shutdown); none opens afterwards.
    pub fn close(&self) {
        self.inner.stop.cancel();
    }

    /// Adds a passing event for `session`; returns its number (`None`
    /// when it was not kept: the hub is full and nobody listens).
    pub fn publish(&self, session: &str, name: &'static str, data: String) -> Option<u64> {
        let mut sessions = self.sessions();
        sessions.next += 1;
        let seq = sessions.next;
        let slot = sessions.slot(session, false)?;
        let event = Event {
            seq,
            name,
            data: data.into(),
        };
        slot.bytes += event.data.len();
        slot.events.push_back(event);
        while slot.bytes > KEPT_BYTES {
            let Some(old) = slot.events.pop_front() else {
                break;
            };
            slot.bytes -= old.data.len();
            slot.dropped = old.seq;
        }
        slot.touched = Instant::now();
        slot.bell.send_modify(|b| b.seq = seq);
        Some(seq)
    }

    /// Rings `session`'s mailbox bell: a message was stored for it.
    pub fn mailbox(&self, session: &str) {
        let mut sessions = self.sessions();
        if let Some(slot) = sessions.slots.get_mut(session) {
            slot.touched = Instant::now();
            slot.bell.send_modify(|b| b.mailbox += 1);
        }
    }

    /// The number a stream of `session` starts after: `seq` of `boot`
    /// when the client saw events of this run; 0 (every kept event) for a
    /// client that saw another run's, as it missed all of this run's; the
    /// newest when it saw none (it has just loaded the history).
    pub fn resume(&self, last: Option<(&str, u64)>) -> u64 {
        match last {
            None => self.sessions().next,
            Some((boot, seq)) if boot == self.inner.boot => seq,
            Some(_) => 0,
        }
    }

    /// The kept events of `session` after number `after`, and the number
    /// of the newest event dropped (some owed were lost when it is above
    /// `after`).
    pub fn after(&self, session: &str, after: u64) -> (Vec<Event>, u64) {
        let sessions = self.sessions();
        match sessions.slots.get(session) {
            Some(slot) => (
                slot.events
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .collect(),
                slot.dropped,
            ),
            None => (Vec::new(), 0),
        }
    }

    /// Opens a stream for `session`: its bell, and a guard that counts it
    /// open until dropped.
    ///
    /// # Errors
    /// [`Full`] when the session or the server has the most streams open.
    pub fn open(&self, session: &str) -> Result<(watch::Receiver<Bell>, Open), Full> {
        let mut sessions = self.sessions();
        if sessions.open >= self.inner.max_streams {
            return Err(Full::Server);
        }
        let max = self.inner.max_per_session;
        let slot = sessions.slot(session, true).ok_or(Full::Server)?;
        if slot.open >= max {
            return Err(Full::Visitor);
        }
        slot.open += 1;
        slot.touched = Instant::now();
        let bell = slot.bell.subscribe();
        sessions.open += 1;
        metrics::gauge!("switchboard_chat_streams").set(sessions.open as f64);
        Ok((
            bell,
            Open {
                live: self.clone(),
                session: session.to_string(),
            },
        ))
    }

    /// Streams open now (all sessions).
    pub fn open_streams(&self) -> usize {
        self.sessions().open
    }
}

/// An open stream, counted until dropped.
pub struct Open {
    live: Live,
    session: String,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut sessions = self.live.sessions();
        sessions.open = sessions.open.saturating_sub(1);
        metrics::gauge!("switchboard_chat_streams").set(sessions.open as f64);
        if let Some(slot) = sessions.slots.get_mut(&self.session) {
            slot.open = slot.open.saturating_sub(1);
            slot.touched = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_resume_after_the_last_seen_number_of_this_boot() {
        let live = Live::new(10, 2);
        let (_bell, _open) = live.open("s").unwrap();
        let a = live.publish("s", "delta", "\"a\"".into()).unwrap();
        let b = live.publish("s", "delta", "\"b\"".into()).unwrap();
        live.publish("other", "delta", "\"x\"".into()).unwrap();
        let resume = live.resume(Some((live.boot(), a)));
        assert_eq!(resume, a);
        let (events, gap) = live.after("s", resume);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [b]);
        assert_eq!(gap, 0);
        // Another run's number: everything kept is owed.
        let resume = live.resume(Some(("not this boot", b)));
        assert_eq!(live.after("s", resume).0.len(), 2);
        // No number: from now on.
        let resume = live.resume(None);
        assert!(live.after("s", resume).0.is_empty());
    }

    #[test]
    fn old_events_are_dropped_past_the_budget_and_the_gap_is_told() {
        let live = Live::new(10, 2);
        let (_bell, _open) = live.open("s").unwrap();
        let piece = "x".repeat(1000);
        let first = live.publish("s", "delta", piece.clone()).unwrap();
        for _ in 0..100 {
            live.publish("s", "delta", piece.clone());
        }
        let (events, dropped) = live.after("s", first);
        assert!(dropped > first);
        assert!(events.iter().map(|e| e.data.len()).sum::<usize>() <= KEPT_BYTES);
    }

    #[test]
    fn streams_are_bounded_per_session_and_in_all_and_freed_when_dropped() {
        let live = Live::new(3, 2);
        let one = live.open("a").unwrap();
        let two = live.open("a").unwrap();
        assert_eq!(live.open("a").err(), Some(Full::Visitor));
        let three = live.open("b").unwrap();
        assert_eq!(live.open("c").err(), Some(Full::Server));
        drop(one);
        assert!(live.open("a").is_ok());
        drop((two, three));
        assert_eq!(live.open_streams(), 0);
    }

    #[tokio::test]
    async fn the_bell_rings_for_events_and_mailbox_messages() {
        let live = Live::new(10, 2);
        let (mut bell, _open) = live.open("s").unwrap();
        live.mailbox("s");
        bell.changed().await.unwrap();
        assert_eq!(bell.borrow_and_update().mailbox, 1);
        let seq = live.publish("s", "delta", "1".into()).unwrap();
        bell.changed().await.unwrap();
        assert_eq!(bell.borrow_and_update().seq, seq);
    }

    #[test]
    fn a_full_hub_keeps_nothing_for_sessions_nobody_listens_to() {
        let live = Live::new(10, 2);
        for i in 0..MAX_SESSIONS {
            live.publish(&format!("s{i}"), "delta", "1".into());
        }
        assert_eq!(live.publish("late", "delta", "1".into()), None);
        // A stream still opens, and then its session keeps events.
        let (_bell, _open) = live.open("late").unwrap();
        assert!(live.publish("late", "delta", "1".into()).is_some());
    }
}
