//! When a conversation goes to a person, and why.
//!
//! The assistant asks [`Rules::check`] before answering; the result is a
//! typed [`Reason`], stored with the hand-off and counted in reports, never a
//! phrase hidden in the answer text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::HandoffSettings;
pub use crate::hours::BusinessHours;

mod request;
pub use request::asks_for_person;

/// Why a conversation was handed to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The customer asked for a person.
    CustomerRequest,
    /// The knowledge base does not cover the question and the customer
    /// accepted the offer of a person.
    KnowledgeGap,
    /// The customer is stuck (repeats themselves, says answers did not help)
    /// or upset.
    Frustration,
    /// The language model failed repeatedly.
    LlmFailure,
    /// An admin rule (keyword or article tag).
    Rule,
    /// The customer is on the VIP list.
    Vip,
    /// An agent or admin moved it by hand.
    Manual,
}

impl Reason {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CustomerRequest => "customer_request",
            Reason::KnowledgeGap => "knowledge_gap",
            Reason::Frustration => "frustration",
            Reason::LlmFailure => "llm_failure",
            Reason::Rule => "rule",
            Reason::Vip => "vip",
            Reason::Manual => "manual",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "customer_request" => Reason::CustomerRequest,
            "knowledge_gap" => Reason::KnowledgeGap,
            "frustration" => Reason::Frustration,
            "llm_failure" => Reason::LlmFailure,
            "rule" => Reason::Rule,
            "vip" => Reason::Vip,
            "manual" => Reason::Manual,
            other => return Err(format!("unknown hand-off reason `{other}`")),
        })
    }
}

/// Wording that says the bot is failing the customer.
const FRUSTRATION_PHRASES: &[&str] = &[
    "useless",
    "this bot is",
    "stupid bot",
    "dumb bot",
    "you are not helping",
    "you re not helping",
    "not helpful",
    "doesn t help",
    "didn t help",
    "did not help",
    "does not help",
    "that s wrong",
    "waste of time",
    "ridiculous",
    "terrible",
    "awful",
    "furious",
    "angry",
    "unacceptable",
    "worst",
    "wtf",
];

/// "No" after an answer: counted towards frustration when repeated.
const NEGATIVE_FEEDBACK: &[&str] = &[
    "no",
    "nope",
    "no it didn t",
    "no that didn t help",
    "that didn t help",
    "didn t work",
    "doesn t work",
    "still not working",
    "still doesn t work",
    "not working",
    "wrong answer",
];

/// Lower case, every non-alphanumeric run as one space.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_string()
}

/// Whether `phrase` stands in the normalised `haystack` as whole words.
/// Without allocating: it runs for every phrase of every message.
pub(crate) fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let bytes = haystack.as_bytes();
    // Tried at every word's start (matches of a phrase may overlap).
    std::iter::once(0)
        .chain(haystack.match_indices(' ').map(|(at, _)| at + 1))
        .any(|at| {
            let end = at + phrase.len();
            haystack[at..].starts_with(phrase) && (end == bytes.len() || bytes[end] == b' ')
        })
}

/// True for strongly negative wording about the help received.
pub fn is_upset(text: &str) -> bool {
    let n = normalise(text);
    FRUSTRATION_PHRASES.iter().any(|p| contains_phrase(&n, p))
}

/// True for a short "no / that didn't help" reply.
pub fn is_negative_feedback(text: &str) -> bool {
    let n = normalise(text);
    NEGATIVE_FEEDBACK
        .iter()
        .any(|p| n == *p || (n.len() < 40 && contains_phrase(&n, p) && p.len() > 3))
}

/// Admin rules from `[handoff]`.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    keywords: Vec<String>,
    tags: Vec<String>,
    vip: Vec<String>,
}

impl Rules {
    /// Rules from settings.
    pub fn new(settings: &HandoffSettings) -> Self {
        Self {
            keywords: settings
                .keywords
                .iter()
                .map(|k| normalise(k))
                .filter(|k| !k.is_empty())
                .collect(),
            tags: settings.tags.iter().map(|t| t.to_lowercase()).collect(),
            vip: settings.vip.clone(),
        }
    }

    /// The keyword of an admin rule the message contains, if any.
    pub fn keyword_in(&self, text: &str) -> Option<&str> {
        let n = normalise(text);
        self.keywords
            .iter()
            .find(|k| contains_phrase(&n, k))
            .map(String::as_str)
    }

    /// The first of `tags` that always goes to a person, if any.
    pub fn tag_in<'a>(&self, tags: impl IntoIterator<Item = &'a String>) -> Option<&'a str> {
        tags.into_iter()
            .find(|t| self.tags.contains(&t.to_lowercase()))
            .map(String::as_str)
    }

    /// Whether `channel:external_id` is on the VIP list.
    pub fn is_vip(&self, channel: &str, external_id: &str) -> bool {
        let key = format!("{channel}:{external_id}");
        self.vip.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        for (haystack, phrase, expected) in [
            ("talk to a human", "human", true),
            ("talk to a human", "talk to", true),
            ("humanity", "human", false),
            ("a human s job", "human", true),
            ("inhuman", "human", false),
            ("human", "human", true),
            ("", "", true),
            ("a", "", false),
            ("é human é", "human", true),
            ("éhuman", "human", false),
            // Overlapping candidates: the first is no whole-word match.
            ("p qr qr q", "qr q", true),
        ] {
            let padded = format!(" {haystack} ").contains(&format!(" {phrase} "));
            assert_eq!(padded, expected, "{haystack:?} / {phrase:?}");
            assert_eq!(
                contains_phrase(haystack, phrase),
                expected,
                "{haystack:?} / {phrase:?}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 5_000, failure_persistence: None, ..Default::default()
        })]

        /// The same answer as the padded search it replaced, on any text.
        #[test]
        fn phrases_match_as_padded_search_on_hostile_text(
            haystack in crate::hostile::text(),
            phrase in crate::hostile::text(),
        ) {
            let (haystack, phrase) = (normalise(&haystack), normalise(&phrase));
            let padded = format!(" {haystack} ").contains(&format!(" {phrase} "));
            proptest::prop_assert_eq!(contains_phrase(&haystack, &phrase), padded);
            // And a phrase cut out of the text itself.
            let words: Vec<&str> = haystack.split(' ').collect();
            let cut = words[words.len() / 2..].join(" ");
            let padded = format!(" {haystack} ").contains(&format!(" {cut} "));
            proptest::prop_assert_eq!(contains_phrase(&haystack, &cut), padded);
        }
    }

    #[test]
    fn recognises_frustration() {
        assert!(is_upset("this bot is useless"));
        assert!(is_upset("That didn't help at all, this is ridiculous"));
        assert!(!is_upset("how do I export my notes"));
        assert!(is_negative_feedback("no"));
        assert!(is_negative_feedback("No, that didn't help"));
        assert!(!is_negative_feedback(
            "no sync on my phone since yesterday, what do I do about notes"
        ));
    }

    #[test]
    fn admin_rules() {
        let rules = Rules::new(&HandoffSettings {
            keywords: vec!["Lawyer".into(), "chargeback".into()],
            tags: vec!["legal".into()],
            vip: vec!["telegram:42".into()],
            ..HandoffSettings::default()
        });
        assert_eq!(rules.keyword_in("my lawyer will call"), Some("lawyer"));
        assert_eq!(rules.keyword_in("how do I sign in"), None);
        let tags = vec!["billing".to_string(), "Legal".to_string()];
        assert_eq!(rules.tag_in(&tags), Some("Legal"));
        assert!(rules.is_vip("telegram", "42"));
        assert!(!rules.is_vip("discord", "42"));
    }

    #[test]
    fn reasons_round_trip() {
        for r in [
            Reason::CustomerRequest,
            Reason::KnowledgeGap,
            Reason::Frustration,
            Reason::LlmFailure,
            Reason::Rule,
            Reason::Vip,
            Reason::Manual,
        ] {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
        }
    }
}
