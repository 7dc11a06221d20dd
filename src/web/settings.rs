//! The admin settings view: what the running bot is configured with, and
//! the one thing about agents that lives in the database (their console
//! password).
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /api/admin/settings` | | agents (roles, linked accounts, whether a password and an API token are set), canned replies, hand-off rules and business hours, surveys, channels, model and embeddings, each marked with where it comes from |
//! | `POST /api/admin/settings/agents/{name}/password` | `{"password"}` | sets an agent's console password and ends their sessions |
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
use super::agent::{ApiError, AuthAdmin};
use crate::config::Settings;

/// Routes under `/api/admin/settings`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(show))
        .route("/agents/{name}/password", post(set_password))
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
    // Passwords live in the database: read now.
    if let Some(agents) = view["agents"].as_array_mut() {
        for agent in agents {
            let name = agent["name"].as_str().unwrap_or_default().to_string();
            let set = state
                .assistant
                .store()
                .agent_password(&name)
                .await
                .map_err(crate::desk::Error::from)?
                .is_some();
            agent["password_set"] = json!(set);
        }
    }
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
    use crate::auth::Error;
    match state.auth.set_password(&name, &body.password).await {
        Ok(()) => {
            tracing::info!(admin = %admin.name, agent = %name, "console password set by an admin");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e @ Error::UnknownAgent(_)) => Err(ApiError(StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ Error::WeakPassword) => {
            Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
        }
        Err(e) => {
            tracing::error!("setting a password: {e}");
            Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log".into(),
            ))
        }
    }
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
