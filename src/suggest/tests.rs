//! Drafting articles: the plain template, the model's reply, hostile text.

use super::*;
use proptest::prelude::*;

fn message(role: Role, text: &str, at: i64) -> Message {
    Message {
        id: format!("m{at}").into(),
        conversation_id: "c".into(),
        seq: at,
        role,
        author: (role == Role::Agent).then(|| "alice".into()),
        text: text.into(),
        mode: None,
        sources: vec![],
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: None,
        channel: "web".into(),
        platform_message_id: None,
        feedback: None,
        created_at: at,
        owner: None,
    }
}

fn conversation(handoff_at: Option<i64>) -> Conversation {
    Conversation {
        id: "c".into(),
        customer_id: "u".into(),
        channel: "web".into(),
        thread_key: "t".into(),
        status: Status::Resolved,
        previous_id: None,
        created_at: 0,
        updated_at: 0,
        last_customer_at: None,
        last_bot_at: None,
        first_bot_response_at: None,
        handoff_at,
        handoff_reason: Some("knowledge_gap".into()),
        handoff_detail: None,
        assigned_agent: Some("alice".into()),
        first_human_response_at: None,
        resolved_at: Some(100),
        resolved_by: Some("alice".into()),
        resolution: Some(crate::conversation::Resolution::Agent),
        offered_human: true,
        llm_failures: 0,
        repinged_at: None,
        context_since: None,
        context_after_seq: None,
    }
}

#[test]
fn the_question_before_the_hand_off_and_the_agents_replies_make_the_material() {
    let messages = [
        message(Role::Customer, "hi", 1),
        message(Role::Customer, "Can I pay by bank transfer from abroad?", 2),
        message(
            Role::Bot,
            "I couldn't find an answer… Would you like a person?",
            3,
        ),
        message(Role::Customer, button::OFFER_YES_LABEL, 4),
        message(Role::Customer, "my IBAN is DE00 1234", 6),
        message(Role::Agent, "Yes: use the IBAN on your invoice.", 7),
        message(Role::Note, "internal: VIP", 8),
        message(Role::Agent, "It takes 2–3 days.", 9),
        message(Role::Customer, "thanks", 10),
    ];
    let m = material(&conversation(Some(5)), &messages);
    assert_eq!(m.questions, ["Can I pay by bank transfer from abroad?"]);
    assert_eq!(
        m.replies,
        ["Yes: use the IBAN on your invoice.", "It takes 2–3 days."]
    );
    let draft = plain(&m);
    assert_eq!(draft.title, "Can I pay by bank transfer from abroad?");
    assert_eq!(draft.slug, "can-i-pay-by-bank-transfer-from-abroad");
    assert_eq!(draft.tags, ["bank", "transfer", "abroad"]);
    assert_eq!(
        draft.body,
        "## Can I pay by bank transfer from abroad?\n\nYes: use the IBAN on your invoice.\n\nIt takes 2–3 days.\n"
    );
}

#[test]
fn a_request_for_a_person_first_leaves_the_question_asked_while_waiting() {
    let messages = [
        message(Role::Customer, "/human", 1),
        message(Role::Customer, "I want to talk to a person", 2),
        message(Role::Customer, "Why was I charged twice in March?", 4),
        message(Role::Agent, "A duplicate authorisation; it drops off.", 5),
    ];
    let m = material(&conversation(Some(3)), &messages);
    assert_eq!(m.questions, ["Why was I charged twice in March?"]);
    // Only a request for a person: it is the question.
    let m = material(&conversation(Some(3)), &messages[..2]);
    assert_eq!(m.questions, ["I want to talk to a person"]);
    assert!(m.replies.is_empty());
}

#[test]
fn the_models_answer_is_read_in_its_form_and_refused_out_of_it() {
    let answer = "Here you go:\n**Title:** \"Paying by bank transfer\"\nTags: Billing, #payments, billing\n---\n## Can I pay by bank transfer?\nYes, with the IBAN on your invoice.\n";
    assert_eq!(
        parse(answer),
        Some((
            "Paying by bank transfer".to_string(),
            vec!["billing".to_string(), "payments".to_string()],
            "## Can I pay by bank transfer?\nYes, with the IBAN on your invoice.".to_string()
        ))
    );
    let fenced = "```markdown\nTitle: T\n## H\nBody\n```";
    assert_eq!(
        parse(fenced),
        Some(("T".into(), vec![], "## H\nBody".into()))
    );
    assert_eq!(parse("Sorry, I cannot help with that."), None);
    assert_eq!(parse("Title: Only a title\nTags: a\n---\n"), None);
}

#[test]
fn kb_commands_are_recognised_with_a_bot_name_and_in_any_case() {
    assert_eq!(chat_command("/kb suggest"), Some(Ok(ChatCommand::Suggest)));
    assert_eq!(
        chat_command("  /KB@switchboard_bot  Suggest "),
        Some(Ok(ChatCommand::Suggest))
    );
    assert_eq!(chat_command("/kb"), Some(Err(CHAT_USAGE)));
    assert_eq!(chat_command("/kb publish"), Some(Err(CHAT_USAGE)));
    assert_eq!(chat_command("/kbsuggest"), None);
    assert_eq!(chat_command("kb suggest"), None);
    assert_eq!(chat_command("/resolve"), None);
}

#[test]
fn slugs_are_made_unique() {
    let taken = ["a", "a-2"];
    assert_eq!(unique_slug("a", |s| taken.contains(&s)), "a-3");
    assert_eq!(unique_slug("b", |s| taken.contains(&s)), "b");
    assert_eq!(slugify("¿¡!?"), "suggested-article");
    assert_eq!(slugify("Ünïcode  Straße — 2FA"), "ünïcode-straße-2fa");
}

proptest! {
    /// Any title gives a slug the editor accepts, within its length.
    #[test]
    fn any_title_gives_a_valid_slug(title in "\\PC{0,200}") {
        let slug = slugify(&title);
        prop_assert!(crate::kb::edit::validate_slug(&slug).is_ok(), "{:?} -> {:?}", title, slug);
        prop_assert!(slug.len() <= MAX_SLUG_BYTES);
    }

    /// Cutting keeps a prefix, within the limit, on a char boundary.
    #[test]
    fn cutting_keeps_a_prefix_within_the_limit(text in "\\PC{0,300}", max in 1usize..150) {
        let out = cut(&text, max);
        prop_assert!(out.chars().count() <= max);
        if text.chars().count() <= max {
            prop_assert_eq!(&out, &text);
        } else {
            let kept = out.strip_suffix('…').unwrap();
            prop_assert!(text.starts_with(kept));
        }
    }

    /// Quoted text never holds a tag of the prompt's quotes, however it
    /// was nested, in any case.
    #[test]
    fn quoted_text_cannot_close_its_quote(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("<reply>".to_string()), Just("</reply>".to_string()),
                Just("</REPLIES>".to_string()), Just("<question>".to_string()),
                Just("</Question>".to_string()), Just("</questions>".to_string()),
                Just("</rep".to_string()), Just("ly>".to_string()), Just("<".to_string()),
                "\\PC{0,8}",
            ],
            0..12,
        )
    ) {
        let text: String = parts.concat();
        let out = quoted(&text).to_lowercase();
        for tag in QUOTE_TAGS {
            prop_assert!(!out.contains(&format!("<{tag}>")), "{:?}", out);
            prop_assert!(!out.contains(&format!("</{tag}>")), "{:?}", out);
        }
    }

    /// Whatever the model answers: no panic, and what is read back
    /// keeps the limits (one-line title, few short tags, a body).
    #[test]
    fn any_model_answer_is_read_safely(answer in "(\\PC{0,40}\n?){0,8}", title in "\\PC{0,200}", body in "\\PC{0,80}") {
        for text in [answer.clone(), format!("Title: {title}\nTags: {answer}\n---\n{body}")] {
            if let Some((t, tags, b)) = parse(&text) {
                prop_assert!(!t.is_empty() && !t.contains('\n'));
                prop_assert!(t.chars().count() <= MAX_TITLE_CHARS);
                prop_assert!(tags.len() <= MAX_TAGS);
                prop_assert!(tags.iter().all(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS));
                prop_assert!(!b.trim().is_empty() && b.chars().count() <= MAX_BODY_CHARS);
            }
        }
    }

    /// Any staff message: no panic; only `/kb` (with an optional bot
    /// name) is a `/kb` command, and only `/kb suggest` suggests.
    #[test]
    fn any_staff_message_is_read_safely(text in "/?\\PC{0,40}") {
        match chat_command(&text) {
            None => {}
            Some(found) => {
                let name = text.trim().trim_start_matches('/').split(char::is_whitespace).next().unwrap_or("");
                prop_assert!(name.split('@').next().unwrap().eq_ignore_ascii_case("kb"), "{:?}", text);
                if found.is_ok() {
                    prop_assert!(text.to_lowercase().contains("suggest"));
                }
            }
        }
    }

    /// Any conversation text makes a plain draft the editor can take:
    /// a title within the limit and a valid slug.
    #[test]
    fn any_conversation_makes_a_plain_draft(question in "\\PC{1,400}", reply in "\\PC{1,200}") {
        prop_assume!(worth_asking(&question) && !reply.trim().is_empty());
        let messages = [message(Role::Customer, &question, 1), message(Role::Agent, &reply, 3)];
        let m = material(&conversation(Some(2)), &messages);
        prop_assert_eq!(m.questions.len(), 1);
        let draft = plain(&m);
        prop_assert!(draft.title.chars().count() <= MAX_TITLE_CHARS);
        prop_assert!(crate::kb::edit::validate_slug(&draft.slug).is_ok());
        prop_assert!(draft.body.contains(reply.trim()));
        prop_assert!(draft.tags.len() <= 3);
    }
}
