//! How the Bot API's errors map to retry decisions, and retries with
//! backoff.

use super::*;

pub(super) fn is_unreachable(error: &RequestError) -> bool {
    matches!(
        error,
        RequestError::Api(
            ApiError::BotBlocked
                | ApiError::UserDeactivated
                | ApiError::BotKicked
                | ApiError::BotKickedFromSupergroup
                | ApiError::ChatNotFound
        )
    )
}

pub(super) fn is_transient(error: &RequestError) -> bool {
    match error {
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => true,
        RequestError::Api(ApiError::Unknown(text)) => {
            let t = text.to_lowercase();
            t.contains("internal")
                || t.contains("bad gateway")
                || t.contains("unavailable")
                || t.contains("timeout")
                || t.contains("too many")
        }
        _ => false,
    }
}

/// Runs a request, honouring `retry_after` on 429 and backing off on 5xx
/// and network errors (three retries). teloxide itself already waits 10 s
/// before it reports a 5xx answer.
pub(super) async fn retrying<T, F, Fut>(attempt: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let wait = |e: &RequestError, backoff: Duration| match e {
        RequestError::RetryAfter(secs) => Some(secs.duration().min(Duration::from_secs(60))),
        e if is_transient(e) => Some(backoff),
        _ => None,
    };
    crate::channels::retrying(Duration::from_millis(300), wait, attempt).await
}
