//! The rate-limit cool-down of one middleware: until when the token endpoint is left alone.
//!
//! Its own, from the token endpoint's answers, and the one other instances shared through the
//! storage, which is trusted only so far: a rate limit holds this middleware no longer than the
//! retry policy's longest wait from when this middleware first saw it; only a spent Auth0
//! quota is written further ahead, and holds until its bucket resets; a value further ahead
//! than a day (or that longest wait) and the clock skew is damage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::endpoint::quota::LONGEST_QUOTA_WAIT;
use crate::time::{CLOCK_SKEW, unix_millis};

/// The end of the current cool-down, in UNIX milliseconds; 0 for none. One atomic, so checking
/// it costs a request nothing worth counting.
#[derive(Debug, Default)]
pub(crate) struct CoolDown {
    until_ms: AtomicU64,
}

impl CoolDown {
    /// The end of the cool-down in force at `now`, if one is.
    pub(crate) fn until(&self, now: SystemTime) -> Option<SystemTime> {
        let until_ms = self.until_ms.load(Ordering::Relaxed);
        (until_ms > unix_millis(now)).then(|| UNIX_EPOCH + Duration::from_millis(until_ms))
    }

    /// Keeps the token endpoint alone until `until`, or longer if a cool-down already runs
    /// longer. Returns the end of the cool-down now in force.
    pub(crate) fn extend(&self, until: SystemTime) -> SystemTime {
        let until_ms = unix_millis(until);
        let before = self.until_ms.fetch_max(until_ms, Ordering::Relaxed);
        UNIX_EPOCH + Duration::from_millis(before.max(until_ms))
    }
}

/// Whether `until`, a cool-down read from the storage at `now`, is one an instance could have
/// written: no further ahead than the retry policy's longest wait (`max_wait`, the cap of a
/// rate limit) or a day (the cap of a spent quota's reset), give or take the clock skew between
/// instances. One that is holds until its end, and no longer however often it is read again;
/// one that is not is damage.
pub(crate) fn is_credible(until: SystemTime, now: SystemTime, max_wait: Duration) -> bool {
    until <= now + max_wait.max(LONGEST_QUOTA_WAIT) + CLOCK_SKEW
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn a_cool_down_holds_until_its_end_and_only_grows() {
        let cool_down = CoolDown::default();
        assert_eq!(cool_down.until(at(1_000)), None);
        assert_eq!(cool_down.extend(at(5_000)), at(5_000));
        assert_eq!(cool_down.until(at(4_999)), Some(at(5_000)));
        assert_eq!(cool_down.until(at(5_000)), None);
        assert_eq!(
            cool_down.extend(at(3_000)),
            at(5_000),
            "a shorter one changes nothing"
        );
        assert_eq!(cool_down.extend(at(8_000)), at(8_000));
        assert_eq!(cool_down.until(at(6_000)), Some(at(8_000)));
    }

    #[test]
    fn a_shared_cool_down_is_credible_up_to_a_day_or_the_longest_wait_and_the_skew() {
        let now = at(1_000_000);
        let (short, long) = (Duration::from_secs(2), Duration::from_secs(2 * 24 * 3600));
        for credible in [
            now + Duration::from_millis(1),
            now + Duration::from_secs(3_540),
            now + LONGEST_QUOTA_WAIT + CLOCK_SKEW,
        ] {
            assert!(is_credible(credible, now, short));
        }
        for damaged in [
            now + LONGEST_QUOTA_WAIT + CLOCK_SKEW + Duration::from_millis(1),
            now + Duration::from_secs(3 * 24 * 3600),
        ] {
            assert!(!is_credible(damaged, now, short));
        }
        assert!(
            is_credible(now + long, now, long),
            "a policy that waits longer"
        );
    }
}
