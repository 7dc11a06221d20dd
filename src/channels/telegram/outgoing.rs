//! Telegram as a delivery channel (agents' replies, notices, surveys) and
//! dead letters handed back.

use super::*;

#[async_trait::async_trait]
impl Deliver for Telegram {
    async fn deliver(
        &self,
        target: &Target,
        message: &Outgoing,
    ) -> Result<Option<String>, delivery::Error> {
        let place = Place::from_key(&target.thread).ok_or_else(|| {
            delivery::Error::Permanent(format!("not a Telegram chat: {}", target.thread))
        })?;
        let parts: Vec<String> = render::split(&message.text)
            .iter()
            .map(|p| render::escape(p))
            .collect();
        let mut last = None;
        for (i, part) in parts.iter().enumerate() {
            let keyboard = (i + 1 == parts.len())
                .then(|| keyboard(&message.buttons))
                .flatten();
            match self.send_html(&place, part, keyboard).await {
                Ok(id) => last = Some(id.0.to_string()),
                Err(e) if is_unreachable(&e) => {
                    return Err(delivery::Error::Unreachable(e.to_string()));
                }
                Err(e @ RequestError::Api(_)) if !is_transient(&e) => {
                    return Err(delivery::Error::Permanent(e.to_string()));
                }
                Err(e) => return Err(delivery::Error::Temporary(e.to_string())),
            }
        }
        Ok(last)
    }
}

#[async_trait::async_trait]
impl Replay for Telegram {
    async fn replay(&self, item: &InboundItem) -> Result<(), String> {
        let update: Update = serde_json::from_str(&item.payload)
            .map_err(|e| format!("not a Telegram update: {e}"))?;
        let kept = matches!(&update.kind, UpdateKind::CallbackQuery(_))
            || matches!(&update.kind, UpdateKind::Message(m) if Some(m.chat.id) == self.inner.agents_chat);
        if kept {
            return self.process_kept(update).await;
        }
        let update_id = update.id.0;
        match update.kind {
            UpdateKind::Message(message) => self
                .accept_message(update_id, message)
                .await
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}
