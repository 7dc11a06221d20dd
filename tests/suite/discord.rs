//! The Discord channel end to end: the real serenity client (REST and the
//! gateway websocket) against a local Discord, asserting on what the fake
//! received and on the messages as a Discord user would see them.

use crate::common;

use std::time::Duration;

use common::discord_ids::{AGENTS, FORUM, GUILD, HELP};
use common::{Deployment, Options, TestApp, discord_fake, openai_fake, spawn_app};
use discord_fake::{FakeDiscord, MessageOpts};
use serde_json::json;
use switchboard::app::App;
use switchboard::button::{ButtonData, DeskButton, NO_LONGER_AVAILABLE};
use switchboard::channels::discord::render::LIMIT;
use switchboard::channels::text;
use switchboard::clock::{ManualClock, system};
use switchboard::ids::ConversationId;

const GENERAL: u64 = 100;
const DM: u64 = 9001;
const CUSTOMER: u64 = 5001;
const OTHER: u64 = 5002;
const ALICE: u64 = 7001;
const WAIT: Duration = Duration::from_secs(15);

/// The app with the Discord fake (see [`common::discord_ids`]), the fixture
/// knowledge base, agent Alice, no web server.
struct Running {
    fake: FakeDiscord,
    core: switchboard::app::Core,
    app: TestApp,
}

impl Running {
    async fn stop(self) {
        self.app.stop().await;
    }

    /// Messages the bot posted in a channel, oldest first.
    fn posted(&self, channel: u64) -> Vec<discord_fake::FakeMessage> {
        self.fake
            .channel_messages(channel)
            .into_iter()
            .filter(|m| !m.deleted)
            .collect()
    }

    /// Waits until a bot message in `channel` contains `needle`.
    async fn wait_text(&self, channel: u64, needle: &str, what: &str) {
        self.fake
            .wait_until(
                what,
                |f| {
                    f.channel_messages(channel)
                        .iter()
                        .any(|m| m.content.contains(needle))
                },
                WAIT,
            )
            .await;
    }

    /// What customers wrote, as stored: by conversation, oldest first.
    async fn customer_texts(&self) -> Vec<String> {
        self.core
            .store
            .messages_since(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == switchboard::store::Role::Customer)
            .map(|m| m.text)
            .collect()
    }

    async fn wait_posted(&self, channel: u64, n: usize) -> Vec<discord_fake::FakeMessage> {
        let what = format!("{n} bot message(s) in channel {channel}");
        self.fake
            .wait_until(&what, |f| f.channel_messages(channel).len() >= n, WAIT)
            .await;
        self.posted(channel)
    }
}

async fn start(llm: Option<String>) -> Running {
    start_with(llm, "").await
}

/// [`start`] with more `[discord]` settings.
async fn start_with(llm: Option<String>, discord_extra: &str) -> Running {
    running(spawn_app(options(llm, discord_extra)).await)
}

/// What [`start_with`] starts.
fn options(llm: Option<String>, discord_extra: &str) -> Options {
    Options::new()
        .discord()
        .no_web()
        .llm_opt(llm)
        .settings(format!(
            "[discord]\n{discord_extra}\n[[agents]]\nname = \"alice\"\ndiscord_id = {ALICE}\n"
        ))
}

fn running(app: TestApp) -> Running {
    Running {
        fake: app.discord().clone(),
        core: app.core.clone(),
        app,
    }
}

fn is_claim(custom_id: &str) -> bool {
    matches!(
        ButtonData::parse(custom_id),
        Some(ButtonData::Desk {
            action: DeskButton::Claim,
            ..
        })
    )
}

/// Every message and edit the bot sent carried empty `allowed_mentions`.
fn assert_never_pings(fake: &FakeDiscord) {
    for r in fake.requests() {
        let sends = (r.method == "POST" && r.path.ends_with("/messages"))
            || (r.method == "PATCH" && r.path.contains("/messages/"))
            || (r.method == "POST" && r.path.starts_with("/webhooks/"));
        if sends && r.status < 300 {
            assert_eq!(
                r.body["allowed_mentions"]["parse"],
                json!([]),
                "{} {} pings: {:#}",
                r.method,
                r.path,
                r.body
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_question_gets_a_streamed_edited_answer_with_sources() {
    let (llm, llm_url) = openai_fake::start().await;
    llm.script([openai_fake::Script::Stall(
        vec![
            "To get a refund, ".into(),
            "open Settings → Billing ".into(),
        ],
        Duration::from_millis(1500),
    )]);
    let t = start(Some(llm_url)).await;

    // Slash commands were registered for the guild.
    let put = t
        .fake
        .wait_for(|r| r.is("PUT", "/guilds/1/commands"), WAIT)
        .await;
    let names: Vec<&str> = put
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ask", "human", "new"]);
    // Message content is asked for because help channels are configured.
    let intents = t.fake.intents().unwrap();
    assert_ne!(intents & (1 << 15), 0, "MESSAGE_CONTENT");
    assert_ne!(intents & (1 << 12), 0, "DIRECT_MESSAGES");

    t.fake
        .dispatch_message(10, DM, None, CUSTOMER, "how do I get a refund")
        .await;
    t.wait_text(DM, "**Sources:**", "the final edit with sources")
        .await;
    assert!(t.fake.typing_count(DM) >= 1, "typing… while waiting");
    let posted = t.posted(DM);
    assert_eq!(posted.len(), 1, "one message, then edits: {posted:#?}");
    let answer = &posted[0];
    assert_eq!(answer.original_content, "To get a refund, ");
    assert!(!answer.edits.is_empty());
    assert!(
        answer
            .content
            .starts_with("To get a refund, open Settings → Billing"),
        "{}",
        answer.content
    );
    assert!(
        answer
            .content
            .contains("[1] [Refunds](<https://help.example/refunds>)"),
        "{}",
        answer.content
    );
    assert!(
        answer.custom_ids().len() >= 2,
        "feedback buttons: {answer:?}"
    );
    assert_never_pings(&t.fake);
    t.fake.assert_no_unknown_routes();

    // Stored as a conversation on the discord channel.
    let conversations = t.core.store.conversations_since(None).await.unwrap();
    assert_eq!(conversations.len(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_mentions_and_replies_but_not_chatter() {
    let t = start(None).await;
    t.fake
        .dispatch_message(
            20,
            GENERAL,
            Some(GUILD),
            CUSTOMER,
            "anyone here got a refund once?",
        )
        .await;
    let mention = t
        .fake
        .mention(21, GENERAL, GUILD, CUSTOMER, "how do I get a refund");
    t.fake.dispatch("MESSAGE_CREATE", mention).await;
    let posted = t.wait_posted(GENERAL, 1).await;
    assert_eq!(posted.len(), 1, "the chatter got nothing: {posted:#?}");
    assert!(posted[0].content.contains("Settings → Billing → Refund"));
    assert_eq!(posted[0].message_reference["message_id"], "21");

    // A reply to the bot's answer continues without a mention.
    let reply = t.fake.message_with(
        22,
        GENERAL,
        Some(GUILD),
        CUSTOMER,
        "thanks, and how long does the refund take to reach my card",
        MessageOpts {
            reply_to: Some(posted[0].id),
            ..Default::default()
        },
    );
    t.fake.dispatch("MESSAGE_CREATE", reply).await;
    let posted = t.wait_posted(GENERAL, 2).await;
    assert_eq!(posted[1].message_reference["message_id"], "22");

    // Other bots, webhooks and attachments without text.
    let from_bot = t.fake.message_with(
        23,
        GENERAL,
        Some(GUILD),
        OTHER,
        "refund refund",
        MessageOpts {
            mention_bot: true,
            author_bot: true,
            ..Default::default()
        },
    );
    t.fake.dispatch("MESSAGE_CREATE", from_bot).await;
    let from_webhook = t.fake.message_with(
        25,
        GENERAL,
        Some(GUILD),
        OTHER,
        "refund refund",
        MessageOpts {
            mention_bot: true,
            webhook_id: Some(777),
            ..Default::default()
        },
    );
    t.fake.dispatch("MESSAGE_CREATE", from_webhook).await;
    let picture = t.fake.message_with(
        24,
        DM,
        None,
        CUSTOMER,
        "",
        MessageOpts {
            attachments: vec![("screen.png".into(), "image/png".into())],
            ..Default::default()
        },
    );
    t.fake.dispatch("MESSAGE_CREATE", picture).await;
    let dm = t.wait_posted(DM, 1).await;
    assert_eq!(dm[0].content, text::TEXT_ONLY);
    // A customer's mention after them: once it is answered and nothing is
    // left unanswered, the bot's and the webhook's messages were seen.
    let after = t
        .fake
        .mention(26, GENERAL, GUILD, CUSTOMER, "how do I get a refund");
    t.fake.dispatch("MESSAGE_CREATE", after).await;
    let posted = t.wait_posted(GENERAL, 3).await;
    t.app.settled().await;
    assert_eq!(t.posted(GENERAL).len(), 3, "the bot's message was ignored");
    assert_eq!(posted[2].message_reference["message_id"], "26");
    assert_never_pings(&t.fake);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_channel_messages_get_a_thread_and_forum_posts_an_answer() {
    let t = start(None).await;
    t.fake
        .dispatch_message(30, HELP, Some(GUILD), CUSTOMER, "how do I get a refund")
        .await;
    let created = t
        .fake
        .wait_for(|r| r.is("POST", "/channels/200/messages/30/threads"), WAIT)
        .await;
    assert!(created.body["name"].as_str().unwrap().contains("refund"));
    t.fake
        .wait_until(
            "an answer in the new thread",
            |f| {
                f.all_messages()
                    .iter()
                    .any(|m| m.channel_id != HELP && m.content.contains("Refund"))
            },
            WAIT,
        )
        .await;
    assert!(
        t.posted(HELP).is_empty(),
        "nothing in the help channel itself"
    );
    let thread = t
        .fake
        .all_messages()
        .iter()
        .find(|m| m.content.contains("Refund"))
        .unwrap()
        .channel_id;

    // A follow-up in that thread is answered there, without a mention.
    t.fake
        .dispatch_message(
            31,
            thread,
            Some(GUILD),
            CUSTOMER,
            "how long do refunds take",
        )
        .await;
    t.wait_posted(thread, 2).await;

    // A new forum post is answered in its own thread (the post's id).
    t.fake
        .dispatch_forum_post(
            4000,
            FORUM,
            GUILD,
            OTHER,
            "Refund?",
            "how do I get a refund",
        )
        .await;
    let posted = t.wait_posted(4000, 1).await;
    assert!(posted[0].content.contains("Settings → Billing → Refund"));
    assert!(
        t.fake.requests_to("POST", "/channels/201/").is_empty(),
        "no thread is opened for a forum post: it is one"
    );

    // The post's first message can be handled before its THREAD_CREATE
    // (serenity runs handlers concurrently): it is answered all the same.
    let (_thread, first) = t.fake.forum_post(
        4001,
        FORUM,
        GUILD,
        OTHER,
        "Refund again",
        "how do I get a refund",
    );
    t.fake.dispatch("MESSAGE_CREATE", first).await;
    let posted = t.wait_posted(4001, 1).await;
    assert!(posted[0].content.contains("Settings → Billing → Refund"));
    t.fake.assert_no_unknown_routes();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_command_is_deferred_then_answered_and_buttons_are_acknowledged() {
    let t = start(None).await;
    let ask = t.fake.command_interaction(
        50,
        GENERAL,
        Some(GUILD),
        CUSTOMER,
        "ask",
        &[("question", "how do I get a refund")],
    );
    t.fake.dispatch("INTERACTION_CREATE", ask).await;
    t.fake
        .wait_until(
            "the edited /ask response",
            |f| {
                f.original_response(50)
                    .is_some_and(|m| m.content.contains("Refund"))
            },
            WAIT,
        )
        .await;
    assert_eq!(
        t.fake.interaction_callback_types(50),
        vec![5],
        "deferred once"
    );
    let response = t.fake.original_response(50).unwrap();
    assert!(response.content.contains("**Sources:**"));
    let buttons = response.custom_ids();
    assert!(!buttons.is_empty(), "{response:?}");

    // 👍 on the answer: acknowledged with a private thanks.
    let thumbs = buttons
        .iter()
        .find(|id| {
            matches!(
                ButtonData::parse(id),
                Some(ButtonData::Feedback { up: true, .. })
            )
        })
        .unwrap()
        .clone();
    let click =
        t.fake
            .component_interaction(51, GENERAL, Some(GUILD), CUSTOMER, response.id, &thumbs);
    t.fake.dispatch("INTERACTION_CREATE", click).await;
    t.fake
        .wait_until(
            "the click acknowledged",
            |f| !f.interaction_callback_types(51).is_empty(),
            WAIT,
        )
        .await;
    assert_eq!(t.fake.interaction_callback_types(51), vec![6]);
    t.fake
        .wait_until(
            "a private thanks",
            |f| {
                f.followups(51)
                    .iter()
                    .any(|m| m.ephemeral() && m.content == text::FEEDBACK_THANKS)
            },
            WAIT,
        )
        .await;
    let feedback = t
        .core
        .store
        .messages_since(None)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.feedback)
        .collect::<Vec<_>>();
    assert_eq!(feedback, vec![1], "the thumbs-up is stored on the answer");

    // An unknown (old) button is still acknowledged, and refused privately.
    let old = t.fake.component_interaction(
        52,
        GENERAL,
        Some(GUILD),
        CUSTOMER,
        response.id,
        "something-old",
    );
    t.fake.dispatch("INTERACTION_CREATE", old).await;
    t.fake
        .wait_until(
            "the old click acknowledged",
            |f| f.interaction_callback_types(52) == vec![6],
            WAIT,
        )
        .await;
    t.fake
        .wait_until(
            "the private refusal",
            |f| {
                f.followups(52)
                    .iter()
                    .any(|m| m.ephemeral() && m.content == NO_LONGER_AVAILABLE)
            },
            WAIT,
        )
        .await;
    t.fake.assert_no_unknown_routes();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_arrive_together_are_received_in_their_order() {
    // serenity starts a task per event, and tokio runs the newest first:
    // without the intake, a burst came out of order.
    let t = start(None).await;
    let sent: Vec<String> = (1..=12)
        .map(|i| format!("how do I get a refund, question {i}"))
        .collect();
    for (i, text) in sent.iter().enumerate() {
        t.fake
            .dispatch_message(700 + i as u64, DM, None, CUSTOMER, text)
            .await;
    }
    t.wait_posted(DM, sent.len()).await;
    t.app.settled().await;
    assert_eq!(
        t.customer_texts().await,
        sent,
        "stored in the order they came"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_message_create_is_answered_once() {
    let t = start(None).await;
    let m = t
        .fake
        .message(60, DM, None, CUSTOMER, "how do I get a refund");
    t.fake.dispatch("MESSAGE_CREATE", m.clone()).await;
    t.fake.dispatch("MESSAGE_CREATE", m).await;
    t.wait_posted(DM, 1).await;
    // Another message after the duplicate: once it is answered and nothing
    // is left unanswered, the duplicate was seen.
    t.fake
        .dispatch_message(61, DM, None, CUSTOMER, "how long does a refund take")
        .await;
    t.wait_posted(DM, 2).await;
    t.app.settled().await;
    assert_eq!(t.posted(DM).len(), 2, "one answer each");
    let messages = t
        .customer_texts()
        .await
        .iter()
        .filter(|text| *text == "how do I get a refund")
        .count();
    assert_eq!(messages, 1, "stored once");
    t.stop().await;
}

// Named to sort first: the test runner starts tests in name order, and this
// one spends seconds in the retry back-off, during which the others run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_and_a_5xx_are_retried() {
    // Store time stands still unless advanced: the outbox retries when told.
    let clock = ManualClock::new(1_795_000_000_000);
    let t = running(spawn_app(options(None, "").clock(clock.clone())).await);
    t.fake
        .fail_next(&format!("/channels/{DM}/messages"), 429, 1);
    t.fake
        .fail_next(&format!("/channels/{DM}/messages"), 500, 1);
    t.fake
        .dispatch_message(70, DM, None, CUSTOMER, "how do I get a refund")
        .await;
    let posted = t.wait_posted(DM, 1).await;
    assert!(posted[0].content.contains("Refund"));
    let attempts: Vec<u16> = t
        .fake
        .requests_to("POST", &format!("/channels/{DM}/messages"))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(attempts, vec![429, 500, 200]);

    // A send that keeps failing is kept in the outbox and delivered later.
    t.fake
        .fail_next(&format!("/channels/{DM}/messages"), 502, 4);
    t.fake
        .dispatch_message(71, DM, None, CUSTOMER, "how long does a refund take")
        .await;
    common::wait_for_async("the answer queued in the outbox", || async {
        t.app.outbox_pending().await == 1
    })
    .await;
    assert_eq!(t.app.outbox_retry_once().await, 0, "not due yet");
    clock.advance(5_000);
    assert_eq!(t.app.outbox_retry_once().await, 1);
    t.fake
        .wait_until(
            "the answer delivered from the outbox",
            |f| f.channel_messages(DM).len() >= 2,
            Duration::from_secs(30),
        )
        .await;
    let statuses: Vec<u16> = t
        .fake
        .requests_to("POST", &format!("/channels/{DM}/messages"))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(&statuses[3..], &[502, 502, 502, 502, 200]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_is_split_and_everyone_never_pings() {
    let (llm, llm_url) = openai_fake::start().await;
    let paragraph = "To get a refund, open Settings → Billing → Refund and follow the steps. @everyone should read this. ";
    let long: String = (0..50)
        .map(|i| format!("{paragraph}{i}.\n\n"))
        .collect::<String>();
    assert!(long.chars().count() > 5000);
    let mut chunks: Vec<String> = long.split_inclusive("\n\n").map(String::from).collect();
    chunks.push("[1]".into());
    llm.script([openai_fake::Script::Stream(chunks)]);
    let t = start(Some(llm_url)).await;
    t.fake
        .dispatch_message(80, DM, None, CUSTOMER, "how do I get a refund")
        .await;
    t.wait_text(DM, "**Sources:**", "the sources at the end")
        .await;
    let posted = t.posted(DM);
    assert!(posted.len() >= 3, "{} parts", posted.len());
    for m in &posted {
        assert!(m.content.chars().count() <= LIMIT);
    }
    let all: String = posted
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(all.matches("@everyone").count(), 50, "nothing lost");
    assert!(posted.last().unwrap().content.contains("**Sources:**"));
    assert_never_pings(&t.fake);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_shared_channel_keeps_room_for_its_mention() {
    // Issue 11: the customer's mention was put in front of a part that could
    // already be 2,000 characters; Discord refused it and it was dropped.
    let t = start(None).await;
    let target = switchboard::delivery::Target {
        channel: "discord".into(),
        customer_id: CUSTOMER.to_string(),
        thread: format!("ch:{GENERAL}"),
    };
    let text = "x".repeat(LIMIT);
    t.core
        .registry
        .deliver(
            &target,
            &switchboard::delivery::Outgoing::text(text.clone()),
        )
        .await
        .expect("delivered");
    let posted = t.posted(GENERAL);
    assert_eq!(posted.len(), 2, "{posted:#?}");
    assert!(posted[0].content.starts_with(&format!("<@{CUSTOMER}> x")));
    assert!(posted.iter().all(|m| m.content.chars().count() <= LIMIT));
    let xs: usize = posted.iter().map(|m| m.content.matches('x').count()).sum();
    assert_eq!(xs, LIMIT, "nothing lost");
    assert_never_pings(&t.fake);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_message_sent_again_after_a_crash_shows_once() {
    // Issue 11: a crash between sending an outbox message and recording it
    // sent it twice. Outbox sends carry a nonce Discord enforces.
    let t = start(None).await;
    let target = switchboard::delivery::Target {
        channel: "discord".into(),
        customer_id: CUSTOMER.to_string(),
        thread: format!("ch:{GENERAL}"),
    };
    let message = switchboard::delivery::Outgoing::text("y".repeat(LIMIT + 10));
    for _ in 0..2 {
        t.core
            .registry
            .deliver_keyed(&target, &message, "outbox-item-1")
            .await
            .expect("delivered");
    }
    let posted = t.posted(GENERAL);
    assert_eq!(posted.len(), 2, "two parts, each once: {posted:#?}");
    // Another item is another message.
    t.core
        .registry
        .deliver_keyed(&target, &message, "outbox-item-2")
        .await
        .expect("delivered");
    assert_eq!(t.posted(GENERAL).len(), 4);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_reconnect_nothing_is_lost_or_answered_twice() {
    let t = start(None).await;
    t.fake
        .dispatch_message(90, DM, None, CUSTOMER, "how do I get a refund")
        .await;
    t.wait_posted(DM, 1).await;
    t.fake.request_reconnect().await;
    // Sent while the bot reconnects: held and replayed on RESUME.
    t.fake
        .dispatch_message(91, DM, None, CUSTOMER, "how long does a refund take")
        .await;
    t.fake.wait_resumed(1, WAIT).await;
    t.wait_posted(DM, 2).await;
    // Discord may deliver an event again after a resume.
    let again = t
        .fake
        .message(91, DM, None, CUSTOMER, "how long does a refund take");
    t.fake.dispatch("MESSAGE_CREATE", again).await;

    // The socket drops without a close frame: serenity resumes again and
    // a message sent meanwhile is still answered.
    t.fake.drop_connection().await;
    t.fake
        .dispatch_message(92, DM, None, CUSTOMER, "how do I get a refund")
        .await;
    t.fake.wait_resumed(2, WAIT).await;
    t.wait_posted(DM, 3).await;
    t.app.settled().await;
    assert_eq!(
        t.posted(DM).len(),
        3,
        "the event delivered again was not answered again"
    );
    assert_eq!(t.fake.identify_count(), 1, "resumed, not re-identified");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_hand_off_goes_to_a_staff_thread_and_the_agent_reply_reaches_the_dm() {
    let t = start(None).await;
    let human = t
        .fake
        .command_interaction(100, DM, None, CUSTOMER, "human", &[]);
    t.fake.dispatch("INTERACTION_CREATE", human).await;
    // The card in the agents' channel, with a thread under it.
    let cards = t.wait_posted(AGENTS, 1).await;
    assert!(
        cards[0].custom_ids().iter().any(|id| is_claim(id)),
        "{:?}",
        cards[0].custom_ids()
    );
    let created = t
        .fake
        .wait_for(
            |r| {
                r.is(
                    "POST",
                    &format!("/channels/{AGENTS}/messages/{}/threads", cards[0].id),
                )
            },
            WAIT,
        )
        .await;
    assert_eq!(created.status, 200);
    // The customer was told someone is coming (the deferred response edited).
    t.fake
        .wait_until(
            "the /human response",
            |f| {
                f.original_response(100)
                    .is_some_and(|m| !m.loading() && !m.content.is_empty())
            },
            WAIT,
        )
        .await;

    // Alice claims with the button and answers in the thread.
    let claim = cards[0]
        .custom_ids()
        .into_iter()
        .find(|id| is_claim(id))
        .unwrap();
    let click = t
        .fake
        .component_interaction(101, AGENTS, Some(GUILD), ALICE, cards[0].id, &claim);
    t.fake.dispatch("INTERACTION_CREATE", click).await;
    t.fake
        .wait_until(
            "the claim acknowledged",
            |f| !f.interaction_callback_types(101).is_empty(),
            WAIT,
        )
        .await;
    assert_eq!(
        t.fake.interaction_callbacks(101)[0]["data"]["flags"],
        64,
        "a private thinking message"
    );
    t.fake
        .wait_until(
            "the outcome of the claim",
            |f| {
                f.original_response(101)
                    .is_some_and(|m| m.content.contains("Done"))
            },
            WAIT,
        )
        .await;
    let thread = t
        .fake
        .all_messages()
        .iter()
        .filter(|m| m.channel_id != AGENTS && m.channel_id != DM)
        .map(|m| m.channel_id)
        .next();
    let thread = match thread {
        Some(t) => t,
        None => {
            // The thread exists even if nothing was posted in it yet.
            let threads = t.fake.requests_to("POST", "/threads");
            assert!(!threads.is_empty());
            t.fake
                .wait_until(
                    "a post in the staff thread",
                    |f| {
                        f.all_messages()
                            .iter()
                            .any(|m| m.channel_id != AGENTS && m.channel_id != DM)
                    },
                    WAIT,
                )
                .await;
            t.fake
                .all_messages()
                .iter()
                .find(|m| m.channel_id != AGENTS && m.channel_id != DM)
                .unwrap()
                .channel_id
        }
    };
    let before = t.posted(DM).len();
    t.fake
        .dispatch_message(
            102,
            thread,
            Some(GUILD),
            ALICE,
            "Hi, I'm Alice. I've refunded you.",
        )
        .await;
    t.wait_text(
        DM,
        "I've refunded you",
        "the agent's reply in the customer's DM",
    )
    .await;
    assert!(t.posted(DM).len() > before);

    // Someone who is not an agent is refused in the thread.
    t.fake
        .dispatch_message(103, thread, Some(GUILD), OTHER, "let me answer too")
        .await;
    t.fake
        .wait_until(
            "the refusal",
            |f| {
                f.channel_messages(thread)
                    .iter()
                    .any(|m| m.content == text::discord::NOT_AN_AGENT)
            },
            WAIT,
        )
        .await;
    assert!(
        !t.posted(DM)
            .iter()
            .any(|m| m.content.contains("let me answer too"))
    );
    t.fake.assert_no_unknown_routes();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_start_with_one_line() {
    let fake = FakeDiscord::start().await;
    fake.fail_next_with(
        "/users/@me",
        401,
        1,
        json!({"message": "401: Unauthorized", "code": 0}),
    );
    let options = Options::new().no_web();
    let deployment = Deployment::new(&options).await;
    let build = |api: &str| {
        let settings = deployment.settings(&Options::new().no_web().settings(format!(
            "[discord]\nenabled = true\napi_url = \"{api}\"\ntoken = \"bad\"\n"
        )));
        App::build(settings, system())
    };
    let error = match build(&fake.url).await {
        Ok(_) => panic!("a refused token must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("DISCORD_TOKEN"), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");

    // Nothing listening at all.
    let error = match build("http://127.0.0.1:9").await {
        Ok(_) => panic!("an unreachable API must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("cannot reach the Discord API"), "{error}");
}

const ROLE: u64 = 99;
/// Holds the agent role; not a configured agent.
const MALLORY: u64 = 5003;
const BOB: u64 = 5004;
const BOB_DM: u64 = 9002;

/// Waits (bounded) until the conversation's staff thread is stored; returns
/// the Discord thread id.
async fn staff_thread_of(t: &Running, conversation: &ConversationId) -> u64 {
    common::wait_for_value(&format!("a staff thread for {conversation}"), || async {
        t.core
            .store
            .staff_thread(conversation, "discord")
            .await
            .unwrap()
            .and_then(|s| s.thread_ref)
            .and_then(|r| r.strip_prefix("thread:")?.parse().ok())
    })
    .await
}

/// Issue 11, finding 3 on Discord: agents are recognised by user id or by
/// the role ids Discord sends with the member, never by display name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_recognised_by_user_id_and_role_id_never_by_name() {
    let t = start_with(None, &format!("agent_role_ids = [{ROLE}]")).await;
    let human = t
        .fake
        .command_interaction(100, DM, None, CUSTOMER, "human", &[]);
    t.fake.dispatch("INTERACTION_CREATE", human).await;
    let cards = t.wait_posted(AGENTS, 1).await;
    let ann = t.core.desk.queue().await.unwrap()[0]
        .conversation
        .id
        .clone();
    let thread = staff_thread_of(&t, &ann).await;
    let renamed = |m: &mut serde_json::Value, roles: &[u64]| {
        m["author"]["global_name"] = json!("alice");
        m["author"]["username"] = json!("alice");
        m["member"]["nick"] = json!("alice");
        m["member"]["roles"] = json!(roles.iter().map(u64::to_string).collect::<Vec<_>>());
    };

    // Renamed to an agent's name, without the role: refused.
    let mut eve = t
        .fake
        .message(200, thread, Some(GUILD), OTHER, "Eve writing as alice");
    renamed(&mut eve, &[]);
    t.fake.dispatch("MESSAGE_CREATE", eve).await;
    t.wait_text(thread, text::discord::NOT_AN_AGENT, "Eve refused")
        .await;

    // Alice claims with the card's button.
    let claim = cards[0]
        .custom_ids()
        .into_iter()
        .find(|id| is_claim(id))
        .unwrap();
    let click = t
        .fake
        .component_interaction(101, AGENTS, Some(GUILD), ALICE, cards[0].id, &claim);
    t.fake.dispatch("INTERACTION_CREATE", click).await;
    t.fake
        .wait_until(
            "Alice's claim",
            |f| {
                f.original_response(101)
                    .is_some_and(|m| m.content.contains("Done"))
            },
            WAIT,
        )
        .await;

    // Holding the role and renamed to "alice" does not make one Alice:
    // her conversation stays hers.
    let mut mallory = t.fake.message(
        201,
        thread,
        Some(GUILD),
        MALLORY,
        "Mallory writing as alice",
    );
    renamed(&mut mallory, &[ROLE]);
    t.fake.dispatch("MESSAGE_CREATE", mallory).await;
    t.wait_text(thread, "alice owns this conversation", "Mallory refused")
        .await;
    assert!(
        !t.posted(DM)
            .iter()
            .any(|m| m.content.contains("writing as alice")),
        "nothing reached Ann"
    );
    assert_eq!(
        t.core
            .store
            .conversation(&ann)
            .await
            .unwrap()
            .assigned_agent
            .as_deref(),
        Some("alice")
    );

    // A member with the role id is an agent: Mallory takes Bob's
    // conversation from its card, as herself.
    let human = t
        .fake
        .command_interaction(110, BOB_DM, None, BOB, "human", &[]);
    t.fake.dispatch("INTERACTION_CREATE", human).await;
    let claim_of = |m: &discord_fake::FakeMessage| {
        m.custom_ids()
            .into_iter()
            .find_map(|id| match ButtonData::parse(&id) {
                Some(ButtonData::Desk {
                    action: DeskButton::Claim,
                    conversation,
                }) if conversation != ann => Some((id, conversation)),
                _ => None,
            })
    };
    t.fake
        .wait_until(
            "Bob's card",
            |f| {
                f.channel_messages(AGENTS)
                    .iter()
                    .any(|m| claim_of(m).is_some())
            },
            WAIT,
        )
        .await;
    let bob_card = t
        .posted(AGENTS)
        .into_iter()
        .find(|m| claim_of(m).is_some())
        .unwrap();
    let (claim, bob) = claim_of(&bob_card).unwrap();
    let mut click =
        t.fake
            .component_interaction(111, AGENTS, Some(GUILD), MALLORY, bob_card.id, &claim);
    click["member"]["roles"] = json!([ROLE.to_string()]);
    click["member"]["user"]["global_name"] = json!("alice");
    t.fake.dispatch("INTERACTION_CREATE", click).await;
    t.fake
        .wait_until(
            "Mallory's claim",
            |f| {
                f.original_response(111)
                    .is_some_and(|m| m.content.contains("Done"))
            },
            WAIT,
        )
        .await;
    assert_eq!(
        t.core
            .store
            .conversation(&bob)
            .await
            .unwrap()
            .assigned_agent
            .as_deref(),
        Some(format!("discord:{MALLORY}").as_str())
    );
    t.stop().await;
}

/// Issue 11, finding 2 on Discord: an agent replying to a card in the
/// agents' channel reaches that card's conversation (stored with the
/// card), not one whose id the customer wrote into their message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_written_conversation_id_does_not_steer_a_reply_to_a_card() {
    let t = start(None).await;
    t.fake
        .dispatch_message(400, BOB_DM, None, BOB, "/human")
        .await;
    t.wait_posted(AGENTS, 1).await;
    let bob = t.core.desk.queue().await.unwrap()[0]
        .conversation
        .id
        .clone();
    t.fake
        .dispatch_message(
            401,
            DM,
            None,
            CUSTOMER,
            &format!("/human about #{bob} please"),
        )
        .await;
    let cards = t.wait_posted(AGENTS, 2).await;
    let ann_card = cards
        .iter()
        .find(|c| c.content.contains("about #"))
        .unwrap()
        .clone();
    let ann = t.core.desk.queue().await.unwrap()[1]
        .conversation
        .id
        .clone();
    assert!(
        ann_card.content.find(bob.as_str()) < ann_card.content.find(ann.as_str()),
        "{}",
        ann_card.content
    );
    let reply = t.fake.message_with(
        402,
        AGENTS,
        Some(GUILD),
        ALICE,
        "Hello Ann, Alice here",
        MessageOpts {
            reply_to: Some(ann_card.id),
            ..MessageOpts::default()
        },
    );
    t.fake.dispatch("MESSAGE_CREATE", reply).await;
    t.wait_text(
        DM,
        "alice (support): Hello Ann, Alice here",
        "the reply at Ann",
    )
    .await;
    assert!(
        !t.posted(BOB_DM)
            .iter()
            .any(|m| m.content.contains("Alice here")),
        "nothing reached Bob"
    );
    let bob_now = t.core.store.conversation(&bob).await.unwrap();
    assert_eq!(
        bob_now.assigned_agent, None,
        "Bob's conversation not claimed"
    );
    t.stop().await;
}

/// Issue 11, finding 3 on Discord: a press carrying another customer's ids
/// is refused privately and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_with_another_customers_ids_changes_nothing() {
    let t = start(None).await;
    let ask = t.fake.command_interaction(
        500,
        GENERAL,
        Some(GUILD),
        CUSTOMER,
        "ask",
        &[("question", "how do I get a refund")],
    );
    t.fake.dispatch("INTERACTION_CREATE", ask).await;
    t.fake
        .wait_until(
            "Ann's answer",
            |f| {
                f.original_response(500)
                    .is_some_and(|m| m.content.contains("Refund") && !m.custom_ids().is_empty())
            },
            WAIT,
        )
        .await;
    let answer = t.fake.original_response(500).unwrap();
    let down = answer
        .custom_ids()
        .into_iter()
        .find(|id| {
            matches!(
                ButtonData::parse(id),
                Some(ButtonData::Feedback { up: false, .. })
            )
        })
        .unwrap();
    let solved = answer
        .custom_ids()
        .into_iter()
        .find(|id| matches!(ButtonData::parse(id), Some(ButtonData::SolvedYes { .. })))
        .unwrap();
    let conversation = ButtonData::parse(&down).unwrap().conversation().clone();
    t.fake
        .dispatch_message(501, BOB_DM, None, BOB, "hello")
        .await;
    t.wait_posted(BOB_DM, 1).await;
    for (id, data) in [(502, &down), (503, &solved)] {
        let click = t
            .fake
            .component_interaction(id, GENERAL, Some(GUILD), BOB, answer.id, data);
        t.fake.dispatch("INTERACTION_CREATE", click).await;
        t.fake
            .wait_until(
                "the private refusal",
                |f| {
                    f.followups(id)
                        .iter()
                        .any(|m| m.ephemeral() && m.content == NO_LONGER_AVAILABLE)
                },
                WAIT,
            )
            .await;
    }
    let c = t.core.store.conversation(&conversation).await.unwrap();
    assert_eq!(c.status, switchboard::conversation::Status::Bot);
    assert!(
        t.core
            .store
            .messages(&conversation)
            .await
            .unwrap()
            .iter()
            .all(|m| m.feedback.is_none()),
        "no 👎 from Bob"
    );
    t.stop().await;
}

/// Issue 14: the Discord customer is told in their DM, with the agent's
/// name, when an agent claims (once, however often Claim is pressed),
/// transfers, gives back and closes; a role-based agent is named as
/// customers see them, and the event keeps both names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_is_told_who_joins_transfers_gives_back_and_closes() {
    const BEN: u64 = 7002;
    let t = start_with(
        None,
        &format!("agent_role_ids = [{ROLE}]\n[[agents]]\nname = \"ben\"\ndiscord_id = {BEN}"),
    )
    .await;
    let human = t
        .fake
        .command_interaction(100, DM, None, CUSTOMER, "human", &[]);
    t.fake.dispatch("INTERACTION_CREATE", human).await;
    let cards = t.wait_posted(AGENTS, 1).await;
    let id = t.core.desk.queue().await.unwrap()[0]
        .conversation
        .id
        .clone();
    let thread = staff_thread_of(&t, &id).await;
    let claim = cards[0]
        .custom_ids()
        .into_iter()
        .find(|c| is_claim(c))
        .unwrap();
    let told = |f: &FakeDiscord, text: &str| {
        f.channel_messages(DM)
            .iter()
            .filter(|m| m.content.contains(text))
            .count()
    };

    // Alice presses Claim twice: told once.
    for interaction in [101, 102] {
        let click = t.fake.component_interaction(
            interaction,
            AGENTS,
            Some(GUILD),
            ALICE,
            cards[0].id,
            &claim,
        );
        t.fake.dispatch("INTERACTION_CREATE", click).await;
        t.fake
            .wait_until(
                "the claim's outcome",
                |f| {
                    f.original_response(interaction)
                        .is_some_and(|m| m.content.contains("Done"))
                },
                WAIT,
            )
            .await;
    }
    assert_eq!(told(&t.fake, "alice joined the conversation."), 1);
    t.fake
        .dispatch_message(103, thread, Some(GUILD), ALICE, "/transfer ben")
        .await;
    t.wait_text(DM, "You've been transferred to ben.", "the transfer notice")
        .await;
    t.fake
        .dispatch_message(104, thread, Some(GUILD), BEN, "/giveback")
        .await;
    t.wait_text(
        DM,
        "ben has passed you back to the assistant.",
        "the give-back notice",
    )
    .await;

    // Asked again; a role-based agent (shown as "Mo") claims and closes.
    let again = t
        .fake
        .command_interaction(105, DM, None, CUSTOMER, "human", &[]);
    t.fake.dispatch("INTERACTION_CREATE", again).await;
    t.fake
        .wait_until(
            "the second hand-off",
            |f| {
                f.original_response(105)
                    .is_some_and(|m| !m.loading() && !m.content.is_empty())
            },
            WAIT,
        )
        .await;
    for (message, text, notice) in [
        (106, "/claim", "Mo joined the conversation."),
        (107, "/resolve", "Mo has closed this conversation."),
    ] {
        let mut m = t.fake.message(message, thread, Some(GUILD), MALLORY, text);
        m["author"]["global_name"] = json!("Mo");
        m["member"]["roles"] = json!([ROLE.to_string()]);
        t.fake.dispatch("MESSAGE_CREATE", m).await;
        t.wait_text(DM, notice, notice).await;
    }
    assert_eq!(told(&t.fake, "Mo joined the conversation."), 1);
    assert_eq!(told(&t.fake, "joined the conversation."), 2);
    assert_eq!(told(&t.fake, "transferred"), 1);
    let events = t.core.store.events(&id).await.unwrap();
    let claims: Vec<(String, Option<String>)> = events
        .iter()
        .filter(|e| e.kind == "claim")
        .map(|e| (e.actor.clone(), e.actor_name.clone()))
        .collect();
    assert_eq!(
        claims,
        [
            ("alice".to_string(), Some("alice".to_string())),
            (format!("discord:{MALLORY}"), Some("Mo".to_string())),
        ]
    );
    let notices = switchboard::transcript::load(&t.core.store, &id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e, switchboard::transcript::Entry::Notice(_)))
        .count();
    assert_eq!(notices, 5);
    assert_never_pings(&t.fake);
    t.stop().await;
}

/// Issue 16: processes sharing the bot each run a range of its gateway
/// shards; the range configured is the one the gateway is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_runs_the_shards_it_is_given() {
    let t = start_with(None, "shard_count = 2\nshards = [1]").await;
    for _ in 0..200 {
        if t.fake.identify_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let identifies = t.fake.identify_payloads();
    assert_eq!(identifies.len(), 1, "one shard, one session");
    assert_eq!(identifies[0]["shard"], serde_json::json!([1, 2]));
    // Discord sends a guild's events to shard `(guild_id >> 22) % 2`:
    // this guild's reach the process.
    let guild_on_shard_1 = 3 << 22;
    let mention = t.fake.mention(
        95,
        GENERAL,
        guild_on_shard_1,
        CUSTOMER,
        "how do I get a refund",
    );
    t.fake.dispatch("MESSAGE_CREATE", mention).await;
    t.wait_posted(GENERAL, 1).await;
    t.stop().await;
}
