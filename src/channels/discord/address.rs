//! A message's text without the bot's mentions. Pure, so it can be tested
//! on hostile text without serenity types. Whether the bot is mentioned
//! comes from the message's `mentions` (ids), never from its text.

/// `text` trimmed, every `<@bot>` and `<@!bot>` removed; `None` when
/// nothing is left.
pub(crate) fn without_mentions(text: &str, bot: u64) -> Option<String> {
    let cleaned = text
        .trim()
        .replace(&format!("<@{bot}>"), "")
        .replace(&format!("<@!{bot}>"), "")
        .trim()
        .to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::text;
    use proptest::prelude::*;

    proptest! {
        // 40,000 cases (the total is in tests/suite/unicode.rs).
        #![proptest_config(ProptestConfig { cases: 40_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hostile_text_loses_only_the_bots_mentions(s in text(), before in text()) {
            let _ = without_mentions(&s, 42);
            // Without `<` in the text, the mentions are all there is to remove.
            let (s, before) = (s.replace('<', ""), before.replace('<', ""));
            let with = format!("{before}<@42>{s}<@!42>");
            let expected = format!("{before}{s}").trim().to_string();
            prop_assert_eq!(without_mentions(&with, 42), (!expected.is_empty()).then_some(expected));
        }
    }

    #[test]
    fn removes_only_the_bots_mentions() {
        assert_eq!(
            without_mentions(" <@42> \u{212A} refunds <@!42> <@43>", 42).as_deref(),
            Some("\u{212A} refunds  <@43>")
        );
        assert_eq!(without_mentions("<@42>", 42), None);
    }
}
