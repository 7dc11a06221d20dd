//! The HTTP agent API: JSON, one bearer token per agent (`token_env`).
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `GET /api/agent/queue` | | waiting and claimed conversations |
//! | `GET /api/agent/conversations/{id}` | | conversation, customer, messages (with notes), events, transcript (messages and notices in order) |
//! | `POST …/{id}/claim` | | take it |
//! | `POST …/{id}/reply` | `{"text"}` | message to the customer (claims a waiting one) |
//! | `POST …/{id}/note` | `{"text"}` | internal note, never sent to the customer |
//! | `POST …/{id}/canned` | `{"name"}` | send `prompts/canned/NAME.md` |
//! | `POST …/{id}/resolve` | | close it |
//! | `POST …/{id}/give-back` | | back to the bot |
//! | `POST …/{id}/transfer` | `{"agent"}` | to another agent |

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use crate::agents::Agent;
use crate::desk::{self, AgentAction};

/// Routes under `/api/agent`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/queue", get(queue))
        .route("/conversations/{id}", get(conversation))
        .route("/conversations/{id}/claim", post(claim))
        .route("/conversations/{id}/reply", post(reply))
        .route("/conversations/{id}/note", post(note))
        .route("/conversations/{id}/canned", post(canned))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/conversations/{id}/give-back", post(give_back))
        .route("/conversations/{id}/transfer", post(transfer))
}

/// An API error: a status and a one-line JSON message.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({"error": self.1}))).into_response()
    }
}

impl From<desk::Error> for ApiError {
    fn from(e: desk::Error) -> Self {
        use desk::Error::*;
        let status = match &e {
            Unauthorized(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            Taken(_) | NotOwner(_) | WrongState(..) => StatusCode::CONFLICT,
            NoSuchAgent(_) | NoSuchCanned(..) | Empty => StatusCode::UNPROCESSABLE_ENTITY,
            Store(_) | Prompt(_) => {
                tracing::error!("agent API: {e}");
                return ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".into(),
                );
            }
        };
        ApiError(status, e.to_string())
    }
}

/// The agent whose bearer token came with the request.
pub struct AuthAgent(pub Agent);

impl FromRequestParts<Arc<AppState>> for AuthAgent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer TOKEN`; each agent's token is in the variable named by their token_env".into(),
            ));
        };
        match state.desk.agents().by_token(token) {
            Some(agent) => Ok(AuthAgent(agent.clone())),
            None => {
                let peer = super::peer_of(&parts.extensions);
                let source = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
                metrics::counter!("switchboard_auth_failures_total", "api" => "agent").increment(1);
                if let Some(held) = state.auth_log.check(&source) {
                    tracing::warn!(
                        path = %parts.uri.path(),
                        %source,
                        "agent API: refused an unknown token ({held} more from this address in the last minute were not logged)"
                    );
                }
                Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "unknown agent token".into(),
                ))
            }
        }
    }
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
}

#[derive(Deserialize)]
struct CannedBody {
    name: String,
}

#[derive(Deserialize)]
struct TransferBody {
    agent: String,
}

async fn queue(
    State(state): State<Arc<AppState>>,
    _agent: AuthAgent,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.desk.queue().await?))
}

async fn conversation(
    State(state): State<Arc<AppState>>,
    _agent: AuthAgent,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let store = state.assistant.store();
    let conversation = match store.conversation(&id).await {
        Ok(c) => c,
        Err(crate::store::Error::NotFound { .. }) => return Err(desk::Error::NotFound(id).into()),
        Err(e) => return Err(desk::Error::from(e).into()),
    };
    let customer = store
        .customer(&conversation.customer_id)
        .await
        .map_err(desk::Error::from)?;
    let messages = store.messages(&id).await.map_err(desk::Error::from)?;
    let events = store.events(&id).await.map_err(desk::Error::from)?;
    let transcript = crate::transcript::merge(messages.clone(), &events);
    Ok(Json(serde_json::json!({
        "conversation": conversation, "customer": customer, "messages": messages, "events": events,
        "transcript": transcript,
    })))
}

async fn act(
    state: &AppState,
    agent: &Agent,
    id: &str,
    action: AgentAction,
) -> Result<Response, ApiError> {
    let conversation = state.desk.act(Some(agent), &agent.name, id, action).await?;
    Ok(Json(conversation).into_response())
}

async fn claim(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Claim).await
}

async fn reply(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Reply(body.text)).await
}

async fn note(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Note(body.text)).await
}

async fn canned(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<CannedBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Canned(body.name)).await
}

async fn resolve(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Resolve).await
}

async fn give_back(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::GiveBack).await
}

async fn transfer(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<TransferBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Transfer(body.agent)).await
}
