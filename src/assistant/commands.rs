//! Commands a customer can type on any channel, and the short replies the decision recognises (greetings, thanks, yes, no).

/// A command a customer can type on any channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command<'a> {
    Start,
    Help,
    Human,
    New,
    Cancel,
    StopSurveys,
    Ask(&'a str),
    Unknown(&'a str),
}

pub(super) fn parse_command(text: &str) -> Option<Command<'_>> {
    let rest = text.trim().strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // Telegram appends the bot name in groups: /ask@switchboard_bot
    let name = name.split('@').next().unwrap_or(name);
    Some(match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "human" | "agent" => Command::Human,
        "new" | "reset" => Command::New,
        "cancel" | "bot" => Command::Cancel,
        "stop-surveys" | "stop_surveys" | "stopsurveys" => Command::StopSurveys,
        "ask" => Command::Ask(args.trim()),
        _ => Command::Unknown(name),
    })
}

pub(super) const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hi there",
    "hello there",
    "hey there",
    "good morning",
    "good afternoon",
    "good evening",
    "hiya",
    "howdy",
];
pub(super) const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "thx",
    "ty",
    "thank you so much",
    "thanks a lot",
    "cheers",
    "great thanks",
    "ok thanks",
    "perfect thanks",
    "thanks that helped",
    "that helped",
    "great",
    "perfect",
    "awesome",
];
pub(super) const YES: &[&str] = &[
    "yes",
    "yes please",
    "y",
    "yeah",
    "yep",
    "sure",
    "ok",
    "okay",
    "please",
    "please do",
];
pub(super) const NO: &[&str] = &["no", "no thanks", "no thank you", "nope", "n", "not now"];
