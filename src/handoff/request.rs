//! Requests for a person: phrases, and patterns that generalise them
//! (verbs of contact, transfer and wanting around words for people on the
//! company's side), read on the normalised message.

use super::{contains_phrase, normalise};

/// Phrases that ask for a person. Matched on the normalised message
/// (lower case, punctuation as spaces, single spaces), as whole words.
const REQUEST_PHRASES: &[&str] = &[
    "human",
    "real person",
    "live person",
    "live agent",
    "live chat",
    "agent please",
    "an agent",
    "speak to agent",
    "talk to agent",
    "talk to someone",
    "speak to someone",
    "speak with someone",
    "talk with someone",
    "customer service representative",
    "representative",
    "operator",
    "real agent",
    "support staff",
    "someone from support",
    "contact support",
    "escalate",
    "manager",
    "speak to",
    "speak with",
    "speak directly",
    "talk to",
    "talk with",
    "transfer me",
    "connect me",
    "put me through",
    "chat with someone",
    "chat with somebody",
    "a chat with",
    "chat with your",
    "team please",
    "department please",
    "someone there",
];

/// True when the message asks for a person ("talk to a human", "agent please").
pub fn asks_for_person(text: &str) -> bool {
    let n = normalise(text);
    if n.split(' ').count() > 25 {
        // A long message mentioning "manager" is a question, not a request.
        return false;
    }
    if REQUEST_PHRASES.iter().any(|p| contains_phrase(&n, p)) {
        return true;
    }
    let words = read_teams(&n);
    (0..words.len()).any(|i| person_requested(&words, i))
        || not_the_bot(&words)
        || whom_to_contact(&words)
        || support_reached(&words)
        || callback_wanted(&words)
}

/// "who can I call about this", "who do I speak to": asking whom to get in
/// touch with, and little else ("who can I contact to adjust my meal
/// plans" asks about the plans).
fn whom_to_contact(words: &[&str]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        let next = &words[i + 1..words.len().min(i + 4)];
        *w == "who"
            && next.windows(2).enumerate().any(|(j, pair)| {
                let rest = words.len() - (i + 1 + j + 2);
                matches!(pair[0], "i" | "we") && is_contact(pair[1]) && rest <= 3
            })
    })
}

/// Verbs of getting in touch with a person ("speak", "reach"), in the
/// forms a request uses ("could I be connected to …").
const CONTACT_VERBS: &[&str] = &[
    "speak",
    "speaking",
    "talk",
    "talking",
    "chat",
    "chatting",
    "connect",
    "connected",
    "transfer",
    "transferred",
    "reach",
    "contact",
    "call",
    "phone",
    "discuss",
    "ring",
    "touch",
];

/// Ways of writing to someone, a request when the customer says they
/// could ("someone I can message").
const WRITE_VERBS: &[&str] = &["message", "email", "write", "text", "dm"];

/// Verbs that pass the customer or their case on ("hand me over to",
/// "pass this on to", "send my case to"): a request when followed by the
/// customer or their case.
const PASS_VERBS: &[&str] = &[
    "hand", "pass", "put", "forward", "route", "redirect", "switch", "send", "refer", "escalate",
];

/// What is passed on: the customer or their case.
const PASSED: &[&str] = &["me", "us", "this", "it", "my", "our"];

/// The company's support as a group ("customer service", "your support
/// team", "a live agent"): two words that together name people on the
/// company's side, read as one role.
const TEAMS: &[(&str, &str)] = &[
    ("customer", "service"),
    ("customer", "support"),
    ("customer", "care"),
    ("customer", "services"),
    ("support", "team"),
    ("support", "staff"),
    ("support", "desk"),
    ("service", "team"),
    ("service", "desk"),
    ("help", "desk"),
    ("live", "support"),
    ("live", "chat"),
    ("your", "team"),
    ("your", "support"),
    ("the", "team"),
    ("team", "member"),
    ("staff", "member"),
    ("customer", "assistance"),
    ("customer", "team"),
    ("client", "service"),
    ("client", "services"),
    ("client", "support"),
];

/// Words that make "someone" a person rather than the bot ("a real person",
/// "someone real", "an actual human").
const REAL: &[&str] = &["real", "actual", "live", "human", "physical"];

/// What the bot is, when a customer says they want something else ("not
/// a bot", "not automated answers").
const BOTS: &[&str] = &["bot", "bots", "robot", "robots", "chatbot"];

/// Answers that are not a person's ("automated answers").
const AUTOMATIC: &[&str] = &["automated", "automatic"];

/// Verbs of wanting that make a request with a role ("I need an agent",
/// "get me a supervisor"), not with "someone" ("I want someone to see …").
const WANT_VERBS: &[&str] = &[
    "get", "want", "need", "like", "see", "give", "prefer", "require", "request", "rather",
];

/// Words that may stand between a wanting verb and the role.
const FILLERS: &[&str] = &[
    "me", "a", "an", "the", "to", "your", "one", "of", "some", "with", "speak", "talk", "deal",
];

/// What a customer asks a role for ("assistance from a team member").
const HELP: &[&str] = &[
    "help",
    "assistance",
    "support",
    "answer",
    "reply",
    "response",
    "callback",
];

/// Roles of people on the company's side.
const ROLES: &[&str] = &[
    "human",
    "humans",
    "agent",
    "agents",
    "representative",
    "representatives",
    "rep",
    "operator",
    "operators",
    "manager",
    "managers",
    "supervisor",
    "supervisors",
    "staff",
    "employee",
    "employees",
    "advisor",
    "advisors",
    "adviser",
    "advisers",
    "consultant",
    "consultants",
    "specialist",
    "specialists",
    "expert",
    "experts",
    "colleague",
    "colleagues",
    "department",
    "associate",
    "receptionist",
    "reception",
    "concierge",
    "clerk",
    "attendant",
    "officer",
    "technician",
    "engineer",
    "engineers",
    "cleaners",
    "housekeeping",
    // A person (not "people"): "I need a person", "a person please".
    "person",
];

/// What [`TEAMS`] read as: a role word no text can contain (normalised text
/// has no capitals).
const TEAM: &str = "TEAM";

/// Anyone at all: a request only with a contact verb ("talk to somebody").
const ANYONE: &[&str] = &[
    "someone", "somebody", "anyone", "anybody", "person", "people",
];

/// Owners that make a person someone of the customer's own ("my manager",
/// "our team"), not the company's.
const OWN: &[&str] = &["my", "our", "their", "his", "her", "its"];

/// The words of a normalised message, "customer service" and the other
/// [`TEAMS`] read as one role word.
fn read_teams(normal: &str) -> Vec<&str> {
    let mut words: Vec<&str> = Vec::new();
    for w in normal.split(' ') {
        if let Some(last) = words.last_mut()
            && TEAMS.contains(&(*last, w))
        {
            *last = TEAM;
            continue;
        }
        words.push(w);
    }
    words
}

/// Whether the word at `i` names someone on the company's side whom the
/// message asks for. Requests phrased in ways no phrase list spells out: a
/// contact verb up to five words before a role or "someone" ("can I speak
/// with one of your cleaners", "could I be connected to your claims
/// department"), the customer or their case passed on to them ("hand me
/// over to a colleague of yours"), a real one ("someone real"), one who
/// would call or whom the customer could write to ("could someone call me
/// back", "people there I can message"), one on the line or there at all
/// ("anyone there?"), a wanting verb before a role with only small words
/// between ("get me your supervisor", "please have a specialist look"),
/// help asked from a role ("assistance from a team member"), a role then a
/// speaking verb ("a consultant I could phone"), or a role followed by
/// "please".
fn person_requested(words: &[&str], i: usize) -> bool {
    let w = words[i];
    let role = ROLES.contains(&w) || w == TEAM;
    if !(role || ANYONE.contains(&w))
        || (i > 0 && OWN.contains(&words[i - 1]))
        // "a colleague's access": a thing of theirs, not them.
        || words.get(i + 1) == Some(&"s")
    {
        return false;
    }
    let before = &words[i.saturating_sub(5)..i];
    let after = &words[i + 1..words.len().min(i + 5)];
    let contacted = before.iter().enumerate().any(|(j, v)| {
        // "what do you call someone who …" names them.
        let naming = *v == "call" && j > 0 && before[j - 1] == "you";
        // "my contact list", "creating a contact from a person" (but "the
        // contact of somebody from your company" asks for one).
        let next = words.get(i - before.len() + j + 1).copied();
        let noun = *v == "contact"
            && (next.is_some_and(|n| {
                matches!(
                    n,
                    "list" | "lists" | "card" | "info" | "details" | "form" | "group"
                )
            }) || (j > 0
                && matches!(before[j - 1], "a" | "an" | "the" | "my" | "new")
                && !next.is_some_and(|n| matches!(n, "of" | "for" | "at"))));
        CONTACT_VERBS.contains(v) && !naming && !noun
    });
    if contacted
        || before.windows(2).any(|pair| {
            (PASS_VERBS.contains(&pair[0]) && PASSED.contains(&pair[1]))
                // "get hold of", "get through to".
                || (pair[0] == "get" && matches!(pair[1], "hold" | "through"))
        })
    {
        return true;
    }
    // "get me someone", "find me somebody who knows".
    let article = usize::from(i > 0 && matches!(words[i - 1], "a" | "an" | "some"));
    if i >= 2 + article
        && matches!(words[i - 2 - article], "get" | "give" | "find")
        && words[i - 1 - article] == "me"
    {
        return true;
    }
    // "a real person", "someone real" (not "how many people live in …").
    let real_after = words
        .get(i + 1)
        .is_some_and(|n| REAL.contains(n) && *n != "live");
    if (i > 0 && REAL.contains(&words[i - 1])) || real_after {
        return true;
    }
    // "could someone call me back", "have a representative contact us",
    // "someone I can message", "get someone on the line", "anyone there?".
    let calls_back = after.windows(2).any(|pair| {
        (CONTACT_VERBS.contains(&pair[0]) && matches!(pair[1], "me" | "us" | "back"))
            // "can a member of staff get back to me".
            || pair == ["back", "to"]
    }) || after
        .windows(3)
        .any(|t| CONTACT_VERBS.contains(&t[0]) && t[1] == "out" && matches!(t[2], "to" | "me"));
    // Not in a how-to question ("how do I find people I can message").
    let how_to = words.first() == Some(&"how");
    let reachable = !how_to
        && words[i + 1..words.len().min(i + 7)].windows(3).any(|t| {
            matches!(t[0], "i" | "we")
                && (is_contact(t[1])
                    || (matches!(t[1], "can" | "could" | "may") && is_contact(t[2])))
        });
    let on_the_line = after.starts_with(&["on", "the"])
        && after.get(2).is_some_and(|n| matches!(*n, "line" | "phone"));
    let there = !how_to
        && after.first() == Some(&"there")
        && after
            .get(1)
            .is_none_or(|n| matches!(*n, "who" | "that" | "to" | "please"));
    if calls_back || reachable || on_the_line || there {
        return true;
    }
    if !role {
        return false;
    }
    let asked = words[..i].iter().rposition(|f| !FILLERS.contains(f));
    // "can your staff help me" (not "can the agent help me write …", a
    // product's agent), "the number of customer service".
    let helps = i > 0
        && matches!(words[i - 1], "your" | "a" | "an" | "one" | "some")
        && after.windows(2).any(|pair| {
            matches!(pair[0], "help" | "assist" | "advise") && matches!(pair[1], "me" | "us")
        });
    // The contact details of the support team or of "your" role, or a
    // phone number (not "the version number of the agent").
    let k = asked.map(|k| {
        if matches!(words[k], "for" | "from") && k > 0 && words[k - 1] == "number" {
            k - 1
        } else {
            k
        }
    });
    let contact_of = k.is_some_and(|k| {
        let phone_number = words[k] == "number"
            && k > 0
            && matches!(words[k - 1], "phone" | "telephone" | "contact");
        let theirs = w == TEAM || (i > 0 && words[i - 1] == "your");
        phone_number || (theirs && matches!(words[k], "number" | "phone" | "email"))
    });
    if helps || contact_of {
        return true;
    }
    let wanted = asked.is_some_and(|k| {
        WANT_VERBS.contains(&words[k])
            // "please have a specialist look at it", "could you have …".
            || (words[k] == "have" && k > 0 && matches!(words[k - 1], "please" | "you" | "pls"))
            // "let a person reply" (not "let the agent run", a product's).
            || (words[k] == "let" && matches!(words[i - 1], "a" | "an" | "some" | "one"))
            // "assistance from a team member".
            || (words[k] == "from" && k > 0 && HELP.contains(&words[k - 1]))
    });
    wanted || after.iter().any(|v| CONTACT_VERBS.contains(v)) || words.get(i + 1) == Some(&"please")
}

/// Support as a unit of the company ("technical support", "your
/// helpdesk"), a request only right after a contact verb and at the end of
/// what is asked ("transferred to technical support", "reach your helpdesk
/// by phone"; not "connect it to the support portal").
fn support_reached(words: &[&str]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        matches!(*w, "support" | "helpdesk" | "desk")
            && words[i.saturating_sub(4)..i]
                .iter()
                .any(|v| CONTACT_VERBS.contains(v))
            && words.get(i + 1).is_none_or(|n| {
                matches!(
                    *n,
                    "please" | "by" | "about" | "for" | "regarding" | "now" | "today"
                )
            })
    })
}

/// "I want a callback", "can I request a call back please".
fn callback_wanted(words: &[&str]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        let back = *w == "callback" || (*w == "back" && i > 0 && words[i - 1] == "call");
        if !back {
            return false;
        }
        let start = if *w == "back" { i - 1 } else { i };
        let asked = words[..start]
            .iter()
            .rposition(|f| !FILLERS.contains(f))
            // Nothing before it ("callback please") or a wish.
            .is_none_or(|k| WANT_VERBS.contains(&words[k]) || words[k] == "arrange");
        asked
            && words.get(i + 1).is_none_or(|n| {
                matches!(
                    *n,
                    "please" | "from" | "today" | "tomorrow" | "asap" | "about"
                )
            })
    })
}

fn is_contact(word: &str) -> bool {
    CONTACT_VERBS.contains(&word) || WRITE_VERBS.contains(&word)
}

/// "not a bot", "real support, not automated answers", "no more robots":
/// the customer wants someone other than the bot. "I'm not a bot" (said of
/// themselves) is not a request.
fn not_the_bot(words: &[&str]) -> bool {
    if words.first() == Some(&"how") {
        return false;
    }
    words.iter().enumerate().any(|(i, w)| {
        if *w != "not" {
            return false;
        }
        let themselves = i > 0 && matches!(words[i - 1], "m" | "am" | "im");
        let next = &words[i + 1..words.len().min(i + 3)];
        let bot = next.iter().any(|n| BOTS.contains(n))
            || next.windows(2).any(|pair| {
                AUTOMATIC.contains(&pair[0])
                    && matches!(pair[1], "answers" | "replies" | "responses" | "messages")
            });
        !themselves && bot
    }) || words
        .windows(2)
        .any(|pair| REAL.contains(&pair[0]) && matches!(pair[1], "support" | "help" | "assistance"))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
