//! Limits that keep one customer, one stranger or a crowd from exhausting
//! the service: model calls in flight ([`ModelGate`]), messages per
//! customer ([`PerKey`]), anonymous hand-offs ([`Limits::allow_handoff`]),
//! and log lines per source ([`LogOnce`]).
//!
//! Rate limits use governor's generic cell rate algorithm over the
//! application's [`SharedClock`], so tests move time with a manual clock
//! instead of sleeping. Counters live in memory: a restart forgives
//! everyone, which is the right failure for a limit.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::{Millis, SharedClock};
use crate::config::Settings;

/// One minute, in milliseconds.
const MINUTE_MS: Millis = 60_000;
/// Checks between two sweeps of forgotten keys.
const SWEEP_EVERY: u64 = 4096;

/// The application clock as governor sees it.
#[derive(Clone, Debug)]
struct AppClock(SharedClock);

impl GovernorClock for AppClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ms = u64::try_from(self.0.now()).unwrap_or(0);
        Nanos::from(ms.saturating_mul(1_000_000))
    }
}

/// At most `max_concurrency` model calls at once, and at most `max_queue`
/// callers waiting for one; a caller waits at most `max_wait`.
pub struct ModelGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    max_wait: Duration,
}

/// A model call's place; the call may run while this is held.
pub struct ModelPermit {
    _permit: OwnedSemaphorePermit,
}

impl Drop for ModelPermit {
    fn drop(&mut self) {
        metrics::gauge!("switchboard_llm_in_flight").decrement(1.0);
    }
}

impl ModelGate {
    /// A gate of `max_concurrency` places (at least one).
    pub fn new(max_concurrency: usize, max_queue: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_queue,
            max_wait,
        }
    }

    /// Waits for a place; `None` when the queue is full or the wait took
    /// longer than `max_wait` (the caller tells the customer to wait a
    /// moment instead of hanging).
    pub async fn enter(&self) -> Option<ModelPermit> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let before = self.waiting.fetch_add(1, Ordering::SeqCst);
                let permit = if before >= self.max_queue {
                    None
                } else {
                    tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                };
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                let Some(permit) = permit else {
                    metrics::counter!("switchboard_llm_busy_total").increment(1);
                    return None;
                };
                permit
            }
        };
        metrics::gauge!("switchboard_llm_in_flight").increment(1.0);
        Some(ModelPermit { _permit: permit })
    }
}

/// What a rate limit says about one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allowed,
    /// Over the limit, for the first time this minute: say so once.
    Notify,
    /// Over the limit and already told: drop it silently.
    Silent,
}

/// A per-key rate (messages per minute, with a burst of the same size),
/// remembering whom it already told.
pub struct PerKey {
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, AppClock, NoOpMiddleware<Nanos>>,
    told: Mutex<HashMap<String, Millis>>,
    clock: SharedClock,
    checks: AtomicU64,
}

impl PerKey {
    /// `per_minute` per key; `None` when it is 0 (no limit).
    pub fn new(per_minute: u32, clock: SharedClock) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Self {
            limiter: RateLimiter::dashmap_with_clock(quota, AppClock(clock.clone())),
            told: Mutex::new(HashMap::new()),
            clock,
            checks: AtomicU64::new(0),
        })
    }

    /// Counts one message for `key`.
    pub fn check(&self, key: &str) -> Verdict {
        let now = self.clock.now();
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            if let Ok(mut told) = self.told.lock() {
                told.retain(|_, until| *until > now);
            }
        }
        let key = key.to_string();
        if self.limiter.check_key(&key).is_ok() {
            return Verdict::Allowed;
        }
        // A poisoned lock only loses who was told: tell again.
        let Ok(mut told) = self.told.lock() else {
            return Verdict::Notify;
        };
        match told.get(&key) {
            Some(until) if *until > now => Verdict::Silent,
            _ => {
                told.insert(key, now + MINUTE_MS);
                Verdict::Notify
            }
        }
    }
}

/// Every limit the core applies, built once from the settings.
pub struct Limits {
    model: ModelGate,
    customers: Option<PerKey>,
    handoffs: Option<RateLimiter<NotKeyed, InMemoryState, AppClock, NoOpMiddleware<Nanos>>>,
    anonymous: Vec<String>,
    local: Vec<String>,
}

impl Limits {
    /// The limits of `settings`: `llm.max_concurrency` and `llm.max_queue`
    /// (a queued answer waits at most `llm.timeout_secs`),
    /// `assistant.max_messages_per_minute` (except on the `local`
    /// channels, such as the terminal, where the operator types), and
    /// `web.handoffs_per_minute` for hand-offs on the `anonymous` channels.
    pub fn new(
        settings: &Settings,
        clock: SharedClock,
        anonymous: &[&str],
        local: &[&str],
    ) -> Self {
        let handoffs = NonZeroU32::new(settings.web.handoffs_per_minute)
            .map(|n| RateLimiter::direct_with_clock(Quota::per_minute(n), AppClock(clock.clone())));
        Self {
            model: ModelGate::new(
                settings.llm.max_concurrency,
                settings.llm.max_queue,
                Duration::from_secs(settings.llm.timeout_secs),
            ),
            customers: PerKey::new(settings.assistant.max_messages_per_minute, clock),
            handoffs,
            anonymous: anonymous.iter().map(|c| (*c).to_string()).collect(),
            local: local.iter().map(|c| (*c).to_string()).collect(),
        }
    }

    /// The model gate.
    pub fn model(&self) -> &ModelGate {
        &self.model
    }

    /// Counts a message from `customer_id` on `channel`.
    pub fn customer_message(&self, channel: &str, customer_id: &str) -> Verdict {
        match &self.customers {
            Some(limit) if !self.local.iter().any(|c| c == channel) => {
                limit.check(&format!("{channel}:{customer_id}"))
            }
            _ => Verdict::Allowed,
        }
    }

    /// Counts a hand-off on `channel`; `false` when an anonymous channel
    /// is over its hand-offs per minute.
    pub fn allow_handoff(&self, channel: &str) -> bool {
        match &self.handoffs {
            Some(limit) if self.anonymous.iter().any(|c| c == channel) => limit.check().is_ok(),
            _ => true,
        }
    }
}

/// Lets one log line per source through per period, counting the rest.
pub struct LogOnce {
    period: Millis,
    clock: SharedClock,
    seen: Mutex<HashMap<String, (Millis, u64)>>,
}

impl LogOnce {
    /// One line per source per minute.
    pub fn per_minute(clock: SharedClock) -> Self {
        Self {
            period: MINUTE_MS,
            clock,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log for `source` now; `Some(n)` with the lines held back
    /// since the last one, `None` to stay quiet.
    pub fn check(&self, source: &str) -> Option<u64> {
        let now = self.clock.now();
        let Ok(mut seen) = self.seen.lock() else {
            return Some(0);
        };
        if seen.len() > 10_000 {
            let period = self.period;
            seen.retain(|_, (at, _)| now - *at < period);
        }
        match seen.get_mut(source) {
            Some((at, held)) if now - *at < self.period => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                seen.insert(source.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_customer_is_told_once_then_dropped_until_the_minute_passes() {
        let clock = ManualClock::new(1_000_000);
        let limit = PerKey::new(3, clock.clone()).unwrap();
        for _ in 0..3 {
            assert_eq!(limit.check("web:a"), Verdict::Allowed);
        }
        assert_eq!(limit.check("web:a"), Verdict::Notify);
        assert_eq!(limit.check("web:a"), Verdict::Silent);
        assert_eq!(
            limit.check("web:b"),
            Verdict::Allowed,
            "others are not limited"
        );
        clock.advance(MINUTE_MS);
        assert_eq!(limit.check("web:a"), Verdict::Allowed);
    }

    #[test]
    fn auth_failures_are_logged_once_per_source_per_minute() {
        let clock = ManualClock::new(5_000_000);
        let log = LogOnce::per_minute(clock.clone());
        assert_eq!(log.check("10.0.0.1"), Some(0));
        for _ in 0..599 {
            assert_eq!(log.check("10.0.0.1"), None);
        }
        assert_eq!(log.check("10.0.0.2"), Some(0));
        clock.advance(MINUTE_MS);
        assert_eq!(log.check("10.0.0.1"), Some(599));
    }

    #[tokio::test]
    async fn the_gate_queues_a_bounded_number_then_says_busy() {
        let gate = Arc::new(ModelGate::new(1, 1, Duration::from_secs(3600)));
        let first = gate.enter().await.expect("a free place");
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.is_some() }
        });
        // Wait until the second caller is in the queue.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never queued");
            tokio::task::yield_now().await;
        }
        assert!(gate.enter().await.is_none(), "queue full: busy");
        drop(first);
        assert!(queued.await.unwrap(), "the queued caller gets the place");
    }
}
