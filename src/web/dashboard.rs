//! The console's dashboard, for admins only (anonymous requests get 401,
//! other agents 403): the report's figures over a date range and channel
//! as JSON, as SVG charts and as CSV.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/admin/dashboard?from=&to=&channel=` | totals (the `report --json` object for the range), channels, 👍/👎, knowledge gaps, and every series |
//! | `GET /api/admin/dashboard/chart/{series}?…` | one series drawn as SVG |
//! | `GET /api/admin/dashboard/csv/{series}?…` | one series as CSV (a download) |
//! | `GET /api/admin/dashboard/gaps?…` | the knowledge gaps alone (`report gaps` for the range), for the console's gap page |
//!
//! `from` and `to` are UTC days (`YYYY-MM-DD`, both included; default the
//! last 30 days); `channel` empty means every channel. The series are
//! named in [`crate::dashboard::SERIES`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::agent::{ApiError, AuthAdmin};
use crate::dashboard::{self, Dashboard, Range, SERIES};

/// Routes under `/api/admin/dashboard`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/chart/{series}", get(chart))
        .route("/csv/{series}", get(csv))
        .route("/gaps", get(gaps))
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
}

/// The range and channel asked for (422 for a range that is refused).
fn parse<'q>(
    state: &AppState,
    query: &'q RangeQuery,
) -> Result<(Range, Option<&'q str>), ApiError> {
    let range = Range::parse(
        query.from.as_deref(),
        query.to.as_deref(),
        state.assistant.store().now(),
    )
    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok((range, query.channel.as_deref().filter(|c| !c.is_empty())))
}

async fn load(
    state: &AppState,
    query: &RangeQuery,
    with_gaps: bool,
) -> Result<Dashboard, ApiError> {
    let store = state.assistant.store();
    let (range, channel) = parse(state, query)?;
    dashboard::build(store, &range, channel, with_gaps)
        .await
        .map_err(super::kb_editor::internal)
}

fn unknown(name: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no series `{}`; there are {}",
            name.chars().take(40).collect::<String>(),
            SERIES.join(", ")
        ),
    )
}

async fn overview(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let d = load(&state, &query, true).await?;
    let series: serde_json::Map<String, serde_json::Value> = SERIES
        .iter()
        .filter_map(|n| Some(((*n).to_string(), serde_json::to_value(d.series(n)?).ok()?)))
        .collect();
    Ok(Json(json!({
        "from": d.from, "to": d.to, "step_days": d.step_days, "channel": d.channel,
        "channels": d.channels, "totals": d.totals, "up": d.up, "down": d.down,
        "volume": d.volume, "gaps": d.gaps, "series": series,
    }))
    .into_response())
}

async fn gaps(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (range, channel) = parse(&state, &query)?;
    let gaps = crate::report::gaps(state.assistant.store(), &dashboard::filter(&range, channel))
        .await
        .map_err(super::kb_editor::internal)?;
    Ok(
        Json(json!({"from": range.from, "to": range.to, "channel": channel, "gaps": gaps}))
            .into_response(),
    )
}

async fn chart(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Path(name): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    if !SERIES.contains(&name.as_str()) {
        return Err(unknown(&name));
    }
    let d = load(&state, &query, name == "gaps").await?;
    let series = d.series(&name).ok_or_else(|| unknown(&name))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        super::svg::chart(&series),
    )
        .into_response())
}

async fn csv(
    State(state): State<Arc<AppState>>,
    _admin: AuthAdmin,
    Path(name): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    if !SERIES.contains(&name.as_str()) {
        return Err(unknown(&name));
    }
    let d = load(&state, &query, name == "gaps").await?;
    let series = d.series(&name).ok_or_else(|| unknown(&name))?;
    // `name` is one of SERIES and the days are dates: the file name is
    // plain ASCII.
    let disposition = format!(
        "attachment; filename=\"switchboard-{name}-{}-{}.csv\"",
        d.from, d.to
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        dashboard::csv(&series),
    )
        .into_response())
}
