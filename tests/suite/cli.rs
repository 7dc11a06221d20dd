//! The `switchboard` binary as users run it: the contract's commands, their
//! output shapes, exit codes and one-line errors.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::write_article(
            &dir.path().join("kb"),
            common::REFUNDS_PATH,
            common::REFUNDS,
        );
        let d = Dir { dir };
        d.config("");
        d
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self, extra: &str) -> PathBuf {
        let path = self.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[database]\nurl = \"sqlite://{}\"\n[knowledge_base]\npath = \"{}\"\nindex_path = \"{}\"\n[prompts]\npath = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\n{extra}",
                self.path().join("sb.db").display(),
                self.path().join("kb").display(),
                self.path().join("index").display(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
            ),
        )
        .unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(self.path())
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("OPENAI_API_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn ask_json_has_the_contract_keys() {
    let d = Dir::new();
    let out = d.run(&["ask", "how do I get a refund", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec!["answer", "conversation_id", "handoff", "mode", "sources"]
    );
    assert_eq!(json["mode"], "extractive");
    assert_eq!(json["handoff"], false);
    let source = &json["sources"][0];
    assert_eq!(source["slug"], "billing/refunds");
    assert_eq!(source["title"], "Refunds");
    assert_eq!(source["url"], "https://help.example/refunds");
    assert!(source["score"].is_f64());

    let gap = d.run(&["ask", "who won the football world cup in 1954", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&gap)).unwrap();
    assert_eq!(json["mode"], "handoff");
    assert_eq!(json["handoff"], true);
}

#[test]
fn chat_answers_each_piped_line_and_exits() {
    let d = Dir::new();
    let out = d.run_with_stdin(&["chat"], Some("how do I get a refund\n\n/help\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("To get a refund"), "{text}");
    assert!(text.contains("Sources:"), "{text}");
    assert!(text.contains("/human"), "the /help answer: {text}");
    assert!(!text.contains("you>"), "no prompt when piped");
}

#[test]
fn kb_commands() {
    let d = Dir::new();
    let out = d.run(&["kb", "search", "refund", "--json", "--limit", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let hit = hits[0].as_object().unwrap();
    let mut keys: Vec<&str> = hit.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["heading", "score", "slug", "snippet", "title"]);

    let out = d.run(&["kb", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["slug"], "billing/refunds");

    assert!(d.run(&["kb", "check"]).status.success());
    std::fs::write(
        d.path().join("kb/broken.md"),
        "---\ntags: [unclosed\n---\n# Broken\ntext\n",
    )
    .unwrap();
    let out = d.run(&["kb", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(report.contains("broken.md:2:"), "{report}");
    std::fs::remove_file(d.path().join("kb/broken.md")).unwrap();

    let new = d.path().join("gift.md");
    std::fs::write(&new, "# Gift cards\n\nGift cards never expire.\n").unwrap();
    assert!(
        d.run(&["kb", "add", new.to_str().unwrap(), "--slug", "billing/gift"])
            .status
            .success()
    );
    assert!(stdout(&d.run(&["kb", "search", "gift"])).contains("billing/gift"));
    assert!(d.run(&["kb", "rm", "billing/gift"]).status.success());
    let missing = d.run(&["kb", "rm", "billing/gift"]);
    assert!(!missing.status.success());
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
    assert!(d.run(&["kb", "index"]).status.success());
}

#[test]
fn config_errors_are_one_line_naming_the_key() {
    let d = Dir::new();
    d.config("[llm]\nmodle = \"x\"\n");
    let out = d.run(&["ask", "hi"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("llm.modle"), "{err}");

    d.config("[llm]\nbase_url = \"not a url\"\n");
    let err = stderr(&d.run(&["ask", "hi"]));
    assert!(
        err.contains("llm.base_url") && err.trim().lines().count() == 1,
        "{err}"
    );

    std::fs::remove_dir_all(d.path().join("kb")).unwrap();
    d.config("");
    let err = stderr(&d.run(&["ask", "hi"]));
    assert!(
        err.contains("knowledge_base.path") && err.trim().lines().count() == 1,
        "{err}"
    );

    let err = stderr(&d.run(&["--config", "/nonexistent.toml", "ask", "hi"]));
    assert!(err.contains("/nonexistent.toml"), "{err}");
}

#[test]
fn environment_overrides_the_file() {
    let d = Dir::new();
    let out = Command::new(BIN)
        .args(["ask", "hi"])
        .current_dir(d.path())
        .env("SWITCHBOARD_DATABASE__URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("database.url"), "{}", stderr(&out));
}

#[test]
fn report_export_and_migrate() {
    let d = Dir::new();
    assert!(d.run(&["migrate"]).status.success());
    d.run(&["ask", "how do I get a refund"]);
    let out = d.run(&["report", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "conversations",
        "messages",
        "bot_resolved",
        "escalated",
        "escalation_rate",
        "containment_rate",
        "first_response_secs_p50",
        "first_response_secs_p90",
        "resolution_secs_p50",
        "first_contact_resolution_rate",
        "csat_responses",
        "csat_score",
        "csat_average",
        "nps",
        "ces_average",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["conversations"], 1);
    assert!(stdout(&d.run(&["report"])).contains("Conversations"));
    assert!(d.run(&["report", "--since", "24h"]).status.success());
    let bad = d.run(&["report", "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--since"));

    let csv = stdout(&d.run(&["export", "--format", "csv"]));
    assert!(
        csv.starts_with("conversation_id,channel,customer,status"),
        "{csv}"
    );
    let rows = csv::Reader::from_reader(csv.as_bytes()).records().count();
    assert_eq!(rows, 2, "question + answer");
    let jsonl = stdout(&d.run(&["export"]));
    let record: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(record["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn run_serves_health_and_metrics_and_stops_on_sigterm() {
    let d = Dir::new();
    let port = common::free_port();
    // Listen on a port chosen here, so the test knows where to connect.
    let cfg = std::fs::read_to_string(d.path().join("config.toml"))
        .unwrap()
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
    std::fs::write(d.path().join("config.toml"), cfg).unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .current_dir(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let mut health = None;
    for _ in 0..100 {
        health = get("/healthz");
        if health.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = health.expect("run never served /healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = get("/metrics").unwrap();
    assert!(metrics.contains("switchboard_kb_articles 1"), "{metrics}");
    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
}

#[tokio::test]
async fn agents_invite_adds_an_agent_and_prints_a_link_that_works_once() {
    let d = Dir::new();
    d.config("[[agents]]\nname = \"ana\"\n");
    let out = d.run(&[
        "agents",
        "invite",
        "ben",
        "--admin",
        "--base-url",
        "https://help.example.com/",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("added ben as an admin"), "{printed}");
    let link = printed
        .lines()
        .find(|l| l.starts_with("https://help.example.com/agent#invite="))
        .unwrap_or_else(|| panic!("{printed}"));
    let token = link.rsplit('=').next().unwrap().to_string();
    // A configured agent gets a link too (not added again), by default on
    // web.listen.
    let out = d.run(&["agents", "invite", "ana"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("added"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("http://127.0.0.1:0/agent#invite="),
        "{}",
        stdout(&out)
    );
    let out = d.run(&["agents", "invite", "a b"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    // ben is now an agent (and `agents passwd` knows him); the link signs
    // him in once.
    let out = d.run_with_stdin(&["agents", "passwd", "ben"], Some("a long password 1\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let store = switchboard::store::Store::open(
        &format!("sqlite://{}", d.path().join("sb.db").display()),
        1,
        switchboard::clock::system(),
    )
    .await
    .unwrap();
    let auth = switchboard::auth::ConsoleAuth::new(store.clone(), Default::default());
    auth.reload().await.unwrap();
    let accepted = auth
        .accept_invite(&token, "ben's own password")
        .await
        .unwrap();
    let switchboard::auth::SignIn::Accepted { agent, .. } = accepted else {
        panic!("{accepted:?}");
    };
    assert_eq!((agent.name.as_str(), agent.admin), ("ben", true));
    let again = auth
        .accept_invite(&token, "ben's own password")
        .await
        .unwrap();
    assert!(matches!(again, switchboard::auth::SignIn::Refused));
    store.close().await;
}

#[tokio::test]
async fn dead_letters_are_listed_and_handed_back() {
    let d = Dir::new();
    let out = d.run(&["dead-letters"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no dead letters");
    // A quarantined update, as the Telegram channel stores one.
    let store = switchboard::store::Store::open(
        &format!("sqlite://{}", d.path().join("sb.db").display()),
        1,
        switchboard::clock::system(),
    )
    .await
    .unwrap();
    let id = store
        .dead_letter(
            "telegram",
            "update",
            "update:7",
            r#"{"update_id":7}"#,
            "panicked: byte index 1 is not a char boundary",
        )
        .await
        .unwrap();
    store.close().await;
    let out = d.run(&["dead-letters"]);
    let listed = stdout(&out);
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains("telegram update update:7"), "{listed}");
    assert!(listed.contains("char boundary"), "{listed}");
    let out = d.run(&["dead-letters", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["payload"], r#"{"update_id":7}"#);
    let out = d.run(&["dead-letters", "--retry", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("handed back to telegram"));
    assert_eq!(stdout(&d.run(&["dead-letters"])).trim(), "no dead letters");
    let out = d.run(&["dead-letters", "--retry", &id]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// The contract: `kb …`, `eval`, `ask` and `chat` work in a folder without
/// config.toml (defaults, bundled prompts); a file named with `--config`
/// must still exist.
#[test]
fn reading_commands_work_without_config_toml() {
    let d = Dir::new();
    std::fs::remove_file(d.path().join("config.toml")).unwrap();
    std::fs::rename(d.path().join("kb"), d.path().join("knowledge-base")).unwrap();
    let cases = d.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        "{\"q\": \"How do I get a refund?\", \"gold\": [\"billing/refunds\"], \"kind\": \"in_scope\"}\n",
    )
    .unwrap();
    let out = d.run(&["eval", cases.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["hit_at_1"], 1.0, "{report}");

    // --kb points elsewhere: the current folder needs no knowledge base.
    std::fs::rename(d.path().join("knowledge-base"), d.path().join("articles")).unwrap();
    let out = d.run(&[
        "eval",
        cases.to_str().unwrap(),
        "--kb",
        "articles",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.run(&["kb", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("knowledge_base.path"),
        "{}",
        stderr(&out)
    );
    std::fs::rename(d.path().join("articles"), d.path().join("knowledge-base")).unwrap();

    let out = d.run(&["kb", "search", "refund", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("billing/refunds"));
    let out = d.run(&["ask", "How do I get a refund?", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("14 days"), "{}", stdout(&out));

    let out = d.run(&["--config", "missing.toml", "kb", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn agents_passwd_reads_standard_input() {
    let d = Dir::new();
    d.config("[[agents]]\nname = \"ana\"\n");
    let out = d.run_with_stdin(&["agents", "passwd", "ana"], Some("a long password 1\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ana"), "{}", stdout(&out));
    // The same line twice is fine; two different lines change nothing.
    let out = d.run_with_stdin(
        &["agents", "passwd", "ana"],
        Some("a long password 2\na long password 2\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.run_with_stdin(
        &["agents", "passwd", "ana"],
        Some("a long password 3\na long password 4\n"),
    );
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    let out = d.run_with_stdin(&["agents", "passwd", "ana"], Some("short\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least"), "{}", stderr(&out));
    let out = d.run_with_stdin(&["agents", "passwd", "nobody"], Some("a long password 1\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
    // Stored hashed: the database holds an argon2 string, not the password.
    let mut db = std::fs::read(d.path().join("sb.db")).unwrap();
    db.extend(std::fs::read(d.path().join("sb.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$"));
    assert!(!text.contains("a long password 2"));
}
