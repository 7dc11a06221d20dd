//! Requests for a person: what is and is not one.

use super::*;

/// The request sets of the README's table: a regression guard (their
/// figures are development figures now, not held-out ones). A line that is
/// not a hand-off case fails the test (not `eval::load`: `handoff` stays
/// below `eval`, which imports the assistant, which imports `handoff`).
#[test]
fn request_sets_stay_recognised() {
    for (name, file, at_least) in [
        (
            "handoff_heldout",
            include_str!("../../tests/fixtures/handoff_heldout.jsonl"),
            39,
        ),
        (
            "handoff_heldout2",
            include_str!("../../tests/fixtures/handoff_heldout2.jsonl"),
            29,
        ),
        (
            "handoff_heldout3",
            include_str!("../../tests/fixtures/handoff_heldout3.jsonl"),
            28,
        ),
    ] {
        let questions: Vec<String> = file
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let case: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
                assert_eq!(case["kind"], "handoff", "{name}: {line}");
                case["q"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no question: {line}"))
                    .to_string()
            })
            .collect();
        let missed: Vec<&String> = questions.iter().filter(|q| !asks_for_person(q)).collect();
        let recognised = questions.len() - missed.len();
        assert!(
            recognised >= at_least,
            "{name}: {recognised} of {} recognised, missed {missed:#?}",
            questions.len()
        );
    }
}

#[test]
fn recognises_requests_for_a_person() {
    for text in [
        "talk to a human",
        "Can I speak to a real person?",
        "agent please",
        "HUMAN!!",
        "I want a live agent",
        "let me talk to someone",
        "get me a representative",
        "could you transfer me to the spa team please",
        "Can I speak directly with the reception?",
        "please connect me to billing",
        "billing team please",
        "I'd like to have a chat with one of your engineers",
        "I need to reach an employee about my booking",
        "could somebody from housekeeping call me",
        "get me your supervisor",
        "is there a consultant I could phone",
        "receptionist please",
        "is there a customer service number I can call",
        "can someone from your team contact me",
        "please have a representative call me back",
        "I want live support",
        "this isn't helping, give me someone real",
        "I'd prefer to discuss this with an employee",
        "can I have the phone number of customer support",
        "could a person from support reach out to me",
        "how do I get in touch with your staff",
        "can your support people ring me",
        "who can I call about this",
        "is anyone there who can actually help me, not a bot?",
        "I'd like a callback from an advisor",
        "please have a specialist look at my case",
        "need assistance from a team member",
        "Hand me over to a colleague of yours",
        "are there people working there I can message?",
        "Could I be connected to your claims department?",
        "Can I chat with one of your experts?",
        "get someone on the line",
        "I need real support, not automated answers",
        "Can a member of staff get back to me",
        "I'd like to be transferred to technical support",
        "i want a callback",
        "can I reach your helpdesk by phone",
        "Can I get hold of someone who works there?",
        "Get me someone competent",
        "call back please",
        "What's the number of customer service",
        "I need to call customer assistance",
        "i want to contact client service",
        "Can your staff help me in person?",
        "what is the phone number for your support team",
        "I need a person",
        "a person please",
        "get me a person",
        "can I talk to somebody",
        "I would rather deal with a person",
        "let a person reply",
    ] {
        assert!(asks_for_person(text), "{text}");
    }
    for text in [
        "how do I get a refund",
        "humanity",
        "what is the agenda view",
        "how do I change my password",
        "how do I connect my calendar",
        "how do I add a member to my team",
        "can I chat with my team inside a note",
        "can I send a page to my colleagues",
        "what permissions do people in a workspace have",
        "does the app support dark mode",
        "how do I call a function from the support library",
        "can people in my workspace call me from the app",
        "how do I turn off the live preview",
        "how do I add customer support hours to my page",
        "I'm not a bot, why do I get a captcha",
        "why is my weekly report not automated",
        "how do I find people I can message",
        "I need a colleague's access to the shared folder",
        "can I use it without the bot",
        "how do I pass my settings to another device",
        "send me the invoice for March",
        "how do I connect my account to the support portal",
        "how do I set a callback url",
        "I want the call back feature turned off",
        "I want someone to see my shared calendar",
        "back to the menu",
        "Who can I contact to adjust my meal plans?",
        "what number do I call for shuttle services for veterans",
        "can the agent help me write emails",
        "can someone help me with my password reset",
        "what is the version number of the agent",
        "what's the IP address of the agent",
        "If somebody dies, what's gonna happen to their fb account?",
        "Can I follow somebody on twitter without them knowing.",
        "Finding out the oldest message from a person.",
        "What are my options for adding a person without a gmail address",
        "how many people live in taiwan",
        "what do you call someone who was born in segovia",
        "how do I let the agent run in the background",
        "Inserting into my gmail contact list a person in the CC field of a mail i got.",
        "Creating a contact from a person in the CC field of a mail.",
    ] {
        assert!(!asks_for_person(text), "{text}");
    }
}
