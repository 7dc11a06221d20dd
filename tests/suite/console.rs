//! The agent and admin console over HTTP (issue 15): the knowledge-base
//! editor (admins only; every route refused to anonymous requests and to
//! agents), its stale-edit refusal, the change record and reverts, untrusted
//! slugs; and the inbox (tabs, search, the timeline of events).

use crate::common;

use std::sync::Once;

use common::console::{Console, Who};
use common::{Options, REFUNDS, REFUNDS_PATH, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::assistant::Turn;

const ALICE_TOKEN: &str = "alice-token-console";
const BOB_TOKEN: &str = "bob-token-console";
const ALICE_PASSWORD: &str = "alice's console password";
const BOB_PASSWORD: &str = "bob's console password!";
const PASSWORDS: &[(&str, &str)] = &[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)];

static ENV: Once = Once::new();

fn options() -> Options {
    ENV.call_once(|| {
        // SAFETY: every test calls this first, and nothing in this test
        // binary reads the environment before the Once has completed.
        unsafe {
            std::env::set_var("CONSOLE_ALICE_TOKEN", ALICE_TOKEN);
            std::env::set_var("CONSOLE_BOB_TOKEN", BOB_TOKEN);
        }
    });
    Options::new().settings(
        r#"
[web]
cookie_secure = false
# Every admin route is tried by four kinds of caller in one test.
agent_burst = 200
[[agents]]
name = "alice"
admin = true
token_env = "CONSOLE_ALICE_TOKEN"
[[agents]]
name = "bob"
token_env = "CONSOLE_BOB_TOKEN"
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

/// The bot's answer to `question` from a new customer.
async fn answer(t: &TestApp, customer: &str, question: &str) -> switchboard::assistant::Reply {
    t.core
        .assistant
        .handle(turn(customer, question), None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_refuses_anonymous_requests_and_agents() {
    let t = spawn_app(options()).await;
    let c = Console::new(&t, PASSWORDS).await;
    let bob = c.sign_in("bob", BOB_PASSWORD).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let (_, opened) = c
        .get(&alice, "/api/admin/kb/article?slug=billing/refunds")
        .await;
    let hash = opened["hash"].as_str().unwrap().to_string();
    let draft = json!({"slug": "billing/refunds", "front": {"title": "Refunds"}, "body": "# Refunds\n\nChanged by someone who may not.\n", "hash": hash});
    // A change by alice, so that the change routes have something to name.
    let (status, saved) = c
        .post(
            &alice,
            "/api/admin/kb/save",
            json!({"slug": "notes", "body": "# Notes\n\nAdmins only.\n", "hash": null}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let change = saved["change"].as_str().unwrap().to_string();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/kb/articles".into(), None),
        (Method::GET, "/api/admin/kb/articles?q=refund".into(), None),
        (
            Method::GET,
            "/api/admin/kb/article?slug=billing/refunds".into(),
            None,
        ),
        (
            Method::POST,
            "/api/admin/kb/preview".into(),
            Some(draft.clone()),
        ),
        (
            Method::POST,
            "/api/admin/kb/save".into(),
            Some(draft.clone()),
        ),
        (
            Method::POST,
            "/api/admin/kb/rename".into(),
            Some(json!({"from": "billing/refunds", "to": "stolen", "hash": hash})),
        ),
        (
            Method::POST,
            "/api/admin/kb/delete".into(),
            Some(json!({"slug": "billing/refunds", "hash": hash})),
        ),
        (Method::GET, "/api/admin/kb/changes".into(), None),
        (Method::GET, format!("/api/admin/kb/changes/{change}"), None),
        (
            Method::POST,
            format!("/api/admin/kb/changes/{change}/revert"),
            None,
        ),
        (Method::GET, "/api/admin/settings".into(), None),
        (
            Method::POST,
            "/api/admin/settings/agents/alice/password".into(),
            Some(json!({"password": "taken over by bob"})),
        ),
        (
            Method::POST,
            "/api/admin/settings/agents".into(),
            Some(json!({"name": "mallory", "admin": true})),
        ),
        (
            Method::POST,
            "/api/admin/settings/agents/alice/invite".into(),
            None,
        ),
        (
            Method::POST,
            "/api/admin/settings/agents/bob/role".into(),
            Some(json!({"admin": true})),
        ),
        (
            Method::POST,
            "/api/admin/settings/agents/alice/disabled".into(),
            Some(json!({"disabled": true})),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, _) = c
            .call(&Who::Anonymous, method.clone(), path, body.clone())
            .await;
        assert_eq!(status, 401, "anonymous {method} {path}");
        for agent in [bob.clone(), Who::Token(BOB_TOKEN)] {
            let (status, refused) = c.call(&agent, method.clone(), path, body.clone()).await;
            assert_eq!(status, 403, "agent {method} {path}: {refused}");
            assert_eq!(refused["error"], "only admins may do this");
        }
        // A forged cookie is nobody.
        let forged = Who::Session {
            cookie: "switchboard_session=00ff".into(),
            csrf: "x".into(),
        };
        assert_eq!(
            c.call(&forged, method.clone(), path, body.clone()).await.0,
            401
        );
    }
    // Nothing was changed by the refused requests.
    let on_disk = std::fs::read_to_string(t.deployment().kb_path().join(REFUNDS_PATH)).unwrap();
    assert_eq!(on_disk, REFUNDS);
    assert!(!t.deployment().kb_path().join("stolen.md").exists());
    assert!(t.deployment().kb_path().join("notes.md").exists());
    let agents = t.core.desk.agents();
    assert!(agents.by_name("mallory").is_none());
    assert!(agents.by_name("alice").is_some_and(|a| a.admin));
    assert!(agents.by_name("bob").is_some_and(|a| !a.admin));
    // An admin's session without its CSRF token cannot change anything.
    let Who::Session { cookie, .. } = &alice else {
        unreachable!()
    };
    let r = c
        .http
        .post(format!("{}/api/admin/kb/save", c.base))
        .header("cookie", cookie)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Every route answers the admin, by session or by token.
    for (method, path, _) in routes.iter().filter(|r| r.0 == Method::GET) {
        for admin in [alice.clone(), Who::Token(ALICE_TOKEN)] {
            let (status, body) = c.call(&admin, method.clone(), path, None).await;
            assert_eq!(status, 200, "admin {method} {path}: {body}");
        }
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edit_is_answered_from_at_once_refused_when_stale_and_revertible() {
    edit_flow(options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn the_edit_flow_on_postgres() {
    edit_flow(options().postgres()).await;
}

async fn edit_flow(options: Options) {
    let t = spawn_app(options).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let file = t.deployment().kb_path().join(REFUNDS_PATH);

    // The bot cites the article; the customer liked the answer.
    let before = answer(&t, "c1", "how do I get a refund").await;
    assert!(before.answer.contains("14 days"), "{}", before.answer);
    assert!(
        t.core
            .store
            .set_feedback(
                &before.conversation_id,
                before.message_id.as_ref().unwrap(),
                1
            )
            .await
            .unwrap()
    );
    let (status, list) = c.get(&alice, "/api/admin/kb/articles?q=refund").await;
    assert_eq!(status, 200);
    let row = &list["articles"][0];
    assert_eq!(row["slug"], "billing/refunds", "{list}");
    assert_eq!(
        (
            row["cited"].as_i64(),
            row["up"].as_i64(),
            row["down"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{row}"
    );
    assert_eq!(row["tags"], json!(["billing"]));
    assert!(
        row["edited_at"].as_i64().is_some() && row["edited_by"].is_null(),
        "{row}"
    );
    assert_eq!(
        (row["problems"].as_i64(), row["broken"].as_bool()),
        (Some(0), Some(false))
    );
    // A file `kb check` cannot load is listed, so that it can be fixed here.
    std::fs::write(t.deployment().kb_path().join("broken.md"), "   \n").unwrap();
    let (_, list) = c.get(&alice, "/api/admin/kb/articles").await;
    let broken = list["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "broken")
        .cloned();
    assert_eq!(
        broken.map(|b| (b["broken"].clone(), b["problems"].clone())),
        Some((json!(true), json!(1))),
        "{list}"
    );
    let (status, opened) = c.get(&alice, "/api/admin/kb/article?slug=broken").await;
    assert_eq!(
        (status, opened["problems"][0]["fatal"].clone()),
        (200, json!(true)),
        "{opened}"
    );
    std::fs::remove_file(t.deployment().kb_path().join("broken.md")).unwrap();

    // Opened: front matter as fields, the body, its rendering.
    let (status, opened) = c
        .get(&alice, "/api/admin/kb/article?slug=billing/refunds")
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["front"]["title"], "Refunds");
    assert_eq!(opened["front"]["url"], "https://help.example/refunds");
    assert!(opened["body"].as_str().unwrap().starts_with("# Refunds"));
    assert_eq!(opened["problems"], json!([]));
    let hash = opened["hash"].as_str().unwrap().to_string();

    // The preview renders as customers see answers (raw HTML escaped) and
    // shows `kb check` problems before saving.
    let new_body = "# Refunds\n\n## How to get a refund\nTo get a refund, open Settings → Billing → Refund within **30 days** of the charge. <script>alert(1)</script>\n";
    let mut front = opened["front"].clone();
    let (status, preview) = c
        .post(
            &alice,
            "/api/admin/kb/preview",
            json!({"slug": "billing/refunds", "front": front, "body": new_body}),
        )
        .await;
    assert_eq!(status, 200);
    let html = preview["html"].as_str().unwrap();
    assert!(
        html.contains("<strong>30 days</strong>") && !html.contains("<script>"),
        "{html}"
    );
    front["title"] = json!("Reset your password");
    let (_, clash) = c
        .post(
            &alice,
            "/api/admin/kb/preview",
            json!({"slug": "billing/refunds", "front": front, "body": new_body}),
        )
        .await;
    assert!(
        clash["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("also used by password"),
        "{clash}"
    );
    let (_, empty) = c
        .post(
            &alice,
            "/api/admin/kb/preview",
            json!({"slug": "billing/refunds", "body": "   "}),
        )
        .await;
    assert_eq!(empty["problems"][0]["fatal"], true, "{empty}");
    let (status, refused) = c
        .post(
            &alice,
            "/api/admin/kb/save",
            json!({"slug": "billing/refunds", "body": "   ", "hash": hash}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), REFUNDS);

    // Saved: the file changes, the index reloads before the answer comes.
    front["title"] = json!("Refunds");
    let (status, saved) = c
        .post(
            &alice,
            "/api/admin/kb/save",
            json!({"slug": "billing/refunds", "front": front, "body": new_body, "hash": hash}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(
        on_disk.starts_with("---\ntitle: Refunds\n") && on_disk.ends_with(new_body),
        "{on_disk}"
    );
    let after = answer(&t, "c2", "how do I get a refund").await;
    assert!(after.answer.contains("30 days"), "{}", after.answer);
    // Articles larger than `web.max_body_bytes` (64 KB) can be saved.
    let long = format!(
        "# Warranty\n\n## Terms\n{}\n",
        "Warranty terms apply. ".repeat(8_000)
    );
    let (status, big) = c
        .post(
            &alice,
            "/api/admin/kb/save",
            json!({"slug": "warranty", "body": long, "hash": null}),
        )
        .await;
    assert_eq!(status, 200, "{big}");
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");

    // A second editor still on the old version is refused, with a diff.
    let (status, stale) = c
        .post(
            &alice,
            "/api/admin/kb/save",
            json!({"slug": "billing/refunds", "body": "# Refunds\n\nMine.\n", "hash": hash}),
        )
        .await;
    assert_eq!(status, 409, "{stale}");
    let diff = stale["diff"].as_str().unwrap();
    assert!(
        diff.contains("-To get a refund, open Settings → Billing → Refund within **30 days**")
            && diff.contains("+Mine."),
        "{diff}"
    );
    assert_eq!(stale["current_hash"], saved["hash"]);
    assert!(std::fs::read_to_string(&file).unwrap().ends_with(new_body));
    // So is a save over a file changed on disk by someone else.
    std::fs::write(&file, REFUNDS.replace("14 days", "21 days")).unwrap();
    let (status, _) = c
        .post(&alice, "/api/admin/kb/save", json!({"slug": "billing/refunds", "front": front, "body": "# R\n\nx\n", "hash": saved["hash"]}))
        .await;
    assert_eq!(status, 409);
    std::fs::write(&file, &on_disk).unwrap();

    // Recorded: who, before and after; listed as the last edit.
    let (_, changes) = c
        .get(&alice, "/api/admin/kb/changes?slug=billing/refunds")
        .await;
    let changes = changes["changes"].as_array().unwrap().clone();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0]["agent"].as_str(), changes[0]["action"].as_str()),
        (Some("alice"), Some("update"))
    );
    let id = changes[0]["id"].as_str().unwrap();
    let (_, change) = c.get(&alice, &format!("/api/admin/kb/changes/{id}")).await;
    assert_eq!(change["change"]["before"], REFUNDS);
    assert_eq!(change["change"]["after"], on_disk.as_str());
    assert!(
        change["diff"]
            .as_str()
            .unwrap()
            .contains("+To get a refund, open Settings → Billing → Refund within **30 days**")
    );
    let (_, list) = c.get(&alice, "/api/admin/kb/articles").await;
    let row = list["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "billing/refunds")
        .unwrap()
        .clone();
    assert_eq!(row["edited_by"], "alice");

    // Reverted: the old text is back and answered from; the revert is a
    // change of its own, which can itself be reverted.
    let (status, reverted) = c
        .post(
            &alice,
            &format!("/api/admin/kb/changes/{id}/revert"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{reverted}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), REFUNDS);
    assert!(
        answer(&t, "c3", "how do I get a refund")
            .await
            .answer
            .contains("14 days")
    );
    let (_, changes) = c
        .get(&alice, "/api/admin/kb/changes?slug=billing/refunds")
        .await;
    assert_eq!(changes["changes"][0]["action"], "revert");
    assert_eq!(changes["changes"][0]["reverts"], id);
    // Reverting the same change again finds the file no longer as it left it.
    let (status, _) = c
        .post(
            &alice,
            &format!("/api/admin/kb/changes/{id}/revert"),
            json!(null),
        )
        .await;
    assert_eq!(status, 409);
    let undo = changes["changes"][0]["id"].as_str().unwrap();
    let (status, _) = c
        .post(
            &alice,
            &format!("/api/admin/kb/changes/{undo}/revert"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), on_disk);
    let dep = t.shutdown().await;
    dep.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_are_added_renamed_and_deleted_and_each_can_be_undone() {
    let t = spawn_app(options()).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let kb = t.deployment().kb_path().to_path_buf();
    let shipping = json!({"slug": "shipping", "front": {"title": "Shipping", "tags": ["orders", "delivery"]},
        "body": "# Shipping\n\n## How long does delivery take\nParcels arrive within 3 working days by courier.\n", "hash": null});
    let (status, created) = c.post(&alice, "/api/admin/kb/save", shipping.clone()).await;
    assert_eq!(status, 200, "{created}");
    assert!(kb.join("shipping.md").is_file());
    assert!(
        answer(&t, "c1", "how long does delivery take")
            .await
            .answer
            .contains("3 working days")
    );
    // "New" over an existing article is a conflict, not an overwrite.
    let (status, _) = c.post(&alice, "/api/admin/kb/save", shipping.clone()).await;
    assert_eq!(status, 409);

    let hash = created["hash"].as_str().unwrap();
    let (status, renamed) = c
        .post(
            &alice,
            "/api/admin/kb/rename",
            json!({"from": "shipping", "to": "orders/shipping", "hash": hash}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert!(!kb.join("shipping.md").exists() && kb.join("orders/shipping.md").is_file());
    assert!(
        t.core.kb.article("orders/shipping").is_some() && t.core.kb.article("shipping").is_none()
    );
    // Renaming onto an existing article is refused.
    let (status, _) = c
        .post(
            &alice,
            "/api/admin/kb/rename",
            json!({"from": "orders/shipping", "to": "password", "hash": hash}),
        )
        .await;
    assert_eq!(status, 409);

    let (status, deleted) = c
        .post(
            &alice,
            "/api/admin/kb/delete",
            json!({"slug": "orders/shipping", "hash": hash}),
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert!(!kb.join("orders/shipping.md").exists());
    assert!(t.core.kb.article("orders/shipping").is_none());
    // A stale delete (already gone) is a conflict.
    let (status, _) = c
        .post(
            &alice,
            "/api/admin/kb/delete",
            json!({"slug": "orders/shipping", "hash": hash}),
        )
        .await;
    assert_eq!(status, 409);

    // Undo the delete, then the rename: back where it was created.
    let (_, revert) = c
        .post(
            &alice,
            &format!(
                "/api/admin/kb/changes/{}/revert",
                deleted["change"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(revert["slug"], "orders/shipping", "{revert}");
    assert!(kb.join("orders/shipping.md").is_file());
    let (status, revert) = c
        .post(
            &alice,
            &format!(
                "/api/admin/kb/changes/{}/revert",
                renamed["change"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{revert}");
    assert!(kb.join("shipping.md").is_file() && !kb.join("orders/shipping.md").exists());
    let (_, all) = c.get(&alice, "/api/admin/kb/changes").await;
    let actions: Vec<&str> = all["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["revert", "revert", "delete", "rename", "create"]);
    // Undo the creation: the article is gone.
    let (status, _) = c
        .post(
            &alice,
            &format!(
                "/api/admin/kb/changes/{}/revert",
                created["change"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!kb.join("shipping.md").exists() && t.core.kb.article("shipping").is_none());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slugs_from_the_browser_never_reach_outside_the_folder() {
    let t = spawn_app(options()).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let outside = t.deployment().path().join("escape.md");
    for slug in [
        "../escape",
        "/tmp/escape",
        "a/../../escape",
        ".hidden",
        "x\\..\\escape",
        "",
        "a//b",
        "notes.md",
    ] {
        let (status, body) = c
            .post(
                &alice,
                "/api/admin/kb/save",
                json!({"slug": slug, "body": "# Escape\n\nText.\n", "hash": null}),
            )
            .await;
        assert_eq!(status, 422, "{slug:?}: {body}");
        let (status, _) = c
            .get(
                &alice,
                &format!("/api/admin/kb/article?slug={}", urlencode(slug)),
            )
            .await;
        assert_eq!(status, 422, "{slug:?}");
        let (status, _) = c
            .post(
                &alice,
                "/api/admin/kb/rename",
                json!({"from": "password", "to": slug, "hash": "x"}),
            )
            .await;
        assert_eq!(status, 422, "{slug:?}");
    }
    let (status, _) = c
        .post(
            &alice,
            "/api/admin/kb/delete",
            json!({"slug": "../kb/password", "hash": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(!outside.exists());
    assert!(t.deployment().kb_path().join("password.md").exists());
    t.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_by_tab_searches_and_tells_what_happened() {
    inbox_flow(options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn the_inbox_on_postgres() {
    inbox_flow(options().postgres()).await;
}

async fn inbox_flow(options: Options) {
    let t = spawn_app(options).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let bob = Who::Token(BOB_TOKEN);
    answer(&t, "ann", "how do I get a refund").await;
    let handed = answer(&t, "ann", "I want a human about my parcel").await;
    assert!(handed.handoff, "{handed:?}");
    let id = handed.conversation_id.clone();
    answer(&t, "ben", "how do I reset my password").await;
    assert_eq!(c.get(&Who::Anonymous, "/api/agent/inbox").await.0, 401);
    assert_eq!(c.get(&Who::Anonymous, "/api/agent/agents").await.0, 401);
    let (_, agents) = c.get(&bob, "/api/agent/agents").await;
    assert_eq!(agents["agents"], json!(["alice", "bob"]));
    // alice signed in to the console; bob only uses his API token (a
    // script is not someone to transfer to).
    assert_eq!(agents["online"], json!(["alice"]), "{agents}");
    // The customer panel: ann's conversations, newest first, this one too.
    let (status, opened) = c.get(&bob, &format!("/api/agent/conversations/{id}")).await;
    assert_eq!(status, 200, "{opened}");
    let history = opened["customer_conversations"].as_array().unwrap();
    assert_eq!(history[0]["id"], id.as_str(), "{opened}");
    assert_eq!(history[0]["status"], "waiting_for_agent", "{opened}");
    assert!(history.iter().all(|h| h["csat"].is_null()), "{opened}");
    // The canned replies for the "/" list, as each agent would send them.
    assert_eq!(c.get(&Who::Anonymous, "/api/agent/canned").await.0, 401);
    let (status, canned) = c.get(&bob, "/api/agent/canned").await;
    assert_eq!(status, 200, "{canned}");
    let greeting = canned
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "greeting")
        .unwrap_or_else(|| panic!("{canned}"));
    let text = greeting["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hi, this is bob") && !text.contains("{{"),
        "{text}"
    );

    let ids = |v: &Value| -> Vec<String> {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, waiting) = c.get(&alice, "/api/agent/inbox?tab=waiting").await;
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(ids(&waiting), vec![id.clone()]);
    let row = &waiting["conversations"][0];
    assert_eq!(row["customer"], "Customer ann");
    assert_eq!(row["channel"], "web");
    assert!(
        row["handoff_reason"].is_string() && row["handoff_at"].is_i64(),
        "{row}"
    );
    assert!(
        row["last_text"].is_string() && waiting["now"].is_i64(),
        "{row}"
    );
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?tab=mine").await.1),
        Vec::<String>::new()
    );

    let (status, _) = c
        .post(
            &alice,
            &format!("/api/agent/conversations/{id}/claim"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?tab=mine").await.1),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&c.get(&bob, "/api/agent/inbox?tab=mine").await.1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&c.get(&bob, "/api/agent/inbox?tab=open").await.1),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&c.get(&bob, "/api/agent/inbox?tab=waiting").await.1),
        Vec::<String>::new()
    );
    let (_, _) = c
        .post(
            &alice,
            &format!("/api/agent/conversations/{id}/reply"),
            json!({"text": "Hello ann, checking your parcel."}),
        )
        .await;
    let (status, _) = c
        .post(
            &alice,
            &format!("/api/agent/conversations/{id}/resolve"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    let (_, resolved) = c.get(&alice, "/api/agent/inbox?tab=resolved").await;
    assert_eq!(ids(&resolved), vec![id.clone()]);
    assert_eq!(
        resolved["conversations"][0]["last_text"],
        "Hello ann, checking your parcel."
    );

    // Search: customer names and message text, with filters; wildcards
    // are literal.
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?q=parcel").await.1),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?q=ANN").await.1),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&c
            .get(&alice, "/api/agent/inbox?q=parcel&status=resolved")
            .await
            .1),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&c
            .get(&alice, "/api/agent/inbox?q=parcel&status=bot")
            .await
            .1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&c
            .get(&alice, "/api/agent/inbox?q=parcel&channel=telegram")
            .await
            .1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?q=%25").await.1),
        Vec::<String>::new()
    );
    let (_, ben) = c
        .get(&alice, "/api/agent/inbox?q=password&status=bot")
        .await;
    assert_eq!(ben["conversations"][0]["customer"], "Customer ben", "{ben}");
    assert_eq!(c.get(&alice, "/api/agent/inbox?tab=nonsense").await.0, 400);

    // The timeline tells what happened, in order.
    let (_, conversation) = c
        .get(&alice, &format!("/api/agent/conversations/{id}"))
        .await;
    let lines: Vec<String> = conversation["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| match l["kind"].as_str().unwrap() {
            "event" => format!("event: {}", l["text"].as_str().unwrap()),
            _ => format!(
                "{}: {}",
                l["role"].as_str().unwrap(),
                l["text"].as_str().unwrap()
            ),
        })
        .collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {lines:#?}"))
    };
    assert!(
        at("customer: I want a human") < at("event: Handed off"),
        "{lines:#?}"
    );
    assert!(
        at("event: Handed off") < at("event: alice joined"),
        "{lines:#?}"
    );
    assert!(
        at("event: alice joined") < at("agent: Hello ann"),
        "{lines:#?}"
    );
    assert!(
        at("agent: Hello ann") < at("event: Resolved by alice"),
        "{lines:#?}"
    );
    assert!(conversation["survey"].is_null(), "{conversation}");

    // Tags: any agent adds them, the search and the tag filter find them.
    let tags = format!("/api/agent/conversations/{id}/tags");
    assert_eq!(
        c.post(&Who::Anonymous, &tags, json!({"tag": "x"})).await.0,
        401
    );
    for bad in ["", "<script>", "a%b", &"x".repeat(40)] {
        let (status, body) = c.post(&bob, &tags, json!({"tag": bad})).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
    }
    let (status, body) = c.post(&bob, &tags, json!({"tag": "  Lost  Parcel "})).await;
    assert_eq!((status, &body["tags"]), (200, &json!(["lost-parcel"])));
    let (status, _) = c
        .post(
            &bob,
            "/api/agent/conversations/nope/tags",
            json!({"tag": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?q=lost-parc").await.1),
        vec![id.clone()]
    );
    let (_, tagged) = c.get(&alice, "/api/agent/inbox?tag=lost-parcel").await;
    assert_eq!(ids(&tagged), vec![id.clone()]);
    assert_eq!(tagged["conversations"][0]["tags"], json!(["lost-parcel"]));
    let (_, opened) = c
        .get(&alice, &format!("/api/agent/conversations/{id}"))
        .await;
    assert_eq!(opened["tags"], json!(["lost-parcel"]));
    let (status, body) = c
        .call(&alice, Method::DELETE, &format!("{tags}/lost-parcel"), None)
        .await;
    assert_eq!((status, &body["tags"]), (200, &json!([])));
    assert_eq!(
        ids(&c.get(&alice, "/api/agent/inbox?tag=lost-parcel").await.1),
        Vec::<String>::new()
    );

    // The follow-up survey and the customer's answers come with it.
    let store = &t.core.store;
    store.schedule_surveys(0, 0).await.unwrap();
    let due = store.claim_due_surveys(10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    store
        .mark_survey_sent(&id, Some("alice"), false, false)
        .await
        .unwrap();
    let (_, opened) = c
        .get(&alice, &format!("/api/agent/conversations/{id}"))
        .await;
    assert_eq!(opened["survey"]["state"], "sent", "{opened}");
    assert!(opened["survey"]["csat"].is_null());
    store
        .record_survey_answer(&id, switchboard::store::Answer::Csat(4))
        .await
        .unwrap();
    let (_, opened) = c
        .get(&alice, &format!("/api/agent/conversations/{id}"))
        .await;
    assert_eq!(opened["survey"]["csat"], 4, "{opened}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_the_settings_without_secrets_and_set_passwords() {
    let t = spawn_app(options()).await;
    let c = Console::new(&t, PASSWORDS).await;
    let alice = c.sign_in("alice", ALICE_PASSWORD).await;
    let bob = c.sign_in("bob", BOB_PASSWORD).await;
    let (status, view) = c.get(&alice, "/api/admin/settings").await;
    assert_eq!(status, 200, "{view}");
    let agents: Vec<(String, bool, bool)> = view["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["admin"].as_bool().unwrap(),
                a["password_set"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        agents,
        [("alice".into(), true, true), ("bob".into(), false, true)]
    );
    assert!(
        view["canned"]["replies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "greeting"
                && r["text"].as_str().unwrap().starts_with("Hi, this is alice")),
        "{view}"
    );
    // No token, key or password appears, only whether they are set.
    let shown = view.to_string();
    for secret in [BOB_TOKEN, ALICE_PASSWORD, BOB_PASSWORD] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert_eq!(view["agents"][1]["api_token"], true, "{view}");

    // An admin sets bob's password: bob's sessions end, the new one works.
    let (status, refused) = c
        .post(
            &alice,
            "/api/admin/settings/agents/bob/password",
            json!({"password": "short"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, _) = c
        .post(
            &alice,
            "/api/admin/settings/agents/nobody/password",
            json!({"password": "long enough password"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .post(
            &alice,
            "/api/admin/settings/agents/bob/password",
            json!({"password": "a new password for bob"}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        c.get(&bob, "/api/agent/queue").await.0,
        401,
        "bob's session ended"
    );
    let again = c.sign_in("bob", "a new password for bob").await;
    assert_eq!(c.get(&again, "/api/agent/queue").await.0, 200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_is_told_of_changes_as_they_happen() {
    let t = spawn_app(options()).await;
    let c = Console::new(&t, PASSWORDS).await;
    // Anonymous: refused.
    let (status, _) = c.get(&Who::Anonymous, "/api/agent/events").await;
    assert_eq!(status, 401);
    let mut stream = c
        .http
        .get(format!("{}/api/agent/events", c.base))
        .bearer_auth(BOB_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    // Reads until `what` has arrived; a stream that never sends it fails
    // the test instead of hanging it.
    async fn until(stream: &mut reqwest::Response, seen: &mut String, what: &str) {
        let read = async {
            while !seen.contains(what) {
                let chunk = stream.chunk().await.unwrap().expect("the stream ended");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| panic!("no {what:?} on the stream"));
    }
    until(&mut stream, &mut seen, "event: ready").await;
    assert!(!seen.contains("event: changed"), "{seen}");
    // A hand-off is pushed.
    let handed = answer(&t, "cara", "I want a human about my parcel").await;
    assert!(handed.handoff, "{handed:?}");
    until(&mut stream, &mut seen, "event: changed").await;
    // And so is an agent's action.
    let before = seen.matches("event: changed").count();
    let (status, claimed) = c
        .post(
            &Who::Token(BOB_TOKEN),
            &format!("/api/agent/conversations/{}/claim", handed.conversation_id),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    let more = async {
        while seen.matches("event: changed").count() == before {
            let chunk = stream.chunk().await.unwrap().expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), more)
        .await
        .expect("the claim was not pushed");
    drop(stream);
    t.stop().await;
}
