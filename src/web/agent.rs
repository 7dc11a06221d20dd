//! The HTTP agent API: JSON. A request is an agent's by their bearer token
//! (`token_env`, for scripts) or by the console's session cookie (after a
//! sign-in with their password); a change made with the cookie must carry
//! the session's CSRF token in `X-CSRF-Token`.
//!
//! | route | body | what |
//! | --- | --- | --- |
//! | `POST /api/agent/session` | `{"name", "password"}` | sign in: sets the cookie, returns `{agent, admin, csrf}` |
//! | `GET /api/agent/session` | | who is signed in, and the CSRF token |
//! | `DELETE /api/agent/session` | | sign out |
//! | `POST /api/agent/session/everywhere` | | end every session of this agent |
//! | `POST /api/agent/invite` | `{"token", "password"}` | use an invite link (`/agent#invite=TOKEN`): sets the password, signs in as `POST /session` does; 410 used/expired, 422 short password |
//! | `GET /api/agent/queue` | | waiting and claimed conversations |
//! | `GET /api/agent/inbox` | | the console's inbox (see [`super::inbox`]) |
//! | `GET /api/agent/conversations/{id}` | | conversation, customer, messages (with notes), events, transcript (messages and notices in order), timeline (messages and every event, described), its suggested article (`suggestion`: id, status, title, or `null`), its follow-up survey (`survey`: state, sent_at, csat, ces, nps, comment, or `null`), its `tags` |
//! | `POST …/{id}/claim` | | take it |
//! | `POST …/{id}/reply` | `{"text"}` | message to the customer (claims a waiting one) |
//! | `POST …/{id}/note` | `{"text"}` | internal note, never sent to the customer |
//! | `POST …/{id}/canned` | `{"name"}` | send `prompts/canned/NAME.md` |
//! | `GET /api/agent/canned` | | `[{"name", "text"}]`, each as this agent would send it |
//! | `POST …/{id}/resolve` | | close it |
//! | `POST …/{id}/give-back` | | back to the bot |
//! | `POST …/{id}/transfer` | `{"agent"}` | to another agent |
//! | `POST …/{id}/suggest` | | draft a knowledge-base article from a resolved conversation (see [`super::suggestions`]) |

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::AppState;
use crate::agents::Agent;
use crate::desk::{self, AgentAction};
use crate::ids::ConversationId;

/// Routes under `/api/agent`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/session", get(session).post(sign_in).delete(sign_out))
        .route("/session/everywhere", post(sign_out_everywhere))
        .route("/invite", post(accept_invite))
        .route("/queue", get(queue))
        .route("/canned", get(canned_replies))
        .route("/conversations/{id}", get(conversation))
        .route("/conversations/{id}/claim", post(claim))
        .route("/conversations/{id}/reply", post(reply))
        .route("/conversations/{id}/note", post(note))
        .route("/conversations/{id}/canned", post(canned))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/conversations/{id}/give-back", post(give_back))
        .route("/conversations/{id}/transfer", post(transfer))
        .merge(super::inbox::routes())
        .merge(super::suggestions::agent_routes())
}

/// An API error: a status and a one-line JSON message.
pub struct ApiError(pub StatusCode, pub String);

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

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "switchboard_session";

/// The agent a request comes from: by bearer token, or by session cookie
/// (with the CSRF token for anything but a read).
pub struct AuthAgent(pub Agent);

/// How a request was authenticated.
enum Via {
    Token,
    Session {
        token: String,
        session: crate::store::AgentSession,
    },
}

fn unauthorized(message: &str) -> ApiError {
    ApiError(StatusCode::UNAUTHORIZED, message.into())
}

/// Logs a refused credential, once per address per minute.
fn log_refused(parts: &Parts, state: &AppState, what: &str) {
    log_refused_from(&parts.extensions, parts.uri.path(), state, what);
}

fn log_refused_from(extensions: &axum::http::Extensions, path: &str, state: &AppState, what: &str) {
    let peer = super::peer_of(extensions);
    let source = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    metrics::counter!("switchboard_auth_failures_total", "api" => "agent").increment(1);
    if let Some(held) = state.auth_log.check(&source) {
        tracing::warn!(
            %path,
            %source,
            "agent API: refused {what} ({held} more from this address in the last minute were not logged)"
        );
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Agent, Via), ApiError> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = bearer {
        return match state.desk.agents().by_token(token) {
            Some(agent) => Ok((agent, Via::Token)),
            None => {
                log_refused(parts, state, "an unknown token");
                Err(unauthorized("unknown agent token"))
            }
        };
    }
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Err(unauthorized(
            "sign in, or send `Authorization: Bearer TOKEN` (each agent's token is in the variable named by their token_env)",
        ));
    };
    let token = cookie.value().to_string();
    let found = state.auth.session(&token).await.map_err(auth_error)?;
    let Some((agent, session)) = found else {
        log_refused(parts, state, "an unknown or expired session");
        return Err(unauthorized("your session has ended; sign in again"));
    };
    if !parts.method.is_safe() {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !crate::agents::constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            log_refused(parts, state, "a change without its CSRF token");
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token; reload the console".into(),
            ));
        }
    }
    if let Err(e) = state.auth.seen(&agent.name).await {
        tracing::warn!("agent presence: {e}");
    }
    Ok((agent, Via::Session { token, session }))
}

/// A sign-in or account error as the API tells it (store and hashing
/// failures are logged and told as 500).
pub(super) fn auth_error(e: crate::auth::Error) -> ApiError {
    use crate::auth::Error;
    let status = match &e {
        Error::UnknownAgent(_) => StatusCode::NOT_FOUND,
        Error::Exists(_) | Error::FromConfig(_) | Error::Yourself => StatusCode::CONFLICT,
        Error::WeakPassword | Error::InvalidName => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Store(_) | Error::Hash(_) => {
            tracing::error!("agent sign-in or accounts: {e}");
            return ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log".into(),
            );
        }
    };
    ApiError(status, e.to_string())
}

impl FromRequestParts<Arc<AppState>> for AuthAgent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state)
            .await
            .map(|(agent, _)| AuthAgent(agent))
    }
}

/// An admin (`admin = true` in `[[agents]]`), by bearer token or session
/// cookie as [`AuthAgent`]: anonymous requests get 401, other agents 403.
pub struct AuthAdmin(pub Agent);

/// What an agent who is not an admin is told.
pub const ADMINS_ONLY: &str = "only admins may do this";

impl FromRequestParts<Arc<AppState>> for AuthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (agent, _) = authenticate(parts, state).await?;
        if !agent.admin {
            log_refused(
                parts,
                state,
                "an admin action by an agent who is not an admin",
            );
            return Err(ApiError(StatusCode::FORBIDDEN, ADMINS_ONLY.into()));
        }
        Ok(AuthAdmin(agent))
    }
}

/// The signed-in agent and how.
struct Signed(Agent, Via);

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state)
            .await
            .map(|(agent, via)| Signed(agent, via))
    }
}

#[derive(Deserialize)]
struct SignInBody {
    name: String,
    password: String,
}

fn whoami(agent: &Agent, csrf: Option<&str>) -> serde_json::Value {
    serde_json::json!({"agent": agent.name, "admin": agent.admin, "csrf": csrf})
}

async fn sign_in(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    extensions: axum::http::Extensions,
    Json(body): Json<SignInBody>,
) -> Result<Response, ApiError> {
    if body.name.len() > 200 || body.password.len() > 1024 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "too long".into()));
    }
    match state
        .auth
        .sign_in(&body.name, &body.password)
        .await
        .map_err(auth_error)?
    {
        crate::auth::SignIn::Accepted {
            agent,
            token,
            session,
        } => {
            tracing::info!(agent = %agent.name, "agent signed in to the console");
            Ok(signed_in(&state, jar, &agent, token, &session))
        }
        crate::auth::SignIn::Refused => {
            log_refused_from(&extensions, "/api/agent/session", &state, "a sign-in");
            Err(unauthorized("wrong name or password"))
        }
        crate::auth::SignIn::LockedOut(wait) => {
            log_refused_from(
                &extensions,
                "/api/agent/session",
                &state,
                "a sign-in while locked out",
            );
            let minutes = wait.as_secs().div_ceil(60);
            Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, wait.as_secs().to_string())],
                Json(serde_json::json!({
                    "error": format!("too many failed sign-ins; try again in {minutes} minute(s)")
                })),
            )
                .into_response())
        }
    }
}

/// The response to a sign-in: the session cookie and who it is.
fn signed_in(
    state: &AppState,
    jar: CookieJar,
    agent: &Agent,
    token: String,
    session: &crate::store::AgentSession,
) -> Response {
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(crate::auth::SESSION_TTL.as_secs()).unwrap_or(i64::MAX),
        ));
    (jar.add(cookie), Json(whoami(agent, Some(&session.csrf)))).into_response()
}

#[derive(Deserialize)]
struct InviteBody {
    token: String,
    password: String,
}

/// Uses an invite link: sets the password and signs in. The link's token
/// is the credential (there is no session yet to carry a CSRF token); it
/// works once.
async fn accept_invite(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    extensions: axum::http::Extensions,
    Json(body): Json<InviteBody>,
) -> Result<Response, ApiError> {
    if body.token.len() > 200 || body.password.len() > 1024 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "too long".into()));
    }
    match state.auth.accept_invite(&body.token, &body.password).await {
        Ok(crate::auth::SignIn::Accepted {
            agent,
            token,
            session,
        }) => {
            tracing::info!(agent = %agent.name, "agent accepted an invite and signed in");
            Ok(signed_in(&state, jar, &agent, token, &session))
        }
        Ok(_) => {
            log_refused_from(&extensions, "/api/agent/invite", &state, "an invite");
            Err(ApiError(
                StatusCode::GONE,
                "this invite link was used, has expired or was withdrawn; ask an admin for a new one"
                    .into(),
            ))
        }
        Err(e) => Err(auth_error(e)),
    }
}

async fn session(Signed(agent, via): Signed) -> Json<serde_json::Value> {
    let csrf = match &via {
        Via::Session { session, .. } => Some(session.csrf.as_str()),
        Via::Token => None,
    };
    Json(whoami(&agent, csrf))
}

async fn sign_out(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    Signed(_, via): Signed,
) -> Result<Response, ApiError> {
    if let Via::Session { token, .. } = via {
        state.auth.sign_out(&token).await.map_err(auth_error)?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, StatusCode::NO_CONTENT).into_response())
}

async fn sign_out_everywhere(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    Signed(agent, _): Signed,
) -> Result<Response, ApiError> {
    let ended = state
        .auth
        .sign_out_everywhere(&agent.name)
        .await
        .map_err(auth_error)?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Json(serde_json::json!({"ended": ended}))).into_response())
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

/// `[{"name", "text"}]`: the canned replies as this agent would send them.
async fn canned_replies(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
) -> Result<impl IntoResponse, ApiError> {
    let replies = state.desk.canned_replies(&agent)?;
    Ok(Json(
        replies
            .into_iter()
            .map(|(name, text)| serde_json::json!({"name": name, "text": text}))
            .collect::<Vec<_>>(),
    ))
}

async fn conversation(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<ConversationId>,
) -> Result<impl IntoResponse, ApiError> {
    let store = state.assistant.store();
    let conversation = match store.conversation(&id).await {
        Ok(c) => c,
        Err(crate::store::Error::NotFound { .. }) => {
            return Err(desk::Error::NotFound(id.into_string()).into());
        }
        Err(e) => return Err(desk::Error::from(e).into()),
    };
    // Opened by this agent: what the customer wrote so far is read.
    store
        .mark_read(&agent.name, &id)
        .await
        .map_err(desk::Error::from)?;
    let customer = store
        .customer(&conversation.customer_id)
        .await
        .map_err(desk::Error::from)?;
    let history = store
        .customer_conversations(&customer.id, 20)
        .await
        .map_err(desk::Error::from)?;
    let messages = store.messages(&id).await.map_err(desk::Error::from)?;
    let events = store.events(&id).await.map_err(desk::Error::from)?;
    let transcript = crate::transcript::merge(messages.clone(), &events);
    let timeline = super::inbox::timeline(messages.clone(), &events);
    let suggestion = store
        .suggestion_for(&id)
        .await
        .map_err(desk::Error::from)?
        .map(|s| {
            serde_json::json!({
                "id": s.id, "status": s.status, "title": s.title, "created_by": s.created_by,
                "published_slug": s.published_slug,
            })
        });
    let tags = store.tags(&id).await.map_err(desk::Error::from)?;
    // The follow-up survey and what the customer answered.
    let survey = store
        .survey(&id)
        .await
        .map_err(desk::Error::from)?
        .map(|s| {
            serde_json::json!({
                "state": s.state, "sent_at": s.sent_at, "csat": s.csat, "ces": s.ces,
                "nps": s.nps, "comment": s.comment,
            })
        });
    Ok(Json(serde_json::json!({
        "conversation": conversation, "customer": customer, "messages": messages, "events": events,
        "transcript": transcript, "timeline": timeline, "suggestion": suggestion,
        "customer_conversations": history, "survey": survey, "tags": tags,
    })))
}

async fn act(
    state: &AppState,
    agent: &Agent,
    id: &ConversationId,
    action: AgentAction,
) -> Result<Response, ApiError> {
    let conversation = state.desk.act(Some(agent), &agent.name, id, action).await?;
    Ok(Json(conversation).into_response())
}

async fn claim(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Claim).await
}

async fn reply(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Reply(body.text)).await
}

async fn note(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Note(body.text)).await
}

async fn canned(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
    Json(body): Json<CannedBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Canned(body.name)).await
}

async fn resolve(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Resolve).await
}

async fn give_back(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::GiveBack).await
}

async fn transfer(
    State(s): State<Arc<AppState>>,
    AuthAgent(a): AuthAgent,
    Path(id): Path<ConversationId>,
    Json(body): Json<TransferBody>,
) -> Result<Response, ApiError> {
    act(&s, &a, &id, AgentAction::Transfer(body.agent)).await
}
