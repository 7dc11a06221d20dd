//! One Markdown file → one [`Article`] split into heading-level [`Passage`]s.
//!
//! Parsing never fails on content: a broken front matter block, a file that
//! is not UTF-8 or an empty file yields [`Problem`]s that `kb check` prints
//! with file and line, and the article is loaded as well as it can be (or
//! skipped when nothing usable is left).

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

/// Longest passage, in bytes, before it is split at a paragraph break. Keeps
/// a 1 MB article without headings searchable passage by passage.
const MAX_PASSAGE_BYTES: usize = 2_000;

/// A knowledge-base article.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Article {
    /// Path below the knowledge-base folder without `.md`, `/`-separated.
    pub slug: String,
    /// From front matter, else the first `#` heading, else the file name.
    pub title: String,
    /// Front-matter tags.
    pub tags: Vec<String>,
    /// Front-matter `url`, if any.
    pub url: Option<String>,
    /// Front-matter `locale`, if any.
    pub locale: Option<String>,
    /// The article body split at headings.
    pub passages: Vec<Passage>,
}

/// A section of an article: the unit that is indexed and quoted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Passage {
    /// The heading above it (the article title for text before any heading).
    pub heading: String,
    /// The Markdown source of the section, without its heading line.
    pub markdown: String,
    /// Plain text of the section (markup removed), what is indexed.
    pub text: String,
    /// 1-based line of the section's heading (or first line) in the file.
    pub line: usize,
}

/// Something wrong with an article file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line the problem is on (1 when it concerns the whole file).
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
    /// `true` when the article could not be loaded at all.
    pub fatal: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<String>,
    #[serde(default)]
    tags: Tags,
    url: Option<String>,
    locale: Option<String>,
}

/// `tags: [a, b]` or `tags: a, b`.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn into_vec(self) -> Vec<String> {
        match self {
            Tags::None => Vec::new(),
            Tags::List(v) => v,
            Tags::Text(s) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

/// The slug of `file` below `root`: relative path, `/`-separated, no `.md`.
pub fn slug_for(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last
        .strip_suffix(".md")
        .or_else(|| last.strip_suffix(".markdown"))?;
    parts.push(stem.to_string());
    Some(parts.join("/"))
}

/// Parses raw file bytes into an article plus the problems found.
///
/// Returns `None` for the article when nothing could be loaded (the problems
/// then include a fatal one).
pub fn parse(slug: &str, bytes: &[u8]) -> (Option<Article>, Vec<Problem>) {
    let mut problems = Vec::new();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            problems.push(Problem {
                line,
                message: format!(
                    "file is not valid UTF-8 (byte {}); re-save it as UTF-8",
                    e.valid_up_to()
                ),
                fatal: true,
            });
            return (None, problems);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        problems.push(Problem {
            line: 1,
            message: "file is empty; write the article or remove the file".into(),
            fatal: true,
        });
        return (None, problems);
    }

    let (front, body, body_line) = split_front_matter(text, &mut problems);
    let front = front.unwrap_or_default();
    let file_name = slug
        .rsplit('/')
        .next()
        .unwrap_or(slug)
        .replace(['-', '_'], " ");
    let sections = split_sections(body, body_line);
    let first_h1 = sections
        .iter()
        .find(|s| s.level == Some(HeadingLevel::H1) && !s.heading.trim().is_empty())
        .map(|s| s.heading.clone());
    let title = front
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or(first_h1)
        .unwrap_or(file_name);
    // A file named `-.md` has no name left: its slug is the title then.
    let title = if title.trim().is_empty() {
        slug.to_string()
    } else {
        title
    };
    if front
        .url
        .as_deref()
        .is_some_and(|u| url::Url::parse(u).is_err())
    {
        problems.push(Problem {
            line: 1,
            message: format!(
                "front matter `url: {}` is not an absolute URL; use https://…",
                front.url.as_deref().unwrap_or_default()
            ),
            fatal: false,
        });
    }

    let mut passages = Vec::new();
    for section in sections {
        let heading = section.heading.clone();
        let heading = if heading.is_empty() {
            title.clone()
        } else {
            heading
        };
        for (chunk, line) in chunk_markdown(&section.markdown, section.line) {
            let plain = plain_text(&chunk);
            if plain.trim().is_empty() && section.level == Some(HeadingLevel::H1) {
                continue;
            }
            if plain.trim().is_empty() && heading == title {
                continue;
            }
            passages.push(Passage {
                heading: heading.clone(),
                markdown: chunk.trim().to_string(),
                text: plain,
                line,
            });
        }
    }
    if passages.is_empty() {
        problems.push(Problem {
            line: body_line,
            message: "article has no text below its headings; add content".into(),
            fatal: true,
        });
        return (None, problems);
    }
    let article = Article {
        slug: slug.to_string(),
        title: title.trim().to_string(),
        tags: front.tags.into_vec(),
        url: front.url,
        locale: front.locale,
        passages,
    };
    (Some(article), problems)
}

/// The front-matter fields of an article's source, as an editor shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Front {
    /// `title`.
    #[serde(default)]
    pub title: Option<String>,
    /// `tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `url`.
    #[serde(default)]
    pub url: Option<String>,
    /// `locale`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// Splits an article's source into its front matter (`None` when there is
/// no block, or one that does not parse: the body then starts with it, so
/// nothing is lost) and the body after it.
pub fn split_source(text: &str) -> (Option<Front>, &str) {
    let mut problems = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match split_front_matter(text, &mut problems) {
        (Some(front), body, _) => (
            Some(Front {
                title: front.title,
                tags: front.tags.into_vec(),
                url: front.url,
                locale: front.locale,
            }),
            body,
        ),
        (None, _, _) => (None, text),
    }
}

/// Returns (front matter, body, 1-based line where the body starts).
fn split_front_matter<'a>(
    text: &'a str,
    problems: &mut Vec<Problem>,
) -> (Option<FrontMatter>, &'a str, usize) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text, 1);
    };
    let mut offset = 0;
    let mut end = None;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((yaml_end, body_start)) = end else {
        problems.push(Problem {
            line: 1,
            message: "front matter starts with `---` but has no closing `---` line; add one".into(),
            fatal: false,
        });
        return (None, text, 1);
    };
    let yaml = &rest[..yaml_end];
    let body = &rest[body_start..];
    let body_line = yaml.lines().count() + 3;
    let front = if yaml.trim().is_empty() {
        Some(FrontMatter::default())
    } else {
        match serde_yaml::from_str::<FrontMatter>(yaml) {
            Ok(f) => Some(f),
            Err(e) => {
                // The parser may notice a problem on the line after it (an
                // unclosed bracket); keep the line inside the front matter.
                let last = yaml.lines().count().max(1) + 1;
                let line = e.location().map(|l| (l.line() + 1).min(last)).unwrap_or(1);
                let what = e.to_string();
                let what = what.split(" at line ").next().unwrap_or(&what).to_string();
                problems.push(Problem {
                    line,
                    message: format!(
                        "front matter: {what}; allowed keys are title, tags, url, locale"
                    ),
                    fatal: false,
                });
                None
            }
        }
    };
    (front, body, body_line)
}

struct Section {
    level: Option<HeadingLevel>,
    heading: String,
    markdown: String,
    line: usize,
}

/// Splits Markdown at every heading, keeping the source of each section.
fn split_sections(body: &str, first_line: usize) -> Vec<Section> {
    let line_of = |byte: usize| first_line + body[..byte].matches('\n').count();
    let mut headings: Vec<(HeadingLevel, std::ops::Range<usize>, String)> = Vec::new();
    let mut current: Option<(HeadingLevel, std::ops::Range<usize>, String)> = None;
    for (event, range) in Parser::new_ext(body, Options::all()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((level, range, String::new()))
            }
            Event::Text(t) | Event::Code(t) if current.is_some() => {
                if let Some((_, _, text)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = current.take() {
                    headings.push(h);
                }
            }
            _ => {}
        }
    }
    let mut sections = Vec::new();
    let first_start = headings.first().map(|h| h.1.start).unwrap_or(body.len());
    if !body[..first_start].trim().is_empty() {
        sections.push(Section {
            level: None,
            heading: String::new(),
            markdown: body[..first_start].to_string(),
            line: first_line,
        });
    }
    for (i, (level, range, text)) in headings.iter().enumerate() {
        let end = headings.get(i + 1).map(|h| h.1.start).unwrap_or(body.len());
        sections.push(Section {
            level: Some(*level),
            heading: text.trim().to_string(),
            markdown: body[range.end.min(end)..end].to_string(),
            line: line_of(range.start),
        });
    }
    sections
}

/// Splits an over-long section at blank lines (or, failing that, at any
/// char boundary) into chunks of at most [`MAX_PASSAGE_BYTES`].
fn chunk_markdown(markdown: &str, line: usize) -> Vec<(String, usize)> {
    if markdown.len() <= MAX_PASSAGE_BYTES {
        return vec![(markdown.to_string(), line)];
    }
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_line = line;
    let mut next_line = line;
    for para in markdown.split_inclusive("\n\n") {
        let mut para = para;
        while para.len() > MAX_PASSAGE_BYTES {
            let mut cut = MAX_PASSAGE_BYTES;
            while !para.is_char_boundary(cut) {
                cut -= 1;
            }
            let (head, tail) = para.split_at(cut);
            if !current.is_empty() {
                chunks.push((std::mem::take(&mut current), current_line));
            }
            chunks.push((head.to_string(), next_line));
            next_line += head.matches('\n').count();
            current_line = next_line;
            para = tail;
        }
        if current.len() + para.len() > MAX_PASSAGE_BYTES && !current.is_empty() {
            chunks.push((std::mem::take(&mut current), current_line));
            current_line = next_line;
        }
        current.push_str(para);
        next_line += para.matches('\n').count();
    }
    if !current.trim().is_empty() {
        chunks.push((current, current_line));
    }
    chunks
}

/// Markdown → plain text (code kept, markup dropped).
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new_ext(markdown, Options::all()) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::InlineHtml(t) | Event::Html(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::Heading(_)
                | TagEnd::TableRow
                | TagEnd::CodeBlock,
            ) => out.push('\n'),
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            _ => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_sections() {
        let src = "---\ntitle: Refunds\ntags: [billing, money]\nurl: https://x.example/r\n---\n# Refunds\n\nIntro text.\n\n## How to ask\nWrite to us.\n\n## Timing\nFive days.\n";
        let (a, problems) = parse("billing/refunds", src.as_bytes());
        assert!(problems.is_empty(), "{problems:?}");
        let a = a.unwrap();
        assert_eq!(a.title, "Refunds");
        assert_eq!(a.tags, vec!["billing", "money"]);
        let headings: Vec<_> = a.passages.iter().map(|p| p.heading.as_str()).collect();
        assert_eq!(headings, vec!["Refunds", "How to ask", "Timing"]);
        assert_eq!(a.passages[1].line, 10);
        assert_eq!(a.passages[1].text, "Write to us.");
    }

    #[test]
    fn no_front_matter_no_heading_uses_file_name() {
        let (a, problems) = parse("misc/opening-hours", b"We are open all day.\n");
        assert!(problems.is_empty());
        let a = a.unwrap();
        assert_eq!(a.title, "opening hours");
        assert_eq!(a.passages.len(), 1);
        assert_eq!(a.passages[0].heading, "opening hours");
    }

    #[test]
    fn broken_front_matter_reports_line_and_keeps_body() {
        let src = "---\ntitle: Ok\ntags: [unclosed\n---\n# Body\ntext\n";
        let (a, problems) = parse("x", src.as_bytes());
        assert!(a.is_some());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].line >= 2, "{problems:?}");
        assert!(problems[0].message.starts_with("front matter"));
    }

    #[test]
    fn unknown_front_matter_key_is_reported() {
        let (_, problems) = parse("x", b"---\ntitel: Oops\n---\nbody\n");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("titel"), "{problems:?}");
        assert_eq!(problems[0].line, 2);
    }

    #[test]
    fn unclosed_front_matter() {
        let (a, problems) = parse("x", b"---\ntitle: x\nbody\n");
        assert!(a.is_some());
        assert!(problems[0].message.contains("closing"));
    }

    #[test]
    fn non_utf8_and_empty_are_fatal() {
        let (a, p) = parse("x", b"line one\nbad \xff byte\n");
        assert!(a.is_none());
        assert_eq!(p[0].line, 2);
        assert!(p[0].fatal);
        let (a, p) = parse("x", b"  \n\n");
        assert!(a.is_none());
        assert!(p[0].message.contains("empty"));
    }

    #[test]
    fn an_empty_first_heading_is_not_the_title() {
        // Found by the property tests: `# #` is an empty heading.
        let (a, _) = parse("billing/refunds", b"# #\n\ntext\n");
        assert_eq!(a.unwrap().title, "refunds");
        let (a, _) = parse("-", b"# \n\ntext\n\n# Real\nmore\n");
        assert_eq!(a.unwrap().title, "Real");
        let (a, _) = parse("x/-", b"text\n");
        assert_eq!(a.unwrap().title, "x/-");
    }

    #[test]
    fn huge_article_is_chunked() {
        let para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(10);
        let body = format!("{para}\n\n").repeat(2_000); // ~1.1 MB, no heading
        let (a, problems) = parse("big", body.as_bytes());
        assert!(problems.is_empty());
        let a = a.unwrap();
        assert!(a.passages.len() > 100);
        assert!(
            a.passages
                .iter()
                .all(|p| p.markdown.len() <= MAX_PASSAGE_BYTES)
        );
    }

    #[test]
    fn slug_from_path() {
        let root = Path::new("/kb");
        assert_eq!(
            slug_for(root, Path::new("/kb/billing/refunds.md")).as_deref(),
            Some("billing/refunds")
        );
        assert_eq!(slug_for(root, Path::new("/kb/notes.txt")), None);
    }
}
