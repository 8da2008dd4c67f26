//! Which failed token requests are worth another try, and how long to wait before it.
//!
//! Connection failures, timeouts, 5xx, 408 and 429 are retried; everything else (a rejected
//! client, a bad request, an unusable body) is final. Which statuses those are is one rule,
//! kept with the error type (`is_retryable_status`) so that [`Error::is_retryable`] says the
//! same as the retries do.
//!
//! [`Error::is_retryable`]: crate::Error::is_retryable

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

use crate::endpoint::quota::LONGEST_QUOTA_WAIT;
use crate::error::is_tls_failure;

/// The retry policy used when none is configured: 3 retries, 100 ms doubling up to 10 s, with
/// jitter so that many clients do not retry in step.
pub(crate) fn default_policy() -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(100), Duration::from_secs(10))
        .jitter(Jitter::Bounded)
        .build_with_max_retries(3)
}

/// Whether a failure to get an answer at all may pass: connection refused or reset, timeouts, a
/// body cut short. Not a malformed request, a redirect loop, or a TLS handshake that failed
/// (a plain-HTTP server, an untrusted certificate), which the next attempt would meet again.
pub(crate) fn is_retryable_transport(error: &reqwest::Error) -> bool {
    (error.is_connect() || error.is_timeout() || error.is_request() || error.is_body())
        && !is_tls_failure(error)
}

/// When the server will take requests again, if it said: `Retry-After` (delay-seconds or an
/// HTTP date, RFC 9110 §10.2.3), or on a 429 Auth0's `x-ratelimit-reset` (UNIX seconds). A
/// time in the past means now.
pub(crate) fn retry_at(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<SystemTime> {
    let header = |name| headers.get(name)?.to_str().ok().map(str::trim);
    let at = if let Some(value) = header(RETRY_AFTER.as_str()) {
        match value.parse::<u64>() {
            Ok(seconds) => now.checked_add(Duration::from_secs(seconds))?,
            Err(_) => httpdate::parse_http_date(value).ok()?,
        }
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        let seconds = header(RATE_LIMIT_RESET)?.parse::<u64>().ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))?
    } else {
        return None;
    };
    Some(at.max(now))
}

/// What a rate limit asks of the fetch that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateLimit {
    /// A short one, within the policy's longest wait, with an attempt left: wait until then
    /// and ask once more, while everyone else waits for this fetch.
    WaitOut(SystemTime),
    /// Longer than the policy waits, or no attempt left: no token request before then (the
    /// server's time, capped at the longest wait, so that a hostile or confused server cannot
    /// stop token requests for hours).
    CoolDown(SystemTime),
}

/// What an answer with `status` and `retry_at` ([`retry_at`]) asks of the fetch that got it,
/// after `past_retries` retries since `started_at`, when it is a rate limit: a 429, or a 503
/// that names a time to come back. `None` for any other answer, or a time already past.
///
/// A 429 with a spent quota bucket (`quota_spent`, `retry_at` its reset) is never waited out
/// and holds until the reset, however far off, up to a day: asking before then is refused.
pub(crate) fn rate_limit(
    policy: &ExponentialBackoff,
    started_at: SystemTime,
    past_retries: u32,
    status: StatusCode,
    retry_at: Option<SystemTime>,
    quota_spent: bool,
    now: SystemTime,
) -> Option<RateLimit> {
    let rate_limited =
        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
    let at = retry_at.filter(|at| rate_limited && *at > now)?;
    if quota_spent {
        let longest = now.checked_add(LONGEST_QUOTA_WAIT).unwrap_or(at);
        return Some(RateLimit::CoolDown(at.min(longest)));
    }
    let longest = now.checked_add(policy.max_retry_interval).unwrap_or(at);
    let attempt_left = matches!(
        policy.should_retry(started_at, past_retries),
        RetryDecision::Retry { .. }
    );
    Some(if at <= longest && attempt_left {
        RateLimit::WaitOut(at)
    } else {
        RateLimit::CoolDown(at.min(longest))
    })
}

/// Auth0's rate-limit header: when the limit resets, in UNIX seconds.
const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";

/// How long to wait before retry number `past_retries + 1`, or `None` when the policy says stop.
///
/// The time the server asked for ([`retry_at`]) wins over a shorter backoff, but is capped by
/// the policy's `max_retry_interval` so a hostile or confused server cannot stall us for hours.
pub(crate) fn next_delay(
    policy: &ExponentialBackoff,
    started_at: SystemTime,
    past_retries: u32,
    retry_at: Option<SystemTime>,
) -> Option<Duration> {
    match policy.should_retry(started_at, past_retries) {
        RetryDecision::DoNotRetry => None,
        RetryDecision::Retry { execute_after } => {
            let now = SystemTime::now();
            let backoff = execute_after.duration_since(now).unwrap_or_default();
            let asked = retry_at
                .and_then(|at| at.duration_since(now).ok())
                .unwrap_or_default()
                .min(policy.max_retry_interval);
            Some(backoff.max(asked))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn policy(jitter: Jitter, retries: u32) -> ExponentialBackoff {
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(10), Duration::from_millis(80))
            .jitter(jitter)
            .build_with_max_retries(retries)
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let after = |value: &str, status: u16| {
            retry_at(
                StatusCode::from_u16(status).unwrap(),
                &headers(RETRY_AFTER.as_str(), value),
                now,
            )
            .map(|at| at.duration_since(now).unwrap())
        };
        assert_eq!(after("2", 503), Some(Duration::from_secs(2)));
        assert_eq!(after(" 120 ", 429), Some(Duration::from_secs(120)));
        assert_eq!(
            after("Wed, 21 Oct 2015 07:28:30 GMT", 503),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            after("Wed, 21 Oct 2015 07:00:00 GMT", 503),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(after("soon", 503), None);
        assert_eq!(after("-1", 503), None);
        assert_eq!(
            retry_at(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), now),
            None
        );
    }

    #[test]
    fn auth0_rate_limit_reset_counts_on_a_429() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let reset = headers(RATE_LIMIT_RESET, "1700000007");
        assert_eq!(
            retry_at(StatusCode::TOO_MANY_REQUESTS, &reset, now),
            Some(now + Duration::from_secs(7))
        );
        // On other answers it only says when the bucket refills: not a reason to wait.
        assert_eq!(retry_at(StatusCode::SERVICE_UNAVAILABLE, &reset, now), None);
        // Retry-After, when both are sent, is the server's word on this request.
        let mut both = reset.clone();
        both.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(
            retry_at(StatusCode::TOO_MANY_REQUESTS, &both, now),
            Some(now + Duration::from_secs(1))
        );
        let past = headers(RATE_LIMIT_RESET, "1600000000");
        assert_eq!(
            retry_at(StatusCode::TOO_MANY_REQUESTS, &past, now),
            Some(now)
        );
        let garbage = headers(RATE_LIMIT_RESET, "tomorrow");
        assert_eq!(retry_at(StatusCode::TOO_MANY_REQUESTS, &garbage, now), None);
    }

    #[test]
    fn short_rate_limits_are_waited_out_and_long_ones_cool_down_within_the_cap() {
        let now = SystemTime::now();
        let at = |seconds| now + Duration::from_secs(seconds);
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(10), Duration::from_secs(10))
            .build_with_max_retries(1);
        let limit = |status: u16, retry_at, past_retries| {
            let status = StatusCode::from_u16(status).unwrap();
            rate_limit(&policy, now, past_retries, status, retry_at, false, now)
        };
        assert_eq!(limit(429, Some(at(2)), 0), Some(RateLimit::WaitOut(at(2))));
        assert_eq!(
            limit(503, Some(at(10)), 0),
            Some(RateLimit::WaitOut(at(10)))
        );
        assert_eq!(
            limit(429, Some(at(3600)), 0),
            Some(RateLimit::CoolDown(at(10))),
            "too long to wait: capped"
        );
        assert_eq!(
            limit(429, Some(at(2)), 1),
            Some(RateLimit::CoolDown(at(2))),
            "no attempt left"
        );
        assert_eq!(limit(429, None, 0), None, "no time given: ordinary backoff");
        assert_eq!(limit(429, Some(now), 0), None, "a time already come");
        for other in [500, 502, 504, 408] {
            assert_eq!(limit(other, Some(at(2)), 0), None, "{other}");
        }
    }

    #[test]
    fn a_spent_quota_holds_until_its_reset_up_to_a_day_and_is_never_waited_out() {
        let now = SystemTime::now();
        let at = |seconds| now + Duration::from_secs(seconds);
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(10), Duration::from_secs(10))
            .build_with_max_retries(3);
        let spent = |retry_at| {
            rate_limit(
                &policy,
                now,
                0,
                StatusCode::TOO_MANY_REQUESTS,
                Some(retry_at),
                true,
                now,
            )
        };
        assert_eq!(spent(at(2)), Some(RateLimit::CoolDown(at(2))));
        assert_eq!(spent(at(3_540)), Some(RateLimit::CoolDown(at(3_540))));
        assert_eq!(
            spent(at(1_000_000)),
            Some(RateLimit::CoolDown(now + LONGEST_QUOTA_WAIT))
        );
    }

    #[test]
    fn backoff_grows_and_stops_after_max_retries() {
        let policy = policy(Jitter::None, 3);
        let start = SystemTime::now();
        let delays: Vec<_> = (0..4)
            .map(|n| next_delay(&policy, start, n, None))
            .collect();
        assert_eq!(delays[3], None);
        let millis: Vec<_> = delays[..3].iter().map(|d| d.unwrap().as_millis()).collect();
        // execute_after is computed a moment before we read the clock, hence the ranges.
        assert!((8..=10).contains(&millis[0]), "{millis:?}");
        assert!((18..=20).contains(&millis[1]), "{millis:?}");
        assert!((38..=40).contains(&millis[2]), "{millis:?}");
    }

    #[test]
    fn delays_stay_within_bounds_whatever_the_jitter() {
        for jitter in [Jitter::None, Jitter::Full, Jitter::Bounded] {
            let policy = policy(jitter, 20);
            for n in 0..20 {
                for asked in [
                    None,
                    Some(Duration::from_millis(5)),
                    Some(Duration::from_secs(3600)),
                ] {
                    let at = asked.map(|asked| SystemTime::now() + asked);
                    let delay = next_delay(&policy, SystemTime::now(), n, at).unwrap();
                    assert!(
                        delay <= Duration::from_millis(80),
                        "{jitter:?} {n} {delay:?}"
                    );
                    if let Some(asked) = asked {
                        // A millisecond passes between the two clock readings at most.
                        let floor = asked.min(Duration::from_millis(80));
                        assert!(delay + Duration::from_millis(1) >= floor);
                    }
                }
            }
        }
    }

    #[test]
    fn retry_after_wins_over_a_shorter_backoff() {
        let policy = policy(Jitter::None, 3);
        let asked = SystemTime::now() + Duration::from_millis(50);
        let delay = next_delay(&policy, SystemTime::now(), 0, Some(asked)).unwrap();
        // Counted from the moment next_delay reads the clock, a little after `asked` was made.
        assert!(
            (Duration::from_millis(40)..=Duration::from_millis(50)).contains(&delay),
            "{delay:?}"
        );
    }

    #[test]
    fn zero_retries_means_one_attempt() {
        let policy = policy(Jitter::None, 0);
        assert_eq!(next_delay(&policy, SystemTime::now(), 0, None), None);
    }
}
