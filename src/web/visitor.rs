//! Widget visitors: ids chosen by the server, tokens signed by it.
//!
//! A visitor id is `v1_` and 32 hex digits; its token is `ID.SIGNATURE`,
//! where the signature is HMAC-SHA256 over the id with the server's key
//! (hex). The widget keeps the token in local storage and sends it with
//! every request; the id alone (shown to agents, written in logs) opens
//! nothing. A session id of the old API (chosen by the browser) is still
//! accepted bare, except one shaped like an issued id: those need their
//! token.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix of ids issued by the server.
pub const ISSUED_PREFIX: &str = "v1_";

/// Why a request's visitor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Neither a token nor a session was sent, or the session id is malformed.
    #[error(
        "send `token` (from POST /api/chat/visitor) or a `session` of 8–64 letters, digits, '-' or '_'"
    )]
    Malformed,
    /// The token's signature does not match, or a server-issued id came bare.
    #[error("this visitor token is not valid; get a new one from POST /api/chat/visitor")]
    Forged,
}

/// Signs and checks visitor tokens with one key.
#[derive(Clone)]
pub struct Visitors {
    key: Vec<u8>,
}

impl std::fmt::Debug for Visitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Visitors([redacted])")
    }
}

impl Visitors {
    /// Tokens signed with `key` (any length; 32 random bytes or more is
    /// right).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// A fresh random key, hex, for the database to keep.
    pub fn generate_key() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// A new visitor: `(id, token)`.
    pub fn issue(&self) -> (String, String) {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = format!("{ISSUED_PREFIX}{}", hex::encode(bytes));
        let token = format!("{id}.{}", self.sign(&id));
        (id, token)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    fn sign(&self, id: &str) -> String {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The session a request speaks for: the id of a valid `token`, or a
    /// bare old-API `session` that is not shaped like an issued id.
    ///
    /// # Errors
    /// [`Refused`] when neither is acceptable.
    pub fn session(&self, token: Option<&str>, session: Option<&str>) -> Result<String, Refused> {
        if let Some(token) = token {
            let (id, signature) = token.split_once('.').ok_or(Refused::Forged)?;
            let signature = hex::decode(signature).map_err(|_| Refused::Forged)?;
            if !crate::channels::web::valid_session(id) {
                return Err(Refused::Forged);
            }
            let mut mac = self.mac();
            mac.update(id.as_bytes());
            // Constant-time comparison.
            mac.verify_slice(&signature).map_err(|_| Refused::Forged)?;
            return Ok(id.to_string());
        }
        match session {
            Some(s) if s.starts_with(ISSUED_PREFIX) => Err(Refused::Forged),
            Some(s) if crate::channels::web::valid_session(s) => Ok(s.to_string()),
            _ => Err(Refused::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_opens_its_session_and_nothing_else_does() {
        let visitors = Visitors::new(b"key one");
        let (id, token) = visitors.issue();
        assert!(crate::channels::web::valid_session(&id));
        assert_eq!(visitors.session(Some(&token), None), Ok(id.clone()));
        // The bare id is refused, with or without a wrong signature.
        assert_eq!(visitors.session(None, Some(&id)), Err(Refused::Forged));
        let forged = format!("{id}.{}", "0".repeat(64));
        assert_eq!(visitors.session(Some(&forged), None), Err(Refused::Forged));
        assert_eq!(visitors.session(Some(&id), None), Err(Refused::Forged));
        // Another key's token is refused.
        let other = Visitors::new(b"key two");
        assert_eq!(other.session(Some(&token), None), Err(Refused::Forged));
        // A signature made for another id does not move.
        let (id2, token2) = visitors.issue();
        let signature = token2.split_once('.').map(|(_, s)| s).unwrap_or_default();
        assert_eq!(
            visitors.session(Some(&format!("{id}.{signature}")), None),
            Err(Refused::Forged)
        );
        assert_ne!(id, id2);
    }

    #[test]
    fn old_api_sessions_still_work_bare() {
        let visitors = Visitors::new(b"k");
        assert_eq!(
            visitors.session(None, Some("widget-session-1")),
            Ok("widget-session-1".to_string())
        );
        assert_eq!(
            visitors.session(None, Some("bad id!")),
            Err(Refused::Malformed)
        );
        assert_eq!(visitors.session(None, None), Err(Refused::Malformed));
    }
}
