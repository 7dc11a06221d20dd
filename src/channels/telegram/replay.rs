//! Dead letters handed back to the Telegram channel.

use super::*;
use crate::inbound::Replay;
use crate::store::InboundItem;

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
