//! Conversation-aware retrieval without a model: whether a new message leans
//! on earlier turns ("and on Android?", "tell me more about those"), and the
//! weighted query parts retrieval gets for it.
//!
//! The earlier turns only ever add terms at a lower weight than the new
//! message's own, and the assistant keeps the merged retrieval only when its
//! best article is about the new message too ([`about_share`]): a new topic
//! is never answered from the previous one.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Who said an earlier turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The customer.
    Customer,
    /// The bot (or an agent).
    Bot,
}

/// One earlier turn of a conversation (oldest first in a slice).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub struct Earlier {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// Weight of the customer's previous message in a follow-up's query.
pub(crate) const PREVIOUS_CUSTOMER_WEIGHT: f32 = 0.7;
/// Weight of the bot's last reply.
pub(crate) const PREVIOUS_BOT_WEIGHT: f32 = 0.4;
/// Weight of the customer's message before the previous one.
pub(crate) const OLDER_CUSTOMER_WEIGHT: f32 = 0.25;
/// Longest earlier text taken into a query, in characters (a pasted log in
/// the history must not drown the new message).
const MAX_EARLIER_CHARS: usize = 1200;

/// Words that point back at something said before.
const POINTERS: &[&str] = &[
    "it",
    "its",
    "that",
    "this",
    "those",
    "these",
    "they",
    "them",
    "their",
    "there",
    "one",
    "ones",
    "same",
    "also",
    "else",
    "more",
    "another",
    "above",
    "mentioned",
    "previous",
    "former",
    "latter",
    "he",
    "she",
    "him",
    "her",
    "his",
    "such",
];

/// Openings of a message that continue the conversation.
const OPENERS: &[&str] = &[
    "and",
    "but",
    "so",
    "also",
    "what about",
    "how about",
    "then",
    "what if",
    "why",
    "how come",
];

/// How much a message leans on the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowUp {
    /// It points back ("does it …", "those steps") or opens as a
    /// continuation ("and on Android?").
    Explicit,
    /// It says too little on its own (fewer than 3 analysed terms).
    Short,
    /// It reads as a question of its own.
    No,
}

/// Whether `text` (with `content_terms` analysed terms) reads as a
/// follow-up.
pub(crate) fn follow_up(text: &str, content_terms: usize) -> FollowUp {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return FollowUp::No;
    }
    let opening = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    if words.iter().any(|w| POINTERS.contains(w))
        || OPENERS
            .iter()
            .any(|o| opening == *o || opening.starts_with(&format!("{o} ")))
    {
        FollowUp::Explicit
    } else if content_terms < 3 {
        FollowUp::Short
    } else {
        FollowUp::No
    }
}

/// The weighted query parts for `question` after `earlier`: the new message
/// at 1.0, the customer's previous message, the bot's last reply and the
/// customer's message before that at lower weights.
pub(crate) fn parts<'a>(question: &'a str, earlier: &'a [Earlier]) -> Vec<(&'a str, f32)> {
    let mut parts = vec![(question, 1.0)];
    let mut customer = earlier
        .iter()
        .rev()
        .filter(|e| e.role == Role::Customer && !e.text.trim().is_empty());
    if let Some(previous) = customer.next() {
        parts.push((clip(&previous.text), PREVIOUS_CUSTOMER_WEIGHT));
    }
    if let Some(older) = customer.next() {
        parts.push((clip(&older.text), OLDER_CUSTOMER_WEIGHT));
    }
    if let Some(bot) = earlier.last().filter(|e| e.role == Role::Bot) {
        parts.push((clip(&bot.text), PREVIOUS_BOT_WEIGHT));
    }
    parts
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(MAX_EARLIER_CHARS) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Share (0–1) of `new_terms` found in `article_terms`; 0 when the new
/// message has no terms.
pub(crate) fn about_share(new_terms: &[String], article_terms: &HashSet<String>) -> f32 {
    if new_terms.is_empty() {
        return 0.0;
    }
    let found = new_terms
        .iter()
        .filter(|t| article_terms.contains(*t))
        .count();
    found as f32 / new_terms.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_are_recognised() {
        assert_eq!(follow_up("and on Android?", 1), FollowUp::Explicit);
        assert_eq!(
            follow_up("Tell me more about the new commands", 3),
            FollowUp::Explicit
        );
        assert_eq!(
            follow_up("Are those the only steps?", 2),
            FollowUp::Explicit
        );
        assert_eq!(
            follow_up("what about refunds for annual plans", 3),
            FollowUp::Explicit
        );
        assert_eq!(
            follow_up("How do I reset my password on the web app", 4),
            FollowUp::No
        );
        assert_eq!(
            follow_up("What is the capital of France", 2),
            FollowUp::Short
        );
        assert_eq!(follow_up("", 0), FollowUp::No);
        assert_eq!(follow_up("¿¡ 🎉 !!", 0), FollowUp::No);
    }

    #[test]
    fn parts_weigh_earlier_turns_less() {
        let earlier = vec![
            Earlier {
                role: Role::Customer,
                text: "How do I get a refund?".into(),
            },
            Earlier {
                role: Role::Bot,
                text: "Refunds take five days.".into(),
            },
            Earlier {
                role: Role::Customer,
                text: "How do I reset my password?".into(),
            },
            Earlier {
                role: Role::Bot,
                text: "Use the reset link.".into(),
            },
        ];
        let p = parts("and on Android?", &earlier);
        assert_eq!(p[0], ("and on Android?", 1.0));
        assert_eq!(
            p[1],
            ("How do I reset my password?", PREVIOUS_CUSTOMER_WEIGHT)
        );
        assert_eq!(p[2], ("How do I get a refund?", OLDER_CUSTOMER_WEIGHT));
        assert_eq!(p[3], ("Use the reset link.", PREVIOUS_BOT_WEIGHT));
    }

    #[test]
    fn long_earlier_text_is_clipped_on_a_char_boundary() {
        let text = "é".repeat(MAX_EARLIER_CHARS + 10);
        assert_eq!(clip(&text).chars().count(), MAX_EARLIER_CHARS);
    }
}
