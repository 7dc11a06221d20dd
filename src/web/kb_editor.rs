//! The console's knowledge-base editor: JSON routes under `/api/admin/kb`,
//! for admins only (anonymous requests get 401, other agents 403; a change
//! made with the session cookie needs `X-CSRF-Token`, as in the agent API).
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /articles?q=TEXT` | | articles: slug, title, tags, last edit (who, when), answers that cited it and their 👍/👎, `kb check` problems (files that cannot be loaded are listed as `broken`) |
//! | `GET /article?slug=SLUG` | | its source, `hash`, front matter as fields, body, rendered HTML, `kb check` problems, changes |
//! | `POST /preview` | `{"slug", "front", "body"}` | the rendered HTML (as customers see answers) and the problems, without saving |
//! | `POST /save` | `{"slug", "front", "body", "hash"}` | writes the article; `hash` is the version opened (`null` for a new one) |
//! | `POST /rename` | `{"from", "to", "hash"}` | moves it to a new slug |
//! | `POST /delete` | `{"slug", "hash"}` | removes it |
//! | `GET /changes?slug=SLUG` | | recorded changes, newest first |
//! | `GET /changes/{id}` | | one change with its texts and a diff |
//! | `POST /changes/{id}/revert` | | undoes it (recorded as a change of its own) |
//!
//! The last three are in [`super::kb_history`].
//!
//! A change made on a version that is no longer on disk is refused with 409
//! and a unified diff from the file as it is now to the text sent; a draft
//! with a fatal `kb check` problem with 422 and the problems. Saving
//! reloads the index before answering, so the next answer uses the new
//! text.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::agent::{ApiError, AuthAdmin};
use crate::kb::edit::{self, Change};
use crate::kb::{self, Front};
use crate::store::{KbChange, NewKbChange};

/// Longest article accepted, in bytes.
pub(super) const MAX_ARTICLE_BYTES: usize = 1 << 20;

/// Routes under `/api/admin/kb`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/articles", get(list))
        .route("/article", get(open))
        .route("/preview", post(preview))
        .route("/save", post(save))
        .route("/rename", post(rename))
        .route("/delete", post(delete))
        .merge(super::kb_history::routes())
        // An article (JSON-escaped) may be larger than `web.max_body_bytes`;
        // only an admin's request body is read.
        .layer(axum::extract::DefaultBodyLimit::max(3 * MAX_ARTICLE_BYTES))
}

/// A unified diff from `old` to `new`, line by line.
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("knowledge-base editor: {e}");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server log".into(),
    )
}

fn bad_slug(e: kb::Error) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
}

async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let kb = state.assistant.kb().clone();
    let store = state.assistant.store();
    let citations = store.citations().await.map_err(internal)?;
    let edits = store.kb_last_edits().await.map_err(internal)?;
    let q = query.q.trim().to_lowercase();
    let mut articles = kb.articles();
    if !q.is_empty() {
        // Title, slug and tags first, then what full-text search finds.
        let found: Vec<String> = kb
            .search(&q, 50)
            .map_err(internal)?
            .into_iter()
            .map(|h| h.slug)
            .collect();
        let named = |a: &kb::Article| {
            a.title.to_lowercase().contains(&q)
                || a.slug.to_lowercase().contains(&q)
                || a.tags.iter().any(|t| t.to_lowercase().contains(&q))
        };
        let rank = |a: &kb::Article| {
            if named(a) {
                Some(0)
            } else {
                found.iter().position(|s| *s == a.slug).map(|p| p + 1)
            }
        };
        articles.retain(|a| rank(a).is_some());
        articles.sort_by_key(|a| rank(a));
    }
    // What `kb check` says, by slug; files it could not load at all are
    // listed too (as `broken`), so they can be opened and fixed.
    let root = kb.root().to_path_buf();
    let (_, found) = tokio::task::spawn_blocking(move || kb::check_folder(&root))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let mut problems: std::collections::BTreeMap<String, (usize, bool)> = Default::default();
    for p in found {
        if let Some(slug) = kb::slug_for(kb.root(), &p.path) {
            let entry = problems.entry(slug).or_default();
            entry.0 += 1;
            entry.1 |= p.problem.fatal;
        }
    }
    let mut rows: Vec<_> = articles
        .iter()
        .map(|a| {
            let cited = citations.get(&a.slug).copied().unwrap_or_default();
            let edit = edits.get(&a.slug);
            json!({
                "slug": a.slug, "title": a.title, "tags": a.tags, "url": a.url,
                "edited_at": edit.map(|e| e.1).or_else(|| kb.modified(&a.slug)),
                "edited_by": edit.map(|e| e.0.clone()),
                "cited": cited.cited, "up": cited.up, "down": cited.down,
                "problems": problems.get(&a.slug).map_or(0, |p| p.0), "broken": false,
            })
        })
        .collect();
    for (slug, (count, _)) in problems
        .iter()
        .filter(|(slug, p)| p.1 && kb.article(slug).is_none() && slug.to_lowercase().contains(&q))
    {
        rows.push(json!({
            "slug": slug, "title": slug, "tags": [], "url": null,
            "edited_at": kb.modified(slug), "edited_by": edits.get(slug).map(|e| e.0.clone()),
            "cited": 0, "up": 0, "down": 0, "problems": count, "broken": true,
        }));
    }
    Ok(Json(json!({ "articles": rows })).into_response())
}

#[derive(Deserialize)]
struct SlugQuery {
    slug: String,
}

async fn open(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<SlugQuery>,
) -> Result<Response, ApiError> {
    let kb = state.assistant.kb().clone();
    let source = kb.source(&query.slug).map_err(bad_slug)?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no article `{}`", query.slug),
        )
    })?;
    let (front, body) = kb::split_source(&source.text);
    let problems = kb.check_draft(&source.slug, &source.text, None);
    let changes = state
        .assistant
        .store()
        .kb_changes(Some(&source.slug), 50)
        .await
        .map_err(internal)?;
    Ok(Json(json!({
        "slug": source.slug, "hash": source.hash, "text": source.text,
        "front": front, "body": body, "html": super::markdown::to_html(body),
        "problems": problems, "modified": source.modified, "changes": changes,
    }))
    .into_response())
}

/// An article as the editor sends it.
#[derive(Deserialize)]
pub(super) struct Draft {
    /// Where it goes.
    pub slug: String,
    /// Its front matter as fields.
    #[serde(default)]
    pub front: Front,
    /// Its Markdown.
    pub body: String,
    /// The version opened; `None` for a new article.
    #[serde(default)]
    pub hash: Option<String>,
}

impl Draft {
    fn text(&self) -> Result<String, ApiError> {
        let text = edit::compose(&self.front, &self.body);
        if text.len() > MAX_ARTICLE_BYTES {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("an article may have at most {MAX_ARTICLE_BYTES} bytes"),
            ));
        }
        Ok(text)
    }
}

async fn preview(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Json(draft): Json<Draft>,
) -> Result<Response, ApiError> {
    let text = draft.text()?;
    let kb = state.assistant.kb();
    let mut problems = kb.check_draft(&draft.slug, &text, None);
    if let Err(e) = edit::validate_slug(&draft.slug) {
        problems.insert(
            0,
            kb::Problem {
                line: 1,
                message: e.to_string(),
                fatal: true,
            },
        );
    }
    let (_, body) = kb::split_source(&text);
    Ok(Json(json!({
        "text": text, "html": super::markdown::to_html(body), "problems": problems,
    }))
    .into_response())
}

/// Applies `changes` on a blocking thread, then updates passage vectors.
/// A stale version becomes a 409 with a diff from the file now to `mine`.
pub(super) async fn apply(
    state: &AppState,
    changes: Vec<(String, Option<String>, Option<String>)>,
    mine: &str,
) -> Result<Vec<Option<String>>, Response> {
    let kb = state.assistant.kb().clone();
    let result = tokio::task::spawn_blocking(move || {
        let changes: Vec<Change<'_>> = changes
            .iter()
            .map(|(slug, expected, text)| Change {
                slug,
                expected: expected.as_deref(),
                text: text.as_deref(),
            })
            .collect();
        kb.apply(&changes)
    })
    .await
    .map_err(|e| internal(e).into_response())?;
    match result {
        Ok(before) => {
            if let Some(semantic) = state.assistant.semantic()
                && let Err(e) = semantic.sync(state.assistant.kb()).await
            {
                tracing::warn!("passage vectors not updated after an edit: {e}");
            }
            Ok(before)
        }
        Err(kb::Error::Stale { slug, current }) => {
            let now = current.as_deref().unwrap_or("");
            let error = match &current {
                Some(_) => format!("`{slug}` was changed since you opened it; nothing was saved"),
                None if mine.is_empty() => {
                    format!("`{slug}` no longer exists; nothing was changed")
                }
                None => format!("`{slug}` was removed since you opened it; nothing was saved"),
            };
            Err((
                StatusCode::CONFLICT,
                Json(json!({
                    "error": error, "slug": slug,
                    "current_hash": current.as_deref().map(|t| edit::hash_of(t.as_bytes())),
                    "current": current,
                    "diff": diff(now, mine, &format!("{slug} (on disk now)"), &format!("{slug} (yours)")),
                })),
            )
                .into_response())
        }
        Err(e @ kb::Error::BadSlug(_)) => Err(bad_slug(e).into_response()),
        Err(e) => Err(internal(e).into_response()),
    }
}

/// Records a change that was applied; when that fails, the files are put
/// back (best effort) so nothing changes unrecorded.
pub(super) async fn record(
    state: &AppState,
    change: NewKbChange<'_>,
    undo: Vec<(String, Option<String>, Option<String>)>,
) -> Result<KbChange, Response> {
    match state.assistant.store().record_kb_change(&change).await {
        Ok(c) => Ok(c),
        Err(e) => {
            if let Err(r) = apply(state, undo, "").await {
                tracing::error!(status = %r.status(), "knowledge-base edit could not be undone");
            }
            Err(internal(e).into_response())
        }
    }
}

pub(super) fn hash(text: Option<&str>) -> Option<String> {
    text.map(|t| edit::hash_of(t.as_bytes()))
}

/// An article written through the editor's path.
pub(super) struct Saved {
    /// Its slug.
    pub slug: String,
    /// The hash of the text now on disk.
    pub hash: String,
    /// The recorded change (`None`: the text was already so).
    pub change: Option<String>,
    /// `kb check` problems left (none fatal).
    pub problems: Vec<kb::Problem>,
}

/// Writes `draft` as `admin`: checks the slug and the problems (422 with
/// them when one is fatal), writes the file (temp file + rename, 409 with a
/// diff when `draft.hash` is no longer the version on disk), reloads the
/// index and records the change in `kb_changes`.
pub(super) async fn write(state: &AppState, admin: &str, draft: &Draft) -> Result<Saved, Response> {
    edit::validate_slug(&draft.slug).map_err(|e| bad_slug(e).into_response())?;
    let text = draft.text().map_err(IntoResponse::into_response)?;
    let problems = state.assistant.kb().check_draft(&draft.slug, &text, None);
    if problems.iter().any(|p| p.fatal) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({"error": "fix the problems first; nothing was saved", "problems": problems}),
            ),
        )
            .into_response());
    }
    let new_hash = edit::hash_of(text.as_bytes());
    if draft.hash.as_deref() == Some(new_hash.as_str()) {
        return Ok(Saved {
            slug: draft.slug.clone(),
            hash: new_hash,
            change: None,
            problems,
        });
    }
    let slug = draft.slug.clone();
    let before = apply(
        state,
        vec![(slug.clone(), draft.hash.clone(), Some(text.clone()))],
        &text,
    )
    .await?;
    let before = before.into_iter().next().flatten();
    let change = record(
        state,
        NewKbChange {
            slug: &slug,
            action: if before.is_some() { "update" } else { "create" },
            agent: admin,
            before: before.as_deref(),
            after: Some(&text),
            ..NewKbChange::default()
        },
        vec![(slug.clone(), Some(new_hash.clone()), before.clone())],
    )
    .await?;
    tracing::info!(agent = %admin, %slug, "knowledge-base article saved");
    Ok(Saved {
        slug,
        hash: new_hash,
        change: Some(change.id),
        problems,
    })
}

async fn save(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Json(draft): Json<Draft>,
) -> Result<Response, Response> {
    let saved = write(&state, &admin.name, &draft).await?;
    Ok(Json(json!({
        "slug": saved.slug, "hash": saved.hash, "change": saved.change, "problems": saved.problems,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RenameBody {
    from: String,
    to: String,
    hash: String,
}

async fn rename(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Json(body): Json<RenameBody>,
) -> Result<Response, Response> {
    let kb = state.assistant.kb().clone();
    edit::validate_slug(&body.to).map_err(|e| bad_slug(e).into_response())?;
    if body.from == body.to {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the new slug is the same as the old one".into(),
        )
        .into_response());
    }
    let source = kb
        .source(&body.from)
        .map_err(|e| bad_slug(e).into_response())?
        .ok_or_else(|| {
            ApiError(StatusCode::NOT_FOUND, format!("no article `{}`", body.from)).into_response()
        })?;
    let problems = kb.check_draft(&body.to, &source.text, Some(&body.from));
    if problems.iter().any(|p| p.fatal) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "fix the problems first; nothing was renamed", "problems": problems})),
        )
            .into_response());
    }
    let text = source.text;
    apply(
        &state,
        vec![
            (body.to.clone(), None, Some(text.clone())),
            (body.from.clone(), Some(body.hash.clone()), None),
        ],
        &text,
    )
    .await?;
    let change = record(
        &state,
        NewKbChange {
            slug: &body.to,
            previous_slug: Some(&body.from),
            action: "rename",
            agent: &admin.name,
            before: Some(&text),
            after: Some(&text),
            reverts: None,
        },
        vec![
            (body.from.clone(), None, Some(text.clone())),
            (body.to.clone(), hash(Some(&text)), None),
        ],
    )
    .await?;
    tracing::info!(agent = %admin.name, from = %body.from, to = %body.to, "knowledge-base article renamed");
    Ok(
        Json(json!({"slug": body.to, "hash": hash(Some(&text)), "change": change.id}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct DeleteBody {
    slug: String,
    hash: String,
}

async fn delete(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Json(body): Json<DeleteBody>,
) -> Result<Response, Response> {
    edit::validate_slug(&body.slug).map_err(|e| bad_slug(e).into_response())?;
    let before = apply(
        &state,
        vec![(body.slug.clone(), Some(body.hash.clone()), None)],
        "",
    )
    .await?;
    let before = before.into_iter().next().flatten();
    let change = record(
        &state,
        NewKbChange {
            slug: &body.slug,
            action: "delete",
            agent: &admin.name,
            before: before.as_deref(),
            ..NewKbChange::default()
        },
        vec![(body.slug.clone(), None, before.clone())],
    )
    .await?;
    tracing::info!(agent = %admin.name, slug = %body.slug, "knowledge-base article deleted");
    Ok(Json(json!({"slug": body.slug, "change": change.id})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any two texts: no diff when equal; otherwise every line only
        /// one side has is in the diff with its sign.
        #[test]
        fn diffs_show_every_changed_line(old in "(\\PC{0,12}\n){0,6}", new in "(\\PC{0,12}\n){0,6}") {
            let d = diff(&old, &new, "a", "b");
            if old == new {
                prop_assert!(d.is_empty());
            } else {
                for line in old.lines().filter(|l| !new.lines().any(|n| n == *l)) {
                    let wanted = format!("-{line}");
                    prop_assert!(d.lines().any(|l| l == wanted), "{} missing in {}", wanted, d);
                }
                for line in new.lines().filter(|l| !old.lines().any(|o| o == *l)) {
                    let wanted = format!("+{line}");
                    prop_assert!(d.lines().any(|l| l == wanted), "{} missing in {}", wanted, d);
                }
            }
        }
    }
}
