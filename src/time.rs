//! Points in time as the crate writes and reads them, and bounds that keep arithmetic safe.
//!
//! UNIX seconds and milliseconds, stored times, HTTP dates, and the cheap clock of the cached
//! path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `expires_in` taken at face value (ten years); a longer one is an error, as it can
/// only be a mistake and would overflow time arithmetic on some platforms.
pub(crate) const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How far another machine's clock may be ahead of ours, for what other instances wrote to a
/// shared storage: a time this much further ahead than the rules allow is still taken for an
/// honest one.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The last second of the year 9999, in UNIX seconds: the last an HTTP date can hold, and the
/// last stored time taken for a time rather than damage.
const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

/// A wall-clock time in whole nanoseconds since the UNIX epoch: how the cached path compares
/// times, in one integer comparison with no `SystemTime` arithmetic. Saturates at both ends
/// (before 1970 is 0, after the year 2554 the largest value), which keeps the order of any two
/// times a token can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UnixNanos(u64);

impl UnixNanos {
    /// The UNIX epoch: what a rejected token counts as expired at.
    pub(crate) const EPOCH: Self = Self(0);

    /// The wall clock as of its last tick: at most a tick (a few milliseconds) behind
    /// [`SystemTime::now`], and several times cheaper to read.
    ///
    /// For the one clock read of a request that finds its token cached, where a token counts
    /// as expired at least a second early anyway; every other decision reads
    /// [`SystemTime::now`].
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    pub(crate) fn coarse_now() -> Self {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::RealtimeCoarse);
        match (u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec)) {
            (Ok(seconds), Ok(nanos)) => Self(
                seconds
                    .saturating_mul(NANOS_PER_SECOND)
                    .saturating_add(nanos),
            ),
            // A clock set before 1970: left to the standard library.
            _ => SystemTime::now().into(),
        }
    }

    /// The wall clock: where no cheaper clock is known, [`SystemTime::now`] itself.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn coarse_now() -> Self {
        SystemTime::now().into()
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl From<SystemTime> for UnixNanos {
    fn from(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// `time` in whole UNIX seconds, rounded down: how times are put in JWT claims.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `time` in whole UNIX milliseconds, rounded down: the precision of stored times.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// A stored time (UNIX seconds, milliseconds as a fraction) back as a [`SystemTime`]; `None`
/// for a value no token could hold (negative, NaN, after the year 9999).
pub(crate) fn from_stored_seconds(seconds: f64) -> Option<SystemTime> {
    if !(0.0..=LAST_SECOND_OF_9999 as f64).contains(&seconds) {
        return None; // NaN too
    }
    // In range, so the product fits a u64 and `as` only drops what is below a millisecond.
    Some(UNIX_EPOCH + Duration::from_millis((seconds * 1000.0).round() as u64))
}

/// A time as stored: UNIX seconds with milliseconds as a fraction.
pub(crate) fn to_stored_seconds(time: SystemTime) -> f64 {
    unix_millis(time) as f64 / 1000.0
}

/// `time` as an HTTP date, as `Retry-After` gives it; times an HTTP date cannot hold are
/// described instead (formatting them would panic).
pub(crate) fn http_date(time: SystemTime) -> String {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) if since <= Duration::from_secs(LAST_SECOND_OF_9999) => {
            httpdate::fmt_http_date(time)
        }
        _ => "a time out of range".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_at_most_a_tick_behind_the_precise_one() {
        for _ in 0..1_000 {
            let before = UnixNanos::from(SystemTime::now());
            let coarse = UnixNanos::coarse_now();
            let after = UnixNanos::from(SystemTime::now());
            assert!(coarse <= after, "ahead of the clock");
            // A tick is 1 to 10 ms on Linux (HZ 1000 to 100); 50 ms leaves room for a
            // preempted thread between the reads.
            let lag = Duration::from_nanos(before.0.saturating_sub(coarse.0));
            assert!(lag < Duration::from_millis(50), "{lag:?} behind");
        }
    }

    #[test]
    fn nanoseconds_since_1970_keep_the_order_of_times_and_saturate_outside_it() {
        let at = |nanos| UNIX_EPOCH + Duration::from_nanos(nanos);
        assert_eq!(
            UnixNanos::from(at(1_700_000_000_123_456_789)).0,
            1_700_000_000_123_456_789
        );
        assert!(UnixNanos::from(at(5)) < UnixNanos::from(at(6)));
        assert_eq!(
            UnixNanos::from(UNIX_EPOCH - Duration::from_secs(1)),
            UnixNanos::EPOCH
        );
        let year_9999 = UNIX_EPOCH + Duration::from_secs(LAST_SECOND_OF_9999);
        assert_eq!(UnixNanos::from(year_9999), UnixNanos(u64::MAX));
    }

    #[test]
    fn http_dates_end_with_the_year_9999() {
        let last = UNIX_EPOCH + Duration::from_secs(LAST_SECOND_OF_9999);
        assert_eq!(http_date(last), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            http_date(last + Duration::from_secs(1)),
            "a time out of range"
        );
    }

    #[test]
    fn stored_times_end_with_the_year_9999_and_are_never_negative() {
        let last = LAST_SECOND_OF_9999 as f64;
        assert_eq!(
            from_stored_seconds(last),
            Some(UNIX_EPOCH + Duration::from_secs(LAST_SECOND_OF_9999))
        );
        for damaged in [last + 1.0, -0.001, f64::NAN, f64::INFINITY] {
            assert_eq!(from_stored_seconds(damaged), None, "{damaged}");
        }
    }
}
