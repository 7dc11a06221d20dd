//! Channels: each turns a platform's messages into [`crate::assistant::Turn`]s
//! and renders [`crate::assistant::Reply`]s back.
//!
//! Chat platforms (Telegram, Discord, the terminal's [`console`]) implement
//! [`driver::Platform`] and leave the shared flow (store, per-place order,
//! streaming, presses, staff places, the outbox) to [`driver`]; [`text`]
//! holds what channels say. The web widget answers in the HTTP response
//! (see `web::chat`), through the assistant directly.

pub mod console;
pub mod discord;
pub mod driver;
pub mod live;
pub mod stream;
pub mod telegram;
pub mod text;
pub mod web;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// Where to cut `head` (the longest prefix that fits a platform's limit):
/// after its last paragraph break, else line break, else sentence end or
/// space, as long as that keeps more than half of it; else at its end.
pub fn cut_point(head: &str) -> usize {
    let fit = head.len();
    ["\n\n", "\n", ". ", " "]
        .iter()
        .find_map(|sep| {
            head.rfind(sep)
                .filter(|&at| at > fit / 2)
                .map(|at| at + sep.len())
        })
        .unwrap_or(fit)
}

/// One queue per place (chat, channel, thread): a channel answers the
/// messages of one place in the order they were received while different
/// places run at once.
///
/// A place's turn is taken with [`PlaceQueues::ticket`], synchronously,
/// where the message is received; the answer may then run on any task and
/// waits for the tickets taken before it. (A lock taken inside the spawned
/// task would order answers by which task happened to run first.)
#[derive(Default)]
pub struct PlaceQueues(Mutex<HashMap<String, oneshot::Receiver<()>>>);

/// A place in one place's queue: [`Ticket::wait`] returns once every ticket
/// taken before it there is dropped; dropping it lets the next one go.
pub struct Ticket {
    before: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Ticket {
    /// Waits for the tickets taken before this one in its place.
    pub async fn wait(&mut self) {
        if let Some(before) = &mut self.before {
            // Dropped unsent is the signal: the one before is done.
            let _ = before.await;
            self.before = None;
        }
    }
}

impl PlaceQueues {
    /// The next turn in `key`'s queue; hold it while answering there.
    pub fn ticket(&self, key: &str) -> Ticket {
        let (done, after) = oneshot::channel();
        let mut queues = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if queues.len() > 10_000 {
            // Forget the places nobody is answering in right now.
            queues.retain(|_, last| {
                matches!(last.try_recv(), Err(oneshot::error::TryRecvError::Empty))
            });
        }
        let before = queues.insert(key.to_string(), after);
        Ticket {
            before,
            _done: done,
        }
    }
}

/// Runs a platform request, retrying it up to three times. `wait` says how
/// long to wait before retrying an error (given the current back-off,
/// which starts at `first` and doubles), or `None` when the error is final.
pub async fn retrying<T, E, F, Fut>(
    first: Duration,
    wait: impl Fn(&E, Duration) -> Option<Duration>,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = first;
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if tries < 3 => match wait(&e, backoff) {
                Some(pause) => {
                    tokio::time::sleep(pause).await;
                    backoff *= 2;
                }
                None => return Err(e),
            },
            other => return other,
        }
        tries += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retrying_stops_at_a_final_error_or_after_three_retries() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let always = |_: &&str, b: Duration| Some(b);
        let result: Result<(), &str> = retrying(Duration::from_millis(10), always, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err("busy") }
        })
        .await;
        assert_eq!(result, Err("busy"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let never = |_: &&str, _: Duration| None;
        let result: Result<(), &str> = retrying(Duration::from_millis(10), never, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err("refused") }
        })
        .await;
        assert_eq!(result, Err("refused"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_place_answers_in_the_order_tickets_were_taken() {
        use futures::FutureExt;
        let queues = PlaceQueues::default();
        let mut first = queues.ticket("a");
        let mut second = queues.ticket("a");
        let mut elsewhere = queues.ticket("b");
        // The second waits for the first even when it asks first.
        assert!(second.wait().now_or_never().is_none());
        assert!(elsewhere.wait().now_or_never().is_some());
        assert!(first.wait().now_or_never().is_some());
        let mut third = queues.ticket("a");
        drop(first);
        assert!(second.wait().now_or_never().is_some());
        assert!(third.wait().now_or_never().is_none());
        drop(second);
        assert!(third.wait().now_or_never().is_some());
    }

    #[test]
    fn idle_places_are_forgotten() {
        let queues = PlaceQueues::default();
        let busy = queues.ticket("busy");
        for i in 0..=10_000 {
            drop(queues.ticket(&i.to_string()));
        }
        drop(queues.ticket("last"));
        let queues = queues.0.lock().unwrap();
        assert!(queues.len() <= 3, "{}", queues.len());
        assert!(queues.contains_key("busy"));
        drop(queues);
        drop(busy);
    }
}
