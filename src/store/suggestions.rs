//! Suggested articles (the learning loop): drafts built from answered
//! conversations, waiting for an admin to publish or dismiss them. One per
//! conversation: suggesting again returns the one there is.

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{Error, Store, get, new_id};
use crate::clock::Millis;
use crate::ids::ConversationId;

/// Where a suggestion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    /// Waiting for an admin.
    Pending,
    /// Written to the knowledge base (as `published_slug`).
    Published,
    /// An admin decided against it.
    Dismissed,
}

impl SuggestionStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Published => "published",
            SuggestionStatus::Dismissed => "dismissed",
        }
    }

    /// The status a stored name means.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "pending" => SuggestionStatus::Pending,
            "published" => SuggestionStatus::Published,
            "dismissed" => SuggestionStatus::Dismissed,
            other => return Err(Error::Corrupt(format!("suggestion status `{other}`"))),
        })
    }
}

impl std::fmt::Display for SuggestionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A suggested article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// Id.
    pub id: String,
    /// The conversation it was drafted from.
    pub conversation_id: crate::ids::ConversationId,
    /// Who asked for it (an agent's name).
    pub created_by: String,
    /// The article's title.
    pub title: String,
    /// The slug proposed (or edited) for it.
    pub slug: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its Markdown body (without front matter).
    pub body: String,
    /// Whether the language model wrote the draft (else the plain template).
    pub by_model: bool,
    /// Pending, published or dismissed.
    pub status: SuggestionStatus,
    /// Drafted.
    pub created_at: Millis,
    /// Last edited or decided.
    pub updated_at: Millis,
    /// The admin who published or dismissed it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Millis>,
    /// The article it became.
    pub published_slug: Option<String>,
}

impl Suggestion {
    fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let tags: String = get(row, "tags")?;
        let status: String = get(row, "status")?;
        Ok(Self {
            id: get(row, "id")?,
            conversation_id: get::<String>(row, "conversation_id")?.into(),
            created_by: get(row, "created_by")?,
            title: get(row, "title")?,
            slug: get(row, "slug")?,
            tags: serde_json::from_str(&tags).map_err(|e| Error::Corrupt(e.to_string()))?,
            body: get(row, "body")?,
            by_model: get::<i64>(row, "by_model")? != 0,
            status: SuggestionStatus::parse(&status)?,
            created_at: get(row, "created_at")?,
            updated_at: get(row, "updated_at")?,
            decided_by: get(row, "decided_by")?,
            decided_at: get(row, "decided_at")?,
            published_slug: get(row, "published_slug")?,
        })
    }
}

/// The editable part of a suggestion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuggestionDraft {
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Markdown body.
    pub body: String,
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Stores a new pending suggestion for `conversation_id` unless the
    /// conversation has one already; returns the conversation's suggestion
    /// and whether it is the one just stored.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn add_suggestion(
        &self,
        conversation_id: &ConversationId,
        created_by: &str,
        draft: &SuggestionDraft,
        by_model: bool,
    ) -> Result<(Suggestion, bool), Error> {
        let id = new_id();
        let now = self.now();
        let inserted = sqlx::query(
            "INSERT INTO kb_suggestions (id, conversation_id, created_by, title, slug, tags, \
             body, by_model, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) \
             ON CONFLICT (conversation_id) DO NOTHING",
        )
        .bind(&id)
        .bind(conversation_id.as_str())
        .bind(created_by)
        .bind(&draft.title)
        .bind(&draft.slug)
        .bind(tags_json(&draft.tags))
        .bind(&draft.body)
        .bind(i64::from(by_model))
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        let found = self
            .suggestion_for(conversation_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "suggestion",
                id: conversation_id.to_string(),
            })?;
        Ok((found, inserted == 1))
    }

    /// The suggestion drafted from `conversation_id`, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn suggestion_for(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<Suggestion>, Error> {
        sqlx::query("SELECT * FROM kb_suggestions WHERE conversation_id = $1")
            .bind(conversation_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Suggestion::from_row)
            .transpose()
    }

    /// One suggestion.
    ///
    /// # Errors
    /// [`Error::NotFound`], or a database failure.
    pub async fn suggestion(&self, id: &str) -> Result<Suggestion, Error> {
        let row = sqlx::query("SELECT * FROM kb_suggestions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "suggestion",
                id: id.to_string(),
            })?;
        Suggestion::from_row(&row)
    }

    /// Suggestions with `status` (all when `None`), newest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn suggestions(
        &self,
        status: Option<SuggestionStatus>,
        limit: i64,
    ) -> Result<Vec<Suggestion>, Error> {
        let rows = match status {
            Some(status) => {
                sqlx::query(
                    "SELECT * FROM kb_suggestions WHERE status = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(status.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT * FROM kb_suggestions ORDER BY created_at DESC, id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(Suggestion::from_row).collect()
    }

    /// Replaces a pending suggestion's draft; `false` when it is no longer
    /// pending (or does not exist).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn edit_suggestion(&self, id: &str, draft: &SuggestionDraft) -> Result<bool, Error> {
        let changed = sqlx::query(
            "UPDATE kb_suggestions SET title = $1, slug = $2, tags = $3, body = $4, \
             updated_at = $5 WHERE id = $6 AND status = 'pending'",
        )
        .bind(&draft.title)
        .bind(&draft.slug)
        .bind(tags_json(&draft.tags))
        .bind(&draft.body)
        .bind(self.now())
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Decides a pending suggestion: published as `published_slug`, or
    /// dismissed (`None`), by `admin`. `false` when it was no longer
    /// pending (someone decided first).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn decide_suggestion(
        &self,
        id: &str,
        admin: &str,
        published_slug: Option<&str>,
    ) -> Result<bool, Error> {
        let status = match published_slug {
            Some(_) => SuggestionStatus::Published,
            None => SuggestionStatus::Dismissed,
        };
        let now = self.now();
        let changed = sqlx::query(
            "UPDATE kb_suggestions SET status = $1, decided_by = $2, decided_at = $3, \
             updated_at = $3, published_slug = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(admin)
        .bind(now)
        .bind(published_slug)
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }
}
