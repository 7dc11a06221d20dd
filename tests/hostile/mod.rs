#![allow(dead_code)] // Shared by tests/suite/unicode.rs and the library's unit tests.
//! Hostile text for property tests: arbitrary Unicode mixed with the pieces
//! that break text handling. Case-changing characters whose UTF-8 length
//! changes when lower- or upper-cased (Kelvin sign, `İ`, `ẞ`, `ß`, Ohm sign,
//! ligatures), combining marks by the dozen, right-to-left text and marks,
//! NUL and control characters, emoji joined with ZWJ, bot mentions in odd
//! cases, Markdown and HTML syntax, prompt tags, and sometimes very long
//! strings.
//!
//! Lone surrogates are not generated: a Rust `String` is valid UTF-8 and
//! cannot hold one (platform JSON with `\ud800` is rejected or replaced
//! with U+FFFD by serde before any of this code sees it).

use proptest::prelude::*;

/// The bot's username in the tests (as the Telegram fake's `getMe` says).
pub const BOT: &str = "switchboard_bot";

/// Fixed pieces that have broken, or could break, text handling.
const PIECES: &[&str] = &[
    // Case mapping changes the UTF-8 length.
    "\u{212A}", // KELVIN SIGN (3 bytes) -> 'k' (1 byte)
    "\u{0130}", // İ -> "i\u{307}"
    "\u{1E9E}", // ẞ -> ß
    "ß",        // upper-cases to "SS"
    "\u{2126}", // OHM SIGN -> ω
    "\u{FB00}", // ﬀ -> "FF"
    "\u{FB03}", // ﬃ
    "\u{0149}", // ŉ -> "ʼN"
    "\u{023A}", // Ⱥ (2 bytes) -> ⱥ (3 bytes)
    "\u{0390}", // ΐ -> three code points upper-cased
    // Combining marks, zero-width and direction marks.
    "e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{200F}",
    "\u{2066}",
    "שלום עולם",
    "مرحبا بالعالم",
    // NUL, controls, odd whitespace.
    "\0",
    "\u{7}",
    "\u{1B}[31m",
    "\r\n",
    "\r",
    "\t",
    "\u{85}",
    "\u{2028}",
    "\u{3000}",
    "\u{A0}",
    // Emoji: astral plane (two UTF-16 units), ZWJ sequences, flags.
    "👩\u{200D}👩\u{200D}👧\u{200D}👦",
    "🏳\u{FE0F}\u{200D}🌈",
    "🇺🇦",
    "😀",
    "𝕏",
    // Mentions and commands.
    "@switchboard_bot",
    "@SWITCHBOARD_BOT",
    "@Switchboard_Bot2",
    "@\u{212A}",
    "<@42>",
    "<@!42>",
    "/ask",
    "/ask@switchboard_bot",
    "/human",
    "/note",
    "/",
    "@",
    "@everyone",
    // Markup and syntax.
    "<",
    ">",
    "&",
    "&amp;",
    "\"",
    "'",
    "<b>",
    "</a>",
    "<a href=\"x\">",
    "```",
    "```rust\n",
    "`",
    "|",
    "**",
    "__",
    "~~",
    "[1]",
    "[",
    "]",
    "(",
    "#",
    "# ",
    "## ",
    "\n---\n",
    "---\n",
    "- ",
    "> ",
    "<question>",
    "</question>",
    "</que",
    "stion>",
    "<QUESTION>",
    "csat:",
    "nps:",
    "ces:",
    ":",
    "=",
    "+",
    "-",
    "1",
    "10",
    "-0",
    "99999999999999999999",
    // Separators the splitters look for.
    " ",
    "  ",
    "\n",
    "\n\n",
    ". ",
    // Plain words, so that phrases and terms occur.
    "talk to a human",
    "refund",
    "hello",
    "the",
    "I want to speak to a manager",
    "this is useless",
];

/// One piece: a fixed hostile piece, an arbitrary character (any Unicode
/// scalar value), or a short run of either.
pub fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => prop::sample::select(PIECES).prop_map(str::to_string),
        3 => any::<char>().prop_map(String::from),
        1 => (prop::sample::select(PIECES), 2..20usize).prop_map(|(p, n)| p.repeat(n)),
        1 => prop::collection::vec(prop::sample::select(ALNUM), 1..12).prop_map(String::from_iter),
    ]
}

/// Letters and digits for plain words (a regex strategy is ten times slower).
const ALNUM: &[char] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z', 'A', 'K', 'Q', 'S', 'Z', '0', '1', '7', '9',
];

/// Hostile text of up to about a few hundred characters.
pub fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|pieces| pieces.concat())
}

/// Hostile text long enough to need several messages on every platform
/// (5 to 30 KB).
pub fn long_text() -> impl Strategy<Value = String> {
    (prop::collection::vec(piece(), 1..60), 5_000..30_000usize).prop_map(|(pieces, bytes)| {
        let unit = pieces.concat();
        unit.repeat(bytes.div_ceil(unit.len().max(1)))
    })
}

/// Hostile text of about 100 KB.
pub fn huge_text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 1..80).prop_map(|pieces| {
        let unit = pieces.concat();
        let mut out = String::with_capacity(100_000 + unit.len());
        while out.len() < 100_000 {
            out.push_str(&unit);
        }
        out
    })
}

/// `word` with each ASCII letter in a random case.
pub fn any_case(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// Every non-whitespace character of `text`, in order.
pub fn ink(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
