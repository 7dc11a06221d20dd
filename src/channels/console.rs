//! The console channel: `switchboard chat` and `switchboard ask`.
//!
//! A terminal user is a customer on channel `console`. Each `chat` session
//! and each `ask` is its own conversation.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

use crate::assistant::{Action, Assistant, Error, Reply, Turn};

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
        Action::ToAgent => footer.push_str(
            "(A person from the support team has your conversation; your message was passed on.)\n",
        ),
        Action::HandOff(_) => footer.push_str("(Handed over to the support team.)\n"),
        _ => {}
    }
    footer
}

/// A conversation on the terminal. With `interactive`, prints a prompt and a
/// greeting; otherwise answers each input line in turn and ends at EOF.
///
/// # Errors
/// When a message cannot be stored or stdin cannot be read.
pub async fn chat<R: AsyncBufRead + Unpin>(
    assistant: &Assistant,
    input: R,
    out: &mut (dyn Write + Send),
    interactive: bool,
) -> Result<(), ChatError> {
    let thread = format!("chat-{}", crate::store::new_id());
    if interactive {
        let welcome = assistant.render("welcome.md", serde_json::json!({}))?;
        let _ = writeln!(out, "{welcome}\n(Ctrl-D to quit.)\n");
    }
    let mut lines = input.lines();
    loop {
        if interactive {
            let _ = write!(out, "you> ");
            let _ = out.flush();
        }
        let Some(line) = lines.next_line().await.map_err(ChatError::Input)? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if interactive {
            let _ = write!(out, "bot> ");
        }
        let reply = answer(assistant, &thread, line, Some(out)).await?;
        if reply.action == Action::Duplicate {
            continue;
        }
        let _ = writeln!(out);
    }
    Ok(())
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
