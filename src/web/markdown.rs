//! Message text as the widget shows it: Markdown rendered to HTML and
//! sanitised on the server.
//!
//! pulldown-cmark renders (tables, strikethrough; raw HTML in the text is
//! escaped, never passed through), then ammonia keeps only formatting tags
//! and `http`, `https` and `mailto` links, which open in a new tab with
//! `rel="noopener noreferrer nofollow"`. No script, style, event handler or
//! image survives.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "p",
        "br",
        "strong",
        "em",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("ol", ["start"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .url_relative(ammonia::UrlRelative::Deny);
    builder
});

/// `text` (Markdown) as sanitised HTML.
pub fn to_html(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // Raw HTML in a message is text, not markup: shown escaped.
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut html = String::with_capacity(text.len() + text.len() / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    CLEANER.clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::to_html;

    /// Whether `html` has a script element, an event-handler attribute or a
    /// `javascript:` URL anywhere.
    fn dangerous(html: &str) -> bool {
        let lower = html.to_lowercase();
        if [
            "<script",
            "<img",
            "<svg",
            "<iframe",
            "<style",
            "href=\"javascript",
        ]
        .iter()
        .any(|bad| lower.contains(bad))
        {
            return true;
        }
        // An attribute whose name starts with "on", inside a tag.
        let mut in_tag = false;
        let bytes = lower.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'<' => in_tag = true,
                b'>' => in_tag = false,
                b' ' | b'\t' | b'\n' | b'/' if in_tag => {
                    let rest = &lower[i + 1..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    if name.starts_with("on") && rest[name.len()..].trim_start().starts_with('=') {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    #[test]
    fn markdown_is_formatted_and_links_open_in_a_new_tab() {
        let html = to_html(
            "Refunds take **14 days**. See [the policy](https://example.com/refunds).\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert!(html.contains("<strong>14 days</strong>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com/refunds" target="_blank" rel="noopener noreferrer nofollow">the policy</a>"#),
            "{html}"
        );
        assert!(
            html.contains("<table>") && html.contains("<td>1</td>"),
            "{html}"
        );
    }

    #[test]
    fn html_in_a_message_is_shown_as_text() {
        let html = to_html("<img src=x onerror=alert(1)> and <script>alert(2)</script>");
        assert!(!dangerous(&html), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        let html = to_html(
            "[click](javascript:alert(1)) ![i](https://e.com/x.png) <a href=\"x\" onclick=\"y\">z</a>",
        );
        assert!(!dangerous(&html), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
    }

    #[test]
    fn the_checker_sees_what_it_looks_for() {
        // The property below is only as good as `dangerous`.
        assert!(dangerous("<p onclick=\"x\">"));
        assert!(dangerous("<a href=\"a\" onmouseover = \"x\">"));
        assert!(dangerous("<SCRIPT>"));
        assert!(dangerous("<img src=x>"));
        assert!(!dangerous("<p>onclick=x is text</p>"));
    }

    fn markdownish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<String>(),
            Just("<script>alert(1)</script>".to_string()),
            Just("<img src=x onerror=alert(1)>".to_string()),
            Just("[a](javascript:alert(1))".to_string()),
            Just("<a href=x onclick=y>".to_string()),
            Just("**".to_string()),
            Just("`".to_string()),
            Just("\n\n| a | b |\n|---|---|\n".to_string()),
            Just("<svg onload=alert(1)>".to_string()),
            Just("<<script>script>".to_string()),
            Just("<div style=\"x\" onmouseover=\"y\">".to_string()),
            Just("\u{202e}\u{0}\u{feff}".to_string()),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn rendering_arbitrary_text_never_panics_nor_lets_script_through(text in markdownish()) {
            let html = to_html(&text);
            prop_assert!(!dangerous(&html), "{html}");
        }
    }
}
