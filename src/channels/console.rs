//! The console channel: `switchboard chat` and `switchboard ask`.
//!
//! A terminal user is a customer on channel `console`. Each `chat` session
//! and each `ask` is its own conversation.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

use crate::assistant::{Action, Assistant, Error, Reply, Template, Turn};
use crate::delivery::{self, Deliver, Outgoing, Target};

/// Channel name in the log.
pub const CHANNEL: &str = "console";

fn customer_id() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "console".into())
}

fn turn(thread: &str, text: &str) -> Turn {
    Turn {
        channel: CHANNEL.into(),
        customer_id: customer_id(),
        customer_name: None,
        thread: thread.into(),
        platform_message_id: None,
        text: text.into(),
    }
}

/// Answers one question; streams the answer to `out` when `stream` is set.
///
/// # Errors
/// When the message cannot be stored.
pub async fn ask(
    assistant: &Assistant,
    question: &str,
    out: Option<&mut (dyn Write + Send)>,
) -> Result<Reply, Error> {
    let thread = format!("ask-{}", crate::store::new_id());
    answer(assistant, &thread, question, out).await
}

async fn answer(
    assistant: &Assistant,
    thread: &str,
    text: &str,
    out: Option<&mut (dyn Write + Send)>,
) -> Result<Reply, Error> {
    let Some(out) = out else {
        return assistant.handle(turn(thread, text), None).await;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let handle = assistant.handle(turn(thread, text), Some(tx));
    tokio::pin!(handle);
    let mut streamed = String::new();
    let reply = loop {
        tokio::select! {
            Some(piece) = rx.recv() => {
                streamed.push_str(&piece);
                let _ = out.write_all(piece.as_bytes());
                let _ = out.flush();
            }
            result = &mut handle => break result?,
        }
    };
    while let Ok(piece) = rx.try_recv() {
        streamed.push_str(&piece);
        let _ = out.write_all(piece.as_bytes());
    }
    if streamed.is_empty() {
        let _ = writeln!(out, "{}", reply.answer);
    } else if streamed.trim() != reply.answer.trim() {
        // The stream broke off: the final reply replaces what was shown.
        let _ = writeln!(out, "\n\n{}", reply.answer);
    } else {
        let _ = writeln!(out);
    }
    let _ = out.write_all(render_footer(&reply).as_bytes());
    let _ = out.flush();
    Ok(reply)
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

/// The terminal, shared by answers and by agent messages that arrive while
/// the customer types.
pub type SharedOut = Arc<Mutex<Box<dyn Write + Send>>>;

/// A [`Write`] that locks the shared terminal for each call.
struct Locked(SharedOut);

impl Write for Locked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// Delivers agent replies and notices to this chat session's terminal.
struct ConsoleDelivery {
    thread: String,
    out: SharedOut,
}

#[async_trait::async_trait]
impl Deliver for ConsoleDelivery {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        if target.thread != self.thread {
            // Another terminal's conversation: leave it for that process.
            return Err(delivery::Error::Temporary(
                "conversation of another console session".into(),
            ));
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "\n{}", message.text)
            .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
        let _ = out.flush();
        Ok(None)
    }
}

/// A conversation on the terminal. With `interactive`, prints a prompt and a
/// greeting; otherwise answers each input line in turn and ends at EOF.
/// Messages from agents (after a hand-off) are printed as they arrive.
///
/// # Errors
/// When a message cannot be stored or stdin cannot be read.
pub async fn chat<R: AsyncBufRead + Unpin>(
    assistant: &Assistant,
    input: R,
    out: SharedOut,
    interactive: bool,
) -> Result<(), ChatError> {
    let thread = format!("chat-{}", crate::store::new_id());
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = assistant.desk().map(|desk| {
        let registry = desk.registry().clone();
        registry.register(
            CHANNEL,
            Arc::new(ConsoleDelivery {
                thread: thread.clone(),
                out: out.clone(),
            }),
        );
        tokio::spawn(delivery::run_outbox(
            registry,
            assistant.store().clone(),
            Duration::from_millis(500),
            stop.clone().cancelled_owned(),
        ))
    });
    let survey_worker = assistant.surveys().map(|surveys| {
        tokio::spawn(
            surveys
                .clone()
                .run(Duration::from_secs(2), stop.clone().cancelled_owned()),
        )
    });
    let mut writer = Locked(out);
    if interactive {
        let welcome = assistant.render(Template::Welcome, serde_json::json!({}))?;
        let _ = writeln!(writer, "{welcome}\n(Ctrl-D to quit.)\n");
    }
    let mut lines = input.lines();
    let result = loop {
        if interactive {
            let _ = write!(writer, "you> ");
            let _ = writer.flush();
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
            let _ = write!(writer, "bot> ");
        }
        match answer(assistant, &thread, line, Some(&mut writer)).await {
            Ok(reply) if reply.action == Action::Duplicate => continue,
            Ok(_) => {
                let _ = writeln!(writer);
            }
            Err(e) => break Err(e.into()),
        }
    };
    stop.cancel();
    for worker in [worker, survey_worker].into_iter().flatten() {
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
