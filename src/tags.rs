//! Tags agents put on conversations ("billing", "bug-report"), to find
//! them again: a [`Tag`] is written as agents type it, kept in one form.

use std::fmt;

/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;

/// A conversation tag: lower case, words joined by `-`, 1 to
/// [`MAX_TAG_CHARS`] letters, digits, `-`, `_` or `.` (any script).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Tag(String);

/// Why text is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Nothing usable in it.
    #[error("a tag needs at least one letter or digit")]
    Empty,
    /// Longer than [`MAX_TAG_CHARS`].
    #[error("a tag is at most {MAX_TAG_CHARS} characters")]
    TooLong,
    /// Holds something other than letters, digits, `-`, `_`, `.` and spaces.
    #[error("a tag holds only letters, digits, `-`, `_` and `.`")]
    Invalid,
}

impl Tag {
    /// `text` as a tag: trimmed, lower case, runs of spaces as one `-`.
    ///
    /// # Errors
    /// When nothing is left, it is too long, or it holds other characters.
    pub fn parse(text: &str) -> Result<Self, TagError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let joined = words.join("-").to_lowercase();
        if joined.is_empty() || !joined.chars().any(char::is_alphanumeric) {
            return Err(TagError::Empty);
        }
        if !joined
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(TagError::Invalid);
        }
        if joined.chars().count() > MAX_TAG_CHARS {
            return Err(TagError::TooLong);
        }
        Ok(Self(joined))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_are_kept_in_one_form() {
        assert_eq!(
            Tag::parse("  Billing  Issue ").unwrap().as_str(),
            "billing-issue"
        );
        assert_eq!(Tag::parse("VIP").unwrap().as_str(), "vip");
        assert_eq!(
            Tag::parse("Rückerstattung").unwrap().as_str(),
            "rückerstattung"
        );
        assert_eq!(Tag::parse("v2.1_beta").unwrap().as_str(), "v2.1_beta");
        assert_eq!(Tag::parse(""), Err(TagError::Empty));
        assert_eq!(Tag::parse(" -- "), Err(TagError::Empty));
        assert_eq!(Tag::parse("<b>x</b>"), Err(TagError::Invalid));
        assert_eq!(Tag::parse("a%b"), Err(TagError::Invalid));
        assert_eq!(Tag::parse("x\u{202e}y"), Err(TagError::Invalid));
        assert_eq!(Tag::parse(&"x".repeat(33)), Err(TagError::TooLong));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text: no panic; a tag is short, has no space, control or
        /// markup character, and is its own form.
        #[test]
        fn hostile_text_never_makes_a_bad_tag(s in crate::hostile::text()) {
            if let Ok(tag) = Tag::parse(&s) {
                let t = tag.as_str();
                prop_assert!(!t.is_empty() && t.chars().count() <= MAX_TAG_CHARS);
                prop_assert!(t.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.')));
                prop_assert_eq!(Tag::parse(t), Ok(tag.clone()));
            }
        }
    }
}
