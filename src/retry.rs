//! Which failed token requests are worth another try, and how long to wait before it.
//!
//! Classification lives here alone: connection failures, timeouts, 5xx, 408 and 429 are
//! retried; everything else (a rejected client, a bad request, an unusable body) is final.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

/// The retry policy used when none is configured: 3 retries, 100 ms doubling up to 10 s, with
/// jitter so that many clients do not retry in step.
pub(crate) fn default_policy() -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(100), Duration::from_secs(10))
        .jitter(Jitter::Bounded)
        .build_with_max_retries(3)
}

/// Whether an answer with this status may succeed if asked again.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Whether a failure to get an answer at all may pass: connection refused or reset, timeouts, a
/// body cut short. Not a malformed request or a redirect loop.
pub(crate) fn is_retryable_transport(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// `Retry-After` as a delay from `now`: either delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// How long to wait before retry number `past_retries + 1`, or `None` when the policy says stop.
///
/// The server's `Retry-After` wins over a shorter backoff, but is capped by the policy's
/// `max_retry_interval` so a hostile or confused server cannot stall us for hours.
pub(crate) fn next_delay(
    policy: &ExponentialBackoff,
    started_at: SystemTime,
    past_retries: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    match policy.should_retry(started_at, past_retries) {
        RetryDecision::DoNotRetry => None,
        RetryDecision::Retry { execute_after } => {
            let backoff = execute_after
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let asked = retry_after
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

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 301, 400, 401, 403, 404, 405, 415] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            retry_after(&headers("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(" 120 "), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-1"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
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
                    let delay = next_delay(&policy, SystemTime::now(), n, asked).unwrap();
                    assert!(
                        delay <= Duration::from_millis(80),
                        "{jitter:?} {n} {delay:?}"
                    );
                    if let Some(asked) = asked {
                        assert!(delay >= asked.min(Duration::from_millis(80)));
                    }
                }
            }
        }
    }

    #[test]
    fn retry_after_wins_over_a_shorter_backoff() {
        let policy = policy(Jitter::None, 3);
        let delay = next_delay(
            &policy,
            SystemTime::now(),
            0,
            Some(Duration::from_millis(50)),
        );
        assert_eq!(delay, Some(Duration::from_millis(50)));
    }

    #[test]
    fn zero_retries_means_one_attempt() {
        let policy = policy(Jitter::None, 0);
        assert_eq!(next_delay(&policy, SystemTime::now(), 0, None), None);
    }
}
