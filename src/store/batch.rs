//! Group commit for messages: concurrent inserts go out as one statement.
//!
//! Every stored message used to be its own statement, and on SQLite each
//! statement is a hand-off to the connection's worker thread and back plus
//! a transaction of its own (the file's write lock, a WAL append). Under
//! load that, not SQLite's work, was most of the time per message. Here one
//! task per [`Store`] owns message inserts: it takes everything that queued
//! while the previous statement ran and writes it as one multi-row
//! `INSERT … SELECT … FROM (VALUES …)`, which both SQLite and PostgreSQL
//! run as one statement and one transaction. Each caller still waits until
//! its own row is committed, so "stored before confirmed" holds, and gets
//! back exactly what the one-row statement would have said (its id, or
//! `None` for a duplicate or a conversation no longer with the bot).
//!
//! A batch holds at most one message per conversation: a message's `seq` is
//! computed in the statement from the rows already stored, so two of the
//! same conversation in one statement would get the same number. Later
//! messages of a conversation wait for the next batch, in the order they
//! came, which also keeps each conversation's order.

use std::collections::{HashSet, VecDeque};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{Error, SourceRef, Status, new_id};
use crate::clock::Millis;
use crate::store::{MessageMode, NewMessage};

/// Most rows in one statement (16 parameters each; SQLite allows 32,766).
const MAX_ROWS: usize = 64;

/// Messages waiting for the writer before senders wait for room.
const QUEUE: usize = 4_096;

/// One message to store, owned so it can cross to the writer task.
#[derive(Debug, Clone)]
pub(super) struct Row {
    id: String,
    conversation_id: String,
    role: &'static str,
    author: Option<String>,
    text: String,
    mode: Option<&'static str>,
    sources: Option<String>,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    latency_ms: Option<i64>,
    channel: String,
    platform_message_id: Option<String>,
    created_at: Millis,
    /// Stored only while the conversation has this status.
    when: Option<&'static str>,
    /// The process that stores it (and answers it, for a customer's).
    owner: String,
}

impl Row {
    /// The row for `message`, created at `now` by the process `owner`,
    /// stored only while the conversation's status is `when` (if given).
    pub(super) fn new(
        message: &NewMessage<'_>,
        when: Option<Status>,
        now: Millis,
        owner: &str,
    ) -> Result<Self, Error> {
        let sources = if message.sources.is_empty() {
            None
        } else {
            Some(sources_json(message.sources)?)
        };
        Ok(Self {
            id: new_id(),
            conversation_id: message.conversation_id.to_string(),
            role: message.role.as_str(),
            author: message.author.map(str::to_string),
            text: message.text.to_string(),
            mode: message.mode.map(MessageMode::as_str),
            sources,
            model: message.model.map(str::to_string),
            prompt_tokens: message.prompt_tokens,
            completion_tokens: message.completion_tokens,
            latency_ms: message.latency_ms,
            channel: message.channel.to_string(),
            platform_message_id: message.platform_message_id.map(str::to_string),
            created_at: now,
            when: when.map(Status::as_str),
            owner: owner.to_string(),
        })
    }
}

fn sources_json(sources: &[SourceRef]) -> Result<String, Error> {
    serde_json::to_string(sources).map_err(|e| Error::Corrupt(e.to_string()))
}

struct Job {
    row: Row,
    reply: oneshot::Sender<Result<Option<String>, Error>>,
}

/// The sending side of a store's message writer. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the writer task for `pool` on the current tokio runtime.
    pub(super) fn start(pool: AnyPool) -> Self {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, receiver));
        Self { jobs }
    }

    /// Stores `row` with the next batch; `Some(id)` when stored, `None`
    /// when it was a duplicate or its condition did not hold. Falls back to
    /// a statement of its own on `pool` when the writer is gone (its
    /// runtime shut down).
    pub(super) async fn insert(&self, pool: &AnyPool, row: Row) -> Result<Option<String>, Error> {
        let (reply, answer) = oneshot::channel();
        match self.jobs.send(Job { row, reply }).await {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(Error::Corrupt(
                    "the message writer stopped before answering".into(),
                ))
            }),
            Err(mpsc::error::SendError(job)) => insert_one(pool, &job.row).await,
        }
    }
}

async fn run(pool: AnyPool, mut receiver: mpsc::Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match receiver.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < QUEUE {
            match receiver.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let batch = take_batch(&mut waiting);
        write(&pool, batch).await;
    }
}

/// Takes the next batch from `waiting`: in arrival order, at most
/// [`MAX_ROWS`], the first waiting message of each conversation only.
fn take_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut conversations = HashSet::new();
    let mut later = VecDeque::with_capacity(waiting.len());
    for job in waiting.drain(..) {
        // A conversation seen once is closed for this batch, even if its
        // first message did not fit: nothing overtakes it.
        let first = conversations.insert(job.row.conversation_id.clone());
        if first && batch.len() < MAX_ROWS {
            batch.push(job);
        } else {
            later.push_back(job);
        }
    }
    *waiting = later;
    batch
}

async fn write(pool: &AnyPool, batch: Vec<Job>) {
    if let [_] = batch.as_slice() {
        for job in batch {
            let result = insert_one(pool, &job.row).await;
            let _ = job.reply.send(result);
        }
        return;
    }
    let rows: Vec<&Row> = batch.iter().map(|j| &j.row).collect();
    match insert_many(pool, &rows).await {
        Ok(stored) => {
            for job in batch {
                let id = stored.contains(&job.row.id).then(|| job.row.id.clone());
                let _ = job.reply.send(Ok(id));
            }
        }
        Err(e) => {
            // Nothing of the statement was stored; each row on its own, so
            // one bad row fails alone.
            tracing::debug!("batched insert failed, storing one by one: {e}");
            for job in batch {
                let result = insert_one(pool, &job.row).await;
                let _ = job.reply.send(result);
            }
        }
    }
}

/// The statement for `n` rows. Columns of a `VALUES` list are named
/// `column1…` by both SQLite and PostgreSQL.
fn statement(n: usize) -> String {
    const COLUMNS: usize = 16;
    let mut values = String::new();
    for r in 0..n {
        if r > 0 {
            values.push_str(", ");
        }
        values.push('(');
        for c in 1..=COLUMNS {
            if c > 1 {
                values.push_str(", ");
            }
            values.push_str(&format!("${}", r * COLUMNS + c));
        }
        values.push(')');
    }
    format!(
        "INSERT INTO messages (id, conversation_id, seq, role, author, text, mode, sources, model, \
           prompt_tokens, completion_tokens, latency_ms, channel, platform_message_id, created_at, owner) \
         SELECT v.column1, v.column2, \
           (SELECT COALESCE(MAX(m.seq), 0) + 1 FROM messages m WHERE m.conversation_id = v.column2), \
           v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, \
           v.column11, v.column12, v.column13, v.column14, v.column16 \
         FROM (VALUES {values}) AS v \
         WHERE v.column15 IS NULL \
           OR EXISTS (SELECT 1 FROM conversations c WHERE c.id = v.column2 AND c.status = v.column15) \
         ON CONFLICT (channel, platform_message_id) DO NOTHING \
         RETURNING id"
    )
}

async fn insert_many(pool: &AnyPool, rows: &[&Row]) -> Result<HashSet<String>, Error> {
    let sql = statement(rows.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(&row.id)
            .bind(&row.conversation_id)
            .bind(row.role)
            .bind(&row.author)
            .bind(&row.text)
            .bind(row.mode)
            .bind(&row.sources)
            .bind(&row.model)
            .bind(row.prompt_tokens)
            .bind(row.completion_tokens)
            .bind(row.latency_ms)
            .bind(&row.channel)
            .bind(&row.platform_message_id)
            .bind(row.created_at)
            .bind(row.when)
            .bind(&row.owner);
    }
    let stored = query.fetch_all(pool).await?;
    stored
        .iter()
        .map(|r| super::get::<String>(r, "id"))
        .collect()
}

/// One row in a statement of its own.
pub(super) async fn insert_one(pool: &AnyPool, row: &Row) -> Result<Option<String>, Error> {
    insert_many(pool, &[row])
        .await
        .map(|stored| stored.contains(&row.id).then(|| row.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conversation: &str, text: &str) -> Job {
        let message = NewMessage {
            conversation_id: conversation,
            text,
            channel: "test",
            ..NewMessage::default()
        };
        Job {
            row: Row::new(&message, None, 0, "me").unwrap(),
            reply: oneshot::channel().0,
        }
    }

    fn texts(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.row.text.as_str()).collect()
    }

    #[test]
    fn a_batch_takes_one_message_per_conversation_in_order() {
        let mut waiting: VecDeque<Job> = [
            job("a", "a1"),
            job("b", "b1"),
            job("a", "a2"),
            job("c", "c1"),
            job("b", "b2"),
        ]
        .into_iter()
        .collect();
        assert_eq!(texts(&take_batch(&mut waiting)), ["a1", "b1", "c1"]);
        assert_eq!(texts(&take_batch(&mut waiting)), ["a2", "b2"]);
        assert!(take_batch(&mut waiting).is_empty());
    }

    #[test]
    fn a_full_batch_does_not_let_later_messages_overtake() {
        let mut waiting: VecDeque<Job> = (0..MAX_ROWS)
            .map(|i| job(&format!("c{i}"), "first"))
            .chain([job("late", "late1"), job("late", "late2")])
            .collect();
        assert_eq!(take_batch(&mut waiting).len(), MAX_ROWS);
        assert_eq!(texts(&take_batch(&mut waiting)), ["late1"]);
        assert_eq!(texts(&take_batch(&mut waiting)), ["late2"]);
    }

    #[test]
    fn the_statement_numbers_every_parameter_once() {
        let sql = statement(3);
        for p in 1..=48 {
            assert!(sql.contains(&format!("${p})")) || sql.contains(&format!("${p},")));
        }
        assert!(!sql.contains("$49"));
    }
}
