//! Text for Discord: splitting at the 2,000-character limit without
//! breaking a code block, and sources as masked links. Discord markdown in
//! articles is kept as it is; pings are prevented by `allowed_mentions`,
//! not by rewriting the text.

use crate::store::SourceRef;

/// Discord's limit on a message's content, in characters (Unicode code
/// points: Discord's API counts them, not UTF-16 units or bytes).
pub const LIMIT: usize = 2000;
/// Room kept below a part's limit to close and reopen a code block.
const FENCE_ROOM: usize = 100;
/// Longest code-block language carried over to a reopened block; a longer
/// "language" (any text after ```) is not repeated in every part.
const MAX_LANG: usize = 32;

/// Splits text into messages under the limit: at paragraph breaks, else
/// line breaks, else sentence ends or spaces, else anywhere. A code block
/// cut in two is closed at the end of one part and reopened in the next.
pub fn split(text: &str) -> Vec<String> {
    split_within(text, LIMIT)
}

/// `prefix` (a mention: short) followed by `text`, split so that the first
/// part fits the limit with the prefix in front of it.
pub fn split_prefixed(prefix: &str, text: &str) -> Vec<String> {
    let room = LIMIT.saturating_sub(prefix.chars().count());
    let mut parts = split_within(text, room);
    if let Some(first) = parts.first_mut() {
        first.insert_str(0, prefix);
    }
    parts
}

/// [`split`] with parts of at most `limit` characters.
fn split_within(text: &str, limit: usize) -> Vec<String> {
    // Never so short that a cut could fall inside a reopened fence line:
    // cuts keep more than half of a part, and a fence is at most 36
    // characters (144 bytes), so every part makes progress.
    let split_at = limit.saturating_sub(FENCE_ROOM).max(400);
    let mut pieces = Vec::new();
    let mut rest = text.trim().to_string();
    let mut reopen: Option<String> = None;
    loop {
        let body = match reopen.take() {
            Some(fence) => format!("{fence}\n{rest}"),
            None => rest.clone(),
        };
        if body.chars().count() <= limit {
            if !body.trim().is_empty() || pieces.is_empty() {
                pieces.push(body);
            }
            break;
        }
        let fit = body
            .char_indices()
            .nth(split_at)
            .map_or(body.len(), |(i, _)| i);
        let head = &body[..fit];
        let cut = super::super::cut_point(head);
        let mut piece = body[..cut].trim_end().to_string();
        if let Some(fence) = open_fence(&piece) {
            piece.push_str("\n```");
            reopen = Some(fence);
        }
        pieces.push(piece);
        rest = body[cut..].trim_start().to_string();
    }
    pieces
}

/// The opening fence (with its language, when short) of a code block left
/// open at the end of `text`.
fn open_fence(text: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => {
                    let lang = lang.trim();
                    let short = lang.chars().count() <= MAX_LANG && !lang.contains('`');
                    Some(if short {
                        format!("```{lang}")
                    } else {
                        "```".to_string()
                    })
                }
            };
        }
    }
    open
}

/// The sources footer: `[n] [Title](<url>)`, one a line.
pub fn sources_footer(sources: &[SourceRef]) -> Option<String> {
    if sources.is_empty() {
        return None;
    }
    let mut footer = String::from("**Sources:**");
    for (i, s) in sources.iter().enumerate() {
        let title = s.title.replace('[', "(").replace(']', ")");
        match s
            .url
            .as_deref()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            // `<…>` keeps Discord from unfurling a preview of every source.
            Some(url) => footer.push_str(&format!("\n[{}] [{title}](<{url}>)", i + 1)),
            None => footer.push_str(&format!("\n[{}] {title}", i + 1)),
        }
    }
    Some(footer)
}

/// The answer split into messages, the sources added to the last one (or
/// in a message of their own when they do not fit).
pub fn with_sources(answer: &str, sources: &[SourceRef]) -> Vec<String> {
    let mut parts = split(answer);
    if let Some(footer) = sources_footer(sources) {
        let last_len = parts.last().map_or(0, |l| l.chars().count());
        // An answer that leaves a code block open has it closed first, or
        // the sources would show as code.
        let close = if parts.last().is_some_and(|l| open_fence(l).is_some()) {
            "\n```"
        } else {
            ""
        };
        match parts.last_mut() {
            Some(last) if last_len + close.len() + 2 + footer.chars().count() <= LIMIT => {
                last.push_str(close);
                last.push_str("\n\n");
                last.push_str(&footer);
            }
            Some(last) if last_len + close.len() <= LIMIT => {
                last.push_str(close);
                parts.extend(split(&footer));
            }
            _ => parts.extend(split(&footer)),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split("hello **world**"), vec!["hello **world**"]);
    }

    #[test]
    fn long_text_splits_under_the_limit_keeping_every_word() {
        let text = "A sentence with several words in it. ".repeat(140);
        let parts = split(&text);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        for p in &parts {
            assert!(p.chars().count() <= LIMIT);
        }
        assert_eq!(
            parts.join(" ").split_whitespace().count(),
            text.split_whitespace().count()
        );
    }

    #[test]
    fn a_code_block_cut_in_two_is_closed_and_reopened() {
        let code = "let x = 1;\n".repeat(300);
        let text = format!("Try this:\n\n```rust\n{code}```\nDone.");
        let parts = split(&text);
        assert!(parts.len() >= 2);
        for p in &parts {
            assert!(p.chars().count() <= LIMIT);
            assert_eq!(p.matches("```").count() % 2, 0, "unbalanced fence in {p:?}");
        }
        assert!(parts[1].starts_with("```rust\n"));
    }

    #[test]
    fn sources_are_masked_links_without_previews() {
        let sources = vec![
            SourceRef {
                slug: "a".into(),
                title: "Refunds [2024]".into(),
                url: Some("https://help.example/a".into()),
                score: 1.0,
            },
            SourceRef {
                slug: "b".into(),
                title: "Plans".into(),
                url: None,
                score: 1.0,
            },
        ];
        assert_eq!(
            with_sources("Answer", &sources),
            vec![
                "Answer\n\n**Sources:**\n[1] [Refunds (2024)](<https://help.example/a>)\n[2] Plans"
            ]
        );
    }

    #[test]
    fn sources_after_an_unclosed_code_block_are_not_code() {
        let sources = vec![SourceRef {
            slug: "a".into(),
            title: "T".into(),
            url: None,
            score: 1.0,
        }];
        let parts = with_sources("Run:\n```sh\nls", &sources);
        assert_eq!(parts, vec!["Run:\n```sh\nls\n```\n\n**Sources:**\n[1] T"]);
    }

    #[test]
    fn a_long_answer_keeps_its_sources() {
        let sources = vec![SourceRef {
            slug: "a".into(),
            title: "T".into(),
            url: None,
            score: 1.0,
        }];
        let parts = with_sources(&"word ".repeat(1000), &sources);
        assert!(parts.last().unwrap().contains("**Sources:**"));
        assert!(parts.iter().all(|p| p.chars().count() <= LIMIT));
    }
}
