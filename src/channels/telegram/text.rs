//! What the Telegram channel itself says (everything else comes from the
//! core's templates). Tests assert on these constants.

/// Reply to photos, voice, stickers, documents.
pub const TEXT_ONLY: &str = "Sorry, I can read text only for now. Please type your question.";
/// Answer to a 👍/👎 press.
pub const FEEDBACK_THANKS: &str = "Thanks for the feedback!";
/// Shown in the agents' group to someone who is not a configured agent.
pub const NOT_AN_AGENT: &str = "Only configured agents can do that here. An admin can add your Telegram user id under [[agents]] in config.toml.";
/// Shown in the agents' group when a message cannot be tied to a conversation.
pub const WHICH_CONVERSATION: &str =
    "Which conversation? Reply to a hand-off card (or write in its topic) to answer the customer.";
/// Prefix of a customer's message forwarded to agents.
pub const CUSTOMER_PREFIX: &str = "👤 Customer: ";
/// Prefix of a status notice in a staff thread.
pub const NOTICE_PREFIX: &str = "ℹ️ ";

/// The commands registered with `setMyCommands`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("start", "Start and see what I can do"),
    ("help", "How to use this bot"),
    ("ask", "Ask a question (in groups)"),
    ("human", "Talk to a person"),
    ("new", "Start a fresh conversation"),
];
