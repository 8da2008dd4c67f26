//! How a middleware waits for another's token while that one holds the refresh lease.

use std::time::{Duration, SystemTime};

use retry_policies::policies::{ExponentialBackoff, ExponentialBackoffTimed};
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

use crate::cache::Purpose;

/// The pauses of a middleware waiting for another's token: short at first (a token call takes
/// tens of milliseconds), growing to 25 ms, with jitter so that waiters do not poll the
/// storage in step; over after twice the lease's time to live, and the longest rate limit its
/// holder may wait out. A request that waits starts at
/// 2 ms; a refresh ahead, which holds up no request, starts at 10 ms and looks less often.
pub(super) struct LeaseWait {
    started_at: SystemTime,
    pauses: ExponentialBackoffTimed,
    past: u32,
}

impl LeaseWait {
    const LONGEST_PAUSE: Duration = Duration::from_millis(25);

    /// `longest_rate_limit` is the longest the holder may wait out a rate limit, its lease
    /// renewed meanwhile.
    pub(super) fn new(lease_ttl: Duration, longest_rate_limit: Duration, purpose: Purpose) -> Self {
        let first_pause = match purpose {
            Purpose::Replace => Duration::from_millis(2),
            Purpose::RefreshAhead => Duration::from_millis(10),
        };
        Self {
            started_at: SystemTime::now(),
            pauses: ExponentialBackoff::builder()
                .retry_bounds(first_pause, Self::LONGEST_PAUSE)
                .jitter(Jitter::Bounded)
                .build_with_total_retry_duration(
                    lease_ttl
                        .saturating_mul(2)
                        .saturating_add(longest_rate_limit),
                ),
            past: 0,
        }
    }

    /// How long to wait before looking again, or `None` when the wait is over.
    pub(super) fn next_pause(&mut self) -> Option<Duration> {
        let decision = self.pauses.should_retry(self.started_at, self.past);
        self.past = self.past.saturating_add(1);
        match decision {
            RetryDecision::Retry { execute_after } => Some(
                execute_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
            ),
            RetryDecision::DoNotRetry => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_waits_poll_often_and_end_after_twice_the_ttl() {
        let mut wait = LeaseWait::new(Duration::from_secs(60), Duration::ZERO, Purpose::Replace);
        for _ in 0..50 {
            let pause = wait.next_pause().expect("still waiting");
            assert!(pause <= LeaseWait::LONGEST_PAUSE, "{pause:?}");
        }
        let mut over = LeaseWait::new(Duration::ZERO, Duration::ZERO, Purpose::RefreshAhead);
        assert_eq!(over.next_pause(), None);
    }
}
