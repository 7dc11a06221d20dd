//! Whether the model's answer says that the sources do not answer.
//!
//! Small local models decline nearly every question when the prompt gives
//! them a fixed escape (a token such as `NO_ANSWER`, or a fixed sentence to
//! copy): measured with Qwen2.5-Coder-1.5B on StackFAQ questions whose
//! article was retrieved, 8 of 8 were declined with the token and 7 of 8
//! with a fixed sentence, but 1 of 8 when the prompt only asks the model to
//! say in one sentence, without a citation, that the sources do not cover
//! the question. So the prompt asks for that, and the answer is read here:
//! an answer that cites no source and whose first sentence says the sources
//! (or the help centre) do not cover it is a decline. The old token is still
//! recognised, for prompts written for it.
//!
//! An answer that cites a source is never a decline, even when it says a
//! part is not covered ("The articles do not mention fees, but refunds take
//! 14 days [1]").

use super::NO_ANSWER_TOKEN;

/// Longest answer (in words) read as a decline: a decline is one sentence,
/// a longer text is an answer that happens to start with a caveat.
const MAX_DECLINE_WORDS: usize = 45;
/// While streaming, the answer is held until its first sentence is complete
/// or this many characters have arrived.
pub(crate) const HOLD_CHARS: usize = 240;

/// First words a decline may start with ("The sources do not…", "I'm
/// sorry, …", "Unfortunately, …"); an answer starting otherwise is streamed
/// as soon as its first words are known.
const DECLINE_OPENERS: &[&str] = &[
    "the",
    "i",
    "i'm",
    "im",
    "sorry",
    "unfortunately",
    "there",
    "no",
    "based",
    "according",
    "none",
    "this",
    "that",
    "it",
    "my",
    "these",
    "those",
    "in",
    "from",
    "while",
    "although",
    "as",
    "however",
    "apologies",
    "regrettably",
    "nothing",
    "neither",
    "we",
    "we're",
    "your",
];

/// What a decline says is missing.
const SUBJECTS: &[&str] = &[
    "source",
    "sources",
    "article",
    "articles",
    "help centre",
    "help center",
    "documentation",
    "document",
    "documents",
    "provided",
    "context",
    "information",
    "knowledge base",
    "text",
    "passage",
    "passages",
];

/// How a decline says it (lower case, apostrophes normalised).
const NEGATIONS: &[&str] = &[
    "do not",
    "does not",
    "don't",
    "doesn't",
    "did not",
    "didn't",
    "no information",
    "no specific information",
    "no details",
    "no mention",
    "not mention",
    "not mentioned",
    "not covered",
    "not provided",
    "not contain",
    "not include",
    "not specify",
    "not available",
    "cannot find",
    "can't find",
    "could not find",
    "couldn't find",
    "unable to find",
    "not able to find",
    "not aware",
    "i don't know",
    "i do not know",
    "there is no",
    "there are no",
    "nothing about",
    "cannot answer",
    "can't answer",
    "unable to answer",
    "not able to answer",
    "cannot help",
    "can't help",
    "cannot provide",
    "can't provide",
    "unable to provide",
    "none of the",
    "neither of the",
];

/// Negations that decline whatever they are about, said by the assistant
/// itself ("I'm sorry, but I cannot answer your question about the current
/// time."; "You cannot answer calls in flight mode" is an answer).
const SELF_SUFFICIENT: &[&str] = &[
    "i don't know",
    "i do not know",
    "i'm not aware",
    "i am not aware",
    "i cannot answer",
    "i can't answer",
    "i am unable to answer",
    "i'm unable to answer",
    "i'm not able to answer",
    "i am not able to answer",
];

/// True when `answer` (the whole text) declines: the old token, or one
/// short uncited sentence saying the sources do not cover the question.
pub(crate) fn is_decline(answer: &str) -> bool {
    is_no_answer_token(answer) || first_sentence_declines(answer, true)
}

/// While streaming: `Some(true)` when what has arrived so far may still
/// turn out a decline (hold it back), `Some(false)` when it cannot (send
/// it), `None` when it is too early to say.
pub(crate) fn may_decline(so_far: &str) -> Option<bool> {
    let start = so_far.trim_start();
    if NO_ANSWER_TOKEN.starts_with(start) || start.starts_with(NO_ANSWER_TOKEN) {
        return Some(true);
    }
    if has_citation(start) {
        return Some(false);
    }
    // Most answers show at once that they are not a decline: by how they
    // open ("To get a refund…", "Open Settings…").
    let words: Vec<&str> = start.split_whitespace().collect();
    let opening_known =
        words.len() >= 3 || (words.len() == 2 && start.ends_with(char::is_whitespace));
    if opening_known {
        let first = words[0]
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
            .to_lowercase()
            .replace('’', "'");
        if !DECLINE_OPENERS.contains(&first.as_str()) {
            return Some(false);
        }
    }
    match first_sentence(start) {
        Some(sentence) => Some(first_sentence_declines(sentence, false)),
        None if start.chars().count() >= HOLD_CHARS => Some(false),
        None => None,
    }
}

/// The old fixed token, alone (with punctuation around it).
pub(crate) fn is_no_answer_token(text: &str) -> bool {
    let t = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
    t.starts_with(NO_ANSWER_TOKEN) && t.len() <= NO_ANSWER_TOKEN.len() + 2
}

fn first_sentence_declines(text: &str, whole: bool) -> bool {
    if has_citation(text) {
        return false;
    }
    if whole && text.split_whitespace().count() > MAX_DECLINE_WORDS {
        return false;
    }
    let sentence = first_sentence(text.trim_start()).unwrap_or(text);
    let lower = sentence.to_lowercase().replace(['’', '‘'], "'");
    let words: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let padded = format!(
        " {} ",
        words.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let has = |phrases: &[&str]| phrases.iter().any(|p| padded.contains(&format!(" {p} ")));
    has(NEGATIONS) && (has(SUBJECTS) || has(SELF_SUFFICIENT))
}

/// The first sentence of `text`, if it has ended (a full stop, question or
/// exclamation mark followed by a space or the end, or a line break).
fn first_sentence(text: &str) -> Option<&str> {
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\n' && i > 0 {
            return Some(&text[..i]);
        }
        if matches!(c, '.' | '?' | '!') {
            match chars.peek() {
                Some((_, next)) if next.is_whitespace() => return Some(&text[..=i]),
                None => return Some(text),
                _ => {}
            }
        }
    }
    None
}

/// Whether `text` cites a source as `[n]`.
fn has_citation(text: &str) -> bool {
    citations(text).next().is_some()
}

/// The numbers `text` cites as `[n]`, in order (repeats included).
pub(super) fn citations(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices('[').filter_map(|(i, _)| {
        let rest = &text[i + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        (digits > 0 && rest[digits..].starts_with(']'))
            .then(|| rest[..digits].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::text;
    use proptest::prelude::*;

    #[test]
    fn declines_are_recognised() {
        for decline in [
            "NO_ANSWER",
            "The sources do not provide information on having multiple Dropbox accounts on the same computer.",
            "The help centre does not cover this.",
            "I'm sorry, but the provided articles don't mention how to export contacts.",
            "I couldn't find anything about that in the documentation.",
            "There is no information about refunds for gift cards in the sources.",
            "I don't know.",
            "I'm sorry, but I cannot answer your question about the current time. The sources provided do not mention any information about the current time.",
            "I apologize, but I cannot provide information on building old MS-DOS style character art.",
            "None of the sources directly address how to filter out some inboxes.",
        ] {
            assert!(is_decline(decline), "{decline}");
            assert_eq!(may_decline(decline), Some(true), "{decline}");
        }
    }

    #[test]
    fn answers_are_not_declines() {
        for answer in [
            "Refunds reach your card within 14 days [1].",
            "The articles do not mention fees, but refunds take 14 days [1].",
            "Yes, you can create a link to a particular place in a Google Doc: highlight it, then Insert → Bookmark.",
            "To filter by time, search for older_than:1d. This does not change the labels.",
            "You don't need an account: open the link and sign in later.",
            "You cannot answer calls while the phone is in flight mode.",
        ] {
            assert!(!is_decline(answer), "{answer}");
        }
        // A long text that starts with a caveat is an answer.
        let long = format!(
            "The sources do not say it directly. {}",
            "Open Settings and choose Billing, then Refunds. ".repeat(8)
        );
        assert!(!is_decline(&long));
    }

    #[test]
    fn streaming_holds_only_what_may_decline() {
        assert_eq!(may_decline("NO_"), Some(true));
        assert_eq!(may_decline("The sources"), None);
        assert_eq!(may_decline("Refunds take 14 days [1]"), Some(false));
        assert_eq!(may_decline("Open Settings. Then"), Some(false));
        assert_eq!(
            may_decline("To get a refund"),
            Some(false),
            "answers open otherwise"
        );
        assert_eq!(may_decline("To"), None);
        assert_eq!(
            may_decline("The refund takes"),
            None,
            "may still be a decline"
        );
        assert_eq!(may_decline("The sources do not say. "), Some(true));
        assert_eq!(may_decline(&"word ".repeat(60)), Some(false));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn hostile_model_output_is_read_without_panicking(s in text()) {
            let _ = is_decline(&s);
            let _ = may_decline(&s);
            // A cited answer is never a decline.
            let cited = format!("{s} [1]");
            prop_assert!(!first_sentence_declines(&cited, true));
        }
    }
}
