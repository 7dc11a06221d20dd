//! Discord's HTTP client, how its errors map to retry decisions, and
//! retries with backoff.

use super::*;
use serenity::all::HttpBuilder;
use serenity::http::HttpError;

/// The HTTP client. With the default `api_url` serenity's own rate limiter
/// is used (it reads `retry_after` and waits exactly); any other
/// `api_url` is treated as a proxy (a local test server, or an HTTP proxy
/// such as twilight-http-proxy that owns rate limits), and [`retrying`]
/// backs off on 429.
pub(super) fn http_client(token: &str, api_url: &str) -> Http {
    let api_url = api_url.trim_end_matches('/');
    if api_url == "https://discord.com" {
        HttpBuilder::new(token).build()
    } else {
        HttpBuilder::new(token)
            .proxy(api_url)
            .ratelimiter_disabled(true)
            .build()
    }
}

pub(super) fn status(error: &serenity::Error) -> Option<u16> {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

pub(super) fn is_transient(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let s = r.status_code.as_u16();
            s == 429 || s >= 500
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => true,
        _ => false,
    }
}

/// 403 "Cannot send messages to this user" (50007) and "Unknown channel"
/// mean the customer cannot be reached there any more.
pub(super) fn is_unreachable(error: &serenity::Error) -> bool {
    matches!(
        error,
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r))
            if r.error.code == 50007 || r.error.code == 10003
    )
}

/// Runs a request with Discord's retry policy ([`driver::Platform::retry_wait`]).
pub(super) async fn retrying<T, F, Fut>(attempt: F) -> Result<T, serenity::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, serenity::Error>>,
{
    driver::retry::<Discord, _, _, _>(attempt).await
}

/// A clearer line for gateway close codes admins can fix.
pub(super) fn gateway_hint(error: &serenity::Error) -> String {
    let text = error.to_string();
    if text.contains("intents") || text.contains("4014") {
        format!(
            "{text}: enable the Message Content intent for the bot in the Discord developer portal (Bot → Privileged Gateway Intents), or remove discord.help_channel_ids and discord.agents_channel_id"
        )
    } else if text.contains("authentication") || text.contains("4004") {
        format!("{text}: check DISCORD_TOKEN")
    } else {
        text
    }
}

/// The nonce of a message part with idempotency key `key` (the driver's
/// `key:part`): Discord takes at most 25 characters.
pub(super) fn nonce(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    hex::encode(digest)[..25].to_string()
}
