//! Storage failures, logged so that an outage shows without flooding the logs.
//!
//! The first failure is a warning, the ones after it are `debug` events until the interval has
//! passed, and the first success after a failure says that the storage works again.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::storage::StorageKey;

/// At most one storage warning per key this often: a storage that is down is reported once a
/// minute, not once per request.
pub(crate) const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// What the cache asked the storage to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageOperation {
    Read,
    Write,
    Remove,
    TakeLease,
    ReleaseLease,
    CoolDown,
}

impl StorageOperation {
    fn failure(self) -> &'static str {
        match self {
            Self::Read => "token storage failed to read; fetching a new token",
            Self::Write => "token storage failed to keep the new token; it is used all the same",
            Self::Remove => "token storage failed to remove a rejected token",
            Self::TakeLease => {
                "token storage failed to take the refresh lease; fetching without it"
            }
            Self::ReleaseLease => {
                "token storage failed to release the refresh lease; it runs out by itself"
            }
            Self::CoolDown => {
                "token storage failed to keep the rate-limit cool-down; other instances may ask \
                 the token endpoint before it ends"
            }
        }
    }
}

/// The failure log of one cache.
#[derive(Debug)]
pub(crate) struct FaultLog {
    interval: Duration,
    /// Set by a failure, cleared by the next success; lets a success skip the lock.
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_warning: Option<Instant>,
    /// Failures logged at `debug` since the last warning.
    quieted: u64,
}

impl FaultLog {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            failing: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// Logs a failed storage call.
    pub(crate) fn failed(
        &self,
        key: &StorageKey,
        operation: StorageOperation,
        error: &dyn fmt::Display,
    ) {
        self.failing.store(true, Ordering::Relaxed);
        match self.warn_at(Instant::now()) {
            Some(quieted) => tracing::warn!(
                key = %key,
                %error,
                quieted_since_last_warning = quieted,
                "{} (further storage failures are logged at debug level for {:?})",
                operation.failure(),
                self.interval,
            ),
            None => tracing::debug!(key = %key, %error, "{}", operation.failure()),
        }
    }

    /// Notes a storage call that worked, and says so if the storage was failing.
    pub(crate) fn succeeded(&self, key: &StorageKey) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(key = %key, "token storage works again");
        }
    }

    /// Whether a failure at `now` is worth a warning, and if so how many were quieted since the
    /// last one.
    fn warn_at(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = state
            .last_warning
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            state.last_warning = Some(now);
            Some(std::mem::take(&mut state.quieted))
        } else {
            state.quieted += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_and_a_count_of_the_quiet_ones() {
        let log = FaultLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);

        assert_eq!(log.warn_at(at(0)), Some(0));
        assert_eq!(log.warn_at(at(1)), None);
        assert_eq!(log.warn_at(at(59)), None);
        assert_eq!(log.warn_at(at(60)), Some(2));
        assert_eq!(log.warn_at(at(61)), None);
        assert_eq!(log.warn_at(at(200)), Some(1));
    }

    #[test]
    fn a_clock_that_goes_back_does_not_warn_again() {
        let log = FaultLog::new(Duration::from_secs(60));
        let start = Instant::now() + Duration::from_secs(10);
        assert_eq!(log.warn_at(start), Some(0));
        assert_eq!(log.warn_at(start - Duration::from_secs(5)), None);
    }
}
