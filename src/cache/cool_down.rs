//! The rate-limit cool-down of one middleware: until when the token endpoint is left alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::unix_millis;

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
}
