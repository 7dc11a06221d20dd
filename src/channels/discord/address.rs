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

    #[test]
    fn removes_only_the_bots_mentions() {
        assert_eq!(
            without_mentions(" <@42> \u{212A} refunds <@!42> <@43>", 42).as_deref(),
            Some("\u{212A} refunds  <@43>")
        );
        assert_eq!(without_mentions("<@42>", 42), None);
    }
}
