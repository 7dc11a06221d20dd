//! The admin settings view: what the running bot is configured with, and
//! what about agents lives in the database (console passwords, agents added
//! from the console, who is disabled).
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /api/admin/settings` | | agents (origin `config` or `console`, role, disabled, online, linked accounts, whether a password and an API token are set), canned replies, hand-off rules and business hours, surveys, channels, model and embeddings, each marked with where it comes from |
//! | `POST /api/admin/settings/agents` | `{"name", "admin"}` | adds a console agent; 201 with their invite (`path`, `expires_at`); 409 taken, 422 bad name |
//! | `POST /api/admin/settings/agents/{name}/password` | `{"password"}` | sets an agent's console password and ends their sessions |
//! | `POST /api/admin/settings/agents/{name}/invite` | | a new invite link (`path`), earlier ones withdrawn |
//! | `POST /api/admin/settings/agents/{name}/role` | `{"admin"}` | a console agent's role; 409 for agents from config.toml |
//! | `POST /api/admin/settings/agents/{name}/disabled` | `{"disabled"}` | disables (sessions and invites end; refused on every channel) or enables any agent; 409 for yourself |
//!
//! Settings from `config.toml` and the environment are shown, not edited
//! (change the file and restart). Secrets are never shown: not the model's
//! API key, not agents' tokens, not the database URL (it may carry a
//! password), not a password in the model's URL; only whether they are set.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::agent::{ApiError, AuthAdmin, auth_error};
use crate::config::Settings;

/// Routes under `/api/admin/settings`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(show))
        .route("/agents", post(add_agent))
        .route("/agents/{name}/password", post(set_password))
        .route("/agents/{name}/invite", post(invite))
        .route("/agents/{name}/role", post(set_role))
        .route("/agents/{name}/disabled", post(set_disabled))
}

/// The part of the settings the view shows, taken once at start (the file
/// is read at start too). Nothing secret goes in.
pub fn snapshot(settings: &Settings) -> Value {
    let agents: Vec<Value> = settings
        .agents
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "admin": a.admin,
                "telegram": a.telegram_id.is_some(),
                "discord": a.discord_id.is_some(),
                "api_token": a
                    .token_env
                    .as_deref()
                    .is_some_and(|var| std::env::var(var).is_ok_and(|v| !v.is_empty())),
                "token_env": a.token_env,
            })
        })
        .collect();
    let h = &settings.handoff;
    let c = &settings.csat;
    let llm = &settings.llm;
    json!({
        "source": "config.toml and SWITCHBOARD_* environment variables, read at start",
        "agents": agents,
        "handoff": {
            "business_hours": h.business_hours,
            "timezone": h.timezone,
            "keywords": h.keywords,
            "tags": h.tags,
            "vip": h.vip,
            "unclaimed_reping_secs": h.unclaimed_reping_secs,
        },
        "csat": {
            "enabled": c.enabled,
            "delay_secs": c.delay_secs,
            "inactivity_resolve_secs": c.inactivity_resolve_secs,
            "ces": c.ces,
            "nps": c.nps,
            "comment": c.comment,
        },
        "channels": {
            "web": settings.web.listen,
            "allowed_origins": settings.web.allowed_origins,
            "telegram": settings.telegram.enabled,
            "discord": settings.discord.enabled,
        },
        "model": {
            "base_url": llm.base_url.as_deref().map(without_userinfo),
            "model": llm.model,
            "api_key_set": llm.api_key.is_some(),
            "max_concurrency": llm.max_concurrency,
            "context_tokens": llm.context_tokens,
        },
        "embeddings": {
            "provider": settings.embeddings.provider.map(|p| format!("{p:?}").to_lowercase()),
            "model": settings.embeddings.model,
        },
        "database": if settings.database.url.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "knowledge_base": settings.knowledge_base.path,
    })
}

/// `url` without a `user:password@` part.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

async fn show(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
) -> Result<impl IntoResponse, ApiError> {
    let mut view = (*state.settings).clone();
    state.auth.reload().await.map_err(auth_error)?;
    let online = state.auth.online().await.map_err(auth_error)?;
    // Agents from config as snapshotted (linked accounts, token), plus
    // those added from the console; passwords and flags live in the
    // database, so they are read now.
    let configured = view["agents"].as_array().cloned().unwrap_or_default();
    let mut agents = Vec::new();
    for listed in state.auth.agents().listing() {
        let name = listed.agent.name.clone();
        let mut row = configured
            .iter()
            .find(|a| a["name"] == name.as_str())
            .cloned()
            .unwrap_or_else(|| json!({"name": name, "admin": listed.agent.admin}));
        let set = state
            .assistant
            .store()
            .agent_password(&name)
            .await
            .map_err(crate::desk::Error::from)?
            .is_some();
        row["password_set"] = json!(set);
        row["origin"] = json!(listed.origin);
        row["disabled"] = json!(listed.disabled);
        row["online"] = json!(online.iter().any(|o| *o == name));
        agents.push(row);
    }
    view["agents"] = json!(agents);
    let canned: Vec<Value> = state
        .desk
        .canned_replies(&admin)?
        .into_iter()
        .map(|(name, text)| json!({"name": name, "text": text}))
        .collect();
    view["canned"] = json!({
        "source": "prompts/canned/NAME.md",
        "replies": canned,
    });
    Ok(Json(view))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

async fn set_password(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(name): Path<String>,
    Json(body): Json<PasswordBody>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .auth
        .set_password(&name, &body.password)
        .await
        .map_err(auth_error)?;
    tracing::info!(admin = %admin.name, agent = %name, "console password set by an admin");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NewAgent {
    name: String,
    #[serde(default)]
    admin: bool,
}

/// An invite as the API returns it: the console builds the link from its
/// own origin and `path`.
fn invite_json(invite: &crate::auth::Invite) -> Value {
    json!({
        "agent": invite.agent,
        "path": invite.path(),
        "expires_at": invite.expires_at,
    })
}

async fn add_agent(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Json(body): Json<NewAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let name = body.name.trim();
    let auth = &state.auth;
    auth.add_agent(name, body.admin, &admin.name)
        .await
        .map_err(auth_error)?;
    let invite = auth.invite(name, &admin.name).await.map_err(auth_error)?;
    tracing::info!(admin = %admin.name, agent = %name, as_admin = body.admin, "agent added from the console");
    Ok((StatusCode::CREATED, Json(invite_json(&invite))))
}

async fn invite(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let invite = state
        .auth
        .invite(&name, &admin.name)
        .await
        .map_err(auth_error)?;
    tracing::info!(admin = %admin.name, agent = %name, "invite link made");
    Ok(Json(invite_json(&invite)))
}

#[derive(Deserialize)]
struct RoleBody {
    admin: bool,
}

async fn set_role(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(name): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .auth
        .set_role(&name, body.admin, &admin.name)
        .await
        .map_err(auth_error)?;
    tracing::info!(admin = %admin.name, agent = %name, as_admin = body.admin, "agent's role changed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DisabledBody {
    disabled: bool,
}

async fn set_disabled(
    State(state): State<Arc<AppState>>,
    AuthAdmin(admin): AuthAdmin,
    Path(name): Path<String>,
    Json(body): Json<DisabledBody>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .auth
        .set_disabled(&name, body.disabled, &admin.name)
        .await
        .map_err(auth_error)?;
    tracing::info!(admin = %admin.name, agent = %name, disabled = body.disabled, "agent disabled or enabled");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(
            without_userinfo("https://user:secret@api.example.com/v1"),
            "https://api.example.com/v1"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:8091/v1?x=a@b"),
            "http://127.0.0.1:8091/v1?x=a@b"
        );
        assert_eq!(without_userinfo("no scheme"), "no scheme");
    }

    #[test]
    fn the_snapshot_holds_no_secret() {
        let mut settings = Settings::default();
        settings.llm.api_key = Some(crate::config::Secret::new("sk-very-secret"));
        settings.llm.base_url = Some("https://me:hunter2@llm.example/v1".into());
        settings.database.url = "postgres://sb:dbpass@db/sb".into();
        let shown = snapshot(&settings).to_string();
        for secret in ["sk-very-secret", "hunter2", "dbpass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("\"api_key_set\":true"), "{shown}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hostile_urls_never_panic_and_lose_their_userinfo(
            s in crate::hostile::text(),
            secret in "[a-z]{6,12}",
        ) {
            let _ = without_userinfo(&s);
            let url = format!("https://{secret}:{secret}@host/{s}");
            let with_secret = format!("https://{secret}");
            prop_assert!(!without_userinfo(&url).starts_with(&with_secret));
        }
    }
}
