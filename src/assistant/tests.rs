//! Unit and property tests of the assistant's customer commands, quotes and citations, with hostile text.

use super::*;
use crate::hostile::{any_case, text};
use proptest::prelude::*;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    // 80,000 + 40,000 + 15,000 cases (the total is in tests/suite/unicode.rs).
    #![proptest_config(cases(80_000))]

    #[test]
    fn hostile_customer_commands_parse(s in text()) {
        match parse_command(&s) {
            None => prop_assert!(!s.trim().starts_with('/')),
            Some(Command::Unknown(name)) => {
                prop_assert!(!name.contains('@') && !name.contains(char::is_whitespace));
            }
            Some(Command::Ask(args)) => prop_assert_eq!(args, args.trim()),
            Some(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(cases(40_000))]

    #[test]
    fn hostile_customer_commands_round_trip(
        (name, cased) in prop::sample::select(&["start", "help", "human", "agent", "new", "reset", "cancel", "bot", "stop-surveys", "stop_surveys", "stopsurveys", "ask", "frobnicate"][..])
            .prop_flat_map(|name| (Just(name), any_case(name))),
        bot in prop::option::of("[A-Za-z0-9_]{1,20}"),
        args in text(),
    ) {
        let at = bot.map(|b| format!("@{b}")).unwrap_or_default();
        let typed = format!("/{cased}{at} {args}");
        let expected = match name {
            "start" => Command::Start,
            "help" => Command::Help,
            "human" | "agent" => Command::Human,
            "new" | "reset" => Command::New,
            "cancel" | "bot" => Command::Cancel,
            "ask" => Command::Ask(args.trim()),
            "frobnicate" => Command::Unknown(&cased),
            _ => Command::StopSurveys,
        };
        prop_assert_eq!(parse_command(&typed), Some(expected));
    }
}

proptest! {
    #![proptest_config(cases(15_000))]

    #[test]
    fn hostile_quotes_and_citations(s in text()) {
        prop_assert!(quote_of(&s).chars().count() <= MAX_QUOTE_CHARS + 1);
        let source = |slug: &str| PromptSource {
            slug: slug.into(),
            title: slug.into(),
            url: None,
            score: 1.0,
            passages: vec![],
        };
        let cited = cited_sources(&s, &[source("a"), source("b"), source("c")]);
        prop_assert!(!cited.is_empty() && cited.len() <= 3);
    }
}

#[test]
fn commands_parse() {
    assert_eq!(parse_command("/start"), Some(Command::Start));
    assert_eq!(
        parse_command("/ask@my_bot how do refunds work"),
        Some(Command::Ask("how do refunds work"))
    );
    assert_eq!(parse_command("/HUMAN"), Some(Command::Human));
    assert_eq!(
        parse_command("/frobnicate now"),
        Some(Command::Unknown("frobnicate"))
    );
    assert_eq!(parse_command("how do I /start"), None);
}

#[test]
fn citations_select_sources() {
    let s = |slug: &str| PromptSource {
        slug: slug.into(),
        title: slug.into(),
        url: None,
        score: 1.0,
        passages: vec![],
    };
    let sources = vec![s("a"), s("b"), s("c")];
    let cited = cited_sources("Do this [2], then that [3][2]. Not [9].", &sources);
    assert_eq!(
        cited.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>(),
        vec!["b", "c"]
    );
    let all = cited_sources("No citations here.", &sources);
    assert_eq!(all.len(), 3);
}

#[test]
fn quotes_keep_whole_paragraphs() {
    let para = "word ".repeat(100);
    let md = format!("{para}\n\n{para}\n\n{para}");
    let q = quote_of(&md);
    assert!(q.chars().count() <= MAX_QUOTE_CHARS + 1);
    assert!(!q.ends_with("wor"));
}
