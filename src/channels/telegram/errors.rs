//! How the Bot API's errors map to retry decisions.

use super::*;
use teloxide::ApiError;

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

/// Runs a request with Telegram's retry policy ([`driver::Platform::retry_wait`]).
pub(super) async fn retrying<T, F, Fut>(attempt: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    driver::retry::<Telegram, _, _, _>(attempt).await
}
