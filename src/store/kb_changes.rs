//! Queries behind the console's knowledge-base editor: the record of every
//! change (who, when, the text before and after), and how often each
//! article was cited by answers and what customers thought of them.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Error, SourceRef, Store, get, new_id};
use crate::clock::Millis;
use crate::ids::AgentId;

/// One recorded change of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbChange {
    /// Id.
    pub id: String,
    /// The article (after a rename: its new slug).
    pub slug: String,
    /// The slug before a rename.
    pub previous_slug: Option<String>,
    /// `create`, `update`, `rename`, `delete` or `revert`.
    pub action: String,
    /// The agent (an admin) who made it.
    pub agent: AgentId,
    /// The text before (`None`: there was no such article).
    pub before: Option<String>,
    /// The text after (`None`: the article was removed).
    pub after: Option<String>,
    /// The change this one reverts.
    pub reverts: Option<String>,
    /// When.
    pub created_at: Millis,
}

impl KbChange {
    fn from_row(row: &AnyRow) -> Result<Self, Error> {
        Ok(Self {
            id: get(row, "id")?,
            slug: get(row, "slug")?,
            previous_slug: get(row, "previous_slug")?,
            action: get(row, "action")?,
            agent: get::<String>(row, "agent")?.into(),
            before: get(row, "before_text")?,
            after: get(row, "after_text")?,
            reverts: get(row, "reverts")?,
            created_at: get(row, "created_at")?,
        })
    }
}

/// A change to record.
#[derive(Debug, Clone, Default)]
pub struct NewKbChange<'a> {
    /// The article (its new slug after a rename).
    pub slug: &'a str,
    /// The slug before a rename.
    pub previous_slug: Option<&'a str>,
    /// `create`, `update`, `rename`, `delete` or `revert`.
    pub action: &'a str,
    /// Who.
    pub agent: &'a str,
    /// Text before.
    pub before: Option<&'a str>,
    /// Text after.
    pub after: Option<&'a str>,
    /// The change reverted.
    pub reverts: Option<&'a str>,
}

/// How answers used one article.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Citations {
    /// Bot answers that cited it.
    pub cited: i64,
    /// Of those, answers the customer rated 👍.
    pub up: i64,
    /// … and 👎.
    pub down: i64,
}

impl Store {
    /// Records a change; returns it.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_kb_change(&self, change: &NewKbChange<'_>) -> Result<KbChange, Error> {
        let recorded = KbChange {
            id: new_id(),
            slug: change.slug.to_string(),
            previous_slug: change.previous_slug.map(str::to_string),
            action: change.action.to_string(),
            agent: change.agent.into(),
            before: change.before.map(str::to_string),
            after: change.after.map(str::to_string),
            reverts: change.reverts.map(str::to_string),
            created_at: self.now(),
        };
        sqlx::query(
            "INSERT INTO kb_changes (id, slug, previous_slug, action, agent, before_text, \
             after_text, reverts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&recorded.id)
        .bind(&recorded.slug)
        .bind(&recorded.previous_slug)
        .bind(&recorded.action)
        .bind(recorded.agent.as_str())
        .bind(&recorded.before)
        .bind(&recorded.after)
        .bind(&recorded.reverts)
        .bind(recorded.created_at)
        .execute(&self.writer)
        .await?;
        Ok(recorded)
    }

    /// One change, with its texts.
    ///
    /// # Errors
    /// [`Error::NotFound`], or a database failure.
    pub async fn kb_change(&self, id: &str) -> Result<KbChange, Error> {
        let row = sqlx::query("SELECT * FROM kb_changes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "knowledge-base change",
                id: id.to_string(),
            })?;
        KbChange::from_row(&row)
    }

    /// The latest `limit` changes (of `slug`, under either its new or its
    /// old name, when given), newest first, without their texts.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn kb_changes(&self, slug: Option<&str>, limit: i64) -> Result<Vec<KbChange>, Error> {
        let rows = match slug {
            Some(slug) => {
                sqlx::query(
                    "SELECT id, slug, previous_slug, action, agent, NULL AS before_text, \
                     NULL AS after_text, reverts, created_at FROM kb_changes \
                     WHERE slug = $1 OR previous_slug = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(slug)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, slug, previous_slug, action, agent, NULL AS before_text, \
                     NULL AS after_text, reverts, created_at FROM kb_changes \
                     ORDER BY created_at DESC, id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(KbChange::from_row).collect()
    }

    /// The latest change of each slug: who and when.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn kb_last_edits(&self) -> Result<BTreeMap<String, (String, Millis)>, Error> {
        let rows = sqlx::query(
            "SELECT slug, agent, created_at FROM kb_changes ORDER BY created_at ASC, id ASC",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            out.insert(
                row.try_get::<String, _>("slug")?,
                (row.try_get("agent")?, row.try_get("created_at")?),
            );
        }
        Ok(out)
    }

    /// How many bot answers cited each article, and their 👍/👎.
    ///
    /// # Errors
    /// On a database failure or a stored source list that does not parse.
    pub async fn citations(&self) -> Result<BTreeMap<String, Citations>, Error> {
        let rows = sqlx::query(
            "SELECT sources, feedback FROM messages WHERE role = 'bot' AND sources IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, Citations> = BTreeMap::new();
        for row in rows {
            let sources: String = row.try_get("sources")?;
            let feedback: Option<i64> = row.try_get("feedback")?;
            let sources: Vec<SourceRef> =
                serde_json::from_str(&sources).map_err(|e| Error::Corrupt(e.to_string()))?;
            let mut slugs: Vec<&str> = sources.iter().map(|s| s.slug.as_str()).collect();
            slugs.sort_unstable();
            slugs.dedup();
            for slug in slugs {
                let c = out.entry(slug.to_string()).or_default();
                c.cited += 1;
                match feedback {
                    Some(f) if f > 0 => c.up += 1,
                    Some(f) if f < 0 => c.down += 1,
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}
