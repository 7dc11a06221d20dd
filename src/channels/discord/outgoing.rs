//! Discord as a delivery channel: replies and notices to a customer,
//! split in parts with idempotency nonces, and dead letters handed back.

use super::*;

#[async_trait::async_trait]
impl Replay for Discord {
    async fn replay(&self, item: &InboundItem) -> Result<(), String> {
        match item.kind.as_str() {
            "message" => {
                let message: Message = serde_json::from_str(&item.payload)
                    .map_err(|e| format!("not a Discord message: {e}"))?;
                self.on_message(None, message)
                    .await
                    .map_err(|e| e.to_string())
            }
            other => Err(format!(
                "a Discord {other} cannot be replayed (its token expires after 15 minutes)"
            )),
        }
    }
}

#[async_trait::async_trait]
impl Deliver for Discord {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        self.deliver_parts(target, message, None).await
    }

    async fn deliver_keyed(
        &self,
        target: &Target,
        message: &Outgoing,
        key: &str,
    ) -> Result<Option<String>, delivery::Error> {
        self.deliver_parts(target, message, Some(key)).await
    }
}

impl Discord {
    /// Sends `message` in parts; with `key`, each part carries a nonce made
    /// from it and Discord refuses to create the same part twice.
    async fn deliver_parts(
        &self,
        target: &Target,
        message: &Outgoing,
        key: Option<&str>,
    ) -> Result<Option<String>, delivery::Error> {
        let customer = target
            .customer_id
            .parse::<u64>()
            .ok()
            .filter(|&id| id != 0)
            .map(UserId::new);
        let place = Place::from_key(&target.thread, customer).ok_or_else(|| {
            delivery::Error::Permanent(format!("not a Discord place: {}", target.thread))
        })?;
        // In a shared channel, name the customer (without pinging); the
        // first part keeps room for the mention.
        let parts = match (place.kind, customer) {
            (PlaceKind::Elsewhere, Some(user)) => {
                render::split_prefixed(&format!("<@{user}> "), &message.text)
            }
            _ => render::split(&message.text),
        };
        let mut last = None;
        for (i, text) in parts.iter().enumerate() {
            let buttons: &[Vec<Button>] = if i + 1 == parts.len() {
                &message.buttons
            } else {
                &[]
            };
            let nonce = key.map(|key| part_nonce(key, i));
            match self.post(&place, text, buttons, nonce).await {
                Ok(id) => last = Some(id.get().to_string()),
                Err(e) if is_unreachable(&e) => {
                    return Err(delivery::Error::Unreachable(e.to_string()));
                }
                Err(e) if is_transient(&e) => {
                    return Err(delivery::Error::Temporary(e.to_string()));
                }
                Err(e) if status(&e).is_some() => {
                    return Err(delivery::Error::Permanent(e.to_string()));
                }
                Err(e) => return Err(delivery::Error::Temporary(e.to_string())),
            }
        }
        Ok(last)
    }
}
