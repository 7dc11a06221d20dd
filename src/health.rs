//! Whether each enabled channel is running, for `/healthz` and `/metrics`,
//! and the supervisor that restarts a channel task that stopped.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::inbound::{Failure, guarded};

/// The state of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Its task is running.
    Running,
    /// Its task stopped; it is restarted after a pause.
    Down(String),
}

/// Channel states by name. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct Health(Arc<Mutex<BTreeMap<String, ChannelState>>>);

impl Health {
    /// Records the state of `channel`.
    pub fn set(&self, channel: &str, state: ChannelState) {
        let up = i64::from(state == ChannelState::Running);
        metrics::gauge!("switchboard_channel_up", "channel" => channel.to_string()).set(up as f64);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.to_string(), state);
    }

    /// The channels that are down, with why.
    pub fn down(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(name, state)| match state {
                ChannelState::Down(why) => Some((name.clone(), why.clone())),
                ChannelState::Running => None,
            })
            .collect()
    }

    /// Runs a channel task made by `start` until `stop`, restarting it (after
    /// a pause that grows from one second to a minute) whenever it returns
    /// or panics before `stop`; the channel is reported down meanwhile.
    pub async fn supervise<F, Fut>(&self, channel: &str, stop: CancellationToken, mut start: F)
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let mut pause = Duration::from_secs(1);
        loop {
            self.set(channel, ChannelState::Running);
            let outcome = guarded(start(stop.clone())).await;
            if stop.is_cancelled() {
                return;
            }
            let why = match outcome {
                Ok(Ok(())) => "stopped".to_string(),
                Ok(Err(e)) => e,
                Err(Failure::Panic(p)) => format!("panicked: {p}"),
                Err(Failure::Error(e)) => e,
            };
            tracing::error!(channel, "channel stopped, restarting in {pause:?}: {why}");
            self.set(channel, ChannelState::Down(why));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_channel_that_panics_is_reported_down_and_restarted() {
        let health = Health::default();
        let stop = CancellationToken::new();
        let starts = Arc::new(AtomicUsize::new(0));
        let task = {
            let (health, stop, starts) = (health.clone(), stop.clone(), starts.clone());
            tokio::spawn(async move {
                health
                    .supervise("telegram", stop, |stop| {
                        let n = starts.fetch_add(1, Ordering::SeqCst);
                        async move {
                            if n == 0 {
                                panic!("poison");
                            }
                            stop.cancelled().await;
                            Ok(())
                        }
                    })
                    .await
            })
        };
        // The first start panics: down, then restarted after a second.
        while starts.load(Ordering::SeqCst) < 1 || health.down().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            health.down(),
            vec![("telegram".to_string(), "panicked: poison".to_string())]
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        while starts.load(Ordering::SeqCst) < 2 || !health.down().is_empty() {
            tokio::task::yield_now().await;
        }
        stop.cancel();
        task.await.unwrap();
        assert!(health.down().is_empty());
    }
}
