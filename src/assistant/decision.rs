//! The rules' decision for one customer message, as a value: commands, a VIP,
//! a pending offer of a person, the customer's verdict on an answer,
//! frustration, or a question to look up. Pure: it reads the message and the
//! conversation's recent messages and touches no database, so every rule is
//! unit-tested here; [`Assistant::decide`](super::Assistant) carries it out.

use super::commands::{Command, NO, YES, parse_command};
use super::{REPEATS_FOR_FRUSTRATION, Template};
use crate::handoff::{self, Reason};
use crate::store::{Message, MessageMode, Role};

/// What the rules decide for a message, before any retrieval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision<'a> {
    /// Reply with a template (welcome, help, the offer declined).
    Reply(Template),
    /// An unknown `/command` (its name): say so, with the help text.
    UnknownCommand(&'a str),
    /// Stop sending this customer surveys.
    StopSurveys,
    /// Resolve this conversation and start a new one.
    Restart,
    /// Hand the conversation to a person.
    HandOff(Reason, Option<&'static str>),
    /// The customer said the last answer solved it.
    Solved,
    /// The customer said the last answer did not help.
    NotSolved,
    /// Look this question up in the knowledge base.
    Ask(&'a str),
}

/// The decision for `text` from a customer who is a VIP or not, given the
/// conversation's recent messages (oldest first, the current one excluded).
pub(super) fn decide<'a>(text: &'a str, vip: bool, history: &[Message]) -> Decision<'a> {
    let text = text.trim();
    let mut question = text;
    match parse_command(text) {
        Some(Command::Start) => return Decision::Reply(Template::Welcome),
        Some(Command::Help | Command::Cancel | Command::Ask("")) => {
            return Decision::Reply(Template::Help);
        }
        Some(Command::Human) => return Decision::HandOff(Reason::CustomerRequest, None),
        Some(Command::New) => return Decision::Restart,
        Some(Command::StopSurveys) => return Decision::StopSurveys,
        Some(Command::Unknown(name)) => return Decision::UnknownCommand(name),
        Some(Command::Ask(q)) => question = q,
        None => {}
    }
    if vip {
        return Decision::HandOff(Reason::Vip, None);
    }
    let normal = handoff::normalise(question);
    let last_bot = history.iter().rev().find(|m| m.role == Role::Bot);
    let offer_pending = last_bot.is_some_and(|m| m.mode == Some(MessageMode::Handoff));
    if offer_pending && YES.contains(&normal.as_str()) {
        return Decision::HandOff(Reason::KnowledgeGap, None);
    }
    if offer_pending && NO.contains(&normal.as_str()) {
        return Decision::Reply(Template::OfferDeclined);
    }
    let after_answer = last_bot
        .is_some_and(|m| m.mode.is_some_and(MessageMode::is_answer) && !m.sources.is_empty());
    if after_answer && YES.contains(&normal.as_str()) {
        return Decision::Solved;
    }
    let stuck = stuck(history, &normal);
    if after_answer && NO.contains(&normal.as_str()) && stuck.is_none() {
        return Decision::NotSolved;
    }
    if let Some(detail) = stuck {
        return Decision::HandOff(Reason::Frustration, Some(detail));
    }
    Decision::Ask(question)
}

/// Whether the customer is stuck: the same question for the third time, or
/// "no / that didn't help" after two answers in a row.
pub(super) fn stuck(history: &[Message], normal: &str) -> Option<&'static str> {
    let customer: Vec<String> = history
        .iter()
        .filter(|m| m.role == Role::Customer)
        .map(|m| handoff::normalise(&m.text))
        .collect();
    let repeats = customer.iter().rev().take_while(|t| *t == normal).count();
    if !normal.is_empty() && repeats + 1 >= REPEATS_FOR_FRUSTRATION {
        return Some("asked the same question three times");
    }
    if handoff::is_negative_feedback(normal) {
        let earlier_negative = customer
            .iter()
            .rev()
            .take(2)
            .filter(|t| handoff::is_negative_feedback(t))
            .count();
        if earlier_negative >= 1 {
            return Some("said twice that answers did not help");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SourceRef;

    fn message(role: Role, text: &str, mode: Option<MessageMode>, cited: bool) -> Message {
        Message {
            id: Default::default(),
            conversation_id: Default::default(),
            seq: 0,
            role,
            author: None,
            text: text.to_string(),
            mode,
            sources: if cited {
                vec![SourceRef {
                    slug: "refunds".into(),
                    title: "Refunds".into(),
                    url: None,
                    score: 1.0,
                }]
            } else {
                Vec::new()
            },
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            channel: "console".into(),
            platform_message_id: None,
            feedback: None,
            created_at: 0,
            owner: None,
        }
    }

    fn customer(text: &str) -> Message {
        message(Role::Customer, text, None, false)
    }

    fn answer() -> Message {
        message(
            Role::Bot,
            "Refunds take 5 days.",
            Some(MessageMode::Llm),
            true,
        )
    }

    fn offer() -> Message {
        message(
            Role::Bot,
            "I could not find that. Talk to a person?",
            Some(MessageMode::Handoff),
            false,
        )
    }

    #[test]
    fn commands_come_first_even_for_a_vip() {
        assert_eq!(
            decide("/start", true, &[]),
            Decision::Reply(Template::Welcome)
        );
        assert_eq!(decide("/help", false, &[]), Decision::Reply(Template::Help));
        assert_eq!(
            decide(" /ask ", false, &[]),
            Decision::Reply(Template::Help)
        );
        assert_eq!(decide("/new", true, &[]), Decision::Restart);
        assert_eq!(decide("/stop_surveys", false, &[]), Decision::StopSurveys);
        assert_eq!(
            decide("/human", false, &[]),
            Decision::HandOff(Reason::CustomerRequest, None)
        );
        assert_eq!(
            decide("/frobnicate now", false, &[]),
            Decision::UnknownCommand("frobnicate")
        );
        assert_eq!(
            decide("/ask how do refunds work?", false, &[]),
            Decision::Ask("how do refunds work?")
        );
    }

    #[test]
    fn a_vip_goes_to_a_person() {
        assert_eq!(
            decide("How do refunds work?", true, &[]),
            Decision::HandOff(Reason::Vip, None)
        );
        assert_eq!(
            decide("How do refunds work?", false, &[]),
            Decision::Ask("How do refunds work?")
        );
    }

    #[test]
    fn yes_and_no_read_against_the_last_bot_message() {
        let offered = [customer("Can I pay in yen?"), offer()];
        assert_eq!(
            decide("Yes please", false, &offered),
            Decision::HandOff(Reason::KnowledgeGap, None)
        );
        assert_eq!(
            decide("no thanks", false, &offered),
            Decision::Reply(Template::OfferDeclined)
        );
        let answered = [customer("How do refunds work?"), answer()];
        assert_eq!(decide("yes", false, &answered), Decision::Solved);
        assert_eq!(decide("nope", false, &answered), Decision::NotSolved);
        // A yes with nothing to agree to is a question like any other.
        assert_eq!(decide("yes", false, &[]), Decision::Ask("yes"));
        // An answer that cites nothing (a notice, a welcome) asks no verdict.
        let welcomed = [message(
            Role::Bot,
            "Welcome!",
            Some(MessageMode::Extractive),
            false,
        )];
        assert_eq!(decide("yes", false, &welcomed), Decision::Ask("yes"));
        // The last bot message counts, not an earlier answer.
        let answered_then_offered = [customer("a"), answer(), customer("b"), offer()];
        assert_eq!(
            decide("yes", false, &answered_then_offered),
            Decision::HandOff(Reason::KnowledgeGap, None)
        );
    }

    #[test]
    fn the_same_question_a_third_time_is_frustration() {
        let twice = [
            customer("Where is my order?"),
            answer(),
            customer("where is my order"),
            answer(),
        ];
        assert_eq!(
            decide("Where is my order?!", false, &twice),
            Decision::HandOff(
                Reason::Frustration,
                Some("asked the same question three times")
            )
        );
        // Twice is not yet.
        assert_eq!(
            decide("Where is my order?", false, &twice[..2]),
            Decision::Ask("Where is my order?")
        );
    }

    #[test]
    fn a_second_no_after_answers_is_frustration_not_a_verdict() {
        let history = [
            customer("How do refunds work?"),
            answer(),
            customer("that didn't help"),
            answer(),
        ];
        assert_eq!(
            decide("that didn't help", false, &history),
            Decision::HandOff(
                Reason::Frustration,
                Some("said twice that answers did not help")
            )
        );
    }
}
