//! A streamed answer as chat platforms show it: one message, sent with the
//! first words and edited as more arrive (at most about once a second, to
//! stay inside the platforms' edit rate limits), then replaced by the final
//! text with sources and buttons, split over several messages when long.
//!
//! Each channel supplies a [`Sink`]: how its messages are sent and edited,
//! and what happens to a send that finally failed.

use std::time::Duration;

use tokio::time::Instant;

use crate::delivery::Button;

/// Minimum time between two edits of a streamed answer.
pub const EDIT_EVERY: Duration = Duration::from_millis(1000);

/// Where a streamed answer is written.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// A sent message.
    type Id: Copy + Send + Sync;
    /// A failed send or edit.
    type Error: Send + Sync;

    /// The longest partial answer worth showing while it streams (longer
    /// text waits for the final, split messages).
    fn partial_limit(&self) -> usize;

    /// A partial answer as the platform must receive it (escaped).
    fn render_partial(&self, text: &str) -> String;

    /// Minimum time between two edits ([`EDIT_EVERY`] unless the platform
    /// has no edit rate limit, like a terminal).
    fn edit_every(&self) -> Duration {
        EDIT_EVERY
    }

    /// Sends a new message.
    async fn send(&mut self, body: &str, buttons: &[Vec<Button>]) -> Result<Self::Id, Self::Error>;

    /// Replaces a message's text and buttons.
    async fn edit(
        &mut self,
        id: Self::Id,
        body: &str,
        buttons: &[Vec<Button>],
    ) -> Result<(), Self::Error>;

    /// The parts from `rest` on could not be sent: keep them for later
    /// (outbox) or mark the customer unreachable.
    async fn give_up(&mut self, rest: &[String], buttons: &[Vec<Button>], error: &Self::Error);
}

/// One streamed answer.
pub struct Streamer<S: Sink> {
    sink: S,
    sent: Option<S::Id>,
    text: String,
    last_edit: Instant,
    failed: bool,
}

impl<S: Sink> Streamer<S> {
    /// A streamer writing to `sink`.
    pub fn new(sink: S) -> Self {
        Self {
            sink,
            sent: None,
            text: String::new(),
            last_edit: Instant::now(),
            failed: false,
        }
    }

    /// Adds streamed text: sends the first message, then edits it when the
    /// last edit is at least [`Sink::edit_every`] old. A failure stops the
    /// partial updates; the final messages still go out.
    pub async fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
        if self.failed
            || self.text.is_empty()
            || self.text.chars().count() > self.sink.partial_limit()
        {
            return;
        }
        let body = self.sink.render_partial(&self.text);
        match self.sent {
            None => match self.sink.send(&body, &[]).await {
                Ok(id) => {
                    self.sent = Some(id);
                    self.last_edit = Instant::now();
                }
                Err(_) => self.failed = true,
            },
            Some(id) if self.last_edit.elapsed() >= self.sink.edit_every() => {
                if self.sink.edit(id, &body, &[]).await.is_err() {
                    self.failed = true;
                }
                self.last_edit = Instant::now();
            }
            Some(_) => {}
        }
    }

    /// Writes the final parts (already rendered): the first into the
    /// streamed message (or a new one), the rest after it; the buttons go
    /// under the last part. A part that cannot be sent is handed, with the
    /// rest, to [`Sink::give_up`].
    pub async fn finish(&mut self, parts: &[String], buttons: &[Vec<Button>]) {
        for (i, part) in parts.iter().enumerate() {
            let row: &[Vec<Button>] = if i + 1 == parts.len() { buttons } else { &[] };
            let result = match (i, self.sent) {
                (0, Some(id)) => {
                    // Keep to the edit rate even for the last edit.
                    let (since, every) = (self.last_edit.elapsed(), self.sink.edit_every());
                    if since < every {
                        tokio::time::sleep(every - since).await;
                    }
                    self.sink.edit(id, part, row).await.map(|()| id)
                }
                _ => self.sink.send(part, row).await,
            };
            match result {
                Ok(id) => self.sent = Some(id),
                Err(e) => {
                    self.sink.give_up(&parts[i..], buttons, &e).await;
                    return;
                }
            }
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Whether a message has been sent.
    pub fn has_sent(&self) -> bool {
        self.sent.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what a platform would receive.
    #[derive(Default)]
    struct Log {
        calls: Vec<String>,
        fail_sends_after: Option<usize>,
        given_up: Vec<String>,
    }

    #[async_trait::async_trait]
    impl Sink for Log {
        type Id = usize;
        type Error = String;
        fn partial_limit(&self) -> usize {
            20
        }
        fn render_partial(&self, text: &str) -> String {
            text.to_uppercase()
        }
        async fn send(&mut self, body: &str, buttons: &[Vec<Button>]) -> Result<usize, String> {
            let sends = self.calls.iter().filter(|c| c.starts_with("send")).count();
            if self.fail_sends_after.is_some_and(|n| sends >= n) {
                return Err("down".into());
            }
            self.calls.push(format!("send {body} [{}]", buttons.len()));
            Ok(sends)
        }
        async fn edit(
            &mut self,
            id: usize,
            body: &str,
            buttons: &[Vec<Button>],
        ) -> Result<(), String> {
            self.calls
                .push(format!("edit {id} {body} [{}]", buttons.len()));
            Ok(())
        }
        async fn give_up(&mut self, rest: &[String], _buttons: &[Vec<Button>], _error: &String) {
            self.given_up.extend(rest.iter().cloned());
        }
    }

    fn buttons() -> Vec<Vec<Button>> {
        vec![vec![Button {
            label: "ok".into(),
            data: "ok".into(),
        }]]
    }

    #[tokio::test(start_paused = true)]
    async fn sends_once_edits_at_the_rate_then_finishes_with_buttons_last() {
        let mut s = Streamer::new(Log::default());
        s.push("a").await;
        s.push("b").await; // too soon to edit
        tokio::time::advance(EDIT_EVERY).await;
        s.push("c").await;
        s.push(&"x".repeat(30)).await; // past the partial limit
        s.finish(&["final one".into(), "final two".into()], &buttons())
            .await;
        assert_eq!(
            s.sink.calls,
            vec![
                "send A [0]",
                "edit 0 ABC [0]",
                "edit 0 final one [0]",
                "send final two [1]",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_part_is_given_up_with_the_rest() {
        let mut s = Streamer::new(Log {
            fail_sends_after: Some(1),
            ..Log::default()
        });
        s.finish(&["one".into(), "two".into(), "three".into()], &[])
            .await;
        assert_eq!(s.sink.calls, vec!["send one [0]"]);
        assert_eq!(s.sink.given_up, vec!["two", "three"]);
    }
}
