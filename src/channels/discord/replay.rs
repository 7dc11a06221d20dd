//! Dead letters handed back to the Discord channel.

use super::*;
use crate::inbound::Replay;
use crate::store::InboundItem;

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
