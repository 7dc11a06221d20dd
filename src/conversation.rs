//! Conversation state and its legal transitions.
//!
//! A conversation is owned by the bot, waits for an agent, is with an agent,
//! or is resolved. [`Status::apply`] is the only way from one state to the
//! next; anything else is an [`IllegalTransition`], never a silent no-op. A
//! resolved conversation stays resolved: a new customer message starts a new
//! conversation linked to it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who owns the conversation now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The bot answers.
    Bot,
    /// Handed off; no agent has claimed it yet. The bot stays silent.
    WaitingForAgent,
    /// An agent owns it. The bot stays silent.
    WithAgent,
    /// Closed. Never reopened.
    Resolved,
}

/// Something that moves a conversation between states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The bot (or the customer) hands the conversation to people.
    HandOff,
    /// An agent takes it.
    Claim,
    /// The owning agent passes it to another agent.
    Transfer,
    /// The agent gives it back to the bot.
    GiveBack,
    /// The customer no longer wants a person.
    Withdraw,
    /// Closed by an agent, by the customer's confirmation, or by inactivity.
    Resolve,
}

/// A transition that is not allowed from the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition} a conversation that is {from}")]
pub struct IllegalTransition {
    /// State the conversation was in.
    pub from: Status,
    /// What was attempted.
    pub transition: Transition,
}

impl Status {
    /// The state after `transition`.
    ///
    /// ```
    /// use switchboard::conversation::{Status, Transition};
    ///
    /// let waiting = Status::Bot.apply(Transition::HandOff).unwrap();
    /// assert_eq!(waiting, Status::WaitingForAgent);
    /// assert_eq!(waiting.apply(Transition::Claim), Ok(Status::WithAgent));
    /// // A resolved conversation is never reopened.
    /// assert!(Status::Resolved.apply(Transition::GiveBack).is_err());
    /// ```
    ///
    /// # Errors
    /// [`IllegalTransition`] for any pair not in the state machine.
    pub fn apply(self, transition: Transition) -> Result<Status, IllegalTransition> {
        use Status::*;
        use Transition::*;
        match (self, transition) {
            (Bot, HandOff) => Ok(WaitingForAgent),
            (WaitingForAgent, Claim) => Ok(WithAgent),
            (WithAgent, Transfer) => Ok(WithAgent),
            (WithAgent, GiveBack) => Ok(Bot),
            (WaitingForAgent, Withdraw) => Ok(Bot),
            (Bot | WaitingForAgent | WithAgent, Resolve) => Ok(Resolved),
            (from, transition) => Err(IllegalTransition { from, transition }),
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Bot => "bot",
            Status::WaitingForAgent => "waiting_for_agent",
            Status::WithAgent => "with_agent",
            Status::Resolved => "resolved",
        }
    }

    /// Whether the bot may answer in this state.
    pub fn bot_may_answer(self) -> bool {
        self == Status::Bot
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bot" => Ok(Status::Bot),
            "waiting_for_agent" => Ok(Status::WaitingForAgent),
            "with_agent" => Ok(Status::WithAgent),
            "resolved" => Ok(Status::Resolved),
            other => Err(format!("unknown conversation status `{other}`")),
        }
    }
}

impl Transition {
    /// The stored event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::HandOff => "handoff",
            Transition::Claim => "claim",
            Transition::Transfer => "transfer",
            Transition::GiveBack => "give_back",
            Transition::Withdraw => "withdraw",
            Transition::Resolve => "resolve",
        }
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a conversation: the `events.kind` column, written and
/// read through this type only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A state change.
    Transition(Transition),
    /// The bot had no answer (the question is the detail).
    NoAnswer,
    /// A message could not be delivered.
    DeliveryFailed,
    /// Nobody claimed it in time: agents were pinged again.
    Reping,
    /// Someone who is not an agent tried an agent's action.
    Refused,
    /// A message left unanswered by a crash was answered after the restart.
    Recovered,
    /// A kind this version does not know (a newer version wrote it).
    Other(String),
}

impl EventKind {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Transition(t) => t.as_str(),
            EventKind::NoAnswer => "no_answer",
            EventKind::DeliveryFailed => "delivery_failed",
            EventKind::Reping => "reping",
            EventKind::Refused => "refused",
            EventKind::Recovered => "recovered",
            EventKind::Other(name) => name,
        }
    }

    /// The kind of a stored name (unknown names are kept as [`EventKind::Other`]).
    pub fn parse(name: &str) -> Self {
        match name {
            "handoff" => EventKind::Transition(Transition::HandOff),
            "claim" => EventKind::Transition(Transition::Claim),
            "transfer" => EventKind::Transition(Transition::Transfer),
            "give_back" => EventKind::Transition(Transition::GiveBack),
            "withdraw" => EventKind::Transition(Transition::Withdraw),
            "resolve" => EventKind::Transition(Transition::Resolve),
            "no_answer" => EventKind::NoAnswer,
            "delivery_failed" => EventKind::DeliveryFailed,
            "reping" => EventKind::Reping,
            "refused" => EventKind::Refused,
            "recovered" => EventKind::Recovered,
            other => EventKind::Other(other.to_string()),
        }
    }
}

impl From<&str> for EventKind {
    fn from(name: &str) -> Self {
        Self::parse(name)
    }
}

impl From<Transition> for EventKind {
    fn from(t: Transition) -> Self {
        EventKind::Transition(t)
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who acts on a conversation in the log: the `actor` of events and
/// transitions. An agent is named by its name, so no agent may be named as
/// one of the others (any case, [`is_non_agent_actor`]), or its actions
/// would read as theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The bot (a hand-off it decided, a conversation it resolved).
    Bot,
    /// The customer (asked for a person, said it was solved, withdrew).
    Customer,
    /// Switchboard itself (timeouts, failed deliveries, recovery).
    System,
    /// The agent of this name.
    Agent(&'a str),
    /// Someone in a staff place who is no agent (their refused action is
    /// logged), by who the platform says they are. Read back from the log,
    /// such a name parses as [`Actor::Agent`]: only the event says it was
    /// refused.
    Stranger(&'a str),
}

impl<'a> Actor<'a> {
    /// The names of the actors that are not agents.
    const NON_AGENT: [Actor<'static>; 3] = [Actor::System, Actor::Bot, Actor::Customer];

    /// Stored name.
    pub fn as_str(&self) -> &'a str {
        match *self {
            Actor::Bot => "bot",
            Actor::Customer => "customer",
            Actor::System => "system",
            Actor::Agent(name) | Actor::Stranger(name) => name,
        }
    }

    /// The actor a stored name stands for.
    pub fn parse(name: &'a str) -> Self {
        Self::NON_AGENT
            .into_iter()
            .find(|actor| actor.as_str() == name)
            .unwrap_or(Actor::Agent(name))
    }
}

impl std::fmt::Display for Actor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `name` is the name of an actor that is not an agent (any case),
/// so no agent may take it.
pub fn is_non_agent_actor(name: &str) -> bool {
    Actor::NON_AGENT
        .iter()
        .any(|actor| actor.as_str().eq_ignore_ascii_case(name))
}

/// How a conversation was resolved: the `resolution` column of
/// conversations and surveys, written and read through this type only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// An agent resolved it.
    Agent,
    /// The customer said it was solved.
    Customer,
    /// Nobody wrote for the inactivity period.
    Inactivity,
    /// The customer started a new conversation (no survey for it).
    NewConversation,
    /// A resolution this version does not know (a newer version wrote it).
    Other(String),
}

impl Resolution {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            Resolution::Agent => "agent",
            Resolution::Customer => "customer",
            Resolution::Inactivity => "inactivity",
            Resolution::NewConversation => "new_conversation",
            Resolution::Other(name) => name,
        }
    }

    /// The resolution of a stored name (unknown names are kept as
    /// [`Resolution::Other`]).
    pub fn parse(name: &str) -> Self {
        match name {
            "agent" => Resolution::Agent,
            "customer" => Resolution::Customer,
            "inactivity" => Resolution::Inactivity,
            "new_conversation" => Resolution::NewConversation,
            other => Resolution::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Resolution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::Transition::*;
    use super::*;

    #[test]
    fn legal_transitions() {
        assert_eq!(Bot.apply(HandOff), Ok(WaitingForAgent));
        assert_eq!(WaitingForAgent.apply(Claim), Ok(WithAgent));
        assert_eq!(WithAgent.apply(Transfer), Ok(WithAgent));
        assert_eq!(WithAgent.apply(GiveBack), Ok(Bot));
        assert_eq!(WaitingForAgent.apply(Withdraw), Ok(Bot));
        for s in [Bot, WaitingForAgent, WithAgent] {
            assert_eq!(s.apply(Resolve), Ok(Resolved));
        }
    }

    #[test]
    fn illegal_transitions_are_errors() {
        let all = [HandOff, Claim, Transfer, GiveBack, Withdraw, Resolve];
        for t in all {
            assert!(
                Resolved.apply(t).is_err(),
                "resolved must never reopen via {t}"
            );
        }
        for (s, t) in [
            (Bot, Claim),
            (Bot, GiveBack),
            (Bot, Withdraw),
            (Bot, Transfer),
            (WaitingForAgent, HandOff),
            (WaitingForAgent, GiveBack),
            (WaitingForAgent, Transfer),
            (WithAgent, HandOff),
            (WithAgent, Claim),
            (WithAgent, Withdraw),
        ] {
            let err = s.apply(t).unwrap_err();
            assert_eq!(
                err,
                IllegalTransition {
                    from: s,
                    transition: t
                }
            );
        }
    }

    #[test]
    fn status_round_trips() {
        for s in [Bot, WaitingForAgent, WithAgent, Resolved] {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("open".parse::<Status>().is_err());
    }

    #[test]
    fn event_kinds_round_trip_through_their_names() {
        let kinds = [
            EventKind::Transition(Transition::HandOff),
            EventKind::Transition(Transition::Claim),
            EventKind::Transition(Transition::Transfer),
            EventKind::Transition(Transition::GiveBack),
            EventKind::Transition(Transition::Withdraw),
            EventKind::Transition(Transition::Resolve),
            EventKind::NoAnswer,
            EventKind::DeliveryFailed,
            EventKind::Reping,
            EventKind::Refused,
            EventKind::Recovered,
            EventKind::Other("from_a_newer_version".into()),
        ];
        for kind in kinds {
            assert_eq!(EventKind::parse(kind.as_str()), kind);
            assert_eq!(
                serde_json::to_value(&kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    }

    #[test]
    fn actors_read_back_as_written() {
        for actor in [
            Actor::Bot,
            Actor::Customer,
            Actor::System,
            Actor::Agent("alice"),
        ] {
            assert_eq!(Actor::parse(actor.as_str()), actor);
        }
        // A refused stranger's name reads back as a name, never as one of
        // the others.
        assert_eq!(Actor::parse("telegram:666"), Actor::Agent("telegram:666"));
    }

    #[test]
    fn resolutions_read_back_as_written() {
        for r in [
            Resolution::Agent,
            Resolution::Customer,
            Resolution::Inactivity,
            Resolution::NewConversation,
            Resolution::Other("merged".into()),
        ] {
            assert_eq!(Resolution::parse(r.as_str()), r);
        }
    }
}
