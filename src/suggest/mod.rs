//! The learning loop: a knowledge-base article drafted from a conversation
//! an agent answered, kept as a pending suggestion for an admin to edit and
//! publish (or dismiss).
//!
//! The draft is made from the customer's question(s) before the hand-off
//! and the agents' replies ([`material`]). With a model, the prompt
//! `prompts/suggest_article.md` gets them as quoted data (tags that would
//! close the quotes are removed from them) and the model answers
//! `Title:`, `Tags:`, `---` and the Markdown body ([`parse`]). Without a
//! model, when the template is missing, or when the model fails or answers
//! out of that form, the plain template makes it ([`plain`]): the question
//! as title and heading, the agents' replies as the body. Either way an
//! admin reads it before anyone else does.
//!
//! One suggestion per conversation: suggesting again returns the one there
//! is, whatever its status.

use serde::Serialize;

use crate::assistant::{self, Assistant};
use crate::button;
use crate::conversation::Status;
use crate::handoff;
use crate::ids::ConversationId;
use crate::llm::{ChatMessage, Speaker};
use crate::store::{self, Conversation, Message, Role, Suggestion, SuggestionDraft};
use crate::templates::{Template, without_tag};

/// Questions kept: the last ones before the hand-off.
const MAX_QUESTIONS: usize = 3;
/// Characters kept of one question.
const MAX_QUESTION_CHARS: usize = 1_000;
/// Agent replies kept: the first ones.
const MAX_REPLIES: usize = 20;
/// Characters kept of one reply.
const MAX_REPLY_CHARS: usize = 4_000;
/// Characters of a title.
pub const MAX_TITLE_CHARS: usize = 120;
/// Bytes of a proposed slug (well under the editor's limit).
const MAX_SLUG_BYTES: usize = 80;
/// Tags kept.
const MAX_TAGS: usize = 6;
/// Characters of one tag.
const MAX_TAG_CHARS: usize = 32;
/// Characters of a body the model wrote.
pub const MAX_BODY_CHARS: usize = 20_000;
/// The tags quoting outside text in the prompt.
const QUOTE_TAGS: &[&str] = &["questions", "question", "replies", "reply"];
/// Words too common to be a tag.
const STOP_WORDS: &[&str] = &[
    "about", "after", "again", "also", "been", "before", "being", "could", "does", "doing", "from",
    "have", "hello", "help", "here", "into", "just", "know", "like", "make", "more", "much",
    "need", "only", "other", "please", "same", "should", "some", "still", "tell", "than", "thank",
    "thanks", "that", "their", "them", "then", "there", "these", "they", "this", "want", "were",
    "what", "when", "where", "which", "while", "with", "would", "your", "yours",
];

/// What an admin's `/kb` command in a staff place asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatCommand {
    /// `/kb suggest`: draft an article from this (resolved) conversation.
    Suggest,
}

/// How to use `/kb` in a staff place.
pub const CHAT_USAGE: &str = "Use /kb suggest in the thread of a resolved conversation (or replying to its card) to draft a knowledge-base article from the agents' answer.";

/// Why no suggestion was made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such conversation.
    #[error("no conversation {0}")]
    NotFound(String),
    /// Articles are suggested from resolved conversations only.
    #[error("the conversation is {0}; resolve it first, then suggest an article from it")]
    NotResolved(Status),
    /// Nothing the customer wrote reads as a question.
    #[error(
        "the customer asked no question in this conversation; there is nothing to draft an article from"
    )]
    NoQuestion,
    /// No agent answered.
    #[error("no agent replied in this conversation; there is nothing to draft an article from")]
    NoReply,
    /// The log failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What a draft is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Material {
    /// The customer's questions, oldest first (the last one led to the
    /// hand-off).
    pub questions: Vec<String>,
    /// The agents' replies to the customer, oldest first (notes are
    /// internal and left out).
    pub replies: Vec<String>,
}

/// A suggestion and whether this call made it.
#[derive(Debug, Clone)]
pub struct Suggested {
    /// The conversation's suggestion.
    pub suggestion: Suggestion,
    /// `false` when the conversation had one already.
    pub created: bool,
}

/// Whether a customer's message can be (part of) the question: not empty,
/// not a command, not small talk and not a button's label.
fn worth_asking(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty()
        && !text.starts_with('/')
        && !assistant::is_small_talk(text)
        && ![
            button::OFFER_YES_LABEL,
            button::OFFER_NO_LABEL,
            button::SOLVED_YES_LABEL,
            button::SOLVED_NO_LABEL,
        ]
        .contains(&text)
}

/// The customer's questions before the hand-off and the agents' replies.
/// A message asking for a person is a question only when nothing else is
/// (the customer may have asked for a person first and then said why).
pub fn material(conversation: &Conversation, messages: &[Message]) -> Material {
    let first_reply = messages
        .iter()
        .find(|m| m.role == Role::Agent)
        .map(|m| m.created_at);
    let before = |m: &Message, limit: Option<i64>| limit.is_none_or(|at| m.created_at <= at);
    let asked: Vec<&Message> = messages
        .iter()
        .filter(|m| m.role == Role::Customer && worth_asking(&m.text))
        .collect();
    let pick = |strict: bool, limit: Option<i64>| -> Vec<&Message> {
        asked
            .iter()
            .copied()
            .filter(|m| before(m, limit))
            .filter(|m| !strict || !handoff::asks_for_person(&m.text))
            .collect()
    };
    let chosen = [
        pick(true, conversation.handoff_at),
        pick(true, first_reply),
        pick(false, conversation.handoff_at),
        pick(false, first_reply),
    ]
    .into_iter()
    .find(|found| !found.is_empty())
    .unwrap_or_default();
    let mut questions: Vec<String> = chosen
        .iter()
        .map(|m| cut(m.text.trim(), MAX_QUESTION_CHARS))
        .collect();
    questions.dedup();
    questions.drain(..questions.len().saturating_sub(MAX_QUESTIONS));
    let replies = messages
        .iter()
        .filter(|m| m.role == Role::Agent && !m.text.trim().is_empty())
        .take(MAX_REPLIES)
        .map(|m| cut(m.text.trim(), MAX_REPLY_CHARS))
        .collect();
    Material { questions, replies }
}

/// `text` on one line: every run of white space is one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to at most `max` characters (`max` ≥ 1): at a space near the
/// end when there is one, marked with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    let at_space = kept
        .char_indices()
        .rev()
        .take(20)
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, _)| i);
    let kept = match at_space {
        Some(i) if i > 0 => &kept[..i],
        _ => kept.as_str(),
    };
    format!("{}…", kept.trim_end())
}

/// A title from a question: one line, at most [`MAX_TITLE_CHARS`].
pub fn title_of(question: &str) -> String {
    cut(&one_line(question), MAX_TITLE_CHARS)
}

/// A slug proposed for `title`: lower-case letters and digits, words
/// joined by `-` (`How do I export?` → `how-do-i-export`), at most 80
/// bytes; `suggested-article` when the title has no letter or digit.
/// Always a slug the editor accepts.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in title.chars() {
        if c.is_alphanumeric() {
            // Lower-casing can add marks that are not letters (`İ`).
            let lower: String = c.to_lowercase().filter(|l| l.is_alphanumeric()).collect();
            if lower.is_empty() {
                continue;
            }
            if out.len() + lower.len() + usize::from(gap) > MAX_SLUG_BYTES {
                break;
            }
            if gap {
                out.push('-');
                gap = false;
            }
            out.push_str(&lower);
        } else if !out.is_empty() {
            gap = true;
        }
    }
    if out.is_empty() {
        "suggested-article".into()
    } else {
        out
    }
}

/// `base`, or `base-2`, `base-3`… : the first that `taken` says is free.
pub fn unique_slug(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..1000)
        .map(|n| format!("{base}-{n}"))
        .find(|s| !taken(s))
        .unwrap_or_else(|| format!("{base}-{}", crate::store::new_id()))
}

/// Up to three words of the questions that can serve as tags.
fn keywords(questions: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for question in questions {
        for word in question.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if word.chars().count() >= 4
                && !word.chars().all(|c| c.is_numeric())
                && !STOP_WORDS.contains(&word.as_str())
                && !out.contains(&word)
            {
                out.push(word);
            }
        }
    }
    out.truncate(3);
    out
}

/// The plain template: the last question as title and heading, the
/// agents' replies as the body, a few words of the questions as tags.
/// `material` has at least one question.
pub fn plain(material: &Material) -> SuggestionDraft {
    let question = material.questions.last().map_or("", String::as_str);
    let title = title_of(question);
    let mut body = format!("## {}\n\n", cut(&one_line(question), 300));
    body.push_str(&material.replies.join("\n\n"));
    body.push('\n');
    SuggestionDraft {
        slug: slugify(&title),
        title,
        tags: keywords(&material.questions),
        body,
    }
}

/// `text` with no `<tag>` or `</tag>` of the prompt's quotes, however
/// nested, so it cannot close its quote.
pub fn quoted(text: &str) -> String {
    let mut text = text.to_string();
    loop {
        let cleaned = QUOTE_TAGS
            .iter()
            .fold(text.clone(), |t, tag| without_tag(&t, tag));
        if cleaned == text {
            return text;
        }
        text = cleaned;
    }
}

/// `key: value` on a line (any case, with Markdown `*`/`#` around the
/// key): the value.
fn labelled<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_matches(|c: char| c == '*' || c == '#' || c.is_whitespace());
    name.eq_ignore_ascii_case(key)
        .then(|| value.trim_matches(|c: char| c == '*' || c.is_whitespace()))
}

fn tags_of(value: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in value.split(',') {
        let tag = one_line(tag.trim_matches(|c: char| {
            c == '#' || c == '[' || c == ']' || c == '"' || c == '\'' || c.is_whitespace()
        }))
        .to_lowercase();
        let tag = cut(&tag, MAX_TAG_CHARS);
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_TAGS);
    tags
}

/// Reads the model's answer: `Title: …`, `Tags: a, b`, a `---` line, then
/// the Markdown body (a code fence around the whole is dropped, lines
/// before `Title:` are skipped, the `---` may be missing). `None` when there
/// is no title or no body. The title is one line of at most
/// [`MAX_TITLE_CHARS`], tags at most six, the body at most
/// [`MAX_BODY_CHARS`].
pub fn parse(answer: &str) -> Option<(String, Vec<String>, String)> {
    let mut text = answer.trim();
    if let Some(rest) = text.strip_prefix("```") {
        text = rest.split_once('\n').map_or("", |(_, r)| r);
        text = text.trim_end().strip_suffix("```").unwrap_or(text);
    }
    let mut title: Option<String> = None;
    let mut tags = Vec::new();
    let mut body_at = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if title.is_none() {
            if let Some(value) = labelled(trimmed, "title") {
                title = Some(value.trim_matches('"').to_string());
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if let Some(value) = labelled(trimmed, "tags") {
            tags = tags_of(value);
        } else if trimmed == "---" {
            body_at = Some(offset);
            break;
        } else {
            body_at = Some(start);
            break;
        }
    }
    let title = cut(&one_line(&title?), MAX_TITLE_CHARS);
    let body = cut(text[body_at?..].trim(), MAX_BODY_CHARS);
    if title.is_empty() || body.is_empty() {
        return None;
    }
    Some((title, tags, body))
}

/// A `/kb …` command in a staff place: `None` when `text` is not one,
/// `Err` with [`CHAT_USAGE`] for `/kb` with anything but `suggest`.
pub fn chat_command(text: &str) -> Option<Result<ChatCommand, &'static str>> {
    let rest = text.trim().strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = name.split('@').next().unwrap_or(name);
    if !name.eq_ignore_ascii_case("kb") {
        return None;
    }
    Some(if args.trim().eq_ignore_ascii_case("suggest") {
        Ok(ChatCommand::Suggest)
    } else {
        Err(CHAT_USAGE)
    })
}

/// The draft for `material` (which has a question and a reply): the
/// model's when it is configured and answers in form, else [`plain`]. The
/// slug is one no article has; `true` when the model wrote it.
pub async fn draft(assistant: &Assistant, material: &Material) -> (SuggestionDraft, bool) {
    let (mut draft, by_model) = match by_model(assistant, material).await {
        Some((title, tags, body)) => (
            SuggestionDraft {
                slug: slugify(&title),
                title,
                tags,
                body,
            },
            true,
        ),
        None => (plain(material), false),
    };
    let kb = assistant.kb();
    draft.slug = unique_slug(&draft.slug, |slug| {
        kb.article(slug).is_some() || kb.source(slug).ok().flatten().is_some()
    });
    (draft, by_model)
}

async fn by_model(
    assistant: &Assistant,
    material: &Material,
) -> Option<(String, Vec<String>, String)> {
    if !assistant.has_model() {
        return None;
    }
    let all = |texts: &[String]| texts.iter().map(|t| quoted(t)).collect::<Vec<_>>();
    let prompt = match assistant.render(
        Template::SuggestArticle,
        serde_json::json!({
            "questions": all(&material.questions),
            "replies": all(&material.replies),
        }),
    ) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("article suggestion from the plain template: {e}");
            return None;
        }
    };
    match assistant
        .complete(&[ChatMessage::new(Speaker::User, prompt)])
        .await?
    {
        Ok(answer) => {
            let parsed = parse(&answer);
            if parsed.is_none() {
                tracing::warn!(
                    "article suggestion from the plain template: the model's draft had no title or no body"
                );
            }
            parsed
        }
        Err(e) => {
            tracing::warn!("article suggestion from the plain template: the model failed: {e}");
            None
        }
    }
}

/// The suggestion for conversation `conversation_id`, drafted now (by
/// `by`, an agent's name) unless it has one already.
///
/// # Errors
/// [`Error`]: no such conversation, not resolved, no question or no reply
/// to draft from, or a store failure.
pub async fn suggest(
    assistant: &Assistant,
    conversation_id: &ConversationId,
    by: &str,
) -> Result<Suggested, Error> {
    let store = assistant.store();
    if let Some(suggestion) = store.suggestion_for(conversation_id).await? {
        return Ok(Suggested {
            suggestion,
            created: false,
        });
    }
    let conversation = match store.conversation(conversation_id).await {
        Ok(c) => c,
        Err(store::Error::NotFound { .. }) => {
            return Err(Error::NotFound(conversation_id.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if conversation.status != Status::Resolved {
        return Err(Error::NotResolved(conversation.status));
    }
    let messages = store.messages(conversation_id).await?;
    let material = material(&conversation, &messages);
    if material.questions.is_empty() {
        return Err(Error::NoQuestion);
    }
    if material.replies.is_empty() {
        return Err(Error::NoReply);
    }
    let (draft, by_model) = draft(assistant, &material).await;
    let (suggestion, created) = store
        .add_suggestion(conversation_id, by, &draft, by_model)
        .await?;
    if created {
        tracing::info!(
            conversation = %conversation_id,
            suggestion = %suggestion.id,
            by,
            by_model,
            "article suggested"
        );
    }
    Ok(Suggested {
        suggestion,
        created,
    })
}

#[cfg(test)]
mod tests;
