//! Agents managed from the console (issue 15): an admin adds an agent and
//! gets an invite link (one use, expires, withdrawn by a newer one or by
//! disabling), changes a console agent's role, disables anyone (refused
//! everywhere at once, sessions ended) and enables them again; the console
//! knows who is online for transfers; another agent cannot act on a chat
//! someone else has. On SQLite and PostgreSQL.

use crate::common;

use std::sync::Once;
use std::time::Duration;

use common::console::{Console, Who};
use common::{Options, TestApp, spawn_app};
use serde_json::{Value, json};
use switchboard::assistant::Turn;
use switchboard::clock::{ManualClock, Millis};

const ALICE_TOKEN: &str = "alice-token-accounts";
const BOB_TOKEN: &str = "bob-token-accounts";
const ALICE_PASSWORD: &str = "alice's accounts password";
const BOB_PASSWORD: &str = "bob's accounts password!";
const ANA_PASSWORD: &str = "ana chose this password";
const PASSWORDS: &[(&str, &str)] = &[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)];
/// 2026-03-10T00:00:00Z.
const START: Millis = 1_773_100_800_000;

static ENV: Once = Once::new();

fn options() -> Options {
    ENV.call_once(|| {
        // SAFETY: every test calls this first, and nothing in this test
        // binary reads the environment before the Once has completed.
        unsafe {
            std::env::set_var("ACCOUNTS_ALICE_TOKEN", ALICE_TOKEN);
            std::env::set_var("ACCOUNTS_BOB_TOKEN", BOB_TOKEN);
        }
    });
    Options::new().settings(
        r#"
[web]
cookie_secure = false
agent_burst = 200
[csat]
enabled = false
[[agents]]
name = "alice"
admin = true
token_env = "ACCOUNTS_ALICE_TOKEN"
[[agents]]
name = "bob"
telegram_id = 4242
token_env = "ACCOUNTS_BOB_TOKEN"
"#,
    )
}

/// The token in an invite's `path` (`/agent#invite=TOKEN`).
fn token_of(invite: &Value) -> String {
    let path = invite["path"].as_str().unwrap();
    path.strip_prefix("/agent#invite=")
        .unwrap_or_else(|| panic!("{path}"))
        .to_string()
}

/// Uses an invite anonymously: the status and, on success, the session.
async fn accept(c: &Console, token: &str, password: &str) -> (u16, Option<Who>) {
    let r = c
        .http
        .post(format!("{}/api/agent/invite", c.base))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        (status, Some(Console::session_of(r).await))
    } else {
        (status, None)
    }
}

/// Signs in, returning only the status.
async fn sign_in_status(c: &Console, name: &str, password: &str) -> u16 {
    c.post(
        &Who::Anonymous,
        "/api/agent/session",
        json!({"name": name, "password": password}),
    )
    .await
    .0
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn settings_row<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {view}"))
}

async fn handed_off(t: &TestApp, customer: &str) -> switchboard::ids::ConversationId {
    let reply = t
        .core
        .assistant
        .handle(
            Turn {
                channel: "web".into(),
                customer_id: customer.into(),
                customer_name: Some(customer.into()),
                thread: format!("thread-{customer}"),
                platform_message_id: None,
                text: "I want to talk to a human".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert!(reply.handoff, "{reply:?}");
    reply.conversation_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_invite_change_roles_and_disable_agents() {
    accounts_flow(options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn the_accounts_flow_on_postgres() {
    accounts_flow(options().postgres()).await;
}

async fn accounts_flow(options: Options) {
    let clock = ManualClock::new(START);
    let t = spawn_app(options.clock(clock.clone())).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let bob = c.sign_in("bob", BOB_PASSWORD).await;
    let add = "/api/admin/settings/agents";

    // Names are plain and new.
    for bad in ["", "a b", "discord:1", "<b>x</b>", "ä"] {
        let (status, body) = c.post(&alice, add, json!({"name": bad})).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
    }
    let (status, body) = c.post(&alice, add, json!({"name": "bob"})).await;
    assert_eq!(status, 409, "{body}");

    // Added: an invite link comes back; ana has no password until she uses it.
    let (status, invite) = c.post(&alice, add, json!({"name": "ana"})).await;
    assert_eq!(status, 201, "{invite}");
    assert_eq!(invite["agent"], "ana");
    let token = token_of(&invite);
    assert_eq!(sign_in_status(&c, "ana", ANA_PASSWORD).await, 401);
    // A short password is refused without using the link up.
    assert_eq!(accept(&c, &token, "short").await.0, 422);
    assert_eq!(accept(&c, "not-a-token", ANA_PASSWORD).await.0, 410);
    let (status, ana) = accept(&c, &token, ANA_PASSWORD).await;
    assert_eq!(status, 200);
    let ana = ana.unwrap();
    assert_eq!(c.get(&ana, "/api/agent/queue").await.0, 200);
    assert_eq!(c.get(&ana, "/api/admin/settings").await.0, 403, "an agent");
    // Once only.
    assert_eq!(accept(&c, &token, "another password!").await.0, 410);
    assert_eq!(sign_in_status(&c, "ana", ANA_PASSWORD).await, 200);

    // Everyone sees ana among the agents, and who is online.
    let (_, agents) = c.get(&bob, "/api/agent/agents").await;
    assert_eq!(names(&agents["agents"]), ["alice", "bob", "ana"]);
    let mut online = names(&agents["online"]);
    online.sort_unstable();
    assert_eq!(online, ["alice", "ana", "bob"]);
    let (status, view) = c.get(&alice, "/api/admin/settings").await;
    assert_eq!(status, 200, "{view}");
    let row = settings_row(&view, "ana");
    assert_eq!(
        (
            &row["origin"],
            &row["admin"],
            &row["password_set"],
            &row["disabled"]
        ),
        (
            &json!("console"),
            &json!(false),
            &json!(true),
            &json!(false)
        ),
        "{row}"
    );
    assert_eq!(settings_row(&view, "bob")["origin"], "config");
    // Two minutes later only those still using the console are online.
    clock
        .advance((switchboard::auth::ONLINE_WINDOW + Duration::from_secs(1)).as_millis() as Millis);
    let (_, agents) = c.get(&alice, "/api/agent/agents").await;
    assert_eq!(names(&agents["online"]), ["alice"], "{agents}");

    // Roles: a console agent's can change (her sessions end); a configured
    // agent's cannot, and nobody demotes themselves.
    let (status, _) = c
        .post(&alice, &format!("{add}/ana/role"), json!({"admin": true}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(c.get(&ana, "/api/agent/queue").await.0, 401);
    let ana = c.sign_in("ana", ANA_PASSWORD).await;
    assert_eq!(
        c.get(&ana, "/api/admin/settings").await.0,
        200,
        "now an admin"
    );
    let (status, body) = c
        .post(&alice, &format!("{add}/bob/role"), json!({"admin": true}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = c
        .post(&ana, &format!("{add}/ana/role"), json!({"admin": false}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        c.post(
            &alice,
            &format!("{add}/nobody/role"),
            json!({"admin": true})
        )
        .await
        .0,
        404
    );

    // Disabling: not yourself; anyone else is refused everywhere at once.
    let (status, _) = c
        .post(
            &alice,
            &format!("{add}/alice/disabled"),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 409);
    let conversation = handed_off(&t, "carl").await;
    let path = format!("/api/agent/conversations/{conversation}");
    assert_eq!(
        c.post(&alice, &format!("{path}/claim"), json!({})).await.0,
        200
    );
    // Another agent cannot act on alice's chat (only leave notes on it).
    for (action, body) in [
        ("reply", json!({"text": "bob barging in"})),
        ("resolve", json!({})),
        ("give-back", json!({})),
        ("transfer", json!({"agent": "bob"})),
        ("canned", json!({"name": "greeting"})),
    ] {
        let (status, refused) = c.post(&bob, &format!("{path}/{action}"), body).await;
        assert_eq!(status, 409, "bob {action}: {refused}");
    }
    let (status, _) = c
        .post(&bob, &format!("{path}/note"), json!({"text": "fyi"}))
        .await;
    assert_eq!(status, 200);
    let messages = t.core.store.messages(&conversation).await.unwrap();
    assert!(!messages.iter().any(|m| m.text.contains("barging")));
    let (_, invite) = c
        .post(&alice, &format!("{add}/bob/invite"), json!({}))
        .await;
    let bobs_link = token_of(&invite);
    let (status, _) = c
        .post(
            &alice,
            &format!("{add}/bob/disabled"),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        c.get(&bob, "/api/agent/queue").await.0,
        401,
        "session ended"
    );
    assert_eq!(
        c.get(&Who::Token(BOB_TOKEN), "/api/agent/queue").await.0,
        401,
        "API token refused"
    );
    assert_eq!(sign_in_status(&c, "bob", BOB_PASSWORD).await, 401);
    assert!(t.core.desk.agents().by_telegram(4242).is_none(), "Telegram");
    let (status, body) = c
        .post(&alice, &format!("{path}/transfer"), json!({"agent": "bob"}))
        .await;
    assert_eq!(status, 422, "no transfer to a disabled agent: {body}");
    let (_, agents) = c.get(&alice, "/api/agent/agents").await;
    assert_eq!(names(&agents["agents"]), ["alice", "ana"]);
    assert_eq!(
        c.post(&alice, &format!("{add}/bob/invite"), json!({}))
            .await
            .0,
        404
    );
    let (_, view) = c.get(&alice, "/api/admin/settings").await;
    assert_eq!(settings_row(&view, "bob")["disabled"], true);

    // Enabled again: his password still works; the link made before he was
    // disabled does not.
    let (status, _) = c
        .post(
            &alice,
            &format!("{add}/bob/disabled"),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(sign_in_status(&c, "bob", BOB_PASSWORD).await, 200);
    assert!(t.core.desk.agents().by_telegram(4242).is_some());
    assert_eq!(accept(&c, &bobs_link, "bob's new password").await.0, 410);

    // A newer link withdraws the older one; links expire after a week.
    let (_, first) = c
        .post(&alice, &format!("{add}/bob/invite"), json!({}))
        .await;
    let (_, second) = c
        .post(&alice, &format!("{add}/bob/invite"), json!({}))
        .await;
    assert_eq!(
        accept(&c, &token_of(&first), "bob's new password").await.0,
        410
    );
    clock.advance(switchboard::auth::INVITE_TTL.as_millis() as Millis + 1);
    assert_eq!(
        accept(&c, &token_of(&second), "bob's new password").await.0,
        410
    );
    // (A week also ended alice's session.)
    assert_eq!(c.get(&alice, "/api/agent/queue").await.0, 401);
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let (_, third) = c
        .post(&alice, &format!("{add}/bob/invite"), json!({}))
        .await;
    let (status, bob) = accept(&c, &token_of(&third), "bob's new password").await;
    assert_eq!(status, 200);
    assert_eq!(c.get(&bob.unwrap(), "/api/agent/queue").await.0, 200);
    assert_eq!(
        sign_in_status(&c, "bob", BOB_PASSWORD).await,
        401,
        "replaced"
    );

    // Another process on the same database sees the same agents.
    let other = switchboard::auth::ConsoleAuth::new(
        t.core.store.clone(),
        switchboard::agents::Agents::from_settings(&t.core.settings),
    );
    other.reload().await.unwrap();
    let ana = other.agents().by_name("ana").unwrap();
    assert!(ana.admin);
    t.stop().await;
}
