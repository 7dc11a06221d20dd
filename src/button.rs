//! Typed button data: what a button acts on, carried in the platform's
//! callback field and checked when pressed.
//!
//! Every button names the conversation it belongs to, and where it matters
//! the bot message (offer, "solved?", 👍/👎) or the survey question it was
//! sent with. A press is then checked against the presser (a customer only
//! acts on their own conversation, an agent is recognised by platform user
//! id) and against the current state (an offer is only live while its
//! message is the conversation's latest bot message, a survey answer only
//! while its question is the open one). A press that fails either check, or
//! data this version cannot read (buttons sent before an upgrade), is
//! answered with [`NO_LONGER_AVAILABLE`] and changes nothing.
//!
//! The encoding is compact text: Telegram allows 64 bytes of
//! `callback_data`, Discord 100 characters of `custom_id`. Ids are the
//! store's UUIDs written in base 36 (at most 25 characters), so the longest
//! button (two ids) takes 54 bytes.

use uuid::Uuid;

use crate::ids::{ConversationId, MessageId};
use crate::outgoing::Button;

/// What a customer (or agent) is told when a button is stale, foreign or
/// unreadable.
pub const NO_LONGER_AVAILABLE: &str = "This choice is no longer available.";

/// Longest encoded button data (Telegram's `callback_data` limit).
pub const MAX_DATA_BYTES: usize = 64;

/// Label of the button accepting the offer of a person.
pub const OFFER_YES_LABEL: &str = "Yes, talk to a person";
/// Label of the button declining it.
pub const OFFER_NO_LABEL: &str = "No, thanks";
/// Label of the button confirming an answer solved the problem.
pub const SOLVED_YES_LABEL: &str = "✅ That solved it";
/// Label of the button saying it did not.
pub const SOLVED_NO_LABEL: &str = "❌ Not solved";

/// A survey question answered with buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyStep {
    /// Satisfaction, 1–5.
    Csat,
    /// Effort, 1–7.
    Ces,
    /// Recommendation, 0–10.
    Nps,
}

impl SurveyStep {
    /// The step's stored name (`surveys.step`).
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyStep::Csat => "csat",
            SurveyStep::Ces => "ces",
            SurveyStep::Nps => "nps",
        }
    }

    /// The answers the question accepts.
    pub fn range(self) -> std::ops::RangeInclusive<u8> {
        match self {
            SurveyStep::Csat => 1..=5,
            SurveyStep::Ces => 1..=7,
            SurveyStep::Nps => 0..=10,
        }
    }

    fn code(self) -> char {
        match self {
            SurveyStep::Csat => 'c',
            SurveyStep::Ces => 'e',
            SurveyStep::Nps => 'n',
        }
    }

    fn from_code(code: char) -> Option<Self> {
        match code {
            'c' => Some(SurveyStep::Csat),
            'e' => Some(SurveyStep::Ces),
            'n' => Some(SurveyStep::Nps),
            _ => None,
        }
    }
}

/// A button on a hand-off card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskButton {
    /// Take the conversation.
    Claim,
    /// Close it.
    Resolve,
    /// Hand it back to the bot.
    GiveBack,
}

/// What a button does and what it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonData {
    /// Accept the offer of a person made in bot message `message`.
    OfferYes {
        /// The conversation.
        conversation: ConversationId,
        /// The bot message that made the offer.
        message: MessageId,
    },
    /// Decline that offer.
    OfferNo {
        /// The conversation.
        conversation: ConversationId,
        /// The bot message that made the offer.
        message: MessageId,
    },
    /// The answer in bot message `message` solved the problem.
    SolvedYes {
        /// The conversation.
        conversation: ConversationId,
        /// The answer.
        message: MessageId,
    },
    /// It did not.
    SolvedNo {
        /// The conversation.
        conversation: ConversationId,
        /// The answer.
        message: MessageId,
    },
    /// 👍 (`up`) or 👎 on bot message `message`.
    Feedback {
        /// The conversation.
        conversation: ConversationId,
        /// The rated bot message.
        message: MessageId,
        /// 👍 rather than 👎.
        up: bool,
    },
    /// An answer to a survey question.
    Survey {
        /// The surveyed conversation.
        conversation: ConversationId,
        /// Which question.
        step: SurveyStep,
        /// The rating chosen.
        value: u8,
    },
    /// No more surveys for this customer (sent with the survey of
    /// `conversation`).
    StopSurveys {
        /// The surveyed conversation.
        conversation: ConversationId,
    },
    /// A hand-off card's button, for agents.
    Desk {
        /// What it does.
        action: DeskButton,
        /// The conversation on the card.
        conversation: ConversationId,
    },
}

impl ButtonData {
    /// The conversation the button acts on.
    pub fn conversation(&self) -> &ConversationId {
        match self {
            ButtonData::OfferYes { conversation, .. }
            | ButtonData::OfferNo { conversation, .. }
            | ButtonData::SolvedYes { conversation, .. }
            | ButtonData::SolvedNo { conversation, .. }
            | ButtonData::Feedback { conversation, .. }
            | ButtonData::Survey { conversation, .. }
            | ButtonData::StopSurveys { conversation }
            | ButtonData::Desk { conversation, .. } => conversation,
        }
    }

    /// The label a channel shows.
    pub fn label(&self) -> String {
        match self {
            ButtonData::OfferYes { .. } => OFFER_YES_LABEL.into(),
            ButtonData::OfferNo { .. } => OFFER_NO_LABEL.into(),
            ButtonData::SolvedYes { .. } => SOLVED_YES_LABEL.into(),
            ButtonData::SolvedNo { .. } => SOLVED_NO_LABEL.into(),
            ButtonData::Feedback { up: true, .. } => "👍".into(),
            ButtonData::Feedback { up: false, .. } => "👎".into(),
            ButtonData::Survey { value, .. } => value.to_string(),
            ButtonData::StopSurveys { .. } => "Stop surveys".into(),
            ButtonData::Desk {
                action: DeskButton::Claim,
                ..
            } => "Claim".into(),
            ButtonData::Desk {
                action: DeskButton::Resolve,
                ..
            } => "Resolve".into(),
            ButtonData::Desk {
                action: DeskButton::GiveBack,
                ..
            } => "Give back".into(),
        }
    }

    /// The button, with its label and encoded data.
    pub fn button(&self) -> Button {
        Button {
            label: self.label(),
            data: self.encode(),
        }
    }

    /// The compact callback data. Ids that are not UUIDs (the store only
    /// makes UUIDs) are written empty and so never parse back: such a
    /// button is refused as no longer available rather than misread.
    pub fn encode(&self) -> String {
        let pair = |tag: &str, c: &str, m: &str| format!("{tag}:{}:{}", id(c), id(m));
        match self {
            ButtonData::OfferYes {
                conversation,
                message,
            } => pair("oy", conversation, message),
            ButtonData::OfferNo {
                conversation,
                message,
            } => pair("on", conversation, message),
            ButtonData::SolvedYes {
                conversation,
                message,
            } => pair("sy", conversation, message),
            ButtonData::SolvedNo {
                conversation,
                message,
            } => pair("sn", conversation, message),
            ButtonData::Feedback {
                conversation,
                message,
                up,
            } => pair(if *up { "fu" } else { "fd" }, conversation, message),
            ButtonData::Survey {
                conversation,
                step,
                value,
            } => format!("sv:{}{value}:{}", step.code(), id(conversation)),
            ButtonData::StopSurveys { conversation } => format!("so:{}", id(conversation)),
            ButtonData::Desk {
                action,
                conversation,
            } => {
                let tag = match action {
                    DeskButton::Claim => "dc",
                    DeskButton::Resolve => "dr",
                    DeskButton::GiveBack => "dg",
                };
                format!("{tag}:{}", id(conversation))
            }
        }
    }

    /// Reads callback data; `None` for anything else (including buttons
    /// from before this encoding, except hand-off card buttons, whose
    /// presses are authorised by who the agent is, not by the data).
    pub fn parse(data: &str) -> Option<Self> {
        if data.len() > MAX_DATA_BYTES * 2 {
            return None;
        }
        if let Some(legacy) = parse_legacy_desk(data) {
            return Some(legacy);
        }
        let mut fields = data.split(':');
        let tag = fields.next()?;
        let first = fields.next()?;
        let second = fields.next();
        if fields.next().is_some() {
            return None;
        }
        let pair = |second: Option<&str>| -> Option<(ConversationId, MessageId)> {
            Some((uuid_of(first)?, uuid_of(second?)?))
        };
        let single = |second: Option<&str>| -> Option<ConversationId> {
            if second.is_some() {
                return None;
            }
            uuid_of(first)
        };
        Some(match tag {
            "oy" => {
                let (conversation, message) = pair(second)?;
                ButtonData::OfferYes {
                    conversation,
                    message,
                }
            }
            "on" => {
                let (conversation, message) = pair(second)?;
                ButtonData::OfferNo {
                    conversation,
                    message,
                }
            }
            "sy" => {
                let (conversation, message) = pair(second)?;
                ButtonData::SolvedYes {
                    conversation,
                    message,
                }
            }
            "sn" => {
                let (conversation, message) = pair(second)?;
                ButtonData::SolvedNo {
                    conversation,
                    message,
                }
            }
            "fu" | "fd" => {
                let (conversation, message) = pair(second)?;
                ButtonData::Feedback {
                    conversation,
                    message,
                    up: tag == "fu",
                }
            }
            "sv" => {
                let mut chars = first.chars();
                let step = SurveyStep::from_code(chars.next()?)?;
                let digits = chars.as_str();
                if digits.is_empty()
                    || digits.len() > 2
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let value: u8 = digits.parse().ok()?;
                if !step.range().contains(&value) {
                    return None;
                }
                ButtonData::Survey {
                    conversation: uuid_of(second?)?,
                    step,
                    value,
                }
            }
            "so" => ButtonData::StopSurveys {
                conversation: single(second)?,
            },
            "dc" | "dr" | "dg" => ButtonData::Desk {
                action: match tag {
                    "dc" => DeskButton::Claim,
                    "dr" => DeskButton::Resolve,
                    _ => DeskButton::GiveBack,
                },
                conversation: single(second)?,
            },
            _ => return None,
        })
    }
}

/// Card buttons posted before typed data (`desk:claim:<uuid>`).
fn parse_legacy_desk(data: &str) -> Option<ButtonData> {
    let rest = data.strip_prefix("desk:")?;
    let (action, id) = rest.split_once(':')?;
    let action = match action {
        "claim" => DeskButton::Claim,
        "resolve" => DeskButton::Resolve,
        "giveback" => DeskButton::GiveBack,
        _ => return None,
    };
    let id = Uuid::parse_str(id).ok()?;
    Some(ButtonData::Desk {
        action,
        conversation: id.to_string().into(),
    })
}

/// A UUID in base 36 (lower case, no padding); empty for anything else.
fn id(text: &str) -> String {
    let Ok(uuid) = Uuid::parse_str(text) else {
        return String::new();
    };
    let mut n = uuid.as_u128();
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::with_capacity(25);
    while n > 0 {
        let d = (n % 36) as u8;
        digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The UUID (hyphenated, as the store writes it) a base-36 field stands for.
fn uuid_of<T: From<String>>(field: &str) -> Option<T> {
    if field.is_empty()
        || field.len() > 25
        || !field
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return None;
    }
    let n = u128::from_str_radix(field, 36).ok()?;
    Some(Uuid::from_u128(n).to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: &str = "ffffffff-ffff-ffff-ffff-ffffffffffff";

    fn every_variant(c: &str, m: &str) -> Vec<ButtonData> {
        let (c, m) = (ConversationId::from(c), MessageId::from(m));
        let mut all = vec![
            ButtonData::OfferYes {
                conversation: c.clone(),
                message: m.clone(),
            },
            ButtonData::OfferNo {
                conversation: c.clone(),
                message: m.clone(),
            },
            ButtonData::SolvedYes {
                conversation: c.clone(),
                message: m.clone(),
            },
            ButtonData::SolvedNo {
                conversation: c.clone(),
                message: m.clone(),
            },
            ButtonData::StopSurveys {
                conversation: c.clone(),
            },
        ];
        for up in [true, false] {
            all.push(ButtonData::Feedback {
                conversation: c.clone(),
                message: m.clone(),
                up,
            });
        }
        for step in [SurveyStep::Csat, SurveyStep::Ces, SurveyStep::Nps] {
            for value in step.range() {
                all.push(ButtonData::Survey {
                    conversation: c.clone(),
                    step,
                    value,
                });
            }
        }
        for action in [DeskButton::Claim, DeskButton::Resolve, DeskButton::GiveBack] {
            all.push(ButtonData::Desk {
                action,
                conversation: c.clone(),
            });
        }
        all
    }

    #[test]
    fn every_variant_fits_telegram_and_discord_and_round_trips() {
        let ids = [
            (MAX.to_string(), MAX.to_string()),
            (crate::store::new_id(), crate::store::new_id()),
            (Uuid::nil().to_string(), Uuid::nil().to_string()),
        ];
        for (c, m) in &ids {
            for data in every_variant(c, m) {
                let encoded = data.encode();
                assert!(
                    encoded.len() <= MAX_DATA_BYTES,
                    "{encoded} is {} bytes",
                    encoded.len()
                );
                assert!(encoded.chars().count() <= 100, "Discord custom_id limit");
                assert_eq!(ButtonData::parse(&encoded), Some(data.clone()), "{encoded}");
            }
        }
    }

    #[test]
    fn old_and_hostile_data_does_not_parse() {
        let id = crate::store::new_id();
        for data in [
            "offer:yes".to_string(),
            "solved:no".to_string(),
            format!("fb:up:{id}"),
            format!("csat:4:{id}"),
            format!("nosurvey:{id}"),
            String::new(),
            ":".into(),
            "oy:".into(),
            "oy::".into(),
            "oy:+1:2".into(),
            "oy:1:2:3".into(),
            "sv:c9:1".into(),
            "sv:c:1".into(),
            "sv:x1:1".into(),
            "sv:c+1:1".into(),
            "sv:n100:1".into(),
            "so:1:2".into(),
            "dc:ZZ".into(),
            "dc:zzzzzzzzzzzzzzzzzzzzzzzzzz".into(),
            "K\u{212A}:é:\u{0301}".into(),
            "desk:claim:not-a-uuid".into(),
            "x".repeat(10_000),
        ] {
            assert_eq!(ButtonData::parse(&data), None, "{data:?}");
        }
    }

    #[test]
    fn truncated_and_mutated_data_never_panics() {
        let hostile = [
            '\u{212A}', 'ß', '\u{0301}', '\u{202E}', '\0', ':', '+', '-', 'Z', '😀',
        ];
        let (c, m) = (crate::store::new_id(), crate::store::new_id());
        for data in every_variant(&c, &m) {
            let encoded = data.encode();
            for (i, _) in encoded.char_indices() {
                let _ = ButtonData::parse(&encoded[..i]);
                for h in hostile {
                    let mut mutated = encoded.clone();
                    mutated.replace_range(i..i + 1, &h.to_string());
                    let _ = ButtonData::parse(&mutated);
                    mutated.insert(i, h);
                    let _ = ButtonData::parse(&mutated);
                }
            }
        }
    }

    #[test]
    fn legacy_card_buttons_still_name_their_conversation() {
        let id = crate::store::new_id();
        assert_eq!(
            ButtonData::parse(&format!("desk:resolve:{id}")),
            Some(ButtonData::Desk {
                action: DeskButton::Resolve,
                conversation: id.into(),
            })
        );
    }

    #[test]
    fn ids_that_are_not_uuids_never_parse_back() {
        let data = ButtonData::StopSurveys {
            conversation: "not-a-uuid".into(),
        };
        assert_eq!(ButtonData::parse(&data.encode()), None);
    }
}
