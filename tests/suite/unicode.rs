//! Property tests on every public function that cuts, parses or renders
//! outside text, fed hostile Unicode (see `tests/hostile/mod.rs`). Each
//! checks that nothing panics and the real invariants where they exist:
//! split parts within the platform's limit as the platform counts, parts
//! joined give back the content, escaped HTML is well formed for Telegram,
//! parsed commands, button data and survey answers round-trip.
//!
//! Cases generated: 820,156 in this file, plus 365,000 in the library's
//! unit tests (`cargo test --lib hostile_`) for the crate-private functions
//! (Telegram and Discord addressing, the assistant's command parser,
//! `quote_of`, citations): 1,185,156 in all. Cheap functions get many
//! cases, the splitters and the Markdown parser fewer, and 100 KB strings
//! a handful. Both together take about 30 s of CPU in a debug build
//! (`[profile.dev.package.proptest] opt-level = 3` in Cargo.toml makes case
//! generation ten times faster).

use crate::hostile;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::Config;

use switchboard::button::{ButtonData, SurveyStep};
use switchboard::channels::cut_point;
use switchboard::channels::discord::render as discord;
use switchboard::channels::telegram::render as telegram;
use switchboard::csat::typed_rating;
use switchboard::desk::{AgentAction, Desk};
use switchboard::export;
use switchboard::handoff;
use switchboard::kb::{self as index};
use switchboard::kb::{self as article, Article, SearchIndex};
use switchboard::store::{Answer, SourceRef};

use hostile::{any_case, huge_text, ink, long_text, text};

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        // Failures are shrunk and printed; nothing is written beside the
        // sources (the regression tests below keep what was found).
        failure_persistence: None,
        ..Config::default()
    }
}

/// The text Telegram shows for an HTML-mode message, or why Telegram would
/// refuse it ("can't parse entities"): only `&lt;` `&gt;` `&amp;` `&quot;`
/// entities, only `<a href="…">…</a>` tags (our only markup), properly
/// closed, and no bare `<`, `>` or `&`.
fn telegram_visible(html: &str) -> Result<String, String> {
    let mut shown = String::new();
    let mut rest = html;
    let mut in_link = false;
    while let Some(c) = rest.chars().next() {
        match c {
            '&' => {
                let (entity, decoded) = [
                    ("&lt;", '<'),
                    ("&gt;", '>'),
                    ("&amp;", '&'),
                    ("&quot;", '"'),
                ]
                .into_iter()
                .find(|(e, _)| rest.starts_with(e))
                .ok_or_else(|| {
                    format!("bare & at {:?}", rest.chars().take(20).collect::<String>())
                })?;
                shown.push(decoded);
                rest = &rest[entity.len()..];
            }
            '<' if rest.starts_with("</a>") && in_link => {
                in_link = false;
                rest = &rest[4..];
            }
            '<' if rest.starts_with("<a href=\"") && !in_link => {
                let after = &rest["<a href=\"".len()..];
                let end = after.find("\">").ok_or("unclosed href")?;
                let href = &after[..end];
                if href.contains(['<', '>', '"']) {
                    return Err(format!("bad href {href:?}"));
                }
                telegram_visible(href)?;
                in_link = true;
                rest = &after[end + 2..];
            }
            '<' | '>' => {
                return Err(format!(
                    "bare {c} at {:?}",
                    rest.chars().take(20).collect::<String>()
                ));
            }
            c => {
                shown.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if in_link {
        return Err("unclosed <a>".into());
    }
    Ok(shown)
}

/// Sources with hostile titles and URLs.
fn sources() -> impl Strategy<Value = Vec<SourceRef>> {
    let source =
        (text(), prop::option::of(text()), any::<bool>()).prop_map(|(title, url, web)| SourceRef {
            slug: "s".into(),
            title,
            url: url.map(|u| {
                if web {
                    format!("https://x.example/{u}")
                } else {
                    u
                }
            }),
            score: 1.0,
        });
    prop::collection::vec(source, 0..6)
}

/// Whether a Discord part leaves a code block open, as Discord would see
/// it: a line starting with ``` opens or closes one.
fn leaves_fence_open(part: &str) -> bool {
    part.lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
        % 2
        == 1
}

fn check_telegram_split(text: &str) -> Result<(), TestCaseError> {
    let parts = telegram::split(text);
    prop_assert!(!parts.is_empty());
    for p in &parts {
        let html = telegram::escape(p);
        prop_assert!(telegram::utf16_len(&html) <= telegram::LIMIT);
        prop_assert_eq!(telegram_visible(&html), Ok(p.clone()));
    }
    prop_assert_eq!(ink(&parts.concat()), ink(text));
    Ok(())
}

fn check_discord_split(text: &str) -> Result<(), TestCaseError> {
    let parts = discord::split(text);
    prop_assert!(!parts.is_empty());
    // Every part makes progress: at least 400 characters but the last.
    prop_assert!(parts.len() <= text.chars().count() / 400 + 1);
    for p in &parts {
        prop_assert!(p.chars().count() <= discord::LIMIT);
    }
    for p in &parts[..parts.len() - 1] {
        prop_assert!(!leaves_fence_open(p), "open code block in {:?}", p);
    }
    if !text.contains('`') {
        prop_assert_eq!(ink(&parts.concat()), ink(text));
    }
    let prefix = "<@123456789012345678> ";
    let parts = discord::split_prefixed(prefix, text);
    prop_assert!(parts[0].starts_with(prefix));
    for p in &parts {
        prop_assert!(p.chars().count() <= discord::LIMIT);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(80_000))]

    #[test]
    fn hostile_cut_point_keeps_more_than_half_on_a_char_boundary(head in text()) {
        let cut = cut_point(&head);
        prop_assert!(head.is_char_boundary(cut));
        prop_assert!(cut == head.len() || cut > head.len() / 2);
        prop_assert!(head.is_empty() || cut > 0);
    }

    #[test]
    fn hostile_telegram_escape_is_well_formed_and_round_trips(s in text()) {
        let html = telegram::escape(&s);
        prop_assert!(!html.contains(['<', '>', '"']));
        prop_assert_eq!(telegram_visible(&html), Ok(s));
    }

    #[test]
    fn hostile_agent_commands_parse(s in text()) {
        // Button data is the platform's callback field: anything may come
        // back; what parses encodes to the same meaning again.
        if let Some(button) = ButtonData::parse(&s) {
            prop_assert_eq!(ButtonData::parse(&button.encode()), Some(button));
        }
        match Desk::parse_command(&s) {
            Ok(AgentAction::Reply(r)) if !s.trim().starts_with('/') => {
                prop_assert_eq!(r, s.trim());
            }
            Ok(_) | Err(_) => prop_assert!(s.trim().starts_with('/')),
        }
    }

    #[test]
    fn hostile_button_data_parses_only_what_it_encodes(s in text()) {
        // Presses bring back any string a client sends; what parses must
        // name its conversation and encode within Telegram's 64 bytes.
        if let Some(button) = ButtonData::parse(&s) {
            let encoded = button.encode();
            prop_assert!(encoded.len() <= 64);
            prop_assert_eq!(ButtonData::parse(&encoded), Some(button));
        }
    }

    #[test]
    fn hostile_typed_ratings_parse_in_range_only(s in text(), step in prop::sample::select(&[SurveyStep::Csat, SurveyStep::Ces, SurveyStep::Nps][..])) {
        if let Some(answer) = typed_rating(step, &s) {
            let ok = matches!(
                (step, answer),
                (SurveyStep::Csat, Answer::Csat(1..=5)) | (SurveyStep::Ces, Answer::Ces(1..=7)) | (SurveyStep::Nps, Answer::Nps(0..=10))
            );
            prop_assert!(ok);
        }
    }

    #[test]
    fn hostile_question_tags_never_survive(s in text()) {
        let clean = switchboard::assistant::prompts::without_tag(&s, "question");
        let lower = clean.to_ascii_lowercase();
        prop_assert!(!lower.contains("<question>") && !lower.contains("</question>"));
        prop_assert_eq!(switchboard::assistant::prompts::without_tag(&clean, "question"), clean.clone());
        if !s.contains('>') {
            prop_assert_eq!(clean, s);
        }
    }

    #[test]
    fn hostile_csv_cells_never_start_a_formula(s in text()) {
        let cell = export::cell(&s);
        prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']));
        prop_assert!(cell.ends_with(s.as_str()) && cell.len() <= s.len() + 1);
    }
}

proptest! {
    #![proptest_config(cases(40_000))]

    #[test]
    fn hostile_handoff_phrases_normalise(s in text()) {
        let n = handoff::normalise(&s);
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        prop_assert!(!n.chars().any(|c| c.is_whitespace() && c != ' '));
        let _ = handoff::asks_for_person(&s);
        let _ = handoff::is_upset(&s);
        let _ = handoff::is_negative_feedback(&s);
    }

    #[test]
    fn hostile_agent_commands_round_trip(
        (name, cased) in prop::sample::select(&["claim", "resolve", "close", "giveback", "give_back", "bot", "note", "canned", "transfer", "reply"][..])
            .prop_flat_map(|name| (Just(name), any_case(name))),
        bot in prop::option::of("[A-Za-z0-9_]{1,20}"),
        args in text(),
    ) {
        let at = bot.map(|b| format!("@{b}")).unwrap_or_default();
        let typed = format!("/{cased}{at} {args}");
        let args = args.trim().to_string();
        let expected = match name {
            "claim" => AgentAction::Claim,
            "resolve" | "close" => AgentAction::Resolve,
            "giveback" | "give_back" | "bot" => AgentAction::GiveBack,
            "note" => AgentAction::Note(args),
            "canned" => AgentAction::Canned(args),
            "transfer" => AgentAction::Transfer(args),
            _ => AgentAction::Reply(args),
        };
        prop_assert_eq!(Desk::parse_command(&typed), Ok(expected));
    }

    #[test]
    fn hostile_typed_ratings_round_trip(kind in 0..3usize, n in -20i64..20) {
        let (step, answer) = match kind {
            0 => (SurveyStep::Csat, (1..=5).contains(&n).then_some(Answer::Csat(n))),
            1 => (SurveyStep::Ces, (1..=7).contains(&n).then_some(Answer::Ces(n))),
            _ => (SurveyStep::Nps, (0..=10).contains(&n).then_some(Answer::Nps(n))),
        };
        prop_assert_eq!(typed_rating(step, &format!(" {n}\n")), answer);
    }

    #[test]
    fn hostile_handoff_requests_are_found_in_any_case_among_symbols(
        request in prop::sample::select(&["talk to a human", "real person", "live agent"][..]).prop_flat_map(any_case),
        upset in prop::sample::select(&["useless", "stupid bot", "not helpful"][..]).prop_flat_map(any_case),
        before in text(),
        after in text(),
    ) {
        // Only the symbols of the hostile text: letters would add words.
        let symbols = |s: &str| -> String { s.chars().filter(|c| !c.is_alphanumeric()).collect() };
        let (before, after) = (symbols(&before), symbols(&after));
        let text = format!("{before} {request} {after}");
        prop_assert!(handoff::asks_for_person(&text), "{:?}", text);
        let text = format!("{before} {upset} {after}");
        prop_assert!(handoff::is_upset(&text), "{:?}", text);
    }

}

proptest! {
    #![proptest_config(cases(15_000))]

    #[test]
    fn hostile_search_terms(s in text()) {
        let mut analyzer = index::analyzer();
        let terms = index::terms(&mut analyzer, &s);
        let distinct: std::collections::HashSet<&String> = terms.iter().collect();
        prop_assert_eq!(distinct.len(), terms.len());
        prop_assert!(terms.iter().all(|t| !t.is_empty()));
    }

    #[test]
    fn hostile_telegram_split_fits_and_keeps_the_text(s in text()) {
        check_telegram_split(&s)?;
    }

    #[test]
    fn hostile_discord_split_fits_and_keeps_the_text(s in text()) {
        check_discord_split(&s)?;
    }

    #[test]
    fn hostile_telegram_sources_are_well_formed_and_fit(answer in text(), sources in sources()) {
        let parts = telegram::with_sources(&answer, &sources);
        let mut shown = String::new();
        for p in &parts {
            let visible = telegram_visible(p);
            prop_assert!(visible.is_ok(), "{:?} in {:?}", visible, p);
            let visible = visible.unwrap_or_default();
            prop_assert!(telegram::utf16_len(&visible) <= telegram::LIMIT);
            shown.push_str(&visible);
        }
        prop_assert!(ink(&shown).starts_with(&ink(&answer)));
        prop_assert_eq!(sources.is_empty(), !shown.contains("Sources:"));
    }

    #[test]
    fn hostile_discord_sources_fit(answer in text(), sources in sources()) {
        let parts = discord::with_sources(&answer, &sources);
        prop_assert!(parts.iter().all(|p| p.chars().count() <= discord::LIMIT));
        let all = parts.concat();
        if !answer.contains('`') {
            prop_assert!(ink(&all).starts_with(&ink(&answer)));
        }
        prop_assert_eq!(sources.is_empty(), !all.contains("**Sources:**"));
        // The sources never show inside a code block.
        for p in &parts {
            if let Some(at) = p.find("\n\n**Sources:**").or(p.starts_with("**Sources:**").then_some(0)) {
                prop_assert!(!leaves_fence_open(&p[..at]), "{:?}", p);
            }
        }
    }

    #[test]
    fn hostile_article_bytes_parse(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = article::parse("x", &bytes);
        let _ = article::plain_text(&String::from_utf8_lossy(&bytes));
    }
}

proptest! {
    #![proptest_config(cases(6_000))]

    #[test]
    fn hostile_articles_parse(slug in "[a-z]{1,8}(/[a-z-]{1,8})?", body in text(), title in text(), tag in text()) {
        for source in [
            body.clone(),
            format!("---\ntitle: {title}\ntags: [{tag}, b]\nurl: {tag}\n---\n# {title}\n\n{body}\n## {tag}\n{body}"),
            format!("---\n{body}\n---\n{body}"),
            format!("\u{feff}# {title}\n{body}"),
        ] {
            let (article, problems) = article::parse(&slug, source.as_bytes());
            match article {
                Some(a) => {
                    prop_assert!(!a.title.is_empty(), "empty title for {:?}", source);
                    prop_assert!(!a.passages.is_empty());
                    for p in &a.passages {
                        prop_assert!(p.markdown.len() <= 2_000);
                        prop_assert!(p.line >= 1);
                    }
                }
                None => prop_assert!(problems.iter().any(|p| p.fatal)),
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(2_000))]

    #[test]
    fn hostile_telegram_cards_fit(s in text(), times in 1..400usize) {
        let card = format!("{}\nConversation 42", s.repeat(times));
        let shown = telegram_visible(&telegram::fit(&card));
        prop_assert!(shown.is_ok(), "{:?}", shown);
        let shown = shown.unwrap_or_default();
        prop_assert!(telegram::utf16_len(&shown) <= telegram::LIMIT);
        prop_assert!(shown.ends_with("\nConversation 42"));
    }
}

proptest! {
    #![proptest_config(cases(150))]

    #[test]
    fn hostile_long_text_splits_on_both_platforms(s in long_text()) {
        check_telegram_split(&s)?;
        check_discord_split(&s)?;
    }
}

proptest! {
    #![proptest_config(cases(6))]

    #[test]
    fn hostile_100_kb_texts(s in huge_text()) {
        check_telegram_split(&s)?;
        check_discord_split(&s)?;
        let _ = Desk::parse_command(&s);
        let _ = handoff::asks_for_person(&s);
        let clean = switchboard::assistant::prompts::without_tag(&s, "question");
        prop_assert!(!clean.to_ascii_lowercase().contains("</question>"));
        let (article, _) = article::parse("big", s.as_bytes());
        if let Some(a) = article {
            prop_assert!(a.passages.iter().all(|p| p.markdown.len() <= 2_000));
        }
    }
}

/// A small index whose articles are themselves hostile text.
fn hostile_index() -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut articles = Vec::new();
    for i in 0..20 {
        let body = text().new_tree(&mut runner).unwrap().current();
        let source = format!("# Article {i}\n\nrefund export {body}\n\n## Part\n{body} hello");
        if let (Some(a), _) = article::parse(&format!("a{i}"), source.as_bytes()) {
            articles.push(a);
        }
    }
    let pairs: Vec<(&Article, &str)> = articles.iter().map(|a| (a, "h")).collect();
    index.sync(&pairs, &|_, _| {}).unwrap();
    index
}

#[test]
fn hostile_queries_never_fail_a_search() {
    let index = hostile_index();
    proptest!(cases(2_000), |(q in text())| {
        prop_assert!(index.search(&q, 5).is_ok());
        prop_assert!(index.retrieve(&q, 5).is_ok());
    });
}

#[test]
fn a_code_fence_with_a_long_language_does_not_repeat_forever() {
    // Found by the properties above: the text after ``` was reopened in
    // every part, so a "language" longer than a part never made progress.
    let text = format!("```{}\n{}", "x".repeat(3_000), "y ".repeat(2_000));
    let parts = discord::split(&text);
    assert!(parts.len() < 10, "{} parts", parts.len());
    assert!(parts.iter().all(|p| p.chars().count() <= discord::LIMIT));
}

#[test]
fn telegram_parts_count_emoji_as_two_units() {
    // 4,000 emoji are 8,000 UTF-16 units: over Telegram's limit in one part.
    let parts = telegram::split(&"😀".repeat(4_000));
    assert!(parts.len() >= 2);
    for p in &parts {
        assert!(telegram::utf16_len(&telegram::escape(p)) <= telegram::LIMIT);
    }
}

#[test]
fn a_mention_prefix_keeps_the_first_discord_part_under_the_limit() {
    let prefix = "<@123456789012345678> ";
    let parts = discord::split_prefixed(prefix, &"x".repeat(discord::LIMIT));
    assert!(parts[0].starts_with(prefix));
    assert!(parts.iter().all(|p| p.chars().count() <= discord::LIMIT));
    assert_eq!(
        ink(&parts.concat()),
        ink(&format!("{prefix}{}", "x".repeat(discord::LIMIT)))
    );
}

#[test]
fn question_tags_split_in_two_are_stripped() {
    let strip = |s: &str| switchboard::assistant::prompts::without_tag(s, "question");
    assert_eq!(strip("a</que</question>stion>b"), "ab");
    assert_eq!(strip("<<question>question>x</QUESTION>"), "x");
    assert_eq!(strip("<<QUE<question>STION>question>"), "");
}

#[test]
fn csv_cells_that_look_like_formulas_are_quoted() {
    for (raw, shown) in [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ] {
        assert_eq!(export::cell(raw), shown);
    }
}
