//! Text for Telegram: HTML escaping and splitting at the 4,096-character
//! limit. Replies use `parse_mode = HTML`, where only `<`, `>` and `&` need
//! escaping, so no answer text can ever fail with "can't parse entities".

use crate::store::SourceRef;

/// Telegram's limit on a message's text: 4,096 characters after entity
/// parsing, counted (like every Telegram offset) in UTF-16 code units, so
/// an emoji outside the Basic Multilingual Plane counts twice.
pub const LIMIT: usize = 4096;
/// The length we split at (escaped text, UTF-16 units), below the limit.
const SPLIT_AT: usize = 4000;
/// Longest source title shown, in characters.
const MAX_TITLE: usize = 200;

/// Escapes text for HTML parse mode.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The answer followed by its sources as links (already escaped HTML). The
/// sources go under the last part when they fit, else into parts of their
/// own; every part's text stays within [`LIMIT`].
pub fn with_sources(answer: &str, sources: &[SourceRef]) -> Vec<String> {
    let mut escaped: Vec<String> = split(answer).iter().map(|p| escape(p)).collect();
    if sources.is_empty() {
        return escaped;
    }
    // Each footer line as HTML, with the length of the text it shows.
    let lines = sources.iter().enumerate().map(|(i, s)| {
        let mut title: String = s.title.chars().take(MAX_TITLE).collect();
        if title.len() < s.title.len() {
            title.push('…');
        }
        let shown = format!("[{}] {title}", i + 1);
        let html = match s
            .url
            .as_deref()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            Some(url) => format!(
                "[{}] <a href=\"{}\">{}</a>",
                i + 1,
                escape(url),
                escape(&title)
            ),
            None => escape(&shown),
        };
        (html, utf16_len(&shown))
    });
    let mut footers = Vec::new();
    let (mut current, mut current_len) = (String::from("Sources:"), utf16_len("Sources:"));
    for (html, len) in lines {
        if current_len + 1 + len <= LIMIT {
            current.push('\n');
            current.push_str(&html);
            current_len += 1 + len;
        } else {
            footers.push((std::mem::replace(&mut current, html), current_len));
            current_len = len;
        }
    }
    footers.push((current, current_len));
    let mut footers = footers.into_iter();
    if let Some((first, first_len)) = footers.next() {
        // The answer's escaped length is at least what Telegram counts.
        match escaped.last_mut() {
            Some(last) if utf16_len(last) + 2 + first_len <= LIMIT => {
                last.push_str("\n\n");
                last.push_str(&first);
            }
            _ => escaped.push(first),
        }
    }
    escaped.extend(footers.map(|(html, _)| html));
    escaped
}

/// Plain text as one message (escaped HTML): whole when it fits, else its
/// beginning, "…" and its last line (a staff card's conversation id), so a
/// card full of emoji or a very long name still posts.
pub fn fit(text: &str) -> String {
    if utf16_len(text) <= LIMIT {
        return escape(text);
    }
    let last = text.lines().last().unwrap_or_default();
    let last: String = last.chars().take(LIMIT / 4).collect();
    let room = LIMIT - utf16_len(&last) - 2;
    let mut used = 0;
    let head: String = text
        .chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= room
        })
        .collect();
    escape(&format!("{head}…\n{last}"))
}

/// Splits plain text into pieces that stay under the limit once escaped:
/// at paragraph breaks, else line breaks, else spaces, else anywhere.
pub fn split(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while escaped_len(rest) > SPLIT_AT {
        // The longest prefix whose escaped form fits.
        let mut fit = 0;
        let mut len = 0;
        for (i, c) in rest.char_indices() {
            len += escaped_len_char(c);
            if len > SPLIT_AT {
                break;
            }
            fit = i + c.len_utf8();
        }
        let head = &rest[..fit];
        let cut = super::super::cut_point(head);
        pieces.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// Length of `c` escaped, in UTF-16 units.
fn escaped_len_char(c: char) -> usize {
    match c {
        '<' | '>' => 4,
        '&' => 5,
        '"' => 6,
        c => c.len_utf16(),
    }
}

fn escaped_len(text: &str) -> usize {
    text.chars().map(escaped_len_char).sum()
}

/// Length of `text` as Telegram counts it, in UTF-16 units.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_only() {
        assert_eq!(
            escape("a <b> & \"c\" _*[]()~`>#+-=|{}.!"),
            "a &lt;b&gt; &amp; &quot;c&quot; _*[]()~`&gt;#+-=|{}.!"
        );
    }

    #[test]
    fn splits_long_text_under_the_limit() {
        let text = "word & <tag> ".repeat(1000);
        let parts = split(&text);
        assert!(parts.len() >= 3);
        for p in &parts {
            assert!(escape(p).chars().count() <= LIMIT);
        }
        assert_eq!(
            parts.join(" ").split_whitespace().count(),
            text.split_whitespace().count()
        );
    }

    #[test]
    fn many_long_sources_are_split_into_parts_that_fit() {
        let sources: Vec<SourceRef> = (0..40)
            .map(|i| SourceRef {
                slug: format!("s{i}"),
                title: "😀&".repeat(300),
                url: Some(format!("https://x.example/{i}")),
                score: 1.0,
            })
            .collect();
        let parts = with_sources("Answer", &sources);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        assert!(parts[0].starts_with("Answer\n\nSources:\n[1] <a href="));
        for p in &parts {
            // The text Telegram counts: without the tags, entities decoded.
            let shown = p
                .replace("&amp;", "&")
                .split(['<', '>'])
                .step_by(2)
                .collect::<String>();
            assert!(utf16_len(&shown) <= LIMIT, "{}", utf16_len(&shown));
        }
        assert_eq!(parts.concat().matches("</a>").count(), 40);
    }

    #[test]
    fn a_card_that_does_not_fit_keeps_its_beginning_and_last_line() {
        let card = format!(
            "Hand-off: 😀 & co\n{}\n\nConversation 42",
            "😀".repeat(3000)
        );
        let html = fit(&card);
        let shown = html.replace("&amp;", "&");
        assert!(utf16_len(&shown) <= LIMIT, "{}", utf16_len(&shown));
        assert!(shown.starts_with("Hand-off: 😀 & co\n😀"));
        assert!(shown.ends_with("😀…\nConversation 42"));
        assert_eq!(fit("short <b>"), "short &lt;b&gt;");
    }

    #[test]
    fn sources_become_links() {
        let sources = vec![SourceRef {
            slug: "a".into(),
            title: "Refunds & <money>".into(),
            url: Some("https://x.example/a?b=1&c=2".into()),
            score: 1.0,
        }];
        let parts = with_sources("Answer", &sources);
        assert_eq!(
            parts,
            vec![
                "Answer\n\nSources:\n[1] <a href=\"https://x.example/a?b=1&amp;c=2\">Refunds &amp; &lt;money&gt;</a>"
            ]
        );
    }
}
