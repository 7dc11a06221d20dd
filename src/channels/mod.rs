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
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// One lock per place (chat, channel, thread): a channel answers the
/// messages of one place in order while different places run at once.
#[derive(Default)]
pub struct PlaceLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl PlaceLocks {
    /// The lock of `key`; hold its guard while answering there.
    pub fn of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 10_000 {
            // Forget the places nobody is answering in right now.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key.to_string()).or_default().clone()
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

    #[test]
    fn place_locks_are_shared_per_key() {
        let locks = PlaceLocks::default();
        assert!(Arc::ptr_eq(&locks.of("a"), &locks.of("a")));
        assert!(!Arc::ptr_eq(&locks.of("a"), &locks.of("b")));
    }
}
