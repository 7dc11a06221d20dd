//! Text for Telegram: HTML escaping and splitting at the 4,096-character
//! limit. Replies use `parse_mode = HTML`, where only `<`, `>` and `&` need
//! escaping, so no answer text can ever fail with "can't parse entities".

use crate::store::SourceRef;

/// Telegram's limit on a message's text, in characters (UTF-16 code units,
/// in fact; staying under it in chars with a margin keeps us safe for the
/// rare astral-plane character).
pub const LIMIT: usize = 4096;
/// The length we split at, leaving room for an astral character or two.
const SPLIT_AT: usize = 4000;

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

/// The answer followed by its sources as links (already escaped HTML).
pub fn with_sources(answer: &str, sources: &[SourceRef]) -> Vec<String> {
    let mut parts = split(answer);
    if sources.is_empty() {
        return parts.into_iter().map(|p| escape(&p)).collect();
    }
    let mut footer = String::from("\n\nSources:");
    for (i, s) in sources.iter().enumerate() {
        let title = escape(&s.title);
        match s
            .url
            .as_deref()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            Some(url) => footer.push_str(&format!(
                "\n[{}] <a href=\"{}\">{title}</a>",
                i + 1,
                escape(url)
            )),
            None => footer.push_str(&format!("\n[{}] {title}", i + 1)),
        }
    }
    let mut escaped: Vec<String> = parts.drain(..).map(|p| escape(&p)).collect();
    let last_len = escaped.last().map(|l| l.chars().count()).unwrap_or(0);
    if last_len + footer.chars().count() <= LIMIT {
        if let Some(last) = escaped.last_mut() {
            last.push_str(&footer);
        }
    } else {
        escaped.push(footer.trim_start().to_string());
    }
    escaped
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

fn escaped_len_char(c: char) -> usize {
    match c {
        '<' | '>' => 4,
        '&' => 5,
        '"' => 6,
        _ => 1,
    }
}

fn escaped_len(text: &str) -> usize {
    text.chars().map(escaped_len_char).sum()
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
