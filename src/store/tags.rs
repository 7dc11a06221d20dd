//! Queries behind conversation tags.

use std::collections::HashMap;

use super::{Error, Store, get};
use crate::ids::ConversationId;
use crate::tags::Tag;

impl Store {
    /// Puts `tag` on a conversation (again is a no-op); `false` when there
    /// is no such conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn add_tag(
        &self,
        conversation_id: &ConversationId,
        tag: &Tag,
        by: &str,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO conversation_tags (conversation_id, tag, added_by, added_at) \
             SELECT id, $1, $2, $3 FROM conversations WHERE id = $4 \
             ON CONFLICT (conversation_id, tag) DO NOTHING",
        )
        .bind(tag.as_str())
        .bind(by)
        .bind(self.now())
        .bind(conversation_id.as_str())
        .execute(&self.writer)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        Ok(self.conversation(conversation_id).await.is_ok())
    }

    /// Takes `tag` off a conversation.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_tag(
        &self,
        conversation_id: &ConversationId,
        tag: &Tag,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1 AND tag = $2")
            .bind(conversation_id.as_str())
            .bind(tag.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A conversation's tags, alphabetically.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn tags(&self, conversation_id: &ConversationId) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT tag FROM conversation_tags WHERE conversation_id = $1 ORDER BY tag",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| get(r, "tag")).collect()
    }

    /// The tags of each of `ids` (alphabetically; conversations without
    /// tags are left out).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn tags_of(&self, ids: &[&str]) -> Result<HashMap<String, Vec<String>>, Error> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            // Audited: only `$n` placeholders are put into the text.
            let sql = format!(
                "SELECT conversation_id, tag FROM conversation_tags \
                 WHERE conversation_id IN ({}) ORDER BY tag",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.entry(get(&row, "conversation_id")?)
                    .or_default()
                    .push(get(&row, "tag")?);
            }
        }
        Ok(out)
    }
}
