//! Suggested articles (the learning loop, see [`crate::suggest`]).
//!
//! Any agent suggests; admins review. Anonymous requests get 401, agents
//! who are not admins 403 on the admin routes; a change made with the
//! session cookie needs `X-CSRF-Token`, as in the rest of the agent API.
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `POST /api/agent/conversations/{id}/suggest` | | drafts the suggestion of a resolved conversation (201), or returns the one it has (200): `{"suggestion", "created"}` |
//! | `GET /api/admin/suggestions?status=pending\|published\|dismissed\|all` | | `{"suggestions": […]}`, newest first (default `pending`) |
//! | `GET /api/admin/suggestions/{id}` | | `{"suggestion", "conversation", "source": {"questions", "replies"}}` |
//! | `POST /api/admin/suggestions/{id}` | `{"title", "slug", "tags", "body"}` (any of them) | keeps an edited draft (pending only) |
//! | `POST /api/admin/suggestions/{id}/publish` | the same, or nothing | keeps the edits, then writes the draft as a new article through the editor's path (`kb_changes`, index reloaded) |
//! | `POST /api/admin/suggestions/{id}/dismiss` | | decides against it |

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::agent::{ApiError, AuthAdmin, AuthAgent};
use super::kb_editor::{self, Draft, internal};
use crate::kb::Front;
use crate::store::{Suggestion, SuggestionDraft, SuggestionStatus};
use crate::suggest;

/// Longest title accepted from the browser, in characters.
const MAX_TITLE_CHARS: usize = 300;

/// The route merged into `/api/agent`.
pub fn agent_routes() -> Router<Arc<AppState>> {
    Router::new().route("/conversations/{id}/suggest", post(create))
}

/// Routes under `/api/admin/suggestions`.
pub fn admin_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list))
        .route("/{id}", get(open).post(edit))
        .route("/{id}/publish", post(publish))
        .route("/{id}/dismiss", post(dismiss))
        // A draft is an article: as large as the editor takes.
        .layer(axum::extract::DefaultBodyLimit::max(
            3 * kb_editor::MAX_ARTICLE_BYTES,
        ))
}

impl From<suggest::Error> for ApiError {
    fn from(e: suggest::Error) -> Self {
        use suggest::Error::*;
        let status = match &e {
            NotFound(_) => StatusCode::NOT_FOUND,
            NotResolved(_) => StatusCode::CONFLICT,
            NoQuestion | NoReply => StatusCode::UNPROCESSABLE_ENTITY,
            Store(e) => return internal(e),
        };
        ApiError(status, e.to_string())
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<crate::ids::ConversationId>,
) -> Result<Response, ApiError> {
    let made = suggest::suggest(&state.assistant, &id, &agent.name).await?;
    let status = if made.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"suggestion": made.suggestion, "created": made.created})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = match query.status.as_deref().unwrap_or("pending") {
        "all" => None,
        name => Some(SuggestionStatus::parse(name).map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("unknown status `{name}`; use pending, published, dismissed or all"),
            )
        })?),
    };
    let suggestions = state
        .assistant
        .store()
        .suggestions(status, 200)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "suggestions": suggestions })).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<Suggestion, ApiError> {
    match state.assistant.store().suggestion(id).await {
        Ok(s) => Ok(s),
        Err(crate::store::Error::NotFound { .. }) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no suggestion `{id}`"),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn open(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let suggestion = find(&state, &id).await?;
    let store = state.assistant.store();
    let conversation = store
        .conversation(&suggestion.conversation_id)
        .await
        .map_err(internal)?;
    let messages = store
        .messages(&suggestion.conversation_id)
        .await
        .map_err(internal)?;
    let source = suggest::material(&conversation, &messages);
    Ok(Json(json!({
        "suggestion": suggestion,
        "conversation": {
            "id": conversation.id, "channel": conversation.channel,
            "handoff_reason": conversation.handoff_reason, "resolved_by": conversation.resolved_by,
            "resolved_at": conversation.resolved_at,
        },
        "source": source,
    }))
    .into_response())
}

/// An admin's edit of a draft: the fields sent replace the draft's.
#[derive(Deserialize, Default)]
struct Edit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    body: Option<String>,
}

impl Edit {
    /// `current` with this edit, checked.
    fn apply(self, current: &Suggestion) -> Result<SuggestionDraft, ApiError> {
        let title = suggest::one_line(self.title.as_deref().unwrap_or(&current.title));
        if title.is_empty() {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the article needs a title".into(),
            ));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("a title may have at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        let body = self.body.unwrap_or_else(|| current.body.clone());
        if body.len() > kb_editor::MAX_ARTICLE_BYTES {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "an article may have at most {} bytes",
                    kb_editor::MAX_ARTICLE_BYTES
                ),
            ));
        }
        let slug = self
            .slug
            .as_deref()
            .unwrap_or(&current.slug)
            .trim()
            .to_string();
        crate::kb::edit::validate_slug(&slug)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let mut tags: Vec<String> = Vec::new();
        for tag in self
            .tags
            .as_ref()
            .unwrap_or(&current.tags)
            .iter()
            .map(|t| suggest::one_line(t))
        {
            if !tag.is_empty() && !tags.contains(&tag) && tags.len() < 20 {
                tags.push(tag);
            }
        }
        Ok(SuggestionDraft {
            title,
            slug,
            tags,
            body,
        })
    }
}

fn not_pending(s: &Suggestion) -> ApiError {
    ApiError(
        StatusCode::CONFLICT,
        match &s.published_slug {
            Some(slug) => format!(
                "this suggestion was already published as `{slug}` by {}",
                s.decided_by.as_deref().unwrap_or("an admin")
            ),
            None => format!(
                "this suggestion was already {} by {}",
                s.status,
                s.decided_by.as_deref().unwrap_or("an admin")
            ),
        },
    )
}

/// Keeps `edit` in the draft of pending suggestion `id`.
async fn keep(state: &AppState, id: &str, edit: Edit) -> Result<Suggestion, ApiError> {
    let current = find(state, id).await?;
    if current.status != SuggestionStatus::Pending {
        return Err(not_pending(&current));
    }
    let draft = edit.apply(&current)?;
    let store = state.assistant.store();
    if !store.edit_suggestion(id, &draft).await.map_err(internal)? {
        let now = find(state, id).await?;
        return Err(not_pending(&now));
    }
    find(state, id).await
}

async fn edit(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Path(id): Path<String>,
    Json(edit): Json<Edit>,
) -> Result<Response, ApiError> {
    let suggestion = keep(&state, &id, edit).await?;
    Ok(Json(json!({ "suggestion": suggestion })).into_response())
}

async fn publish(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    // Without a body (or fields), the draft as it was last kept.
    let edit = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Edit::default())
    } else {
        serde_json::from_slice::<Edit>(&body)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    };
    let suggestion = match edit {
        Ok(edit) => keep(&state, &id, edit).await,
        Err(e) => Err(e),
    }
    .map_err(IntoResponse::into_response)?;
    if suggestion.status != SuggestionStatus::Pending {
        return Err(not_pending(&suggestion).into_response());
    }
    let kb = state.assistant.kb();
    if kb.article(&suggestion.slug).is_some()
        || kb.source(&suggestion.slug).ok().flatten().is_some()
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "an article `{}` already exists; pick another slug (or add this answer to that article in the editor and dismiss the suggestion)",
                suggestion.slug
            ),
        )
        .into_response());
    }
    let draft = Draft {
        slug: suggestion.slug.clone(),
        front: Front {
            title: Some(suggestion.title.clone()),
            tags: suggestion.tags.clone(),
            url: None,
            locale: None,
        },
        body: suggestion.body.clone(),
        hash: None,
    };
    let saved = kb_editor::write(&state, &admin.name, &draft).await?;
    let store = state.assistant.store();
    if !store
        .decide_suggestion(&id, &admin.name, Some(&saved.slug))
        .await
        .map_err(|e| internal(e).into_response())?
    {
        // Someone decided while the article was being written: the article
        // stays (it is recorded and can be reverted from its history).
        let now = find(&state, &id)
            .await
            .map_err(IntoResponse::into_response)?;
        tracing::warn!(suggestion = %id, slug = %saved.slug, "a suggestion was decided while it was being published");
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "`{}` was written, but meanwhile {}; revert the article from its history if it should not stay",
                saved.slug,
                not_pending(&now).1
            ),
        )
        .into_response());
    }
    let suggestion = find(&state, &id)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(agent = %admin.name, suggestion = %id, slug = %saved.slug, "suggested article published");
    Ok(Json(json!({
        "suggestion": suggestion, "slug": saved.slug, "hash": saved.hash,
        "change": saved.change, "problems": saved.problems,
    }))
    .into_response())
}

async fn dismiss(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.assistant.store();
    let suggestion = find(&state, &id).await?;
    if !store
        .decide_suggestion(&id, &admin.name, None)
        .await
        .map_err(internal)?
    {
        return Err(not_pending(&find(&state, &id).await?));
    }
    tracing::info!(agent = %admin.name, suggestion = %suggestion.id, "suggested article dismissed");
    Ok(Json(json!({ "suggestion": find(&state, &id).await? })).into_response())
}
