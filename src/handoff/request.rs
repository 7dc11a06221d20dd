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
/// message asks for: a role, or anyone at all ("someone") when how they are
/// approached or described says so. Not someone of the customer's own ("my
/// manager") nor a thing of theirs ("a colleague's access").
fn person_requested(words: &[&str], i: usize) -> bool {
    let w = words[i];
    let role = ROLES.contains(&w) || w == TEAM;
    if !(role || ANYONE.contains(&w))
        || (i > 0 && OWN.contains(&words[i - 1]))
        || words.get(i + 1) == Some(&"s")
    {
        return false;
    }
    approached(words, i) || described(words, i) || (role && role_asked_for(words, i))
}

/// Someone approached by what comes before them: a contact verb up to five
/// words before ("can I speak with one of your cleaners", "could I be
/// connected to your claims department"), the customer or their case
/// passed on ("hand me over to a colleague of yours"), "get hold of",
/// "get through to", or "get me someone".
fn approached(words: &[&str], i: usize) -> bool {
    let start = i.saturating_sub(5);
    let before = &words[start..i];
    if (start..i).any(|j| contact_verb_at(words, j))
        || before.windows(2).any(|pair| {
            (PASS_VERBS.contains(&pair[0]) && PASSED.contains(&pair[1]))
                || (pair[0] == "get" && matches!(pair[1], "hold" | "through"))
        })
    {
        return true;
    }
    // "get me someone", "find me a person".
    let article = usize::from(i > 0 && matches!(words[i - 1], "a" | "an" | "some"));
    i >= 2 + article
        && matches!(words[i - 2 - article], "get" | "give" | "find")
        && words[i - 1 - article] == "me"
}

/// Whether `words[j]` is a contact verb used as one: not "what do you call
/// someone who …" (naming them) nor "contact" as a noun ("my contact list",
/// "creating a contact from a person"; but "the contact of somebody from
/// your company" asks for one).
fn contact_verb_at(words: &[&str], j: usize) -> bool {
    let verb = words[j];
    if !CONTACT_VERBS.contains(&verb) {
        return false;
    }
    let previous = j.checked_sub(1).map(|p| words[p]);
    let next = words.get(j + 1).copied();
    let naming = verb == "call" && previous == Some("you");
    let noun = verb == "contact"
        && (next.is_some_and(|n| {
            matches!(
                n,
                "list" | "lists" | "card" | "info" | "details" | "form" | "group"
            )
        }) || (previous.is_some_and(|p| matches!(p, "a" | "an" | "the" | "my" | "new"))
            && !next.is_some_and(|n| matches!(n, "of" | "for" | "at"))));
    !naming && !noun
}

/// Someone described as a person the customer can reach: a real one ("a
/// real person", "someone real"; not "how many people live in …"), one who
/// would call back ("could someone call me back", "can a member of staff
/// get back to me"), whom the customer could write to ("people there I can
/// message"), on the line, or there at all ("anyone there?"). Not in a
/// how-to question ("how do I find people I can message").
fn described(words: &[&str], i: usize) -> bool {
    let after = &words[i + 1..words.len().min(i + 5)];
    let real_after = words
        .get(i + 1)
        .is_some_and(|n| REAL.contains(n) && *n != "live");
    if (i > 0 && REAL.contains(&words[i - 1])) || real_after {
        return true;
    }
    let calls_back = after.windows(2).any(|pair| {
        (CONTACT_VERBS.contains(&pair[0]) && matches!(pair[1], "me" | "us" | "back"))
            || pair == ["back", "to"]
    }) || after
        .windows(3)
        .any(|t| CONTACT_VERBS.contains(&t[0]) && t[1] == "out" && matches!(t[2], "to" | "me"));
    let on_the_line = after.starts_with(&["on", "the"])
        && after.get(2).is_some_and(|n| matches!(*n, "line" | "phone"));
    if calls_back || on_the_line {
        return true;
    }
    if words.first() == Some(&"how") {
        return false;
    }
    let reachable = words[i + 1..words.len().min(i + 7)].windows(3).any(|t| {
        matches!(t[0], "i" | "we")
            && (is_contact(t[1]) || (matches!(t[1], "can" | "could" | "may") && is_contact(t[2])))
    });
    let there = after.first() == Some(&"there")
        && after
            .get(1)
            .is_none_or(|n| matches!(*n, "who" | "that" | "to" | "please"));
    reachable || there
}

/// A role asked for by what surrounds it: asked to help ("can your staff
/// help me"; not "can the agent help me write …", a product's agent), its
/// contact details (of the support team or of "your" role, or a phone
/// number; not "the version number of the agent"), wanted with only small
/// words between ("get me your supervisor", "please have a specialist
/// look", "let a person reply"; not "let the agent run"), help asked from
/// it ("assistance from a team member"), followed by a contact verb ("a
/// consultant I could phone") or by "please".
fn role_asked_for(words: &[&str], i: usize) -> bool {
    let after = &words[i + 1..words.len().min(i + 5)];
    let article = i > 0 && matches!(words[i - 1], "a" | "an" | "some" | "one");
    let helps = (article || (i > 0 && words[i - 1] == "your"))
        && after.windows(2).any(|pair| {
            matches!(pair[0], "help" | "assist" | "advise") && matches!(pair[1], "me" | "us")
        });
    helps
        || last_content(words, i).is_some_and(|k| asked_by(words, i, k))
        || after.iter().any(|v| CONTACT_VERBS.contains(v))
        || words.get(i + 1) == Some(&"please")
}

/// Whether `words[k]`, the last content word before the role at `i`, asks
/// for it: its contact details or a wish (see [`role_asked_for`]).
fn asked_by(words: &[&str], i: usize, k: usize) -> bool {
    let previous = k.checked_sub(1).map(|p| words[p]);
    // "the phone number for your support team": the detail before "for".
    let detail = match (words[k], previous) {
        ("for" | "from", Some("number")) => k - 1,
        _ => k,
    };
    let phone_number = words[detail] == "number"
        && detail > 0
        && matches!(words[detail - 1], "phone" | "telephone" | "contact");
    let theirs = words[i] == TEAM || (i > 0 && words[i - 1] == "your");
    let article = i > 0 && matches!(words[i - 1], "a" | "an" | "some" | "one");
    phone_number
        || (theirs && matches!(words[detail], "number" | "phone" | "email"))
        || WANT_VERBS.contains(&words[k])
        || (words[k] == "have" && previous.is_some_and(|p| matches!(p, "please" | "you" | "pls")))
        || (words[k] == "let" && article)
        || (words[k] == "from" && previous.is_some_and(|p| HELP.contains(&p)))
}

/// The last word before `end` that is not a small word ([`FILLERS`]).
fn last_content(words: &[&str], end: usize) -> Option<usize> {
    words[..end].iter().rposition(|f| !FILLERS.contains(f))
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
        // Nothing before it ("callback please") or a wish.
        let asked = last_content(words, start)
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
