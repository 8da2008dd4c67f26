//! Refreshing ahead: one background refresh at a time, and a pause after a failed one.
//!
//! The pause is the retry policy's backoff, or the server's own time.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use retry_policies::policies::ExponentialBackoff;
use retry_policies::{RetryDecision, RetryPolicy};

use crate::time::unix_millis;

/// The state of one middleware's background refreshes.
#[derive(Debug, Default)]
pub(crate) struct RefreshAhead {
    running: AtomicBool,
    /// Failed refreshes in a row.
    failures: AtomicU32,
    /// No refresh starts before this (UNIX milliseconds): set after a failure.
    not_before_ms: AtomicU64,
}

impl RefreshAhead {
    /// Whether a refresh may start at `now`; if so, it counts as running until
    /// [`succeeded`](Self::succeeded) or [`failed`](Self::failed). Cheap when it may not: every
    /// request in the refresh window asks.
    pub(crate) fn try_start(&self, now: SystemTime) -> bool {
        unix_millis(now) >= self.not_before_ms.load(Ordering::Relaxed)
            && !self.running.load(Ordering::Relaxed)
            && self
                .running
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Gives up a start that [`try_start`](Self::try_start) granted, without a refresh.
    pub(crate) fn cancel(&self) {
        self.running.store(false, Ordering::Release);
    }

    pub(crate) fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.not_before_ms.store(0, Ordering::Relaxed);
        self.running.store(false, Ordering::Release);
    }

    /// Notes a failed refresh at `now`, and returns how long until the next may start: until
    /// `retry_at` if the server named a time, else the policy's backoff for this many failures
    /// in a row (its longest pause once its retries are spent).
    pub(crate) fn failed(
        &self,
        now: SystemTime,
        retry_at: Option<SystemTime>,
        policy: &ExponentialBackoff,
    ) -> Duration {
        let past_failures = self.failures.fetch_add(1, Ordering::Relaxed);
        let pause = match retry_at {
            Some(at) => at.duration_since(now).unwrap_or_default(),
            None => match policy.should_retry(now, past_failures) {
                // The policy counts from the clock, whatever `now` says.
                RetryDecision::Retry { execute_after } => execute_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
                RetryDecision::DoNotRetry => policy.max_retry_interval,
            },
        };
        self.not_before_ms
            .store(unix_millis(now + pause), Ordering::Relaxed);
        self.running.store(false, Ordering::Release);
        pause
    }
}

#[cfg(test)]
mod tests {
    use retry_policies::Jitter;

    use super::*;

    fn policy() -> ExponentialBackoff {
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_secs(1), Duration::from_secs(8))
            .jitter(Jitter::None)
            .build_with_max_retries(3)
    }

    fn at(millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn one_refresh_at_a_time() {
        let ahead = RefreshAhead::default();
        assert!(ahead.try_start(at(0)));
        assert!(!ahead.try_start(at(0)));
        ahead.succeeded();
        assert!(ahead.try_start(at(0)));
        ahead.cancel();
        assert!(ahead.try_start(at(0)));
    }

    #[test]
    fn failures_back_off_then_hold_at_the_longest_pause() {
        let ahead = RefreshAhead::default();
        let mut now = 1_000_000;
        let mut pauses = Vec::new();
        for _ in 0..5 {
            assert!(ahead.try_start(at(now)));
            let pause = ahead.failed(at(now), None, &policy());
            assert!(!ahead.try_start(at(now + pause.as_millis() as u64 - 1)));
            // The policy's pauses count from its own reading of the clock, a moment later.
            pauses.push(pause.as_secs_f64().round() as u64);
            now += pause.as_millis() as u64;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 8]);
        ahead.succeeded();
        assert!(ahead.try_start(at(now)));
        let pause = ahead.failed(at(now), None, &policy());
        assert_eq!(pause.as_secs_f64().round(), 1.0, "{pause:?}");
    }

    #[test]
    fn a_time_named_by_the_server_is_the_pause() {
        let ahead = RefreshAhead::default();
        assert!(ahead.try_start(at(0)));
        let pause = ahead.failed(at(0), Some(at(2_500)), &policy());
        assert_eq!(pause, Duration::from_millis(2_500));
        assert!(!ahead.try_start(at(2_499)));
        assert!(ahead.try_start(at(2_500)));
    }
}
