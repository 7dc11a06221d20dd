//! The console's dashboard over HTTP (issue 15): admins only, and the same
//! figures as `switchboard report --json` (`report::build`) for the same
//! range and channel, in its JSON, its per-day series, its CSV and its SVG.

use crate::common;

use std::sync::Once;

use common::console::{Console as Client, Who};
use common::{Options, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::assistant::Turn;
use switchboard::clock::{ManualClock, Millis};
use switchboard::report::{self, Filter};
use switchboard::store::{Answer, NewMessage, Role};

const ALICE_TOKEN: &str = "alice-token-dashboard";
const BOB_TOKEN: &str = "bob-token-dashboard";
const ALICE_PASSWORD: &str = "alice's dashboard password";
const BOB_PASSWORD: &str = "bob's dashboard password!";
const DAY: Millis = 86_400_000;
/// 2026-03-10T00:00:00Z.
const MARCH_10: Millis = 1_773_100_800_000;
/// A channel name a chart must not take as markup.
const HOSTILE: &str = "<b>tg&co</b>";

static ENV: Once = Once::new();

fn options() -> Options {
    ENV.call_once(|| {
        // SAFETY: every test calls this first, and nothing in this test
        // binary reads the environment before the Once has completed.
        unsafe {
            std::env::set_var("DASHBOARD_ALICE_TOKEN", ALICE_TOKEN);
            std::env::set_var("DASHBOARD_BOB_TOKEN", BOB_TOKEN);
        }
    });
    Options::new().settings(
        r#"
[web]
cookie_secure = false
[[agents]]
name = "alice"
admin = true
token_env = "DASHBOARD_ALICE_TOKEN"
[[agents]]
name = "bob"
token_env = "DASHBOARD_BOB_TOKEN"
"#,
    )
}

fn turn(customer: &str, text: &str) -> Turn {
    Turn {
        channel: "web".into(),
        customer_id: customer.into(),
        customer_name: Some(format!("Customer {customer}")),
        thread: format!("thread-{customer}"),
        platform_message_id: None,
        text: text.into(),
    }
}

async fn answer(t: &TestApp, customer: &str, question: &str) -> switchboard::assistant::Reply {
    t.core
        .assistant
        .handle(turn(customer, question), None)
        .await
        .unwrap()
}

/// Fills the log: on March 10 a bot answer (👍), a hand-off bob answers and
/// resolves, with a CSAT of 5, and a bot answer (👎); on March 12 a
/// conversation on a channel whose name is markup.
async fn fill(t: &TestApp, clock: &ManualClock, c: &Client) {
    let store = &t.core.store;
    let up = answer(t, "ann", "how do I get a refund").await;
    store
        .set_feedback(&up.conversation_id, up.message_id.as_ref().unwrap(), 1)
        .await
        .unwrap();
    let handed = answer(t, "ann", "I want a human about my parcel").await;
    assert!(handed.handoff, "{handed:?}");
    let id = handed.conversation_id.clone();
    clock.advance(60_000);
    let bob = Who::Token(BOB_TOKEN);
    let path = format!("/api/agent/conversations/{id}");
    assert_eq!(
        c.text(&bob, Method::POST, &format!("{path}/claim")).await.0,
        200
    );
    let reply = c
        .http
        .post(format!("{}{path}/reply", c.base))
        .bearer_auth(BOB_TOKEN)
        .json(&json!({"text": "Let me look at your parcel."}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    clock.advance(120_000);
    assert_eq!(
        c.text(&bob, Method::POST, &format!("{path}/resolve"))
            .await
            .0,
        200
    );
    store.schedule_surveys(0, 0).await.unwrap();
    let due = store.claim_due_surveys(10).await.unwrap();
    assert!(due.iter().any(|s| s.conversation_id == id), "{due:?}");
    store
        .mark_survey_sent(&id, Some("bob"), false, false)
        .await
        .unwrap();
    assert!(
        store
            .record_survey_answer(&id, Answer::Csat(5))
            .await
            .unwrap()
    );
    let down = answer(t, "ben", "how do I reset my password").await;
    store
        .set_feedback(&down.conversation_id, down.message_id.as_ref().unwrap(), -1)
        .await
        .unwrap();

    clock.advance(2 * DAY);
    let zed = store.upsert_customer(HOSTILE, "zed", None).await.unwrap();
    let other = store.open_conversation(&zed, "zed").await.unwrap();
    store
        .insert_message(&NewMessage {
            conversation_id: &other.id,
            role: Role::Customer,
            text: "hello from elsewhere",
            channel: HOSTILE,
            ..NewMessage::default()
        })
        .await
        .unwrap();
}

async fn report_for(
    t: &TestApp,
    since: Millis,
    until: Option<Millis>,
    channel: Option<&str>,
) -> Value {
    let filter = Filter {
        since: Some(since),
        until,
        channel: channel.map(str::to_string),
        agent: None,
    };
    serde_json::to_value(report::build(&t.core.store, &filter).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_reports_numbers_to_admins_only() {
    dashboard_flow(options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn the_dashboard_on_postgres() {
    dashboard_flow(options().postgres()).await;
}

async fn dashboard_flow(options: Options) {
    let clock = ManualClock::new(MARCH_10 + 10 * 3_600_000);
    let t = spawn_app(options.clock(clock.clone())).await;
    let c = Client::new(&t, &[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)]).await;
    fill(&t, &clock, &c).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let bob = c.sign_in("bob", BOB_PASSWORD).await;
    let range = "from=2026-03-10&to=2026-03-12";

    for path in [
        format!("/api/admin/dashboard?{range}"),
        format!("/api/admin/dashboard/chart/csat?{range}"),
        format!("/api/admin/dashboard/csv/csat?{range}"),
        "/api/admin/dashboard/csv/gaps".to_string(),
        format!("/api/admin/dashboard/gaps?{range}"),
    ] {
        assert_eq!(c.get_text(&Who::Anonymous, &path).await.0, 401, "{path}");
        assert_eq!(
            c.get_text(&bob, &path).await.0,
            403,
            "{path}: bob is not an admin"
        );
        assert_eq!(
            c.get_text(&Who::Token(BOB_TOKEN), &path).await.0,
            403,
            "{path}"
        );
        assert_eq!(
            c.get_text(&Who::Token(ALICE_TOKEN), &path).await.0,
            200,
            "{path}"
        );
    }

    // The totals are the report for the range; the range ends today, so
    // they are also what `report --since` prints.
    let d = c
        .json(&alice, &format!("/api/admin/dashboard?{range}"))
        .await;
    let end = MARCH_10 + 3 * DAY;
    assert_eq!(d["totals"], report_for(&t, MARCH_10, Some(end), None).await);
    assert_eq!(d["totals"], report_for(&t, MARCH_10, None, None).await);
    assert_eq!(d["totals"]["conversations"], 3);
    assert_eq!(d["totals"]["escalated"], 1);
    assert_eq!(d["totals"]["csat_responses"], 1);
    assert_eq!(d["totals"]["csat_score"], 100.0);
    assert_eq!(d["totals"]["first_response_secs_p50"], 60.0);
    assert_eq!((d["up"].clone(), d["down"].clone()), (json!(1), json!(1)));
    assert_eq!(d["volume"], json!({HOSTILE: 1, "web": 2}));
    let gaps = report::gaps(
        &t.core.store,
        &Filter {
            since: Some(MARCH_10),
            until: Some(end),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert!(!gaps.is_empty(), "the 👎 question is a gap");
    assert_eq!(d["gaps"], serde_json::to_value(&gaps).unwrap());
    let page = c
        .json(&alice, &format!("/api/admin/dashboard/gaps?{range}"))
        .await;
    assert_eq!(
        page["gaps"], d["gaps"],
        "the gap page lists the same groups"
    );
    let none = c
        .json(
            &alice,
            "/api/admin/dashboard/gaps?from=2026-03-12&to=2026-03-12",
        )
        .await;
    assert_eq!(none["gaps"], json!([]), "the 👎 was on March 10");

    // Each day's point is the report for that day.
    let series = &d["series"];
    assert_eq!(
        series["csat"]["days"],
        json!(["2026-03-10", "2026-03-11", "2026-03-12"])
    );
    for (i, day) in (0..3).map(|i| (i, MARCH_10 + i * DAY)) {
        let r = report_for(&t, day, Some(day + DAY), None).await;
        let i = i as usize;
        assert_eq!(series["csat"]["lines"][0][1][i], r["csat_score"], "day {i}");
        assert_eq!(
            series["containment"]["lines"][1][1][i], r["escalation_rate"],
            "day {i}"
        );
        assert_eq!(
            series["first_response"]["lines"][0][1][i],
            r["first_response_secs_p50"]
        );
    }
    assert_eq!(series["csat"]["lines"][0][1], json!([100.0, null, null]));

    // The CSV says the same.
    let (status, kind, body) = c
        .get_text(&alice, &format!("/api/admin/dashboard/csv/csat?{range}"))
        .await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(
        body,
        "day,csat_score\n2026-03-10,100\n2026-03-11,\n2026-03-12,\n"
    );
    let (_, _, body) = c
        .get_text(
            &alice,
            &format!("/api/admin/dashboard/csv/channels?{range}"),
        )
        .await;
    assert_eq!(body, format!("name,value\n{HOSTILE},1\nweb,2\n"));

    // The channel filter is the report's.
    let web = c
        .json(&alice, &format!("/api/admin/dashboard?{range}&channel=web"))
        .await;
    assert_eq!(
        web["totals"],
        report_for(&t, MARCH_10, Some(end), Some("web")).await
    );
    assert_eq!(web["totals"]["conversations"], 2);
    let march_12 = c
        .json(&alice, "/api/admin/dashboard?from=2026-03-12&to=2026-03-12")
        .await;
    assert_eq!(march_12["totals"]["conversations"], 1);
    assert_eq!(march_12["totals"]["csat_responses"], 0);

    // Charts are SVG, and a channel's name is text, not markup.
    let (status, kind, svg) = c
        .get_text(
            &alice,
            &format!("/api/admin/dashboard/chart/channels?{range}"),
        )
        .await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "image/svg+xml; charset=utf-8")
    );
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
    assert!(svg.contains("&lt;b&gt;tg&amp;co&lt;/b&gt;"), "{svg}");
    assert!(!svg.contains("<b>"), "{svg}");

    // Mistakes are named.
    let (status, _, body) = c
        .get_text(&alice, "/api/admin/dashboard?from=10/03/2026")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("YYYY-MM-DD"), "{body}");
    assert_eq!(
        c.get_text(&alice, "/api/admin/dashboard?from=2026-03-12&to=2026-03-10")
            .await
            .0,
        422
    );
    assert_eq!(
        c.get_text(&alice, "/api/admin/dashboard/chart/nothing")
            .await
            .0,
        404
    );
    t.stop().await;
}
