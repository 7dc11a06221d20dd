//! The same store tests on SQLite and on PostgreSQL (a fresh database per
//! test, dropped afterwards). The PostgreSQL ones are ignored unless asked
//! for: set `SWITCHBOARD_TEST_POSTGRES_URL` and run with `--ignored`.

use crate::common;

use std::sync::Arc;

use common::FreshPostgres;

use switchboard::clock::{ManualClock, SharedClock};
use switchboard::conversation::{Actor, Resolution, Status, Transition};
use switchboard::delivery::{Outgoing, Target};
use switchboard::export::{self, Format};
use switchboard::report;
use switchboard::store::{
    Answer, Backend, Change, Error, InboxQuery, InboxTab, NewMessage, Role, SourceRef, Store,
};
use switchboard::tags::Tag;

const START: i64 = 1_795_000_000_000;

/// A store on a fresh database; drops a PostgreSQL database on `finish`.
struct Db {
    store: Store,
    /// `database.url`, for a second process on the same database.
    url: String,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<FreshPostgres>,
}

impl Db {
    async fn finish(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop().await;
        }
    }
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::connect(&url, 4, clock.clone() as SharedClock)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Db {
        store,
        url,
        clock,
        _dir: Some(dir),
        pg: None,
    }
}

async fn postgres() -> Db {
    let pg = FreshPostgres::create("sb_store").await;
    let clock = ManualClock::new(START);
    let store = Store::connect(&pg.url, 4, clock.clone() as SharedClock)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Db {
        store,
        url: pg.url.clone(),
        clock,
        _dir: None,
        pg: Some(pg),
    }
}

/// Runs a test body on SQLite and (when not ignored) on PostgreSQL.
macro_rules! on_every_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let db = super::sqlite().await;
                ($body)(&db).await;
                db.finish().await;
            }
            #[tokio::test]
            #[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
            async fn postgres() {
                let db = super::postgres().await;
                ($body)(&db).await;
                db.finish().await;
            }
        }
    };
}

fn source() -> Vec<SourceRef> {
    vec![SourceRef {
        slug: "billing/refunds".into(),
        title: "Refunds".into(),
        url: Some("https://help.example/refunds".into()),
        score: 3.5,
    }]
}

on_every_backend!(messages_are_logged_once, |db: &Db| {
    let store = db.store.clone();
    async move {
        let alice = store
            .upsert_customer("telegram", "42", Some("Alice"))
            .await
            .unwrap();
        let again = store.upsert_customer("telegram", "42", None).await.unwrap();
        assert_eq!(alice.id, again.id);
        assert_eq!(again.display_name.as_deref(), Some("Alice"));
        let other = store.upsert_customer("discord", "42", None).await.unwrap();
        assert_ne!(alice.id, other.id, "identity is per channel");

        let c = store.open_conversation(&alice, "chat-1").await.unwrap();
        assert_eq!(c.status, Status::Bot);
        assert_eq!(
            store.open_conversation(&alice, "chat-1").await.unwrap().id,
            c.id
        );
        let inbound = NewMessage {
            conversation_id: &c.id,
            role: Role::Customer,
            text: "it's \"quoted\" -- and '; DROP TABLE messages; --",
            channel: "telegram",
            platform_message_id: Some("update:1"),
            ..NewMessage::default()
        };
        assert!(store.insert_message(&inbound).await.unwrap().is_some());
        assert!(
            store.insert_message(&inbound).await.unwrap().is_none(),
            "a platform retry is ignored"
        );
        let sources = source();
        let answer = NewMessage {
            conversation_id: &c.id,
            role: Role::Bot,
            text: "Refunds take 5 days [1].",
            mode: Some(switchboard::store::MessageMode::Llm),
            sources: &sources,
            model: Some("gpt-test"),
            prompt_tokens: Some(100),
            completion_tokens: Some(20),
            latency_ms: Some(850),
            channel: "telegram",
            ..NewMessage::default()
        };
        let id = store.insert_message(&answer).await.unwrap().unwrap();
        let messages = store.messages(&c.id).await.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].text, inbound.text);
        assert_eq!(messages[1].sources, sources);
        assert_eq!(messages[1].prompt_tokens, Some(100));
        assert_eq!((messages[0].seq, messages[1].seq), (1, 2));
        assert!(
            !store
                .set_feedback(&"another-conversation".into(), &id, -1)
                .await
                .unwrap(),
            "feedback only on the conversation's own message"
        );
        assert!(store.set_feedback(&c.id, &id, -1).await.unwrap());
        assert!(
            !store.set_feedback(&c.id, &id, 1).await.unwrap(),
            "first click counts"
        );
        assert_eq!(
            store.recent_messages(&c.id, 1).await.unwrap()[0].feedback,
            Some(-1)
        );
        let c = store.conversation(&c.id).await.unwrap();
        assert!(c.first_bot_response_at.is_some() && c.last_customer_at.is_some());
    }
});

on_every_backend!(
    concurrent_messages_share_statements_but_not_their_order,
    |db: &Db| {
        let store = db.store.clone();
        async move {
            // Six conversations written at once, each in order: the writer
            // groups their messages into shared statements (one per
            // conversation per statement); each conversation must still read
            // back 1, 2, 3… in the order its messages were sent.
            let customer = store.upsert_customer("web", "many", None).await.unwrap();
            let mut conversations = Vec::new();
            for i in 0..6 {
                let c = store
                    .open_conversation(&customer, &format!("thread-{i}"))
                    .await
                    .unwrap();
                conversations.push(c.id);
            }
            let mut tasks = Vec::new();
            for (i, id) in conversations.iter().enumerate() {
                let store = store.clone();
                let id = id.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 1..=15 {
                        let text = format!("{n}");
                        let platform = format!("{i}-{n}");
                        let stored = store
                            .insert_message(&NewMessage {
                                conversation_id: &id,
                                role: Role::Customer,
                                text: &text,
                                channel: "web",
                                platform_message_id: Some(&platform),
                                ..NewMessage::default()
                            })
                            .await
                            .unwrap();
                        assert!(stored.is_some());
                    }
                    0
                }));
            }
            // The same platform message sent four times at once (retries
            // racing each other) is stored once.
            for _ in 0..4 {
                let store = store.clone();
                let id = conversations[0].clone();
                tasks.push(tokio::spawn(async move {
                    let stored = store
                        .insert_message(&NewMessage {
                            conversation_id: &id,
                            role: Role::Customer,
                            text: "retried",
                            channel: "web",
                            platform_message_id: Some("the-retry"),
                            ..NewMessage::default()
                        })
                        .await
                        .unwrap();
                    i64::from(stored.is_some())
                }));
            }
            let mut retries_stored = 0;
            for task in tasks {
                retries_stored += task.await.unwrap();
            }
            assert_eq!(
                retries_stored, 1,
                "a message stored once however often it is sent"
            );
            for id in &conversations[1..] {
                let messages = store.messages(id).await.unwrap();
                let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
                let texts: Vec<String> = messages.iter().map(|m| m.text.clone()).collect();
                assert_eq!(seqs, (1..=15).collect::<Vec<i64>>());
                assert_eq!(texts, (1..=15).map(|n| n.to_string()).collect::<Vec<_>>());
            }
            let first = store.messages(&conversations[0]).await.unwrap();
            assert_eq!(first.len(), 16);
            let seqs: Vec<i64> = first.iter().map(|m| m.seq).collect();
            assert_eq!(
                seqs,
                (1..=16).collect::<Vec<i64>>(),
                "no two messages share a place"
            );
            let ours: Vec<String> = first
                .iter()
                .filter(|m| m.text != "retried")
                .map(|m| m.text.clone())
                .collect();
            assert_eq!(ours, (1..=15).map(|n| n.to_string()).collect::<Vec<_>>());

            // An answer racing a hand-off in the same statement as answers to
            // other conversations: only the one still with the bot is stored.
            store
                .transition(
                    &conversations[1],
                    Transition::HandOff,
                    Actor::Bot,
                    &Change::default(),
                )
                .await
                .unwrap();
            let answers: Vec<_> = conversations[1..3]
                .iter()
                .map(|id| {
                    let store = store.clone();
                    let id = id.clone();
                    tokio::spawn(async move {
                        store
                            .insert_if_with_bot(&NewMessage {
                                conversation_id: &id,
                                role: Role::Bot,
                                text: "an answer",
                                channel: "web",
                                ..NewMessage::default()
                            })
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut results = Vec::new();
            for a in answers {
                results.push(a.await.unwrap().is_some());
            }
            assert_eq!(results, [false, true]);
        }
    }
);

on_every_backend!(
    unread_counts_are_per_agent_and_start_at_the_hand_off,
    |db: &Db| {
        let store = db.store.clone();
        let clock = db.clock.clone();
        async move {
            let customer = store.upsert_customer("web", "reader", None).await.unwrap();
            let c = store.open_conversation(&customer, "t").await.unwrap();
            let say = |text: &'static str| {
                let store = store.clone();
                let id = c.id.clone();
                async move {
                    store
                        .insert_message(&NewMessage {
                            conversation_id: &id,
                            role: Role::Customer,
                            text,
                            channel: "web",
                            ..NewMessage::default()
                        })
                        .await
                        .unwrap();
                }
            };
            let unread = |agent: &'static str| {
                let store = store.clone();
                async move {
                    store
                        .inbox(&InboxQuery {
                            tab: InboxTab::All,
                            agent,
                            text: None,
                            channel: None,
                            status: None,
                            assigned: None,
                            reason: None,
                            from: None,
                            until: None,
                            csat: None,
                            tag: None,
                            limit: 10,
                        })
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|e| e.unread)
                        .collect::<Vec<i64>>()
                }
            };
            say("before the hand-off: the bot's part").await;
            assert_eq!(unread("ana").await, [0], "not handed off: nothing unread");
            clock.advance(1_000);
            store
                .transition(&c.id, Transition::HandOff, Actor::Bot, &Change::default())
                .await
                .unwrap();
            clock.advance(1_000);
            say("anyone there?").await;
            clock.advance(1_000);
            say("hello?").await;
            assert_eq!(unread("ana").await, [2]);
            assert_eq!(unread("ben").await, [2]);
            store.mark_read(&"ana".into(), &c.id).await.unwrap();
            assert_eq!(unread("ana").await, [0], "ana opened it");
            assert_eq!(unread("ben").await, [2], "ben did not");
            clock.advance(1_000);
            say("still waiting").await;
            assert_eq!(unread("ana").await, [1]);
            assert_eq!(unread("ben").await, [3]);
        }
    }
);

on_every_backend!(
    the_inbox_filters_by_agent_reason_dates_and_csat,
    |db: &Db| {
        let store = db.store.clone();
        let clock = db.clock.clone();
        async move {
            // Two handed-off conversations: ann's (a request, resolved by ana,
            // rated 5) and ben's a day later (a knowledge gap, with bo).
            let mut ids = Vec::new();
            for (who, reason, agent) in [
                ("ann", "customer_request", "ana"),
                ("ben", "knowledge_gap", "bo"),
            ] {
                let customer = store.upsert_customer("web", who, None).await.unwrap();
                let c = store.open_conversation(&customer, "t").await.unwrap();
                store
                    .insert_message(&NewMessage {
                        conversation_id: &c.id,
                        role: Role::Customer,
                        text: "help",
                        channel: "web",
                        ..NewMessage::default()
                    })
                    .await
                    .unwrap();
                let handed = Change {
                    handoff_reason: Some(reason),
                    ..Change::default()
                };
                store
                    .transition(&c.id, Transition::HandOff, Actor::Bot, &handed)
                    .await
                    .unwrap();
                let claim = Change {
                    assign: Some(Some(agent)),
                    ..Change::default()
                };
                store
                    .transition(&c.id, Transition::Claim, Actor::Agent(agent), &claim)
                    .await
                    .unwrap();
                ids.push(c.id);
                clock.advance(86_400_000);
            }
            let resolve = Change {
                resolution: Some(&Resolution::Agent),
                ..Change::default()
            };
            store
                .transition(&ids[0], Transition::Resolve, Actor::Agent("ana"), &resolve)
                .await
                .unwrap();
            store.schedule_surveys(0, 0).await.unwrap();
            store
                .mark_survey_sent(&ids[0], Some("ana"), false, false)
                .await
                .unwrap();
            assert!(
                store
                    .record_survey_answer(&ids[0], Answer::Csat(5))
                    .await
                    .unwrap()
            );

            let find = |assigned: Option<&'static str>,
                        reason: Option<&'static str>,
                        from: Option<i64>,
                        until: Option<i64>,
                        csat: Option<i64>| {
                let store = store.clone();
                async move {
                    store
                        .inbox(&InboxQuery {
                            tab: InboxTab::All,
                            agent: "ana",
                            text: None,
                            channel: None,
                            status: None,
                            assigned,
                            reason,
                            from,
                            until,
                            csat,
                            tag: None,
                            limit: 10,
                        })
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|e| e.conversation.id.into_string())
                        .collect::<Vec<String>>()
                }
            };
            let (ann, ben) = (ids[0].clone(), ids[1].clone());
            assert_eq!(find(None, None, None, None, None).await.len(), 2);
            assert_eq!(
                find(Some("ana"), None, None, None, None).await,
                [ann.as_str()],
                "resolved by ana"
            );
            assert_eq!(
                find(Some("bo"), None, None, None, None).await,
                [ben.as_str()]
            );
            assert_eq!(
                find(None, Some("knowledge_gap"), None, None, None).await,
                [ben.as_str()]
            );
            assert_eq!(
                find(None, None, Some(START + 1), None, None).await,
                [ben.as_str()]
            );
            assert_eq!(
                find(None, None, None, Some(START + 1), None).await,
                [ann.as_str()]
            );
            assert_eq!(find(None, None, None, None, Some(5)).await, [ann.as_str()]);
            assert!(find(None, None, None, None, Some(1)).await.is_empty());
            // Hostile values are data, never SQL.
            assert!(
                find(Some("x' OR '1'='1"), Some("%"), None, None, None)
                    .await
                    .is_empty()
            );
        }
    }
);

on_every_backend!(transitions_follow_the_state_machine, |db: &Db| {
    let store = db.store.clone();
    async move {
        let customer = store.upsert_customer("web", "s1", None).await.unwrap();
        let c = store.open_conversation(&customer, "s1").await.unwrap();
        let illegal = store
            .transition(
                &c.id,
                Transition::Claim,
                Actor::Agent("alice"),
                &Change::default(),
            )
            .await;
        assert!(matches!(illegal, Err(Error::Illegal(_))), "{illegal:?}");
        let handoff = Change {
            handoff_reason: Some("customer_request"),
            ..Change::default()
        };
        let c = store
            .transition(&c.id, Transition::HandOff, Actor::Bot, &handoff)
            .await
            .unwrap();
        assert_eq!(c.status, Status::WaitingForAgent);
        assert_eq!(store.queue_position(&c.id).await.unwrap(), Some(1));
        // Two claims at once: exactly one wins.
        let alice = Change {
            assign: Some(Some("alice")),
            ..Change::default()
        };
        let bob = Change {
            assign: Some(Some("bob")),
            ..Change::default()
        };
        let (a, b) = tokio::join!(
            store.transition(&c.id, Transition::Claim, Actor::Agent("alice"), &alice),
            store.transition(&c.id, Transition::Claim, Actor::Agent("bob"), &bob),
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(matches!(
            loser,
            Err(Error::Conflict(_)) | Err(Error::Illegal(_))
        ));
        let resolve = Change {
            resolution: Some(&Resolution::Agent),
            ..Change::default()
        };
        let c = store
            .transition(&c.id, Transition::Resolve, Actor::Agent("alice"), &resolve)
            .await
            .unwrap();
        assert_eq!(c.status, Status::Resolved);
        assert!(c.resolved_at.is_some());
        // A resolved conversation is never reopened: a new one starts.
        let next = store.open_conversation(&customer, "s1").await.unwrap();
        assert_ne!(next.id, c.id);
        assert_eq!(next.previous_id.as_deref(), Some(c.id.as_str()));
        let kinds: Vec<String> = store
            .events(&c.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert_eq!(kinds, vec!["handoff", "claim", "resolve"]);
    }
});

on_every_backend!(outbox_keeps_undelivered_messages, |db: &Db| {
    let store = db.store.clone();
    let clock = db.clock.clone();
    async move {
        let target = Target {
            channel: "telegram".into(),
            customer_id: "42".into(),
            thread: "42".into(),
        };
        let id = store
            .enqueue_outbox(
                &target,
                &Outgoing::text("hello"),
                None,
                "HTTP 500",
                START + 1_000,
            )
            .await
            .unwrap();
        let channels = vec!["telegram".to_string()];
        assert!(
            store
                .claim_outbox(&channels, 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        clock.advance(1_000);
        let claimed = store.claim_outbox(&channels, 10, 60_000).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].message.text, "hello");
        assert!(
            store
                .claim_outbox(&channels, 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "leased"
        );
        assert!(
            store
                .claim_outbox(&["discord".to_string()], 10, 60_000)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .settle_outbox(&id, Err(("HTTP 502", Some(START + 5_000))))
            .await
            .unwrap();
        clock.advance(4_000);
        let again = store.claim_outbox(&channels, 10, 60_000).await.unwrap();
        assert_eq!(again[0].attempts, 2);
        store.settle_outbox(&id, Ok(())).await.unwrap();
        clock.advance(100_000);
        assert!(
            store
                .claim_outbox(&channels, 10, 60_000)
                .await
                .unwrap()
                .is_empty()
        );
    }
});

on_every_backend!(report_and_export_reflect_the_log, |db: &Db| {
    let store = db.store.clone();
    let clock = db.clock.clone();
    async move {
        // One bot-resolved conversation, one escalated and resolved by alice.
        let a = store
            .upsert_customer("web", "a", Some("A, \"quoted\""))
            .await
            .unwrap();
        let c1 = store.open_conversation(&a, "a").await.unwrap();
        let msg = |conversation_id: &str, role: Role, text: &'static str| NewMessage {
            conversation_id: Box::leak(conversation_id.to_string().into_boxed_str()),
            role,
            text,
            mode: (role == Role::Bot).then_some(switchboard::store::MessageMode::Extractive),
            channel: "web",
            ..NewMessage::default()
        };
        store
            .insert_message(&msg(&c1.id, Role::Customer, "refund?"))
            .await
            .unwrap();
        clock.advance(2_000);
        store
            .insert_message(&msg(&c1.id, Role::Bot, "Here is how"))
            .await
            .unwrap();
        let resolve = |how: &'static Resolution| Change {
            resolution: Some(how),
            ..Change::default()
        };
        store
            .transition(
                &c1.id,
                Transition::Resolve,
                Actor::Customer,
                &resolve(&Resolution::Customer),
            )
            .await
            .unwrap();

        let b = store.upsert_customer("web", "b", None).await.unwrap();
        let c2 = store.open_conversation(&b, "b").await.unwrap();
        store
            .insert_message(&msg(&c2.id, Role::Customer, "human"))
            .await
            .unwrap();
        let handoff = Change {
            handoff_reason: Some("customer_request"),
            ..Change::default()
        };
        store
            .transition(&c2.id, Transition::HandOff, Actor::Bot, &handoff)
            .await
            .unwrap();
        clock.advance(60_000);
        let claim = Change {
            assign: Some(Some("alice")),
            ..Change::default()
        };
        store
            .transition(&c2.id, Transition::Claim, Actor::Agent("alice"), &claim)
            .await
            .unwrap();
        store
            .insert_message(&NewMessage {
                author: Some("alice"),
                ..msg(&c2.id, Role::Agent, "Hi")
            })
            .await
            .unwrap();
        clock.advance(240_000);
        store
            .transition(
                &c2.id,
                Transition::Resolve,
                Actor::Agent("alice"),
                &resolve(&Resolution::Agent),
            )
            .await
            .unwrap();
        clock.advance(8 * 86_400_000);

        let r = report::build(&store, &report::Filter::default())
            .await
            .unwrap();
        assert_eq!(
            (r.conversations, r.messages, r.bot_resolved, r.escalated),
            (2, 4, 1, 1)
        );
        assert_eq!(r.escalation_rate, Some(0.5));
        assert_eq!(r.containment_rate, Some(0.5));
        assert_eq!(
            r.first_response_secs_p50,
            Some(60.0),
            "measured from the hand-off"
        );
        assert_eq!(r.resolution_secs_p50, Some(300.0));
        assert_eq!(r.bot_first_response_secs_p50, Some(2.0));
        assert_eq!(r.first_contact_resolution_rate, Some(1.0));
        assert_eq!(r.handoff_reasons.get("customer_request"), Some(&1));
        assert_eq!(r.csat_score, None);
        let only_alice = report::build(
            &store,
            &report::Filter {
                agent: Some("alice".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(only_alice.conversations, 1);

        let mut jsonl = Vec::new();
        assert_eq!(
            export::write(&store, None, Format::Jsonl, &mut jsonl)
                .await
                .unwrap(),
            2
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1]["messages"].as_array().unwrap().len(), 2);
        assert_eq!(lines[1]["events"][0]["kind"], "handoff");
        let mut csv = Vec::new();
        export::write(&store, None, Format::Csv, &mut csv)
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(&rows[0][2], "A, \"quoted\"", "CSV quoting round-trips");
    }
});

on_every_backend!(staff_posts_and_press_lookups, |db: &Db| {
    let store = db.store.clone();
    async move {
        let ann = store.upsert_customer("telegram", "1", None).await.unwrap();
        let bob = store.upsert_customer("telegram", "2", None).await.unwrap();
        assert_eq!(
            store
                .find_customer("telegram", "1")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(ann.id.clone())
        );
        assert!(store.find_customer("discord", "1").await.unwrap().is_none());
        let a = store.open_conversation(&ann, "chat-1").await.unwrap();
        let b = store.open_conversation(&bob, "chat-2").await.unwrap();

        // Posts map to their conversation; a repeated post keeps its first.
        let posts = vec!["msg:10".to_string(), "msg:11".to_string()];
        store
            .add_staff_posts("telegram", &a.id, &posts)
            .await
            .unwrap();
        store
            .add_staff_posts("telegram", &b.id, &["msg:11".to_string()])
            .await
            .unwrap();
        let of = |post: &'static str, desk: &'static str| {
            let store = store.clone();
            async move {
                store
                    .conversation_by_staff_post(desk, post)
                    .await
                    .unwrap()
                    .map(|c| c.id)
            }
        };
        assert_eq!(of("msg:10", "telegram").await, Some(a.id.clone()));
        assert_eq!(of("msg:11", "telegram").await, Some(a.id.clone()));
        assert_eq!(of("msg:10", "discord").await, None);
        assert_eq!(of("msg:12", "telegram").await, None);

        // The latest bot message, and messages by id.
        assert!(store.last_bot_message(&a.id).await.unwrap().is_none());
        let mut last = None;
        for text in ["first", "second"] {
            let m = NewMessage {
                conversation_id: &a.id,
                role: Role::Bot,
                text,
                channel: "telegram",
                ..NewMessage::default()
            };
            last = store.insert_message(&m).await.unwrap();
        }
        let latest = store.last_bot_message(&a.id).await.unwrap().unwrap();
        assert_eq!(
            (Some(latest.id.clone()), latest.text.as_str()),
            (last, "second")
        );
        assert_eq!(
            store
                .message(&latest.id)
                .await
                .unwrap()
                .map(|m| m.conversation_id),
            Some(a.id.clone())
        );
        assert!(store.message(&"no-such-id".into()).await.unwrap().is_none());
        assert!(!store.set_feedback(&b.id, &latest.id, 1).await.unwrap());
        assert!(store.set_feedback(&a.id, &latest.id, 1).await.unwrap());
    }
});

on_every_backend!(csv_export_neutralises_formula_cells, |db: &Db| {
    let store = db.store.clone();
    async move {
        // Issue 11: a customer's name or message starting with `=`, `+`,
        // `-`, `@`, a tab or a carriage return ran as a formula in Excel.
        let c = store
            .upsert_customer("web", "evil", Some("=HYPERLINK(\"http://x\",\"y\")"))
            .await
            .unwrap();
        let conversation = store.open_conversation(&c, "evil").await.unwrap();
        let texts = ["+1+1", "-2", "@SUM(A1)", "\t=1", "\r=1", "a=b"];
        for text in texts {
            store
                .insert_message(&NewMessage {
                    conversation_id: &conversation.id,
                    role: Role::Customer,
                    text,
                    channel: "web",
                    ..NewMessage::default()
                })
                .await
                .unwrap();
        }
        let mut csv = Vec::new();
        export::write(&store, None, Format::Csv, &mut csv)
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), texts.len());
        assert_eq!(&rows[0][2], "'=HYPERLINK(\"http://x\",\"y\")");
        let shown: Vec<&str> = rows.iter().map(|r| &r[11]).collect();
        assert_eq!(
            shown,
            vec!["'+1+1", "'-2", "'@SUM(A1)", "'\t=1", "'\r=1", "a=b"]
        );
    }
});

// Issue 14: a notice is stored with its transition's event, taken for
// sending exactly once, found again when a process left it unsent, and
// kept as a notice in the web widget's mailbox and in the outbox.
on_every_backend!(
    notices_are_stored_with_their_event_and_taken_once,
    |db: &Db| {
        let store = db.store.clone();
        let clock = db.clock.clone();
        async move {
            let customer = store.upsert_customer("web", "s9", None).await.unwrap();
            let c = store.open_conversation(&customer, "s9").await.unwrap();
            let handoff = Change {
                handoff_reason: Some("customer_request"),
                ..Change::default()
            };
            store
                .transition(&c.id, Transition::HandOff, Actor::Customer, &handoff)
                .await
                .unwrap();
            let claim = Change {
                assign: Some(Some("alice")),
                actor_name: Some("Alice A."),
                notice: Some("Alice A. joined the conversation."),
                ..Change::default()
            };
            store
                .transition(&c.id, Transition::Claim, Actor::Agent("alice"), &claim)
                .await
                .unwrap();
            let events = store.events(&c.id).await.unwrap();
            assert_eq!(events[0].notice, None, "the hand-off tells no one");
            assert_eq!(events[1].kind, "claim");
            assert_eq!(events[1].actor, "alice");
            assert_eq!(events[1].actor_name.as_deref(), Some("Alice A."));
            let unsent = store.unsent_notices(&c.id).await.unwrap();
            assert_eq!(unsent.len(), 1);
            assert!(store.stale_notices(START - 1).await.unwrap().is_empty());
            clock.advance(20_000);
            assert_eq!(store.stale_notices(START).await.unwrap().len(), 1);
            assert!(store.claim_notice(&unsent[0].id).await.unwrap());
            assert!(
                !store.claim_notice(&unsent[0].id).await.unwrap(),
                "taken once"
            );
            assert!(store.unsent_notices(&c.id).await.unwrap().is_empty());
            assert!(store.stale_notices(START).await.unwrap().is_empty());
            assert_eq!(
                store.events(&c.id).await.unwrap()[1].notified_at,
                Some(START + 20_000)
            );
            assert!(
                !store.claim_notice(&events[0].id).await.unwrap(),
                "an event without a notice is never taken"
            );

            store
                .push_web_message("s9", &Outgoing::text("alice (support): hi"))
                .await
                .unwrap();
            store
                .push_web_message("s9", &Outgoing::notice("Alice A. joined the conversation."))
                .await
                .unwrap();
            let mailbox = store.web_messages_after("s9", "").await.unwrap();
            let notices: Vec<bool> = mailbox.iter().map(|(_, m)| m.notice).collect();
            assert_eq!(notices, [false, true]);

            let target = Target {
                channel: "telegram".into(),
                customer_id: "42".into(),
                thread: "42".into(),
            };
            store
                .enqueue_outbox(&target, &Outgoing::notice("n"), Some(&c.id), "down", START)
                .await
                .unwrap();
            let queued = store
                .claim_outbox(&["telegram".to_string()], 10, 60_000)
                .await
                .unwrap();
            assert!(queued[0].message.notice);
        }
    }
);

on_every_backend!(widget_history_queries_and_secrets, |db: &Db| {
    let store = db.store.clone();
    let clock = db.clock.clone();
    async move {
        // A secret is made once; later calls get the kept one.
        let first = store.secret("test.key", || "one".into()).await.unwrap();
        let again = store.secret("test.key", || "two".into()).await.unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("one", "one"));

        assert_eq!(store.web_cursor("sess-1").await.unwrap(), "");
        let customer = store.upsert_customer("web", "sess-1", None).await.unwrap();
        assert!(
            store
                .latest_conversation(&customer.id, "sess-1")
                .await
                .unwrap()
                .is_none()
        );
        let old = store.open_conversation(&customer, "sess-1").await.unwrap();
        store
            .push_web_message("sess-1", &Outgoing::text("before"))
            .await
            .unwrap();
        clock.advance(10_000);
        store
            .transition(&old.id, Transition::Resolve, Actor::Bot, &Change::default())
            .await
            .unwrap();
        // Resolved, it is still the latest conversation.
        let latest = store
            .latest_conversation(&customer.id, "sess-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (latest.id.as_str(), latest.status),
            (old.id.as_str(), Status::Resolved)
        );
        clock.advance(10_000);
        let new = store.open_conversation(&customer, "sess-1").await.unwrap();
        let mut last = String::new();
        for text in ["a", "b", "c"] {
            last = store
                .push_web_message("sess-1", &Outgoing::text(text))
                .await
                .unwrap();
        }
        store
            .push_web_message("sess-2", &Outgoing::text("other"))
            .await
            .unwrap();
        assert_eq!(
            store
                .latest_conversation(&customer.id, "sess-1")
                .await
                .unwrap()
                .unwrap()
                .id,
            new.id
        );
        assert_eq!(store.web_cursor("sess-1").await.unwrap(), last);
        // Since the new conversation began: its three, the latest two when
        // limited, oldest first, with their times.
        let since = store
            .web_messages_since("sess-1", new.created_at, 10)
            .await
            .unwrap();
        let texts: Vec<&str> = since.iter().map(|(_, _, m)| m.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert!(since.iter().all(|(_, at, _)| *at == new.created_at));
        let limited = store
            .web_messages_since("sess-1", new.created_at, 2)
            .await
            .unwrap();
        let texts: Vec<&str> = limited.iter().map(|(_, _, m)| m.text.as_str()).collect();
        assert_eq!(texts, ["b", "c"]);
        let after = store
            .web_messages_since_cursor("sess-1", &since[0].0)
            .await
            .unwrap();
        assert_eq!(after.len(), 2);
    }
});

on_every_backend!(conversation_tags_are_searched_and_filtered, |db: &Db| {
    let store = db.store.clone();
    async move {
        let mut ids = Vec::new();
        for who in ["ann", "ben"] {
            let customer = store.upsert_customer("web", who, None).await.unwrap();
            let c = store.open_conversation(&customer, "t").await.unwrap();
            ids.push(c.id);
        }
        let billing = Tag::parse("Billing Issue").unwrap();
        let vip = Tag::parse("vip").unwrap();
        assert!(store.add_tag(&ids[0], &billing, "ana").await.unwrap());
        assert!(
            store.add_tag(&ids[0], &billing, "bo").await.unwrap(),
            "again"
        );
        assert!(store.add_tag(&ids[0], &vip, "ana").await.unwrap());
        assert!(store.add_tag(&ids[1], &vip, "ana").await.unwrap());
        assert!(!store.add_tag(&"no-such".into(), &vip, "ana").await.unwrap());
        assert_eq!(store.tags(&ids[0]).await.unwrap(), ["billing-issue", "vip"]);
        let find = |text: Option<&'static str>, tag: Option<&'static str>| {
            let store = store.clone();
            async move {
                let mut found: Vec<(String, Vec<String>)> = store
                    .inbox(&InboxQuery {
                        tab: InboxTab::All,
                        agent: "ana",
                        text,
                        channel: None,
                        status: None,
                        assigned: None,
                        reason: None,
                        from: None,
                        until: None,
                        csat: None,
                        tag,
                        limit: 10,
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.customer, e.tags))
                    .collect();
                found.sort();
                found
            }
        };
        let ann = (
            "ann".to_string(),
            vec!["billing-issue".to_string(), "vip".to_string()],
        );
        let ben = ("ben".to_string(), vec!["vip".to_string()]);
        assert_eq!(find(None, None).await, [ann.clone(), ben.clone()]);
        assert_eq!(find(Some("billing"), None).await, vec![ann.clone()]);
        assert_eq!(find(None, Some("vip")).await, [ann.clone(), ben.clone()]);
        assert_eq!(find(None, Some("billing-issue")).await, vec![ann.clone()]);
        assert_eq!(
            find(None, Some("billing")).await,
            [],
            "a tag filter is exact"
        );
        // `_` in a search is literal, not a wildcard.
        assert!(find(Some("billing_issue"), None).await.is_empty());
        store.remove_tag(&ids[0], &billing).await.unwrap();
        assert!(find(Some("billing"), None).await.is_empty());
        assert_eq!(store.tags(&ids[0]).await.unwrap(), ["vip"]);
    }
});

// Issue 16: processes sharing one database tell who is alive, who answers a
// message, and who syncs a staff thread.
on_every_backend!(processes_sharing_a_database, |db: &Db| {
    let url = db.url.clone();
    let clock = db.clock.clone();
    let a = db.store.clone();
    async move {
        let a = &a;
        let process = || async {
            Store::connect(&url, 2, clock.clone() as SharedClock)
                .await
                .unwrap()
        };
        let b = process().await;
        let c = process().await;
        for store in [a, &b, &c] {
            store.register_instance().await.unwrap();
        }
        // B stores a customer message: B answers it.
        let customer = b.upsert_customer("test", "ann", None).await.unwrap();
        let conversation = b.open_conversation(&customer, "t1").await.unwrap();
        let message = NewMessage {
            conversation_id: &conversation.id,
            text: "how do I get a refund",
            channel: "test",
            platform_message_id: Some("u:1"),
            ..NewMessage::default()
        };
        let id = b.insert_message(&message).await.unwrap().unwrap();
        let stored = a.messages(&conversation.id).await.unwrap();
        assert_eq!(stored[0].owner.as_deref(), Some(b.instance()));
        assert!(a.live_instances().await.unwrap().contains(b.instance()));
        // B stops beating; A and C beat on. After the lease B is gone.
        clock.advance(a.lease_ms() + 1);
        a.beat().await.unwrap();
        c.beat().await.unwrap();
        let live = a.live_instances().await.unwrap();
        assert!(!live.contains(b.instance()));
        assert!(live.contains(c.instance()));
        assert_eq!(
            a.conversations_owned_by(b.instance(), START).await.unwrap(),
            vec![conversation.id.clone()]
        );
        // A and C both take the message over: exactly one gets it.
        let (x, y) = tokio::join!(
            a.claim_message(&id, Some(b.instance())),
            c.claim_message(&id, Some(b.instance()))
        );
        assert_eq!(
            [x.unwrap(), y.unwrap()].iter().filter(|won| **won).count(),
            1
        );
        // C stops cleanly: gone at once.
        c.mark_gone(c.instance()).await.unwrap();
        assert!(!a.live_instances().await.unwrap().contains(c.instance()));

        // A staff thread is synced by one pass at a time.
        assert!(
            a.reserve_staff_thread(&conversation.id, "desk")
                .await
                .unwrap()
        );
        assert!(
            !c.claim_staff_sync(&conversation.id, "desk").await.unwrap(),
            "the card is being posted"
        );
        a.update_staff_thread(&conversation.id, "desk", Some("ref"), 1, None)
            .await
            .unwrap();
        assert!(c.claim_staff_sync(&conversation.id, "desk").await.unwrap());
        assert!(!a.claim_staff_sync(&conversation.id, "desk").await.unwrap());
        // A pass that died holding it: taken again once its lease ran out.
        clock.advance(switchboard::store::STAFF_SYNC_LEASE_MS + 1);
        assert!(a.claim_staff_sync(&conversation.id, "desk").await.unwrap());
        b.close().await;
        c.close().await;
    }
});

on_every_backend!(
    a_customer_and_their_open_conversation_in_one_read,
    |db: &Db| {
        let store = db.store.clone();
        async move {
            // Unknown: created, with no conversation yet.
            let (alice, open) = store
                .customer_in_thread("telegram", "7", Some("Alice"), "chat-7")
                .await
                .unwrap();
            assert_eq!(alice.display_name.as_deref(), Some("Alice"));
            assert!(open.is_none());
            let c = store
                .open_conversation_from(&alice, "chat-7", open)
                .await
                .unwrap();
            // Known: the same customer and the conversation just opened, as
            // the two separate reads give them.
            let (again, open) = store
                .customer_in_thread("telegram", "7", None, "chat-7")
                .await
                .unwrap();
            assert_eq!(
                again,
                store.upsert_customer("telegram", "7", None).await.unwrap()
            );
            assert_eq!(open.as_ref(), Some(&c));
            assert_eq!(
                store
                    .current_conversation(&alice.id, "chat-7")
                    .await
                    .unwrap(),
                open
            );
            // Another thread of theirs has none; another channel is another
            // customer.
            let (_, elsewhere) = store
                .customer_in_thread("telegram", "7", None, "chat-8")
                .await
                .unwrap();
            assert!(elsewhere.is_none());
            let (other, _) = store
                .customer_in_thread("discord", "7", None, "chat-7")
                .await
                .unwrap();
            assert_ne!(other.id, alice.id);
            // A new name is written; the conversation is still found.
            let (renamed, open) = store
                .customer_in_thread("telegram", "7", Some("Alice B."), "chat-7")
                .await
                .unwrap();
            assert_eq!(
                (renamed.id.as_str(), renamed.display_name.as_deref()),
                (alice.id.as_str(), Some("Alice B."))
            );
            assert_eq!(open.map(|o| o.id), Some(c.id.clone()));
            // Resolved: not open any more, and the next one follows it.
            store
                .transition(&c.id, Transition::Resolve, Actor::Bot, &Change::default())
                .await
                .unwrap();
            let (_, open) = store
                .customer_in_thread("telegram", "7", None, "chat-7")
                .await
                .unwrap();
            assert!(open.is_none());
            let next = store
                .open_conversation_from(&alice, "chat-7", open)
                .await
                .unwrap();
            assert_ne!(next.id, c.id);
            assert_eq!(next.previous_id.as_deref(), Some(c.id.as_str()));
        }
    }
);

// A widget message kept by one process rings the session's bell in the
// others sharing the PostgreSQL database (not in itself: it rang its own);
// SQLite, one process, has no bells to listen for.
on_every_backend!(widget_bells_reach_the_other_processes, |db: &Db| {
    let url = db.url.clone();
    let first = db.store.clone();
    async move {
        let second = Store::connect(&url, 2, ManualClock::new(START) as SharedClock)
            .await
            .unwrap();
        match first.backend() {
            Backend::Sqlite => {
                assert!(first.mailbox_bells().await.unwrap().is_none());
            }
            Backend::Postgres => {
                let mut bells = first.mailbox_bells().await.unwrap().expect("bells");
                // Its own message first: not rung back to itself.
                first
                    .push_web_message("own", &Outgoing::text("hi"))
                    .await
                    .unwrap();
                second
                    .push_web_message("visitor-7", &Outgoing::text("alice (support): hi"))
                    .await
                    .unwrap();
                let rung = tokio::time::timeout(std::time::Duration::from_secs(30), bells.next())
                    .await
                    .expect("a bell")
                    .unwrap();
                assert_eq!(rung, "visitor-7");
            }
        }
        second.close().await;
    }
});
