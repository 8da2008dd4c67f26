//! The rate-limit cool-down of one middleware: until when the token endpoint is left alone.
//!
//! Its own, from the token endpoint's answers, and the one other instances shared through the
//! storage, which is trusted only so far: it holds this middleware no longer than the retry
//! policy's longest wait from when this middleware first saw it, and a value further ahead than
//! any instance would have written is damage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::{CLOCK_SKEW, unix_millis};

/// The end of the current cool-down, in UNIX milliseconds; 0 for none. One atomic, so checking
/// it costs a request nothing worth counting.
#[derive(Debug, Default)]
pub(crate) struct CoolDown {
    until_ms: AtomicU64,
    /// The shared cool-down last read from the storage: its end, and when it was first seen.
    shared: Mutex<Option<(u64, u64)>>,
}

/// What a middleware makes of a cool-down read from the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SharedCoolDown {
    /// Leave the token endpoint alone until then (the value, or the cap from first sight).
    Until(SystemTime),
    /// It has held this middleware as long as it may: ask the token endpoint, once.
    Outlived,
    /// Further ahead than any instance would have written: not to be trusted.
    Damaged,
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

    /// Judges `until`, a cool-down read from the storage at `now`, given the longest wait the
    /// retry policy allows (`max_wait`, which also caps what an instance writes). A value is
    /// never honoured for longer than `max_wait` after this middleware first saw it, however
    /// often it is read again.
    pub(crate) fn judge_shared(
        &self,
        until: SystemTime,
        now: SystemTime,
        max_wait: Duration,
    ) -> SharedCoolDown {
        if until > now + max_wait + CLOCK_SKEW {
            return SharedCoolDown::Damaged;
        }
        let (until_ms, now_ms) = (unix_millis(until), unix_millis(now));
        let first_seen_ms = {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            match *shared {
                Some((seen, first_seen)) if seen == until_ms => first_seen,
                _ => {
                    *shared = Some((until_ms, now_ms));
                    now_ms
                }
            }
        };
        let cap = UNIX_EPOCH + Duration::from_millis(first_seen_ms) + max_wait;
        if now >= cap {
            SharedCoolDown::Outlived
        } else {
            SharedCoolDown::Until(until.min(cap))
        }
    }
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
    fn a_shared_cool_down_holds_no_longer_than_the_longest_wait_from_first_sight() {
        let cool_down = CoolDown::default();
        let max_wait = Duration::from_secs(2);
        let until = at(7_000);
        assert_eq!(
            cool_down.judge_shared(until, at(1_000), max_wait),
            SharedCoolDown::Until(at(3_000)),
            "capped at the longest wait"
        );
        assert_eq!(
            cool_down.judge_shared(until, at(2_500), max_wait),
            SharedCoolDown::Until(at(3_000)),
            "read again: the cap still counts from the first sight"
        );
        assert_eq!(
            cool_down.judge_shared(until, at(3_000), max_wait),
            SharedCoolDown::Outlived
        );
        assert_eq!(
            cool_down.judge_shared(at(4_500), at(3_000), max_wait),
            SharedCoolDown::Until(at(4_500)),
            "a new value, as a fresh 429 writes, is judged afresh"
        );
    }

    #[test]
    fn a_shared_cool_down_further_ahead_than_any_instance_writes_is_damage() {
        let cool_down = CoolDown::default();
        let max_wait = Duration::from_secs(2);
        let now = at(1_000_000);
        let furthest = now + max_wait + CLOCK_SKEW;
        assert_eq!(
            cool_down.judge_shared(furthest, now, max_wait),
            SharedCoolDown::Until(now + max_wait)
        );
        for damaged in [
            furthest + Duration::from_millis(1),
            now + Duration::from_secs(3600),
        ] {
            assert_eq!(
                cool_down.judge_shared(damaged, now, max_wait),
                SharedCoolDown::Damaged
            );
        }
    }
}
