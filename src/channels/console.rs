//! The console channel: `switchboard chat` and `switchboard ask`, on the
//! channel driver like every chat platform.
//!
//! A terminal user is a customer on channel `console`. Each `chat` session
//! and each `ask` is its own conversation (its place). The terminal is the
//! smallest [`Platform`]: a message is text written to it, and an edit
//! writes what the new text adds to the last message (a streamed answer
//! grows in place; anything else is written again below).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::driver::{self, ChannelCore, Platform};
use crate::assistant::{Action, Error, Reply, Template, Turn};
use crate::delivery::{self, Button, Target};

/// Channel name in the log.
pub const CHANNEL: &str = "console";

fn customer_id() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "console".into())
}

/// The terminal, shared by answers and by agent messages that arrive while
/// the customer types.
pub type SharedOut = Arc<Mutex<Box<dyn Write + Send>>>;

/// One terminal conversation as a [`Platform`].
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    core: ChannelCore,
    out: SharedOut,
    /// This session's conversation (its place and thread key).
    thread: String,
    screen: Mutex<Screen>,
}

/// What the terminal shows last.
#[derive(Default)]
struct Screen {
    /// Messages written so far (the last one's id).
    written: u64,
    /// The last message and its text, which an edit may extend.
    last: Option<(u64, String)>,
    /// Whether the cursor is after text on its line.
    mid_line: bool,
}

/// A write to the terminal that failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The conversation belongs to another terminal (another `chat`
    /// process sharing the database): left for that one.
    #[error("conversation of another console session")]
    OtherSession,
    /// The terminal is gone.
    #[error("writing to the terminal: {0}")]
    Io(#[from] std::io::Error),
}

impl Console {
    /// A console conversation writing to `out`, in a new conversation whose
    /// thread key starts with `kind` (`chat`, `ask`).
    pub fn new(core: ChannelCore, out: SharedOut, kind: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                core,
                out,
                thread: format!("{kind}-{}", crate::store::new_id()),
                screen: Mutex::default(),
            }),
        }
    }

    /// The customer says `text`: stored, answered and written to the
    /// terminal before this returns.
    ///
    /// # Errors
    /// When the message cannot be stored or answered.
    pub async fn say(&self, text: &str) -> Result<Reply, Error> {
        let turn = Turn {
            channel: CHANNEL.into(),
            customer_id: customer_id(),
            customer_name: None,
            thread: self.inner.thread.clone(),
            platform_message_id: None,
            text: text.into(),
        };
        driver::converse(self, self.inner.thread.clone(), turn).await
    }

    /// Runs `write` on the screen and the terminal.
    fn write<T>(
        &self,
        write: impl FnOnce(&mut Screen, &mut dyn Write) -> std::io::Result<T>,
    ) -> Result<T, SendError> {
        let mut screen = self.inner.screen.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = self.inner.out.lock().unwrap_or_else(|p| p.into_inner());
        let result = write(&mut screen, &mut **out)?;
        out.flush()?;
        Ok(result)
    }
}

impl Screen {
    /// Writes a new message below what is shown.
    fn write_new(&mut self, out: &mut dyn Write, body: &str) -> std::io::Result<u64> {
        if self.mid_line {
            out.write_all(b"\n")?;
        }
        out.write_all(body.as_bytes())?;
        self.written += 1;
        self.mid_line = !body.is_empty() && !body.ends_with('\n');
        self.last = Some((self.written, body.to_string()));
        Ok(self.written)
    }

    /// Replaces message `id` by `body`: only the added text when `body`
    /// continues the last message shown, else `body` again below it.
    fn write_edit(&mut self, out: &mut dyn Write, id: u64, body: &str) -> std::io::Result<()> {
        let shown = match &self.last {
            Some((last, text)) if *last == id => text.as_str(),
            _ => "",
        };
        let common = common_prefix(shown, body);
        let tail = if !shown.is_empty() && common >= shown.trim_end().len() {
            &body[common..]
        } else {
            // Not a continuation: the final text replaces what was shown.
            if self.mid_line {
                out.write_all(b"\n")?;
            }
            out.write_all(b"\n")?;
            self.mid_line = false;
            body
        };
        out.write_all(tail.as_bytes())?;
        if !tail.is_empty() {
            self.mid_line = !tail.ends_with('\n');
        }
        self.last = Some((id, body.to_string()));
        Ok(())
    }
}

/// The length in bytes of the longest common prefix of `a` and `b` that
/// ends on a character boundary of both.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

/// The lines after an answer: sources, and what happens next.
pub fn render_footer(reply: &Reply) -> String {
    let mut footer = String::new();
    if !reply.sources.is_empty() {
        footer.push_str("\nSources:\n");
        for (i, s) in reply.sources.iter().enumerate() {
            match &s.url {
                Some(url) => footer.push_str(&format!("  [{}] {} — {url}\n", i + 1, s.title)),
                None => footer.push_str(&format!("  [{}] {} ({})\n", i + 1, s.title, s.slug)),
            }
        }
    }
    match reply.action {
        Action::Answer => footer.push_str("Did this solve it? Reply yes or no.\n"),
        Action::ToAgent => footer.push_str(
            "(A person from the support team has your conversation; your message was passed on.)\n",
        ),
        Action::HandOff(_) => footer.push_str("(Handed over to the support team.)\n"),
        _ => {}
    }
    footer
}

#[async_trait::async_trait]
impl Platform for Console {
    const CHANNEL: &'static str = CHANNEL;
    const FIRST_BACKOFF: Duration = Duration::ZERO;
    /// The conversation's thread key.
    type Place = String;
    /// The number of the message written.
    type Id = u64;
    type Error = SendError;
    /// The console has no buttons.
    type Press = ();

    fn core(&self) -> &ChannelCore {
        &self.inner.core
    }

    fn key(place: &String) -> String {
        place.clone()
    }

    fn place_of(target: &Target) -> Option<String> {
        Some(target.thread.clone())
    }

    fn target_of(place: &String) -> Option<Target> {
        Some(Target {
            channel: CHANNEL.into(),
            customer_id: customer_id(),
            thread: place.clone(),
        })
    }

    fn message_ref(id: u64) -> String {
        id.to_string()
    }

    fn partial_limit(&self, _place: &Self::Place) -> usize {
        usize::MAX
    }

    fn render_partial(&self, text: &str) -> String {
        text.to_string()
    }

    fn render_reply(&self, reply: &Reply) -> Vec<String> {
        vec![format!("{}\n{}", reply.answer, render_footer(reply))]
    }

    fn render_text(&self, text: &str) -> Vec<String> {
        vec![format!("{text}\n")]
    }

    /// Agents' messages and notices arrive while the customer may be at
    /// the prompt: on a line of their own.
    fn render_delivery(&self, _place: &String, text: &str) -> Vec<String> {
        vec![format!("\n{text}\n")]
    }

    /// The customer waits at the terminal for every message.
    fn awaits_answer(_place: &String) -> bool {
        true
    }

    /// Says that a person has the conversation; nothing for a limited or
    /// repeated message.
    fn render_silent(&self, reply: &Reply) -> Vec<String> {
        let footer = render_footer(reply);
        if footer.is_empty() {
            Vec::new()
        } else {
            vec![footer]
        }
    }

    /// A terminal has no edit rate limit: streamed words appear at once.
    fn edit_every(&self) -> Duration {
        Duration::ZERO
    }

    async fn send(
        &self,
        place: &String,
        body: &str,
        _buttons: &[Vec<Button>],
        _key: Option<&str>,
    ) -> Result<u64, SendError> {
        if *place != self.inner.thread {
            return Err(SendError::OtherSession);
        }
        self.write(|screen, out| screen.write_new(out, body))
    }

    async fn edit(
        &self,
        place: &String,
        id: u64,
        body: &str,
        _buttons: &[Vec<Button>],
    ) -> Result<(), SendError> {
        if *place != self.inner.thread {
            return Err(SendError::OtherSession);
        }
        self.write(|screen, out| screen.write_edit(out, id, body))
    }

    async fn typing(&self, _place: &String) {}

    async fn acknowledge(&self, _press: &(), _text: Option<&str>) {}

    /// Another session's conversation is retried from the outbox (that
    /// session, or this one's outbox loop, delivers it); a closed terminal
    /// is not.
    fn failure(error: &SendError) -> delivery::Error {
        match error {
            SendError::OtherSession => delivery::Error::Temporary(error.to_string()),
            SendError::Io(_) => delivery::Error::Permanent(error.to_string()),
        }
    }

    fn retry_wait(_error: &SendError, _backoff: Duration) -> Option<Duration> {
        None
    }
}

/// Answers one question in its own conversation, streaming the answer to
/// `out` (or nowhere).
///
/// # Errors
/// When the message cannot be stored or answered.
pub async fn ask(
    core: ChannelCore,
    question: &str,
    out: Option<Box<dyn Write + Send>>,
) -> Result<Reply, Error> {
    let out = out.unwrap_or_else(|| Box::new(std::io::sink()));
    Console::new(core, Arc::new(Mutex::new(out)), "ask")
        .say(question)
        .await
}

/// A conversation on the terminal. With `interactive`, prints a prompt and a
/// greeting; otherwise answers each input line in turn and ends at EOF.
/// Messages from agents (after a hand-off) and surveys are printed as they
/// arrive.
///
/// # Errors
/// When a message cannot be stored or stdin cannot be read.
pub async fn chat<R: AsyncBufRead + Unpin>(
    core: ChannelCore,
    input: R,
    out: SharedOut,
    interactive: bool,
) -> Result<(), ChatError> {
    let console = Console::new(core, out.clone(), "chat");
    let core = console.core();
    let registry = core.desk.registry().clone();
    registry.register(CHANNEL, Arc::new(driver::Delivery(console.clone())));
    let stop = tokio_util::sync::CancellationToken::new();
    let outbox = tokio::spawn(delivery::run_outbox(
        registry,
        core.store.clone(),
        Duration::from_millis(500),
        stop.clone().cancelled_owned(),
    ));
    let surveys = core.assistant.surveys().map(|surveys| {
        tokio::spawn(
            surveys
                .clone()
                .run(Duration::from_secs(2), stop.clone().cancelled_owned()),
        )
    });
    let prompt = |text: &str| {
        let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    if interactive {
        let welcome = core
            .assistant
            .render(Template::Welcome, serde_json::json!({}))?;
        prompt(&format!("{welcome}\n(Ctrl-D to quit.)\n\n"));
    }
    let mut lines = input.lines();
    let result = loop {
        if interactive {
            prompt("you> ");
        }
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break Ok(()),
            Err(e) => break Err(ChatError::Input(e)),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if interactive {
            prompt("bot> ");
        }
        match console.say(line).await {
            Ok(reply) if reply.action == Action::Duplicate => continue,
            Ok(_) => prompt("\n"),
            Err(e) => break Err(e.into()),
        }
    };
    stop.cancel();
    for worker in std::iter::once(outbox).chain(surveys) {
        let _ = worker.await;
    }
    result
}

/// A chat session failure.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The assistant failed.
    #[error(transparent)]
    Assistant(#[from] Error),
    /// Reading input failed.
    #[error("reading input: {0}")]
    Input(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the terminal shows after the calls `script` makes.
    fn shown(script: impl FnOnce(&mut Screen, &mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        script(&mut Screen::default(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_streamed_answer_grows_in_place_and_ends_with_its_footer() {
        let text = shown(|screen, out| {
            let id = screen.write_new(out, "To get").unwrap();
            screen.write_edit(out, id, "To get a refund").unwrap();
            screen
                .write_edit(
                    out,
                    id,
                    "To get a refund, ask.\n\nSources:\n  [1] Refunds\n",
                )
                .unwrap();
        });
        assert_eq!(text, "To get a refund, ask.\n\nSources:\n  [1] Refunds\n");
    }

    #[test]
    fn a_final_text_that_does_not_continue_the_stream_is_written_below_it() {
        let text = shown(|screen, out| {
            let id = screen.write_new(out, "Partial ans").unwrap();
            screen.write_edit(out, id, "Another answer.\n").unwrap();
            // A message after it starts on its own line.
            screen.write_new(out, "\nalice joined.\n").unwrap();
        });
        assert_eq!(text, "Partial ans\n\nAnother answer.\n\nalice joined.\n");
    }

    #[test]
    fn a_message_arriving_mid_line_starts_a_new_line() {
        let text = shown(|screen, out| {
            let id = screen.write_new(out, "Half").unwrap();
            screen.write_new(out, "Notice\n").unwrap();
            // An edit of a message that is no longer the last is written again.
            screen.write_edit(out, id, "Half done.\n").unwrap();
        });
        assert_eq!(text, "Half\nNotice\n\nHalf done.\n");
    }

    proptest! {
        #[test]
        fn the_common_prefix_is_shared_and_ends_on_characters(a in ".*", b in ".*") {
            let n = common_prefix(&a, &b);
            prop_assert!(a.is_char_boundary(n) && b.is_char_boundary(n));
            prop_assert_eq!(&a[..n], &b[..n]);
            // Longest: the next characters differ, or one string ended.
            prop_assert!(a[n..].chars().next().zip(b[n..].chars().next()).is_none_or(|(x, y)| x != y));
        }

        #[test]
        fn a_continuation_is_its_own_prefix(a in ".*", b in ".*") {
            let joined = format!("{a}{b}");
            prop_assert_eq!(common_prefix(&a, &joined), a.len());
        }
    }
}
