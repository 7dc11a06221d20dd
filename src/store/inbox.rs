//! Queries behind the console's inbox: conversations by tab (waiting, an
//! agent's own, all open, resolved) or by search over customers, text and
//! tags, each with its customer's name, its last message and its tags.

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{Conversation, Error, Store, get};
use crate::clock::Millis;
use crate::ids::{AgentId, ConversationId, CustomerId};

/// Which conversations the inbox lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxTab {
    /// Handed off, nobody has claimed them: oldest hand-off first.
    Waiting,
    /// Claimed by this agent: latest change first.
    Mine,
    /// Waiting or claimed by anyone: oldest hand-off first.
    Open,
    /// Closed: latest first.
    Resolved,
    /// Any state (what a search goes through): latest change first.
    All,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct InboxQuery<'a> {
    /// The tab.
    pub tab: InboxTab,
    /// The agent asking (for [`InboxTab::Mine`]).
    pub agent: &'a str,
    /// Words the customer's name, id or any message must contain.
    pub text: Option<&'a str>,
    /// Only this channel.
    pub channel: Option<&'a str>,
    /// Only this status (`bot`, `waiting_for_agent`, `with_agent`, `resolved`).
    pub status: Option<&'a str>,
    /// Only conversations this agent has (or had, once resolved).
    pub assigned: Option<&'a str>,
    /// Only conversations handed off for this reason.
    pub reason: Option<&'a str>,
    /// Only conversations started at or after this time.
    pub from: Option<Millis>,
    /// Only conversations started before this time.
    pub until: Option<Millis>,
    /// Only conversations whose customer gave this CSAT rating (1–5).
    pub csat: Option<i64>,
    /// Only conversations with this tag.
    pub tag: Option<&'a str>,
    /// At most this many.
    pub limit: i64,
}

/// One line of the inbox.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InboxEntry {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// The customer's name (their platform id when they have none).
    pub customer: String,
    /// Who wrote the last message that is not a note (`customer`, `bot`,
    /// `agent`, `system`).
    pub last_role: Option<String>,
    /// Its text (at most [`LAST_MESSAGE_CHARS`] characters).
    pub last_text: Option<String>,
    /// When.
    pub last_at: Option<Millis>,
    /// The customer's messages since the hand-off that the agent asking has
    /// not seen (written after they last had the conversation open).
    pub unread: i64,
    /// Its tags, alphabetically.
    pub tags: Vec<String>,
}

/// One of a customer's conversations, for the console's customer panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PastConversation {
    /// The conversation.
    pub id: String,
    /// Its status now.
    pub status: String,
    /// When it started.
    pub created_at: Millis,
    /// When it was resolved, if it was.
    pub resolved_at: Option<Millis>,
    /// Why it was handed to people, if it was.
    pub handoff_reason: Option<String>,
    /// The customer's CSAT rating (1–5), if they gave one.
    pub csat: Option<i64>,
}

/// How much of the last message the inbox shows.
pub const LAST_MESSAGE_CHARS: usize = 160;

impl InboxEntry {
    fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let name: Option<String> = get(row, "customer_display_name")?;
        let external: String = get(row, "customer_external_id")?;
        let text: Option<String> = get(row, "last_text")?;
        Ok(Self {
            conversation: Conversation::from_row(row)?,
            customer: name.filter(|n| !n.trim().is_empty()).unwrap_or(external),
            last_role: get(row, "last_role")?,
            last_text: text.map(|t| t.chars().take(LAST_MESSAGE_CHARS).collect()),
            last_at: get(row, "last_at")?,
            unread: get(row, "unread")?,
            tags: Vec::new(),
        })
    }
}

/// `text` as a `LIKE` pattern that matches it anywhere, literally.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// The inbox: conversations of `query.tab` matching its filters.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn inbox(&self, query: &InboxQuery<'_>) -> Result<Vec<InboxEntry>, Error> {
        let last = |column: &str| {
            format!(
                "(SELECT m.{column} FROM messages m WHERE m.conversation_id = c.id \
                 AND m.role <> 'note' ORDER BY m.seq DESC LIMIT 1) AS last_{column}"
            )
        };
        let mut binds: Vec<String> = Vec::new();
        let bind = |value: String, binds: &mut Vec<String>| {
            binds.push(value);
            format!("${}", binds.len())
        };
        let me = bind(query.agent.to_string(), &mut binds);
        // Unread: customer messages after the hand-off and after this agent
        // last had the conversation open.
        let unread = format!(
            "CASE WHEN c.handoff_at IS NULL THEN 0 ELSE \
             (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = c.id AND u.role = 'customer' \
              AND u.created_at > COALESCE((SELECT r.read_at FROM agent_reads r \
                WHERE r.agent = {me} AND r.conversation_id = c.id), c.handoff_at)) END AS unread"
        );
        let mut sql = format!(
            "SELECT c.*, cu.display_name AS customer_display_name, \
             cu.external_id AS customer_external_id, {}, {}, {}, {unread} \
             FROM conversations c JOIN customers cu ON cu.id = c.customer_id WHERE 1 = 1",
            last("role"),
            last("text"),
            last("created_at").replace("AS last_created_at", "AS last_at"),
        );
        let order = match query.tab {
            InboxTab::Waiting => {
                sql.push_str(" AND c.status = 'waiting_for_agent'");
                "c.handoff_at ASC, c.id ASC"
            }
            InboxTab::Mine => {
                sql.push_str(&format!(
                    " AND c.status = 'with_agent' AND c.assigned_agent = {me}"
                ));
                "c.updated_at DESC, c.id DESC"
            }
            InboxTab::Open => {
                sql.push_str(" AND c.status IN ('waiting_for_agent', 'with_agent')");
                "c.handoff_at ASC, c.id ASC"
            }
            InboxTab::Resolved => {
                sql.push_str(" AND c.status = 'resolved'");
                "c.resolved_at DESC, c.id DESC"
            }
            InboxTab::All => "c.updated_at DESC, c.id DESC",
        };
        if let Some(channel) = query.channel.filter(|c| !c.is_empty()) {
            let p = bind(channel.to_string(), &mut binds);
            sql.push_str(&format!(" AND c.channel = {p}"));
        }
        if let Some(status) = query.status.filter(|s| !s.is_empty()) {
            let p = bind(status.to_string(), &mut binds);
            sql.push_str(&format!(" AND c.status = {p}"));
        }
        if let Some(agent) = query.assigned.filter(|a| !a.is_empty()) {
            let p = bind(agent.to_string(), &mut binds);
            sql.push_str(&format!(
                " AND (c.assigned_agent = {p} OR (c.status = 'resolved' AND c.resolved_by = {p}))"
            ));
        }
        if let Some(reason) = query.reason.filter(|r| !r.is_empty()) {
            let p = bind(reason.to_string(), &mut binds);
            sql.push_str(&format!(" AND c.handoff_reason = {p}"));
        }
        // Numbers are bound as text here (every value of this query is);
        // CAST makes them numbers on both databases.
        if let Some(from) = query.from {
            let p = bind(from.to_string(), &mut binds);
            sql.push_str(&format!(" AND c.created_at >= CAST({p} AS BIGINT)"));
        }
        if let Some(until) = query.until {
            let p = bind(until.to_string(), &mut binds);
            sql.push_str(&format!(" AND c.created_at < CAST({p} AS BIGINT)"));
        }
        if let Some(csat) = query.csat {
            let p = bind(csat.to_string(), &mut binds);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM surveys v WHERE v.conversation_id = c.id AND v.csat = CAST({p} AS BIGINT))"
            ));
        }
        if let Some(tag) = query.tag.filter(|t| !t.is_empty()) {
            let p = bind(tag.to_string(), &mut binds);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM conversation_tags g WHERE g.conversation_id = c.id AND g.tag = {p})"
            ));
        }
        for word in query.text.unwrap_or("").split_whitespace().take(8) {
            let pattern = like_pattern(word);
            let (a, b, m, t) = (
                bind(pattern.clone(), &mut binds),
                bind(pattern.clone(), &mut binds),
                bind(pattern.clone(), &mut binds),
                bind(pattern, &mut binds),
            );
            sql.push_str(&format!(
                " AND (LOWER(COALESCE(cu.display_name, '')) LIKE {a} ESCAPE '\\' \
                 OR LOWER(cu.external_id) LIKE {b} ESCAPE '\\' \
                 OR EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id \
                            AND s.role <> 'note' AND LOWER(s.text) LIKE {m} ESCAPE '\\') \
                 OR EXISTS (SELECT 1 FROM conversation_tags g WHERE g.conversation_id = c.id \
                            AND g.tag LIKE {t} ESCAPE '\\'))"
            ));
        }
        let p = bind(query.limit.clamp(1, 500).to_string(), &mut binds);
        sql.push_str(&format!(" ORDER BY {order} LIMIT {p}"));
        // Audited: the text is put together from fixed pieces and `$n`
        // placeholders only; every value from the request is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        let limit_index = binds.len() - 1;
        for (i, value) in binds.iter().enumerate() {
            q = if i == limit_index {
                q.bind(query.limit.clamp(1, 500))
            } else {
                q.bind(value.as_str())
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut entries = rows
            .iter()
            .map(InboxEntry::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<&str> = entries.iter().map(|e| e.conversation.id.as_str()).collect();
        let mut tags = self.tags_of(&ids).await?;
        for entry in &mut entries {
            entry.tags = tags
                .remove(entry.conversation.id.as_str())
                .unwrap_or_default();
        }
        Ok(entries)
    }

    /// The customer's conversations, newest first (at most `limit`), with
    /// their CSAT ratings.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn customer_conversations(
        &self,
        customer_id: &CustomerId,
        limit: i64,
    ) -> Result<Vec<PastConversation>, Error> {
        let rows = sqlx::query(
            "SELECT c.id, c.status, c.created_at, c.resolved_at, c.handoff_reason, s.csat \
             FROM conversations c LEFT JOIN surveys s ON s.conversation_id = c.id \
             WHERE c.customer_id = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT $2",
        )
        .bind(customer_id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PastConversation {
                    id: get(r, "id")?,
                    status: get(r, "status")?,
                    created_at: get(r, "created_at")?,
                    resolved_at: get(r, "resolved_at")?,
                    handoff_reason: get(r, "handoff_reason")?,
                    csat: get(r, "csat")?,
                })
            })
            .collect()
    }

    /// Records that `agent` has the conversation open now: its customer
    /// messages so far are read.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn mark_read(
        &self,
        agent: &AgentId,
        conversation_id: &ConversationId,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agent_reads (agent, conversation_id, read_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent, conversation_id) DO UPDATE SET read_at = EXCLUDED.read_at",
        )
        .bind(agent.as_str())
        .bind(conversation_id.as_str())
        .bind(self.now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A LIKE pattern made from any text matches that text literally:
        /// every wildcard in it is escaped.
        #[test]
        fn like_patterns_escape_every_wildcard(text in "\\PC{0,30}") {
            let p = like_pattern(&text);
            let inner = &p[1..p.len() - 1];
            let mut chars = inner.chars();
            let mut unescaped = String::new();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next();
                    prop_assert!(matches!(next, Some('%' | '_' | '\\')));
                    unescaped.extend(next);
                } else {
                    prop_assert!(c != '%' && c != '_');
                    unescaped.push(c);
                }
            }
            prop_assert_eq!(unescaped, text.to_lowercase());
        }
    }
}
