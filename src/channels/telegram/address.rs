//! Whether a group message is addressed to the bot, and its text without
//! the mention. Pure, so it can be tested on hostile text without teloxide.
//!
//! Telegram usernames are ASCII (`[A-Za-z0-9_]`, compared without case), so
//! mentions are found by ASCII case folding in the original text. Lower-casing
//! the whole text instead changes byte offsets (the Kelvin sign `K` is three
//! bytes, its lower case `k` one), and an offset found there must never cut
//! the original.

use std::ops::Range;

/// The text to answer in a group (trimmed, the first mention of the bot
/// removed), or `None` when the bot is not addressed (not replied to, no
/// `/ask` or `/command@username`, no `@username` mention) or nothing is
/// left. `username` is the bot's username without `@` (empty when unknown).
pub(crate) fn addressed(text: &str, username: &str, replied_to_bot: bool) -> Option<String> {
    let command = text.strip_prefix('/').is_some_and(|rest| {
        let name = rest.split_whitespace().next().unwrap_or("");
        let (cmd, bot) = name.split_once('@').unwrap_or((name, ""));
        (bot.is_empty() && cmd.eq_ignore_ascii_case("ask"))
            || (!username.is_empty() && bot.eq_ignore_ascii_case(username))
    });
    let mention = mention_in(text, username);
    if !(replied_to_bot || command || mention.is_some()) {
        return None;
    }
    let cleaned = match mention {
        Some(at) if !command => format!("{}{}", &text[..at.start], &text[at.end..])
            .trim()
            .to_string(),
        _ => text.trim().to_string(),
    };
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The byte range of the first `@username` in `text` (ASCII case-insensitive,
/// not followed by another username character, so `@bot` is not found in
/// `@bot2`).
pub(crate) fn mention_in(text: &str, username: &str) -> Option<Range<usize>> {
    if username.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let name = username.as_bytes();
    text.match_indices('@').find_map(|(at, _)| {
        let end = at + 1 + name.len();
        // Equal bytes (ASCII folded) end on a char boundary: a non-ASCII
        // byte only matches the same byte of the (valid UTF-8) username.
        let same = bytes
            .get(at + 1..end)
            .is_some_and(|b| b.eq_ignore_ascii_case(name));
        let more = bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        (same && !more).then_some(at..end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{self, any_case, text};
    use proptest::prelude::*;

    proptest! {
        // 100,000 + 60,000 + 30,000 cases (the total is in tests/suite/unicode.rs).
        #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hostile_group_text_never_panics(s in text(), replied in any::<bool>()) {
            if let Some(t) = addressed(&s, hostile::BOT, replied) {
                prop_assert!(!t.trim().is_empty());
            }
            if let Some(at) = mention_in(&s, hostile::BOT) {
                let mention = format!("@{}", hostile::BOT);
                prop_assert!(s[at.clone()].eq_ignore_ascii_case(&mention));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 60_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hostile_mentions_in_any_case_are_removed(
            before in text(),
            name in any_case(hostile::BOT),
            after in text(),
        ) {
            // Not a command, no earlier mention, and no username character
            // glued after the mention.
            let before = format!("x {}", before.replace('@', ""));
            let after = format!(" {after}");
            let s = format!("{before}@{name}{after}");
            let expected = format!("{before}{after}").trim().to_string();
            prop_assert_eq!(addressed(&s, hostile::BOT, false), Some(expected));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 30_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hostile_usernames_never_panic(s in text(), name in text()) {
            let _ = addressed(&s, &name, false);
            let _ = mention_in(&s, &name);
        }
    }

    const BOT: &str = "switchboard_bot";

    #[test]
    fn a_kelvin_sign_before_the_mention_does_not_panic() {
        // Found by issue 11: `to_lowercase` turned the 3-byte Kelvin sign
        // into a 1-byte `k`, and the mention's offset there cut the original.
        let text = "\u{212A}@switchboard_bot how do I export my notes?";
        assert_eq!(
            addressed(text, BOT, false).as_deref(),
            Some("\u{212A} how do I export my notes?")
        );
        assert_eq!(
            addressed("İİİ @Switchboard_Bot hi", BOT, false).as_deref(),
            Some("İİİ  hi")
        );
    }

    #[test]
    fn mentions_commands_and_replies() {
        assert_eq!(
            addressed("@SWITCHBOARD_BOT refunds?", BOT, false).as_deref(),
            Some("refunds?")
        );
        assert_eq!(addressed("lunch?", BOT, false), None);
        assert_eq!(addressed("lunch?", BOT, true).as_deref(), Some("lunch?"));
        assert_eq!(
            addressed("/ask refund", BOT, false).as_deref(),
            Some("/ask refund")
        );
        assert_eq!(
            addressed("/ASK@switchboard_bot refund", BOT, false).as_deref(),
            Some("/ASK@switchboard_bot refund")
        );
        assert_eq!(addressed("/ask@other_bot refund", BOT, false), None);
        assert_eq!(addressed("@switchboard_bot2 hi", BOT, false), None);
        assert_eq!(addressed("@switchboard_bot", BOT, false), None);
        // A Unicode look-alike of the username is not a mention.
        assert_eq!(addressed("@\u{212A}bot hi", "kbot", false), None);
        assert_eq!(addressed("/ask@\u{212A}bot hi", "kbot", false), None);
        assert_eq!(addressed("@ hi", "", false), None);
    }
}
