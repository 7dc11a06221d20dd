//! The history routes of the knowledge-base editor (under `/api/admin/kb`,
//! admins only): recorded changes, one change with its diff, and reverts.
//! A revert is itself a recorded change, refused (409, with a diff) when the
//! file is no longer as the reverted change left it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::agent::{ApiError, AuthAdmin};
use super::kb_editor::{apply, diff, hash, internal, record};
use crate::store::{KbChange, NewKbChange};

/// The history routes, merged into the editor's.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/changes", get(changes))
        .route("/changes/{id}", get(change))
        .route("/changes/{id}/revert", post(revert))
}

#[derive(Deserialize)]
struct ChangesQuery {
    slug: Option<String>,
    limit: Option<i64>,
}

async fn changes(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<ChangesQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let changes = state
        .assistant
        .store()
        .kb_changes(query.slug.as_deref(), limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "changes": changes })).into_response())
}

async fn find_change(state: &AppState, id: &str) -> Result<KbChange, ApiError> {
    match state.assistant.store().kb_change(id).await {
        Ok(c) => Ok(c),
        Err(crate::store::Error::NotFound { .. }) => {
            Err(ApiError(StatusCode::NOT_FOUND, format!("no change `{id}`")))
        }
        Err(e) => Err(internal(e)),
    }
}

async fn change(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let change = find_change(&state, &id).await?;
    let old_name = change.previous_slug.as_deref().unwrap_or(&change.slug);
    let diff = diff(
        change.before.as_deref().unwrap_or(""),
        change.after.as_deref().unwrap_or(""),
        &format!("{old_name} (before)"),
        &format!("{} (after)", change.slug),
    );
    Ok(Json(json!({ "change": change, "diff": diff })).into_response())
}

async fn revert(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let change = find_change(&state, &id)
        .await
        .map_err(IntoResponse::into_response)?;
    // The file must still be as the change left it.
    let after_hash = hash(change.after.as_deref());
    let (target, mut undo, mut redo) = match &change.previous_slug {
        Some(old) => (
            old.clone(),
            vec![
                (old.clone(), None, change.before.clone()),
                (change.slug.clone(), after_hash.clone(), None),
            ],
            vec![
                (change.slug.clone(), None, change.after.clone()),
                (old.clone(), hash(change.before.as_deref()), None),
            ],
        ),
        None => (
            change.slug.clone(),
            vec![(change.slug.clone(), after_hash, change.before.clone())],
            vec![(
                change.slug.clone(),
                hash(change.before.as_deref()),
                change.after.clone(),
            )],
        ),
    };
    undo.retain(|(_, expected, text)| expected.is_some() || text.is_some());
    redo.retain(|(_, expected, text)| expected.is_some() || text.is_some());
    apply(&state, undo, change.before.as_deref().unwrap_or("")).await?;
    let reverted = record(
        &state,
        NewKbChange {
            slug: &target,
            previous_slug: change.previous_slug.as_ref().map(|_| change.slug.as_str()),
            action: "revert",
            agent: &admin.name,
            before: change.after.as_deref(),
            after: change.before.as_deref(),
            reverts: Some(&change.id),
        },
        redo,
    )
    .await?;
    tracing::info!(agent = %admin.name, change = %change.id, "knowledge-base change reverted");
    Ok(Json(json!({
        "slug": target, "hash": hash(change.before.as_deref()), "change": reverted.id,
    }))
    .into_response())
}
