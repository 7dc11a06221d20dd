//! The one flow every chat platform shares, written once: receive → store →
//! per-place lock → answer (streamed, live-edited) → finish → give up to the
//! outbox; button presses; agents' messages and buttons in staff places;
//! posts in staff threads; delivery of what the core sends on its own.
//!
//! A platform implements [`Platform`]: only what differs (its ids, limits,
//! markup, how it sends, edits, shows "typing…" and acknowledges a press,
//! and how its errors are classified and retried). Its update handling
//! turns platform events into calls of the functions here.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

mod staff;

pub use staff::{
    Staff, StaffMember, StaffMessage, StaffPlatform, agent_message, post_card, staff_press,
};

use super::PlaceQueues;
use super::stream::{Sink, Streamer};
use super::text;
use crate::assistant::{self, Assistant, Pressed, Received, Reply, Turn};
use crate::button::NO_LONGER_AVAILABLE;
use crate::delivery::{self, Button, Deliver, Outgoing, Retry, Target};
use crate::desk::Desk;
use crate::inbound::guarded;
use crate::store::Store;

/// What a channel holds of the core.
pub struct ChannelCore {
    /// Answers customers.
    pub assistant: Assistant,
    /// The agents' side.
    pub desk: Desk,
    /// The conversation log.
    pub store: Store,
    /// Answers in one place are sent in order.
    queues: PlaceQueues,
}

impl ChannelCore {
    /// The core parts a channel uses.
    pub fn new(assistant: Assistant, desk: Desk) -> Self {
        Self {
            store: assistant.store().clone(),
            assistant,
            desk,
            queues: PlaceQueues::default(),
        }
    }
}

/// What a chat platform implements to be driven by this module.
#[async_trait::async_trait]
pub trait Platform: Clone + Send + Sync + 'static {
    /// The channel's name (in the store, the log and the registry).
    const CHANNEL: &'static str;
    /// The first wait before retrying a request (doubled each retry).
    const FIRST_BACKOFF: Duration;
    /// Where a message goes (chat, topic, thread, command response).
    type Place: Clone + Send + Sync + 'static;
    /// A sent message.
    type Id: Copy + Send + Sync + 'static;
    /// A failed request.
    type Error: std::fmt::Display + Send + Sync + 'static;
    /// What acknowledging a button press needs (callback, interaction).
    type Press: Send + Sync;

    /// The core parts this channel uses.
    fn core(&self) -> &ChannelCore;

    /// The conversation's place key ([`Turn::thread`], [`Target::thread`]).
    fn key(place: &Self::Place) -> String;
    /// The place a delivery goes to, or `None` when the target is not one
    /// of this platform's places.
    fn place_of(target: &Target) -> Option<Self::Place>;
    /// Where a message that could not be sent to `place` is retried from
    /// (the outbox) and whose customer is marked unreachable; `None` when
    /// nobody is (a command response that expires).
    fn target_of(place: &Self::Place) -> Option<Target>;
    /// A sent message as text (delivery results, staff post references).
    fn message_ref(id: Self::Id) -> String;

    /// The longest partial answer worth showing at `place` while it
    /// streams (0: none, only the final reply).
    fn partial_limit(&self, place: &Self::Place) -> usize;
    /// A partial answer in the platform's markup.
    fn render_partial(&self, text: &str) -> String;
    /// A final answer with its sources, in parts that fit a message.
    fn render_reply(&self, reply: &Reply) -> Vec<String>;
    /// Plain text in the platform's markup, in parts that fit a message.
    fn render_text(&self, text: &str) -> Vec<String>;
    /// What the core sends on its own to `place` (by default as
    /// [`Platform::render_text`]).
    fn render_delivery(&self, place: &Self::Place, text: &str) -> Vec<String> {
        let _ = place;
        self.render_text(text)
    }
    /// A rendered part back as plain text (the outbox holds plain text).
    fn plain(part: &str) -> String {
        part.to_string()
    }
    /// Whether `place` waits for an answer even when the reply is silent
    /// (a slash command's "thinking…").
    fn awaits_answer(place: &Self::Place) -> bool {
        let _ = place;
        false
    }
    /// What a place that awaits an answer shows for a silent reply (by
    /// default [`text::SILENT`]; no parts: nothing).
    fn render_silent(&self, reply: &Reply) -> Vec<String> {
        let _ = reply;
        vec![text::SILENT.to_string()]
    }
    /// Whether the final reply at `place` is returned to the caller of
    /// [`converse`] or [`press`] (as an HTTP response) instead of being
    /// sent; by default it is sent.
    fn returns_final(place: &Self::Place) -> bool {
        let _ = place;
        false
    }
    /// Minimum time between two edits of a streamed answer (the platforms'
    /// edit rate limits; a terminal has none).
    fn edit_every(&self) -> Duration {
        super::stream::EDIT_EVERY
    }

    /// Sends one message (one attempt; the driver retries). `key`, when
    /// given, is unique to this message part: a platform that can refuse a
    /// repeated send (Discord's nonce) uses it.
    async fn send(
        &self,
        place: &Self::Place,
        body: &str,
        buttons: &[Vec<Button>],
        key: Option<&str>,
    ) -> Result<Self::Id, Self::Error>;
    /// Replaces a message's text and buttons (one attempt).
    async fn edit(
        &self,
        place: &Self::Place,
        id: Self::Id,
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), Self::Error>;
    /// Shows "typing…" in `place`.
    async fn typing(&self, place: &Self::Place);
    /// How often "typing…" is renewed while an answer is awaited (`None`:
    /// shown once).
    fn typing_every() -> Option<Duration> {
        None
    }
    /// Acknowledges a button press, with a short text shown to the presser.
    async fn acknowledge(&self, press: &Self::Press, text: Option<&str>);

    /// What a failed request means for delivery: worth retrying, the
    /// customer unreachable, or refused for good.
    fn failure(error: &Self::Error) -> delivery::Error;
    /// How long to wait before retrying `error` (given the current
    /// back-off), or `None` when it is final.
    fn retry_wait(error: &Self::Error, backoff: Duration) -> Option<Duration>;
}

/// Runs a platform request with the platform's retry policy (up to three
/// retries).
///
/// # Errors
/// The last error.
pub async fn retry<P: Platform, T, F, Fut>(attempt: F) -> Result<T, P::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, P::Error>>,
{
    super::retrying(P::FIRST_BACKOFF, P::retry_wait, attempt).await
}

/// How a message the bot posted in a staff place is remembered.
pub fn post_ref<P: Platform>(id: P::Id) -> String {
    format!("msg:{}", P::message_ref(id))
}

/// Stores a customer's message, then answers it in the background, in
/// order with the other messages of its place. A repeated platform id is
/// not answered again.
///
/// # Errors
/// When the message cannot be stored (it must not be confirmed).
pub async fn receive<P: Platform>(
    platform: &P,
    place: P::Place,
    turn: Turn,
) -> Result<(), assistant::Error> {
    let received = platform.core().assistant.receive(turn).await?;
    if received.is_duplicate() {
        return Ok(());
    }
    // The place's turn is taken here, in the order messages arrive, not in
    // the spawned task, which may start after a later message's.
    let ticket = platform.core().queues.ticket(&P::key(&place));
    let platform = platform.clone();
    tokio::spawn(async move {
        let answered = guarded(async {
            if let Err(e) = answer_after(ticket, &platform, place, received).await {
                tracing::error!(channel = P::CHANNEL, "answering failed: {e}");
            }
        });
        if let Err(panic) = answered.await {
            // Stored, so `answer_pending` tries again after a restart.
            tracing::error!(channel = P::CHANNEL, "answer {panic}");
            metrics::counter!("switchboard_answer_panics_total", "channel" => P::CHANNEL)
                .increment(1);
        }
    });
    Ok(())
}

/// Stores a customer's message and answers it before returning, for a
/// channel whose customer waits for each answer (the console). A repeated
/// platform id sends nothing and returns the [`assistant::Action::Duplicate`]
/// reply.
///
/// # Errors
/// When the message cannot be stored or answered.
pub async fn converse<P: Platform>(
    platform: &P,
    place: P::Place,
    turn: Turn,
) -> Result<Reply, assistant::Error> {
    let received = platform.core().assistant.receive(turn).await?;
    if received.is_duplicate() {
        return platform.core().assistant.answer(received, None).await;
    }
    answer_in_order(platform, place, received).await
}

/// Answers a stored message once the answers before it in its place are
/// sent.
///
/// # Errors
/// When the answer failed (the message stays stored, unanswered).
pub async fn answer_in_order<P: Platform>(
    platform: &P,
    place: P::Place,
    received: Received,
) -> Result<Reply, assistant::Error> {
    let ticket = platform.core().queues.ticket(&P::key(&place));
    answer_after(ticket, platform, place, received).await
}

/// Answers a stored message once the answers whose tickets were taken
/// before `ticket` in its place are sent.
async fn answer_after<P: Platform>(
    mut ticket: super::Ticket,
    platform: &P,
    place: P::Place,
    received: Received,
) -> Result<Reply, assistant::Error> {
    ticket.wait().await;
    // `ticket` is dropped on return, which lets the place's next answer go.
    answer(platform, place, received).await
}

/// Answers a stored message: "typing…", then the streamed answer, then the
/// final text with sources and buttons.
async fn answer<P: Platform>(
    platform: &P,
    place: P::Place,
    received: Received,
) -> Result<Reply, assistant::Error> {
    platform.typing(&place).await;
    let typing = P::typing_every().map(|every| {
        let (platform, place) = (platform.clone(), place.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                platform.typing(&place).await;
            }
        })
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut stream = streamer(platform, &place);
    let show = async {
        while let Some(piece) = rx.recv().await {
            if let Some(t) = &typing {
                t.abort();
            }
            stream.push(&piece).await;
        }
    };
    // The stream ends when the answer is written (its sender dropped).
    let (answered, ()) = tokio::join!(platform.core().assistant.answer(received, Some(tx)), show);
    if let Some(t) = typing {
        t.abort();
    }
    let reply = answered?;
    finish(&mut stream, &reply).await;
    Ok(reply)
}

/// A customer's button press: acknowledged, then its reply sent to `place`
/// (unless the platform returns it, [`Platform::returns_final`]); returns
/// what the press did.
///
/// # Errors
/// When the press cannot be handled (the store failed); it is not
/// acknowledged then.
pub async fn press<P: Platform>(
    platform: &P,
    place: P::Place,
    press: &P::Press,
    turn: Turn,
) -> Result<Pressed, assistant::Error> {
    let pressed = platform.core().assistant.press(turn).await?;
    match &pressed {
        Pressed::Reply(reply) => {
            platform.acknowledge(press, None).await;
            finish(&mut streamer(platform, &place), reply).await;
        }
        Pressed::Message(m) => {
            platform.acknowledge(press, None).await;
            if !P::returns_final(&place) {
                send_text(platform, &place, &m.text, m.buttons.clone()).await;
            }
        }
        Pressed::Feedback(_) => {
            platform
                .acknowledge(press, Some(text::FEEDBACK_THANKS))
                .await
        }
        Pressed::Unknown => platform.acknowledge(press, None).await,
        Pressed::Stale => platform.acknowledge(press, Some(NO_LONGER_AVAILABLE)).await,
    }
    Ok(pressed)
}

/// Sends plain text with buttons to `place`; retries, then the outbox.
pub async fn send_text<P: Platform>(
    platform: &P,
    place: &P::Place,
    text: &str,
    buttons: Vec<Vec<Button>>,
) {
    let parts = platform.render_text(text);
    streamer(platform, place).finish(&parts, &buttons).await;
}

/// Sends `text` to `place` in the background, after the answers to the
/// messages received there before it (e.g. "text only, please" for a photo).
pub fn say_in_order<P: Platform>(platform: &P, place: P::Place, text: &'static str) {
    let mut ticket = platform.core().queues.ticket(&P::key(&place));
    let platform = platform.clone();
    tokio::spawn(async move {
        ticket.wait().await;
        send_text(&platform, &place, text, Vec::new()).await;
    });
}

/// The core's delivery through a platform: register
/// `Arc::new(Delivery(platform))` in the [`delivery::Registry`].
pub struct Delivery<P>(pub P);

#[async_trait::async_trait]
impl<P: Platform> Deliver for Delivery<P> {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        deliver(&self.0, target, message, None).await
    }

    async fn deliver_keyed(
        &self,
        target: &Target,
        message: &Outgoing,
        key: &str,
    ) -> Result<Option<String>, delivery::Error> {
        deliver(&self.0, target, message, Some(key)).await
    }
}

/// Sends `message` in parts, buttons under the last; with `key`, each part
/// carries a key made from it (`key:part`).
async fn deliver<P: Platform>(
    platform: &P,
    target: &Target,
    message: &Outgoing,
    key: Option<&str>,
) -> Result<Option<String>, delivery::Error> {
    let place = P::place_of(target).ok_or_else(|| {
        delivery::Error::Permanent(format!("not a {} place: {}", P::CHANNEL, target.thread))
    })?;
    let parts = platform.render_delivery(&place, &message.text);
    let mut last = None;
    for (i, part) in parts.iter().enumerate() {
        let buttons: &[Vec<Button>] = if i + 1 == parts.len() {
            &message.buttons
        } else {
            &[]
        };
        let part_key = key.map(|key| format!("{key}:{i}"));
        match retry::<P, _, _, _>(|| platform.send(&place, part, buttons, part_key.as_deref()))
            .await
        {
            Ok(id) => last = Some(P::message_ref(id)),
            Err(e) => return Err(P::failure(&e)),
        }
    }
    Ok(last)
}

fn streamer<P: Platform>(platform: &P, place: &P::Place) -> Streamer<PlaceSink<P>> {
    Streamer::new(PlaceSink {
        platform: platform.clone(),
        place: place.clone(),
    })
}

/// The final messages of a reply: answer, sources, buttons. A silent reply
/// (an agent has the conversation) sends nothing, except where the
/// platform waits for an answer.
async fn finish<P: Platform>(stream: &mut Streamer<PlaceSink<P>>, reply: &Reply) {
    if P::returns_final(&stream.sink().place) {
        return;
    }
    if reply.is_silent() {
        if P::awaits_answer(&stream.sink().place) && !stream.has_sent() {
            let parts = stream.sink().platform.render_silent(reply);
            stream.finish(&parts, &[]).await;
        }
        return;
    }
    let parts = stream.sink().platform.render_reply(reply);
    stream.finish(&parts, &reply.buttons()).await;
}

/// A place of a platform as the sink of a streamed answer.
struct PlaceSink<P: Platform> {
    platform: P,
    place: P::Place,
}

#[async_trait::async_trait]
impl<P: Platform> Sink for PlaceSink<P> {
    type Id = P::Id;
    type Error = P::Error;

    fn partial_limit(&self) -> usize {
        self.platform.partial_limit(&self.place)
    }

    fn render_partial(&self, text: &str) -> String {
        self.platform.render_partial(text)
    }

    fn edit_every(&self) -> Duration {
        self.platform.edit_every()
    }

    async fn send(&mut self, body: &str, buttons: &[Vec<Button>]) -> Result<P::Id, P::Error> {
        let (platform, place) = (&self.platform, &self.place);
        retry::<P, _, _, _>(|| platform.send(place, body, buttons, None)).await
    }

    async fn edit(
        &mut self,
        id: P::Id,
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), P::Error> {
        let (platform, place) = (&self.platform, &self.place);
        retry::<P, _, _, _>(|| platform.edit(place, id, body, buttons)).await
    }

    /// A send that finally failed: kept in the outbox, or the customer
    /// marked unreachable ([`delivery::settle_failure`]).
    async fn give_up(&mut self, rest: &[String], buttons: &[Vec<Button>], error: &P::Error) {
        let Some(target) = P::target_of(&self.place) else {
            tracing::warn!(channel = P::CHANNEL, "send failed: {error}");
            return;
        };
        let message = Outgoing {
            text: rest
                .iter()
                .map(|p| P::plain(p))
                .collect::<Vec<_>>()
                .join("\n"),
            buttons: buttons.to_vec(),
            notice: false,
        };
        let store = &self.platform.core().store;
        let failure = P::failure(error);
        if let Err(e) =
            delivery::settle_failure(store, &target, &message, None, failure, Retry::Outbox).await
        {
            tracing::error!(channel = P::CHANNEL, "could not keep a failed send: {e}");
        }
    }
}
