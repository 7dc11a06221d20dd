//! The Telegram channel end to end: the real teloxide client against a local
//! Bot API server, asserting on the exact calls it received.

use crate::common;

use common::{
    Deployment, Kb, Options, TestApp, openai_fake, spawn_app, telegram_fake, try_spawn_on,
};
use serde_json::json;
use switchboard::button::{ButtonData, NO_LONGER_AVAILABLE, SurveyStep};
use switchboard::channels::text;
use switchboard::conversation::Status;
use telegram_fake::{
    Failure, callback_update, group_chat, message, message_update, private_chat, user,
};

const CUSTOMER: i64 = 5001;
const AGENTS: i64 = -100_777;
const ALICE: i64 = 7001;

const ARTICLE: &str = "---\ntitle: Refunds & <Returns>\nurl: https://help.example/refunds?a=1&b=2\n---\n# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing. Special: _*[]()~`>#+-=|{}.!<& done.\n";

/// The app with the Telegram fake, a knowledge base of [`ARTICLE`] alone
/// (Telegram's HTML escaping is what these tests check), agent Alice, and
/// `extra` keys of `[telegram]` (then other tables).
async fn start(extra: &str, llm: Option<String>) -> TestApp {
    spawn_app(
        Options::new()
            .telegram()
            .kb(Kb::Empty)
            .article("refunds.md", ARTICLE)
            .llm_opt(llm)
            .settings(format!(
                "[telegram]\n{extra}\n[[agents]]\nname = \"alice\"\ntelegram_id = {ALICE}\n"
            )),
    )
    .await
}

/// The fake checks HTML as Telegram does. Tested here rather than in the
/// fake, which every test crate includes, so that it runs once.
#[test]
fn html_checker_behaves_like_telegram() {
    use telegram_fake::html_problem;
    assert!(html_problem("a &lt; b <a href=\"x\">link</a>").is_none());
    assert!(html_problem("a < b").is_some());
    assert!(html_problem("fish & chips").is_some());
    assert!(html_problem("<b>unclosed").is_some());
}

fn from_customer(update_id: i64, message_id: i64, text: &str) -> serde_json::Value {
    message_update(
        update_id,
        message(
            message_id,
            private_chat(CUSTOMER),
            user(CUSTOMER, "Ann"),
            text,
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_commands_and_answers_a_private_question_with_a_streamed_edited_answer() {
    let (llm, llm_url) = openai_fake::start().await;
    let answer = [
        "To get a refund, ",
        "open Settings → Billing ",
        "(see _*[]()~`>#+-=|{}.!<& too) [1].",
    ];
    llm.script([openai_fake::Script::Stream(
        answer.iter().map(|s| s.to_string()).collect(),
    )]);
    let t = start("", Some(llm_url)).await;
    let commands = t.telegram().calls_of("setmycommands");
    let names: Vec<&str> = commands[0]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["start", "help", "ask", "human", "new"]);

    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    t.telegram()
        .wait_until("the final edit with sources", |f| {
            f.calls_of("editmessagetext")
                .iter()
                .any(|c| c["text"].as_str().unwrap_or("").contains("Sources:"))
        })
        .await;
    let actions = t.telegram().calls_of("sendchataction");
    assert_eq!(actions[0]["action"], "typing");
    let sent = t.telegram().calls_of("sendmessage");
    assert_eq!(sent.len(), 1, "one message, then edits: {sent:#?}");
    assert_eq!(sent[0]["parse_mode"], "HTML");
    let final_edit = t
        .telegram()
        .calls_of("editmessagetext")
        .last()
        .unwrap()
        .clone();
    let text = final_edit["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "To get a refund, open Settings → Billing (see _*[]()~`&gt;#+-=|{}.!&lt;&amp; too) [1]."
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "<a href=\"https://help.example/refunds?a=1&amp;b=2\">Refunds &amp; &lt;Returns&gt;</a>"
        ),
        "{text}"
    );
    let keyboard = &final_edit["reply_markup"]["inline_keyboard"];
    let data = |row: usize, col: usize| {
        ButtonData::parse(keyboard[row][col]["callback_data"].as_str().unwrap()).unwrap()
    };
    assert!(matches!(data(0, 0), ButtonData::SolvedYes { .. }));
    assert!(matches!(data(1, 0), ButtonData::Feedback { up: true, .. }));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_answer_mentions_and_ignore_chatter() {
    let t = start("", None).await;
    let group = group_chat(-100_500, false);
    t.telegram().push(message_update(
        1,
        message(1, group.clone(), user(8001, "Bob"), "anyone up for lunch?"),
    ));
    t.telegram().push(message_update(
        2,
        message(
            2,
            group.clone(),
            user(8001, "Bob"),
            &format!("@{} how do I get a refund", telegram_fake::BOT_USERNAME),
        ),
    ));
    t.telegram().push(message_update(
        3,
        message(3, group, user(8002, "Cy"), "/ask refund please"),
    ));
    t.telegram()
        .wait_until("two answers", |f| f.calls_of("sendmessage").len() >= 2)
        .await;
    t.settled().await;
    let sent = t.telegram().calls_of("sendmessage");
    assert_eq!(sent.len(), 2, "chatter is ignored: {sent:#?}");
    let replied_to: Vec<i64> = sent
        .iter()
        .map(|s| s["reply_parameters"]["message_id"].as_i64().unwrap())
        .collect();
    assert!(
        replied_to.contains(&2) && replied_to.contains(&3),
        "{replied_to:?}"
    );
    assert!(
        sent.iter()
            .all(|s| s["text"].as_str().unwrap().contains("To get a refund"))
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kelvin_sign_before_a_mention_is_answered_and_polling_goes_on() {
    // Issue 11: lower-casing the Kelvin sign shortens it by two bytes, and
    // the mention's offset in the lower-cased text cut the original: the
    // polling task panicked and nothing was answered any more.
    let t = start("", None).await;
    let group = group_chat(-100_500, false);
    let bot = telegram_fake::BOT_USERNAME.to_uppercase();
    t.telegram().push(message_update(
        1,
        message(
            1,
            group.clone(),
            user(8001, "Bob"),
            &format!("\u{212A}@{bot} how do I get a refund"),
        ),
    ));
    t.telegram().push(message_update(
        2,
        message(
            2,
            group,
            user(8002, "Cy"),
            &format!("İİ @{} refund please", telegram_fake::BOT_USERNAME),
        ),
    ));
    t.telegram()
        .wait_until("both answered", |f| f.calls_of("sendmessage").len() >= 2)
        .await;
    let replied_to: Vec<i64> = t
        .telegram()
        .calls_of("sendmessage")
        .iter()
        .map(|s| s["reply_parameters"]["message_id"].as_i64().unwrap())
        .collect();
    assert!(
        replied_to.contains(&1) && replied_to.contains(&2),
        "{replied_to:?}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_photo_and_duplicate_updates() {
    let t = start("", None).await;
    t.telegram().push(from_customer(1, 10, "/start"));
    t.telegram().push(from_customer(1, 10, "/start")); // the same update again
    t.telegram().push(from_customer(2, 11, "/frobnicate"));
    let mut photo = message(12, private_chat(CUSTOMER), user(CUSTOMER, "Ann"), "");
    photo.as_object_mut().unwrap().remove("text");
    photo["photo"] =
        json!([{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1, "file_size": 10}]);
    t.telegram().push(message_update(3, photo));
    t.telegram().push(from_customer(4, 13, "/human"));
    t.telegram()
        .wait_until("four replies", |f| f.texts_to(CUSTOMER).len() >= 4)
        .await;
    t.settled().await;
    let texts = t.telegram().texts_to(CUSTOMER);
    assert_eq!(texts.len(), 4, "{texts:#?}");
    // Welcome once, and every reply in the order its message came.
    assert!(texts[0].contains("support assistant"), "{texts:#?}");
    assert!(
        texts[1].contains("Unknown command /frobnicate"),
        "{texts:#?}"
    );
    assert_eq!(texts[2], text::TEXT_ONLY, "{texts:#?}");
    assert!(
        texts[3].contains("connecting you with a person"),
        "{texts:#?}"
    );
    t.stop().await;
}

// Named to sort first: the test runner starts tests in name order, and this
// one spends 10 s in teloxide's own wait after a 5xx, during which the others run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_and_a_5xx_are_retried() {
    let t = start("", None).await;
    t.telegram().fail("sendmessage", Failure::TooMany(1), 1);
    t.telegram().fail("sendmessage", Failure::ServerError, 1);
    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    // teloxide waits 10 s after a 5xx before it reports it.
    t.telegram()
        .wait_up_to(30, "the answer after retries", |f| {
            f.texts_to(CUSTOMER).len() >= 3
        })
        .await;
    // 429, 500, then success: the same message three times, delivered once.
    let texts = t.telegram().texts_to(CUSTOMER);
    assert_eq!(texts.len(), 3);
    assert!(texts.iter().all(|x| x == &texts[0]));
    t.stop().await;
}

/// Issue 12: the channel kept a send Telegram refused for good (400) in the
/// outbox, to be refused again on every retry. The one delivery policy
/// keeps only what may succeed later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_telegram_refuses_for_good_is_not_queued() {
    let t = start("", None).await;
    t.telegram().fail(
        "sendmessage",
        Failure::BadRequest("Bad Request: can't parse entities"),
        1,
    );
    t.telegram().push(from_customer(1, 10, "/help"));
    // Answers in one chat go in order: once the second is there, the first
    // was refused and settled.
    t.telegram().push(from_customer(2, 11, "/help"));
    t.telegram()
        .wait_until("the second answer", |f| f.texts_to(CUSTOMER).len() >= 2)
        .await;
    // The fake records refused sends too: one refused (not retried), one sent.
    assert_eq!(t.telegram().texts_to(CUSTOMER).len(), 2);
    assert_eq!(t.outbox_pending().await, 0, "nothing queued");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_is_split_under_the_limit() {
    let (llm, llm_url) = openai_fake::start().await;
    let long: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "Paragraph {i} about refunds & <details>: {}\n\n",
                "x".repeat(90)
            )
        })
        .collect();
    llm.script([openai_fake::Script::Stream(long)]);
    let t = start("", Some(llm_url)).await;
    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    t.telegram()
        .wait_until("the sources at the end", |f| {
            f.texts_to(CUSTOMER).iter().any(|x| x.contains("Sources:"))
        })
        .await;
    let sent = t.telegram().calls_of("sendmessage");
    assert!(
        sent.len() >= 3,
        "10,000 characters need three messages: {}",
        sent.len()
    );
    for text in t.telegram().texts_to(CUSTOMER) {
        assert!(text.chars().count() <= 4096);
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret() {
    let t = start(
        "webhook_url = \"https://bot.example/telegram/webhook\"\nwebhook_secret = \"s3cret\"",
        None,
    )
    .await;
    let set = t.telegram().calls_of("setwebhook");
    assert_eq!(set[0]["secret_token"], "s3cret");
    let client = reqwest::Client::new();
    let url = format!("{}/telegram/webhook", t.base());
    let wrong = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "nope")
        .json(&from_customer(1, 10, "how do I get a refund"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "s3cret")
        .json(&from_customer(2, 11, "how do I get a refund"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    t.telegram()
        .wait_until("the answer", |f| !f.texts_to(CUSTOMER).is_empty())
        .await;
    t.settled().await;
    assert_eq!(
        t.telegram().texts_to(CUSTOMER).len(),
        1,
        "only the update with the right secret"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_on_telegram_and_agent_in_the_agents_group() {
    let t = start(&format!("agents_chat_id = {AGENTS}"), None).await;
    t.telegram().push(from_customer(1, 10, "/human"));
    t.telegram()
        .wait_until("the hand-off card", |f| {
            f.texts_to(AGENTS).iter().any(|x| x.contains("Hand-off"))
        })
        .await;
    let topic = t.telegram().calls_of("createforumtopic");
    assert_eq!(topic[0]["chat_id"], AGENTS);
    let card = t
        .telegram()
        .calls_of("sendmessage")
        .into_iter()
        .find(|c| c["chat_id"] == AGENTS)
        .unwrap();
    assert_eq!(card["message_thread_id"], 77);
    assert!(card["text"].as_str().unwrap().contains("customer_request"));
    let claim = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone who is not an agent presses Claim: refused.
    let card_message = |id: i64| {
        let mut m = message(
            id,
            group_chat(AGENTS, true),
            telegram_fake::bot_user(),
            "card",
        );
        m["message_thread_id"] = json!(77);
        m["is_topic_message"] = json!(true);
        m
    };
    t.telegram().push(callback_update(
        2,
        "cb-1",
        user(6666, "Eve"),
        card_message(2000),
        &claim,
    ));
    t.telegram()
        .wait_until("the refusal", |f| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["text"] == text::telegram::NOT_AN_AGENT)
        })
        .await;
    // Alice claims and answers in the topic.
    t.telegram().push(callback_update(
        3,
        "cb-2",
        user(ALICE, "Alice"),
        card_message(2000),
        &claim,
    ));
    t.telegram()
        .wait_until("the claim", |f| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["callback_query_id"] == "cb-2")
        })
        .await;
    let mut reply = message(
        2001,
        group_chat(AGENTS, true),
        user(ALICE, "Alice"),
        "Hello Ann, I am on it",
    );
    reply["message_thread_id"] = json!(77);
    reply["is_topic_message"] = json!(true);
    t.telegram().push(message_update(4, reply));
    t.telegram()
        .wait_until("the agent's reply at the customer", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("alice (support): Hello Ann, I am on it"))
        })
        .await;
    // The customer's next message reaches the topic, not the bot.
    t.telegram()
        .push(from_customer(5, 14, "thanks, my invoice number is 42"));
    t.telegram()
        .wait_until("the forwarded message", |f| {
            f.texts_to(AGENTS)
                .iter()
                .any(|x| x.contains("invoice number is 42"))
        })
        .await;
    assert!(
        !t.telegram()
            .texts_to(CUSTOMER)
            .iter()
            .any(|x| x.contains("help centre")),
        "the bot stayed silent"
    );
    // A note stays internal.
    let mut note = message(
        2002,
        group_chat(AGENTS, true),
        user(ALICE, "Alice"),
        "/note VIP customer",
    );
    note["message_thread_id"] = json!(77);
    note["is_topic_message"] = json!(true);
    t.telegram().push(message_update(6, note));
    t.settled().await;
    assert!(
        !t.telegram()
            .texts_to(CUSTOMER)
            .iter()
            .any(|x| x.contains("VIP"))
    );
    let queue = t.core.desk.queue().await.unwrap();
    assert_eq!(
        queue[0].conversation.assigned_agent.as_deref(),
        Some("alice")
    );
    t.stop().await;
}

#[tokio::test]
async fn a_bad_token_is_one_clear_error() {
    let build_error = |settings: &'static str| async move {
        let options = Options::new().telegram().settings(settings);
        let deployment = Deployment::new(&options).await;
        match try_spawn_on(deployment, options).await {
            Ok(_) => panic!("the app started with {settings}"),
            Err((e, deployment)) => {
                deployment.finish().await;
                e.to_string()
            }
        }
    };
    let err = build_error("[telegram]\ntoken = \"000:WRONG\"").await;
    assert!(
        err.contains("refused the bot token") && !err.contains('\n'),
        "{err}"
    );
    let err = build_error("[telegram]\napi_url = \"http://127.0.0.1:9\"").await;
    assert!(err.contains("cannot reach the Telegram Bot API"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survey_after_resolution_arrives_with_buttons_and_counts_in_the_report() {
    let t = start(
        &format!("agents_chat_id = {AGENTS}\n[csat]\ndelay_secs = 0\n"),
        None,
    )
    .await;
    t.telegram().push(from_customer(1, 10, "/human"));
    t.telegram()
        .wait_until("the card", |f| {
            f.texts_to(AGENTS).iter().any(|x| x.contains("Hand-off"))
        })
        .await;
    let card = t
        .telegram()
        .calls_of("sendmessage")
        .into_iter()
        .find(|c| c["chat_id"] == AGENTS)
        .unwrap();
    let resolve = card["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    let mut card_message = message(
        2000,
        group_chat(AGENTS, true),
        telegram_fake::bot_user(),
        "card",
    );
    card_message["message_thread_id"] = json!(77);
    card_message["is_topic_message"] = json!(true);
    t.telegram().push(callback_update(
        2,
        "cb-resolve",
        user(ALICE, "Alice"),
        card_message,
        &resolve,
    ));
    t.settled().await;
    t.surveys_tick().await;

    // The survey reaches the customer on Telegram with 1–5 buttons.
    t.telegram()
        .wait_until("the CSAT question", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("How satisfied"))
        })
        .await;
    let survey = t
        .telegram()
        .calls_of("sendmessage")
        .into_iter()
        .find(|c| c["text"].as_str().unwrap_or("").contains("How satisfied"))
        .unwrap();
    let row = survey["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .unwrap()
        .clone();
    let labels: Vec<&str> = row.iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert_eq!(labels, vec!["1", "2", "3", "4", "5"]);
    let four = row[3]["callback_data"].as_str().unwrap().to_string();
    let survey_message = message(
        3000,
        private_chat(CUSTOMER),
        telegram_fake::bot_user(),
        "How satisfied…",
    );
    t.telegram().push(callback_update(
        3,
        "cb-4",
        user(CUSTOMER, "Ann"),
        survey_message.clone(),
        &four,
    ));
    t.telegram()
        .wait_until("the CES question", |f| {
            f.texts_to(CUSTOMER).iter().any(|x| x.contains("How easy"))
        })
        .await;
    // A second click on 4 changes nothing and gets no new question.
    t.telegram().push(callback_update(
        4,
        "cb-4-again",
        user(CUSTOMER, "Ann"),
        survey_message,
        &four,
    ));
    t.telegram()
        .wait_until("the second click answered", |f| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["callback_query_id"] == "cb-4-again")
        })
        .await;
    assert_eq!(
        t.telegram()
            .texts_to(CUSTOMER)
            .iter()
            .filter(|x| x.contains("How easy"))
            .count(),
        1
    );
    let id = t.core.store.conversations_since(None).await.unwrap()[0]
        .id
        .clone();
    // CES 6 and NPS 9 by button, then a typed comment.
    let press = |update: i64, cb: &str, data: String| {
        let m = message(3001, private_chat(CUSTOMER), telegram_fake::bot_user(), "q");
        callback_update(update, cb, user(CUSTOMER, "Ann"), m, &data)
    };
    let survey_press = |step, value| {
        ButtonData::Survey {
            conversation: id.clone(),
            step,
            value,
        }
        .encode()
    };
    t.telegram()
        .push(press(5, "cb-ces", survey_press(SurveyStep::Ces, 6)));
    t.telegram()
        .wait_until("the NPS question", |f| {
            f.texts_to(CUSTOMER).iter().any(|x| x.contains("recommend"))
        })
        .await;
    t.telegram()
        .push(press(6, "cb-nps", survey_press(SurveyStep::Nps, 9)));
    t.telegram()
        .wait_until("the comment invitation", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("anything you'd like to add"))
        })
        .await;
    t.telegram()
        .push(from_customer(7, 15, "Quick & friendly <3"));
    t.telegram()
        .wait_until("the thanks", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("Thank you for your feedback"))
        })
        .await;
    let survey = t.core.store.survey(&id).await.unwrap().unwrap();
    assert_eq!(
        (survey.csat, survey.agent.as_deref()),
        (Some(4), Some("alice"))
    );
    assert_eq!((survey.ces, survey.nps), (Some(6), Some(9)));
    assert_eq!(survey.comment.as_deref(), Some("Quick & friendly <3"));
    let report = switchboard::report::build(&t.core.store, &Default::default())
        .await
        .unwrap();
    assert_eq!(report.csat_responses, 1);
    assert_eq!(report.csat_score, Some(100.0));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_surveys_button_opts_out_for_good() {
    let t = start(
        &format!("agents_chat_id = {AGENTS}\n[csat]\ndelay_secs = 0\n"),
        None,
    )
    .await;
    let alice = t.core.desk.agents().by_name("alice").unwrap().clone();
    for (index, update) in [1, 3].into_iter().enumerate() {
        let cards = index + 1;
        t.telegram()
            .push(from_customer(update, update * 10, "/human"));
        t.telegram()
            .wait_until("a card", |f| f.calls_of("createforumtopic").len() >= cards)
            .await;
        let open = t.core.desk.queue().await.unwrap();
        t.core
            .desk
            .act(
                Some(&alice),
                "alice",
                &open[0].conversation.id,
                switchboard::desk::AgentAction::Resolve,
            )
            .await
            .unwrap();
        t.surveys_tick().await;
        if update == 1 {
            t.telegram()
                .wait_until("the first survey", |f| {
                    f.texts_to(CUSTOMER)
                        .iter()
                        .any(|x| x.contains("How satisfied"))
                })
                .await;
            let survey = t
                .telegram()
                .calls_of("sendmessage")
                .into_iter()
                .find(|c| c["text"].as_str().unwrap_or("").contains("How satisfied"))
                .unwrap();
            let stop = survey["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(matches!(
                ButtonData::parse(&stop),
                Some(ButtonData::StopSurveys { .. })
            ));
            let m = message(
                3000,
                private_chat(CUSTOMER),
                telegram_fake::bot_user(),
                "How satisfied…",
            );
            t.telegram().push(callback_update(
                2,
                "cb-stop",
                user(CUSTOMER, "Ann"),
                m,
                &stop,
            ));
            t.telegram()
                .wait_until("the confirmation", |f| {
                    f.texts_to(CUSTOMER)
                        .iter()
                        .any(|x| x.contains("won't send you any more surveys"))
                })
                .await;
        }
    }
    // The next pass of the scheduler sends no survey for the second
    // resolution.
    t.surveys_tick().await;
    let surveys = t
        .telegram()
        .texts_to(CUSTOMER)
        .iter()
        .filter(|x| x.contains("How satisfied"))
        .count();
    assert_eq!(surveys, 1, "no survey after opting out");
    t.stop().await;
}

/// Renames a table of the running bot's database, so that every statement
/// touching it fails as a broken database would.
async fn rename_table(t: &TestApp, from: &str, to: &str) {
    // Test-only, with table names from this file.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {from} RENAME TO {to}"
    )))
    .execute(t.core.store.pool())
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_a_case_changing_first_character_does_not_stop_the_channel() {
    // U+212A (Kelvin) is 3 bytes and lower-cases to the 1-byte 'k': a byte
    // index found in the lower-cased text used to be cut in the original.
    let t = start("", None).await;
    t.telegram().push(message_update(
        1,
        message(
            1,
            group_chat(-100_500, false),
            user(8001, "Bob"),
            &format!(
                "\u{212A}@{} how do I get a refund",
                telegram_fake::BOT_USERNAME
            ),
        ),
    ));
    t.telegram()
        .push(from_customer(2, 10, "how do I get a refund"));
    t.telegram()
        .wait_until("the answer to the later message", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|t| t.contains("Settings → Billing"))
        })
        .await;
    let health = reqwest::get(format!("{}/healthz", t.base())).await.unwrap();
    assert_eq!(health.status(), 200);
    // A stopped channel is not healthy.
    t.core.health.set(
        "telegram",
        switchboard::health::ChannelState::Down("panicked: poison".into()),
    );
    let health = reqwest::get(format!("{}/healthz", t.base())).await.unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("telegram is down"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_cannot_be_stored_is_quarantined_and_later_updates_go_on() {
    let t = start("", None).await;
    // The first message cannot be stored: the messages table is away.
    rename_table(&t, "messages", "messages_away").await;
    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    let store = t.core.store.clone();
    let quarantined = common::wait_for_value("the update quarantined", || {
        let store = store.clone();
        async move { Some(store.dead_letters(10).await.unwrap()).filter(|q| !q.is_empty()) }
    })
    .await;
    assert_eq!(quarantined.len(), 1, "quarantined after a few attempts");
    let letter = &quarantined[0];
    assert_eq!(
        (
            letter.channel.as_str(),
            letter.kind.as_str(),
            letter.key.as_str()
        ),
        ("telegram", "update", "update:1")
    );
    assert!(letter.payload.contains("how do I get a refund"));
    assert!(letter.error.as_deref().unwrap_or("").contains("not stored"));
    // It was confirmed, and the next update is answered.
    rename_table(&t, "messages_away", "messages").await;
    t.telegram().push(from_customer(2, 11, "refund please"));
    t.telegram()
        .wait_until("the answer to the next update", |f| {
            f.texts_to(CUSTOMER).iter().any(|t| t.contains("Billing"))
        })
        .await;
    assert!(!t.telegram().unconfirmed().contains(&1));
    // An operator hands it back; the inbound pass answers it.
    let answers_before = t.telegram().texts_to(CUSTOMER).len();
    store.retry_dead_letter(&letter.id).await.unwrap();
    // The background pass may take it first; either way it is processed once.
    t.core.inbound.run_once().await.unwrap();
    t.telegram()
        .wait_until("the answer to the retried update", |f| {
            f.texts_to(CUSTOMER).len() > answers_before
        })
        .await;
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_press_is_confirmed_only_once_it_is_kept() {
    let t = start("", None).await;
    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    t.telegram()
        .wait_until("the answer", |f| {
            f.texts_to(CUSTOMER).iter().any(|t| t.contains("Billing"))
        })
        .await;
    rename_table(&t, "inbound", "inbound_away").await;
    t.telegram().push(callback_update(
        2,
        "cb-kept",
        user(CUSTOMER, "Ann"),
        message(
            11,
            private_chat(CUSTOMER),
            telegram_fake::bot_user(),
            "answer",
        ),
        "fb:up:x",
    ));
    // Not kept, so not confirmed: Telegram keeps offering it.
    common::wait_for("the press offered again", || {
        t.telegram().times_served(2) >= 2
    })
    .await;
    assert!(t.telegram().unconfirmed().contains(&2));
    assert!(t.telegram().calls_of("answercallbackquery").is_empty());
    rename_table(&t, "inbound_away", "inbound").await;
    t.telegram()
        .wait_up_to(40, "the press answered once kept", |f| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["callback_query_id"] == "cb-kept")
        })
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_press_interrupted_by_a_crash_is_processed_after_the_restart() {
    let t = start("", None).await;
    // A press kept by a process that died before it processed it (its
    // lease ran out).
    let update = callback_update(
        9,
        "cb-crash",
        user(CUSTOMER, "Ann"),
        message(
            11,
            private_chat(CUSTOMER),
            telegram_fake::bot_user(),
            "answer",
        ),
        "fb:up:x",
    );
    let store = t.core.store.clone();
    let kept = store
        .keep_inbound("telegram", "update", "update:9", &update.to_string(), -1)
        .await
        .unwrap();
    assert!(kept.is_some());
    // The background pass may take it first; either way it is processed once.
    t.core.inbound.run_once().await.unwrap();
    t.telegram()
        .wait_until("the press answered", |f| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["callback_query_id"] == "cb-crash")
        })
        .await;
    // A platform retry of the same update is not processed twice.
    t.telegram().push(update);
    t.telegram()
        .wait_until("the retry confirmed", |f| f.unconfirmed().is_empty())
        .await;
    let presses = t
        .telegram()
        .calls_of("answercallbackquery")
        .iter()
        .filter(|c| c["callback_query_id"] == "cb-crash")
        .count();
    assert_eq!(presses, 1);
    t.stop().await;
}

const OTHER: i64 = 5002;

fn from_other(update_id: i64, message_id: i64, text: &str) -> serde_json::Value {
    message_update(
        update_id,
        message(message_id, private_chat(OTHER), user(OTHER, "Bob"), text),
    )
}

/// The callback data of the last message to `chat` whose buttons match.
fn last_keyboard(
    fake: &telegram_fake::Fake,
    chat: i64,
    matches: impl Fn(&ButtonData) -> bool,
) -> Option<Vec<Vec<String>>> {
    fake.calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p)| {
            (m == "sendmessage" || m == "editmessagetext") && p["chat_id"].as_i64() == Some(chat)
        })
        .filter_map(|(_, p)| p["reply_markup"]["inline_keyboard"].as_array().cloned())
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|b| b["callback_data"].as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .rfind(|rows| ButtonData::parse(&rows[0][0]).is_some_and(|d| matches(&d)))
}

/// Issue 11, finding 2: in an agents' group without topics, an agent's
/// reply reaches the conversation of the bot post it replies to (card or
/// forwarded message), found by the stored post, never by an id found in
/// the text, which the customer may have written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_written_conversation_id_does_not_steer_an_agent_reply() {
    let t = start(&format!("agents_chat_id = {AGENTS}"), None).await;
    t.telegram().fail(
        "createforumtopic",
        Failure::BadRequest("Bad Request: the chat is not a forum"),
        5,
    );
    let cards = |f: &telegram_fake::Fake| {
        f.sent_to(AGENTS)
            .into_iter()
            .filter(|(_, x)| x.contains("Hand-off"))
            .collect::<Vec<_>>()
    };
    t.telegram().push(from_other(1, 10, "/human"));
    t.telegram()
        .wait_until("Bob's card", |f| cards(f).len() == 1)
        .await;
    let bob = t.core.desk.queue().await.unwrap()[0]
        .conversation
        .id
        .clone();
    // Ann's first message names Bob's conversation; her card shows it
    // before her own id.
    t.telegram()
        .push(from_customer(2, 11, &format!("/human about #{bob} please")));
    t.telegram()
        .wait_until("Ann's card", |f| cards(f).len() == 2)
        .await;
    let ann = t.core.desk.queue().await.unwrap()[1]
        .conversation
        .id
        .clone();
    let (ann_card, card_text) = cards(t.telegram())[1].clone();
    assert!(
        card_text.find(bob.as_str()) < card_text.find(ann.as_str()),
        "{card_text}"
    );

    let group = group_chat(AGENTS, false);
    let agent_reply = |id: i64, text: &str, to: serde_json::Value| {
        let mut m = message(id, group.clone(), user(ALICE, "Alice"), text);
        m["reply_to_message"] = to;
        m
    };
    let bot_post =
        |id: i64, text: &str| message(id, group.clone(), telegram_fake::bot_user(), text);
    t.telegram().push(message_update(
        3,
        agent_reply(
            3000,
            "Hello Ann, Alice here",
            bot_post(ann_card, &card_text),
        ),
    ));
    t.telegram()
        .wait_until("the reply at Ann", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("alice (support): Hello Ann, Alice here"))
        })
        .await;

    // Ann's next message is forwarded; a reply to that post reaches her too.
    t.telegram()
        .push(from_customer(4, 12, "my order number is 42"));
    t.telegram()
        .wait_until("the forwarded message", |f| {
            f.sent_to(AGENTS)
                .iter()
                .any(|(_, x)| x.contains("my order number is 42"))
        })
        .await;
    let (post, post_text) = t
        .telegram()
        .sent_to(AGENTS)
        .into_iter()
        .find(|(_, x)| x.contains("my order number is 42"))
        .unwrap();
    t.telegram().push(message_update(
        5,
        agent_reply(3001, "Found order 42", bot_post(post, &post_text)),
    ));
    t.telegram()
        .wait_until("the second reply at Ann", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("alice (support): Found order 42"))
        })
        .await;

    // A reply to a message the bot never posted is not guessed from its
    // text, even when the text holds a conversation id.
    let stray_target = message(2999, group.clone(), user(OTHER, "Bob"), &format!("#{bob}"));
    t.telegram().push(message_update(
        6,
        agent_reply(3002, "Is this yours?", stray_target),
    ));
    t.telegram()
        .wait_until("the question back", |f| {
            f.texts_to(AGENTS)
                .iter()
                .any(|x| x == text::telegram::WHICH_CONVERSATION)
        })
        .await;

    assert!(
        t.telegram()
            .texts_to(OTHER)
            .iter()
            .all(|x| !x.contains("(support)")),
        "nothing reached Bob: {:?}",
        t.telegram().texts_to(OTHER)
    );
    let bob_now = t.core.store.conversation(&bob).await.unwrap();
    assert_eq!(
        (bob_now.status, bob_now.assigned_agent),
        (Status::WaitingForAgent, None),
        "Bob's conversation was not claimed"
    );
    t.stop().await;
}

/// Issue 11, finding 3 on Telegram: a press carrying another customer's
/// ids, or an old offer/"solved" button under a newer message, is answered
/// "no longer available" and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_stale_presses_change_nothing() {
    let t = start("", None).await;
    t.telegram()
        .push(from_customer(1, 10, "how do I get a refund"));
    t.telegram()
        .wait_until("the answer's buttons", |f| {
            last_keyboard(f, CUSTOMER, |d| matches!(d, ButtonData::SolvedYes { .. })).is_some()
        })
        .await;
    let answer = last_keyboard(t.telegram(), CUSTOMER, |d| {
        matches!(d, ButtonData::SolvedYes { .. })
    })
    .unwrap();
    t.telegram()
        .push(from_customer(2, 11, "what size wipers does my car take"));
    t.telegram()
        .wait_until("the offer's buttons", |f| {
            last_keyboard(f, CUSTOMER, |d| matches!(d, ButtonData::OfferYes { .. })).is_some()
        })
        .await;
    let offer = last_keyboard(t.telegram(), CUSTOMER, |d| {
        matches!(d, ButtonData::OfferYes { .. })
    })
    .unwrap();
    let conversation = ButtonData::parse(&offer[0][0])
        .unwrap()
        .conversation()
        .clone();
    t.telegram().push(from_other(3, 20, "hello"));

    let press = |update: i64, cb: &str, from: i64, data: &str| {
        let m = message(
            4000 + update,
            private_chat(from),
            telegram_fake::bot_user(),
            "…",
        );
        callback_update(update, cb, user(from, "Someone"), m, data)
    };
    let refused = |cb: &'static str| {
        move |f: &telegram_fake::Fake| {
            f.calls_of("answercallbackquery")
                .iter()
                .any(|c| c["callback_query_id"] == cb && c["text"] == NO_LONGER_AVAILABLE)
        }
    };
    // Bob presses Ann's 👎 and her "Yes, talk to a person".
    t.telegram()
        .push(press(4, "cb-bob-down", OTHER, &answer[1][1]));
    t.telegram()
        .push(press(5, "cb-bob-offer", OTHER, &offer[0][0]));
    t.telegram()
        .wait_until("Bob's 👎 refused", refused("cb-bob-down"))
        .await;
    t.telegram()
        .wait_until("Bob's offer press refused", refused("cb-bob-offer"))
        .await;
    // Ann's old "That solved it", under the newer offer.
    t.telegram()
        .push(press(6, "cb-old-solved", CUSTOMER, &answer[0][0]));
    t.telegram()
        .wait_until("the old button refused", refused("cb-old-solved"))
        .await;
    // An old-format button from before the upgrade.
    t.telegram()
        .push(press(7, "cb-legacy", CUSTOMER, "offer:yes"));
    t.telegram()
        .wait_until("the legacy button refused", refused("cb-legacy"))
        .await;

    let c = t.core.store.conversation(&conversation).await.unwrap();
    assert_eq!(c.status, Status::Bot, "not handed off, not resolved");
    let messages = t.core.store.messages(&conversation).await.unwrap();
    assert!(
        messages.iter().all(|m| m.feedback.is_none()),
        "no 👎 from Bob"
    );
    assert!(
        t.telegram()
            .texts_to(CUSTOMER)
            .iter()
            .all(|x| !x.contains("connecting you") && !x.contains("passing your conversation")),
        "no hand-off message to Ann"
    );

    // Ann's own current button still works.
    t.telegram()
        .push(press(8, "cb-ann-offer", CUSTOMER, &offer[0][0]));
    t.telegram()
        .wait_until("Ann handed off", |f| {
            f.texts_to(CUSTOMER)
                .iter()
                .any(|x| x.contains("passing your conversation on"))
        })
        .await;
    assert_eq!(
        t.core
            .store
            .conversation(&conversation)
            .await
            .unwrap()
            .status,
        Status::WaitingForAgent
    );
    t.stop().await;
}

/// Issue 14: the Telegram customer is told, with the agent's name, when an
/// agent claims (once, however often the button is pressed), transfers,
/// gives back and closes; the transcript has the same notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_is_told_who_joins_transfers_gives_back_and_closes() {
    const BEN: i64 = 7002;
    let t = start(
        &format!("agents_chat_id = {AGENTS}\n[[agents]]\nname = \"ben\"\ntelegram_id = {BEN}"),
        None,
    )
    .await;
    t.telegram().push(from_customer(1, 10, "/human"));
    t.telegram()
        .wait_until("the hand-off card", |f| {
            f.texts_to(AGENTS).iter().any(|x| x.contains("Hand-off"))
        })
        .await;
    let card = t
        .telegram()
        .calls_of("sendmessage")
        .into_iter()
        .find(|c| c["chat_id"] == AGENTS)
        .unwrap();
    let claim = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    let in_topic = |id: i64, from: i64, text: &str| {
        let mut m = message(id, group_chat(AGENTS, true), user(from, "Agent"), text);
        m["message_thread_id"] = json!(77);
        m["is_topic_message"] = json!(true);
        m
    };
    let mut card_message = message(
        2000,
        group_chat(AGENTS, true),
        telegram_fake::bot_user(),
        "card",
    );
    card_message["message_thread_id"] = json!(77);
    card_message["is_topic_message"] = json!(true);
    let told = |f: &telegram_fake::Fake, text: &str| {
        f.texts_to(CUSTOMER)
            .iter()
            .filter(|x| x.contains(text))
            .count()
    };

    // Alice presses Claim twice: the customer is told once.
    for (update, cb) in [(2, "cb-1"), (3, "cb-2")] {
        t.telegram().push(callback_update(
            update,
            cb,
            user(ALICE, "Alice"),
            card_message.clone(),
            &claim,
        ));
        t.telegram()
            .wait_until("the claim's answer", |f| {
                f.calls_of("answercallbackquery")
                    .iter()
                    .any(|c| c["callback_query_id"] == cb)
            })
            .await;
    }
    assert_eq!(told(t.telegram(), "alice joined the conversation."), 1);
    // Transfer, then give back, typed in the topic.
    t.telegram()
        .push(message_update(4, in_topic(2001, ALICE, "/transfer ben")));
    t.telegram()
        .wait_until("the transfer notice", |f| {
            told(f, "You've been transferred to ben.") == 1
        })
        .await;
    t.telegram()
        .push(message_update(5, in_topic(2002, BEN, "/giveback")));
    t.telegram()
        .wait_until("the give-back notice", |f| {
            told(f, "ben has passed you back to the assistant.") == 1
        })
        .await;
    // The customer asks again; Ben claims and closes.
    t.telegram().push(from_customer(6, 11, "/human"));
    t.telegram()
        .wait_until("the second hand-off", |f| {
            told(f, "number 1 in the queue") == 2
        })
        .await;
    t.telegram()
        .push(message_update(7, in_topic(2003, BEN, "/claim")));
    t.telegram()
        .wait_until("Ben joined", |f| {
            told(f, "ben joined the conversation.") == 1
        })
        .await;
    t.telegram()
        .push(message_update(8, in_topic(2004, BEN, "/resolve")));
    t.telegram()
        .wait_until("the closing notice", |f| {
            told(f, "ben has closed this conversation.") == 1
        })
        .await;
    assert_eq!(told(t.telegram(), "joined the conversation."), 2);
    assert_eq!(told(t.telegram(), "transferred"), 1);

    let id = ButtonData::parse(&claim).unwrap().conversation().clone();
    let notices: Vec<String> = switchboard::transcript::load(&t.core.store, &id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            switchboard::transcript::Entry::Notice(n) => Some(n.text),
            switchboard::transcript::Entry::Message(_) => None,
        })
        .collect();
    assert_eq!(notices.len(), 5, "{notices:?}");
    assert_eq!(notices[0], "alice joined the conversation.");
    assert_eq!(notices[3], "ben joined the conversation.");
    t.stop().await;
}
