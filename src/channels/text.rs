//! What the channels themselves say, in one place (everything else comes
//! from the core's templates in `prompts/`). Tests assert on these
//! constants.

use crate::conversation::Status;

/// Reply to photos, voice, stickers, documents, attachments without text.
pub const TEXT_ONLY: &str = "Sorry, I can read text only for now. Please type your question.";
/// Answer to a 👍/👎 press.
pub const FEEDBACK_THANKS: &str = "Thanks for the feedback!";
/// Prefix of a customer's message forwarded to agents.
pub const CUSTOMER_PREFIX: &str = "👤 Customer: ";
/// Prefix of a status notice in a staff thread.
pub const NOTICE_PREFIX: &str = "ℹ️ ";
/// A message that could not be stored, where the platform waits for an
/// answer (a slash command).
pub const NOT_STORED: &str =
    "Sorry, something went wrong on our side. Please try again in a moment.";
/// What a silent reply shows where the platform waits for an answer (a
/// slash command's "thinking…").
pub const SILENT: &str = "…";

/// The outcome of an agent's button or command in a staff place.
pub fn done(status: Status) -> String {
    format!("Done: the conversation is now {status}")
}

/// `/kb suggest` in a staff place from someone who is not an admin.
pub const KB_SUGGEST_ADMINS_ONLY: &str = "Only admins can suggest articles from chat (admin = true under [[agents]] in config.toml). Agents can use “Suggest an article” on a resolved conversation in the console.";

/// The answer to an admin's `/kb suggest`: the draft made (`created`) or
/// the one the conversation already had, and where to review it.
pub fn suggested(title: &str, slug: &str, status: &str, created: bool) -> String {
    if created {
        format!(
            "📝 Suggested article “{title}” ({slug}) is waiting for review: console (/agent) → Suggestions."
        )
    } else {
        format!(
            "📝 This conversation already has a suggested article: “{title}” ({slug}, {status}). See the console (/agent) → Suggestions."
        )
    }
}

/// What the Telegram channel says.
pub mod telegram {
    /// Shown in the agents' group to someone who is not a configured agent.
    pub const NOT_AN_AGENT: &str = "Only configured agents can do that here. An admin can add your Telegram user id under [[agents]] in config.toml.";
    /// Shown in the agents' group when a message cannot be tied to a
    /// conversation.
    pub const WHICH_CONVERSATION: &str = "Which conversation? Reply to a hand-off card (or write in its topic) to answer the customer.";
    /// The commands registered with `setMyCommands`.
    pub const COMMANDS: &[(&str, &str)] = &[
        ("start", "Start and see what I can do"),
        ("help", "How to use this bot"),
        ("ask", "Ask a question (in groups)"),
        ("human", "Talk to a person"),
        ("new", "Start a fresh conversation"),
    ];
}

/// What the Discord channel says.
pub mod discord {
    /// Shown to someone who is not a configured agent.
    pub const NOT_AN_AGENT: &str = "Only configured agents can do that here. An admin can add your Discord user id as `discord_id` under [[agents]], or give you a role listed in discord.agent_role_ids.";
    /// Shown in the agents' channel when a message cannot be tied to a
    /// conversation.
    pub const WHICH_CONVERSATION: &str =
        "Which conversation? Write in the thread under a hand-off card to answer the customer.";
    /// `/ask` without a question.
    pub const ASK_WHAT: &str = "What is your question? Use `/ask question: …`.";
    /// The slash commands registered at start.
    pub const COMMANDS: &[(&str, &str)] = &[
        ("ask", "Ask a question"),
        ("human", "Talk to a person"),
        ("new", "Start a fresh conversation"),
    ];
}
