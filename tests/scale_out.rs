//! Several `switchboard run` processes on one PostgreSQL database (issue
//! 16): three real processes of the binary, Telegram in webhook mode
//! behind all of them (the test delivers updates as Telegram would through
//! a load balancer, retrying one that was not confirmed at another
//! process), Discord with each process running one of three gateway shards
//! (the local Discord sends a guild's events to its shard only), the web
//! chat API behind all of them, a slow model so answers
//! are in flight, a `kill -9` of one process in the middle and its restart
//! while the others are answering. Every customer message is answered
//! exactly once: by the process that stored it, or, for the killed one's,
//! by exactly one of the others once its beats stop.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::discord_fake;
use common::openai_fake::{self, Script};
use common::telegram_fake::{self, message, message_update, private_chat, user};
use common::{FreshPostgres, free_port, prompts_dir, write_fixture_kb};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
/// What the model says, after a pause long enough to kill a process while
/// its answers wait for it.
const ANSWER: &str = "Open Settings → Billing → Refund within 14 days [1].";
const PAUSE: Duration = Duration::from_millis(2_500);

/// One `switchboard run`.
struct Process {
    child: tokio::process::Child,
    base: String,
    log: std::path::PathBuf,
}

/// Discord shards: process `n` runs shard `n % SHARDS`.
const SHARDS: u64 = 3;

/// A guild whose events go to `shard` (`(guild_id >> 22) % SHARDS`).
fn guild_on(shard: u64) -> u64 {
    (SHARDS + shard) << 22
}

async fn spawn(
    dir: &Path,
    n: usize,
    db: &str,
    (telegram, discord): (&str, &str),
    llm: &str,
) -> Process {
    let port = free_port();
    let config = format!(
        r#"
[database]
url = "{db}"
heartbeat_secs = 1
[knowledge_base]
path = "{kb}"
index_path = "{index}"
watch = false
[prompts]
path = "{prompts}"
[web]
listen = "127.0.0.1:{port}"
[assistant]
recovery_delay_secs = 1
[llm]
base_url = "{llm}"
model = "gpt-test"
timeout_secs = 30
max_concurrency = 32
[telegram]
enabled = true
api_url = "{telegram}"
token = "{token}"
webhook_url = "https://bot.example/telegram/webhook"
[discord]
enabled = true
api_url = "{discord}"
token = "{discord_token}"
shard_count = {SHARDS}
shards = [{shard}]
"#,
        kb = dir.join("kb").display(),
        index = dir.join(format!("index-{n}")).display(),
        prompts = prompts_dir(),
        token = telegram_fake::TOKEN,
        discord_token = discord_fake::TOKEN,
        shard = n as u64 % SHARDS,
    );
    let path = dir.join(format!("config-{n}.toml"));
    std::fs::write(&path, config).unwrap();
    let log = dir.join(format!("process-{n}.log"));
    let child = tokio::process::Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

impl Process {
    /// Waits (bounded) until it serves `/healthz`.
    async fn ready(&mut self, client: &reqwest::Client) {
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("process exited with {status}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("process never became ready:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Delivers `update` as Telegram does: to one process, and when that one
/// does not confirm it (gone), to the next.
async fn deliver(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    secret: &str,
    update: &Value,
) -> usize {
    for k in 0..bases.len() {
        let at = (first + k) % bases.len();
        let sent = client
            .post(format!("{}/telegram/webhook", bases[at]))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(update)
            .send()
            .await;
        if let Ok(r) = sent
            && r.status() == 200
        {
            return at;
        }
    }
    panic!("no process confirmed update {update}");
}

/// Sends a widget message as the widget does: again, to another process,
/// when the request fails (the client retries with the same id). Returns
/// what each attempt got.
async fn chat(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    session: &str,
) -> Vec<String> {
    let mut attempts = Vec::new();
    for k in 0..bases.len() {
        let at = (first + k) % bases.len();
        let sent = client
            .post(format!("{}/api/chat/messages", bases[at]))
            .json(&json!({"session": session, "text": "how do I get a refund", "id": "m1"}))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                attempts.push(format!(
                    "process {at}: {}",
                    r.text().await.unwrap_or_default()
                ));
                return attempts;
            }
            Ok(r) => attempts.push(format!(
                "process {at}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )),
            Err(e) => attempts.push(format!("process {at}: {e}")),
        }
    }
    panic!("no process took the widget message of {session}: {attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs SWITCHBOARD_TEST_POSTGRES_URL (PostgreSQL)"]
async fn three_processes_one_killed_every_message_answered_exactly_once() {
    let pg = FreshPostgres::create("sb_scale").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kb")).unwrap();
    write_fixture_kb(&dir.path().join("kb"));
    let (telegram, telegram_url) = telegram_fake::start().await;
    let discord = discord_fake::FakeDiscord::start().await;
    let platforms = (telegram_url.as_str(), discord.url.as_str());
    let (llm, llm_url) = openai_fake::start().await;
    llm.script([Script::Slow(vec![ANSWER.into()], PAUSE)]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let mut processes = Vec::new();
    for n in 0..3 {
        // One after another: the first creates the schema.
        let mut p = spawn(dir.path(), n, &pg.url, platforms, &llm_url).await;
        p.ready(&client).await;
        processes.push(p);
    }
    let bases: Vec<String> = processes.iter().map(|p| p.base.clone()).collect();
    // Each process identified as its own shard of three.
    discord
        .wait_until(
            "three shard sessions",
            |f| f.identify_count() >= SHARDS as usize,
            Duration::from_secs(30),
        )
        .await;
    let mut shards: Vec<Value> = discord
        .identify_payloads()
        .iter()
        .map(|d| d["shard"].clone())
        .collect();
    shards.sort_by_key(|s| s[0].as_u64());
    assert_eq!(shards, vec![json!([0, 3]), json!([1, 3]), json!([2, 3])]);
    // Every process registered the webhook with the one secret kept in the
    // database, so any of them takes Telegram's updates.
    let secrets: Vec<String> = telegram
        .calls_of("setwebhook")
        .iter()
        .map(|c| c["secret_token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(secrets.len(), 3);
    assert!(secrets.iter().all(|s| s == &secrets[0]), "{secrets:?}");
    let secret = secrets[0].clone();

    // First wave: a customer per chat, spread over the three processes;
    // each process confirms an update once it is stored.
    const FIRST: i64 = 18;
    let mut stored_by: HashMap<i64, usize> = HashMap::new();
    let mut sends = Vec::new();
    for chat in 1..=FIRST {
        let update = message_update(
            chat,
            message(
                chat,
                private_chat(chat),
                user(chat, "Ann"),
                "how do I get a refund",
            ),
        );
        let (client, bases, secret) = (client.clone(), bases.clone(), secret.clone());
        sends.push(tokio::spawn(async move {
            let at = deliver(&client, &bases, chat as usize % 3, &secret, &update).await;
            (chat, at, update)
        }));
    }
    let mut kept = Vec::new();
    for send in sends {
        let (chat, at, update) = send.await.unwrap();
        stored_by.insert(chat, at);
        kept.push((chat, update));
    }
    assert!(stored_by.values().any(|&at| at == 1));
    // Discord customers mention the bot in guilds of every shard: each
    // message reaches only the process running its guild's shard.
    let discord_channels: Vec<(u64, u64)> = (0..SHARDS)
        .flat_map(|shard| (0..4).map(move |k| (shard, 7_000 + shard * 10 + k)))
        .collect();
    for &(shard, channel) in &discord_channels {
        let m = discord.mention(
            channel + 2_000,
            channel,
            guild_on(shard),
            channel + 1_000,
            "how do I get a refund",
        );
        discord.dispatch("MESSAGE_CREATE", m).await;
    }
    let discord_answers = |channel: u64| {
        discord
            .channel_messages(channel)
            .iter()
            .filter(|m| m.content.contains("Open Settings"))
            .count()
    };
    // Widget visitors on the process about to be killed: their requests
    // wait for the answer.
    let mut widget = Vec::new();
    for n in 0..3 {
        let session = format!("visitor-{n}");
        let (client, bases) = (client.clone(), bases.clone());
        widget.push(tokio::spawn(async move {
            let attempts = chat(&client, &bases, 1, &session).await;
            (session, attempts)
        }));
    }
    // Every message stored and waiting for the model, which pauses before
    // its first word: kill -9 process 1 now, with its answers in flight.
    let waiting = FIRST as usize + widget.len() + discord_channels.len();
    for _ in 0..400 {
        if llm.in_flight.load(std::sync::atomic::Ordering::SeqCst) >= waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    processes[1].child.start_kill().unwrap();
    processes[1].child.wait().await.unwrap();
    let survivors = vec![bases[0].clone(), bases[2].clone()];

    // Telegram delivers some updates again (the confirmations it did not
    // see) to the survivors: stored already, so not answered again.
    for (chat, update) in kept.iter().filter(|(chat, _)| chat % 2 == 0) {
        deliver(&client, &survivors, *chat as usize, &secret, update).await;
    }
    // Second wave, on the survivors, with a slower model: while these
    // answers are in flight the killed process is restarted, and its
    // start-up pass over what was left unanswered must leave them alone
    // (they belong to live processes).
    llm.rescript([Script::Slow(vec![ANSWER.into()], PAUSE * 2)]);
    const SECOND: i64 = 6;
    for chat in FIRST + 1..=FIRST + SECOND {
        let update = message_update(
            chat,
            message(
                chat,
                private_chat(chat),
                user(chat, "Bo"),
                "how do I get a refund",
            ),
        );
        deliver(&client, &survivors, chat as usize, &secret, &update).await;
    }
    let mut restarted = spawn(dir.path(), 4, &pg.url, platforms, &llm_url).await;
    restarted.ready(&client).await;
    processes.push(restarted);
    let mut widget_attempts = Vec::new();
    for w in widget {
        widget_attempts.push(w.await.unwrap());
    }

    // Every chat and every visitor gets an answer: the killed process's
    // once its lease ran out (three missed beats of a second).
    let answers = |chat: i64| {
        telegram
            .sent_to(chat)
            .iter()
            .filter(|(_, text)| text.contains("Open Settings"))
            .count()
    };
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&pg.url).await.unwrap();
    let web_answered = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(DISTINCT m.conversation_id) FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE c.channel = 'web' AND m.role = 'bot'",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let mut all = false;
    for _ in 0..900 {
        all = (1..=FIRST + SECOND).all(|chat| answers(chat) >= 1)
            && discord_channels
                .iter()
                .all(|&(_, c)| discord_answers(c) >= 1)
            && web_answered().await == widget_attempts.len() as i64;
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        all,
        "not every message was answered: telegram {:?}, discord {:?}, widget {}",
        (1..=FIRST + SECOND).map(answers).collect::<Vec<_>>(),
        discord_channels
            .iter()
            .map(|&(_, c)| discord_answers(c))
            .collect::<Vec<_>>(),
        web_answered().await
    );

    // The log, once no answer is being written and the processes beat on:
    // wait until the model is idle and each process has beaten twice more,
    // so a second answer would have been sent by now.
    for _ in 0..600 {
        if llm.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let beats = || async {
        sqlx::query_as::<_, (String, i64)>("SELECT id, seen_at FROM instances")
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .collect::<HashMap<String, i64>>()
    };
    let answered_at = beats().await;
    for _ in 0..200 {
        let now = beats().await;
        let ahead = now
            .iter()
            .filter(|(id, seen)| {
                answered_at
                    .get(*id)
                    .is_some_and(|then| **seen >= then + 2_000)
            })
            .count();
        if ahead >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for chat in 1..=FIRST + SECOND {
        let answers = answers(chat);
        assert_eq!(
            answers,
            1,
            "chat {chat} (stored by process {:?}) answered {answers} times: {:?}",
            stored_by.get(&chat),
            telegram.sent_to(chat)
        );
    }
    for &(shard, channel) in &discord_channels {
        let answers = discord_answers(channel);
        assert_eq!(
            answers,
            1,
            "discord channel {channel} (shard {shard}) answered {answers} times: {:?}",
            discord.channel_messages(channel)
        );
    }
    // In the log: one answer per customer message, on every channel.
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.channel, c.thread_key, m.role FROM messages m \
         JOIN conversations c ON c.id = m.conversation_id ORDER BY m.seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let mut per_conversation: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for (channel, thread, role) in rows {
        let counts = per_conversation.entry((channel, thread)).or_default();
        match role.as_str() {
            "customer" => counts.0 += 1,
            "bot" => counts.1 += 1,
            _ => {}
        }
    }
    assert_eq!(
        per_conversation.len(),
        (FIRST + SECOND) as usize + 3 + discord_channels.len(),
        "{per_conversation:?}"
    );
    for (conversation, (customer, bot)) in &per_conversation {
        if (*customer, *bot) != (1, 1) {
            let log: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
                "SELECT m.role, m.text, m.owner, m.created_at FROM messages m \
                 JOIN conversations c ON c.id = m.conversation_id \
                 WHERE c.channel = $1 AND c.thread_key = $2 ORDER BY m.seq",
            )
            .bind(&conversation.0)
            .bind(&conversation.1)
            .fetch_all(&db)
            .await
            .unwrap();
            let events: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT e.kind, e.actor, e.detail FROM events e \
                 JOIN conversations c ON c.id = e.conversation_id \
                 WHERE c.channel = $1 AND c.thread_key = $2 ORDER BY e.created_at",
            )
            .bind(&conversation.0)
            .bind(&conversation.1)
            .fetch_all(&db)
            .await
            .unwrap();
            let instances: Vec<(String, i64)> =
                sqlx::query_as("SELECT id, pid FROM instances ORDER BY started_at")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            let warnings: Vec<String> = processes
                .iter()
                .enumerate()
                .flat_map(|(n, p)| {
                    p.log()
                        .lines()
                        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                        .map(|l| format!("process {n}: {l}"))
                        .collect::<Vec<_>>()
                })
                .collect();
            panic!(
                "{conversation:?}: {customer} customer message(s), {bot} answer(s)\n\
                 messages: {log:#?}\nevents: {events:#?}\ninstances: {instances:?}\n\
                 warnings: {warnings:#?}\nwidget requests: {widget_attempts:#?}"
            );
        }
    }
    // The killed process left messages the others answered.
    let recovered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = 'recovered'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(recovered >= 1, "the kill left nothing to take over");
    // Each live shard's Discord messages were stored and answered by one
    // process, a different one per shard (a message's owner is the process
    // answering it); the killed process's shard was taken over, and only
    // its conversations were.
    let owner_of = |channel: u64| {
        let db = db.clone();
        async move {
            let owners: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT m.owner FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE c.channel = 'discord' AND c.thread_key LIKE $1 AND m.role = 'customer'",
            )
            .bind(format!("%{channel}%"))
            .fetch_all(&db)
            .await
            .unwrap();
            assert_eq!(owners.len(), 1, "one customer message in channel {channel}");
            owners[0].clone().expect("an owner")
        }
    };
    let mut owners = std::collections::BTreeMap::new();
    for &(shard, channel) in &discord_channels {
        owners
            .entry(shard)
            .or_insert_with(std::collections::BTreeSet::new)
            .insert(owner_of(channel).await);
    }
    assert_eq!(owners[&0].len(), 1, "{owners:?}");
    assert_eq!(owners[&2].len(), 1, "{owners:?}");
    assert_ne!(owners[&0], owners[&2], "a process per shard");
    let recovered_on: Vec<String> = sqlx::query_scalar(
        "SELECT c.thread_key FROM events e JOIN conversations c ON c.id = e.conversation_id \
         WHERE e.kind = 'recovered' AND c.channel = 'discord'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let shard_one: Vec<String> = discord_channels
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, c)| c.to_string())
        .collect();
    assert!(
        !recovered_on.is_empty()
            && recovered_on
                .iter()
                .all(|key| shard_one.iter().any(|c| key.contains(c.as_str()))),
        "taken over: {recovered_on:?}, the killed process's shard: {shard_one:?}"
    );

    db.close().await;
    for mut p in processes {
        let _ = p.child.start_kill();
        let _ = p.child.wait().await;
    }
    pg.drop().await;
}
