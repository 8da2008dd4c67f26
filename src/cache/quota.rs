//! The token quota a client, or an organization, was last told of; one warning when it runs low.
//!
//! The token endpoint reports Auth0's quotas with each answer (`endpoint/quota.rs`). The
//! client's quota is kept by the [`TokenClient`](crate::cache::TokenClient), an organization's
//! by the slot of each grant for it; both are shown in the stats, and a spent bucket names
//! itself in [`Error::RateLimited`](crate::Error::RateLimited).

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::endpoint::quota::spent_until;
use crate::stats::{Quota, QuotaBucket};
use crate::time::http_date;

/// The last quota reported, and when.
#[derive(Debug, Default)]
pub(crate) struct QuotaWatch {
    last: Mutex<Option<(Quota, SystemTime)>>,
}

impl QuotaWatch {
    /// Keeps `quota`, reported at `now`. A bucket whose remaining tokens fall under `share` of
    /// its limit is warned of once in its period (`whose` and `what` say whose quota, and for
    /// which grant). Returns how many buckets were warned of.
    pub(crate) fn record(
        &self,
        quota: Quota,
        now: SystemTime,
        share: f64,
        whose: &'static str,
        what: &dyn std::fmt::Display,
    ) -> usize {
        let before = self.swap(quota, now);
        let mut warned = 0;
        for (bucket, state) in quota.buckets() {
            let known_low = before
                .and_then(|(before, _)| before.buckets().find(|(name, _)| *name == bucket))
                .is_some_and(|(_, was)| is_low(&was, share) && was.resets_at > now);
            if is_low(&state, share) && !known_low {
                tracing::warn!(
                    quota = whose,
                    bucket,
                    grant = %what,
                    limit = state.limit,
                    remaining = state.remaining,
                    resets_at = %http_date(state.resets_at),
                    "an Auth0 token quota is running low"
                );
                warned += 1;
            }
        }
        warned
    }

    /// The quota last reported, and when.
    pub(crate) fn last(&self) -> Option<(Quota, SystemTime)> {
        *self.lock()
    }

    /// Whether the quota last reported has a bucket spent at `now`.
    pub(crate) fn is_spent_at(&self, now: SystemTime) -> bool {
        self.last()
            .is_some_and(|(quota, _)| spent_until(&quota, now).is_some())
    }

    fn swap(&self, quota: Quota, now: SystemTime) -> Option<(Quota, SystemTime)> {
        self.lock().replace((quota, now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Quota, SystemTime)>> {
        // Every critical section is a copy in or out.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether fewer than `share` of `bucket`'s tokens remain.
fn is_low(bucket: &QuotaBucket, share: f64) -> bool {
    (bucket.remaining as f64) < bucket.limit as f64 * share
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::endpoint::quota::QuotaReport;

    fn quota(value: &str, now: SystemTime) -> Quota {
        let mut headers = http::HeaderMap::new();
        headers.insert("auth0-client-quota-limit", value.parse().unwrap());
        QuotaReport::from_headers(&headers, now).client.unwrap()
    }

    #[test]
    fn a_low_bucket_is_warned_of_once_in_its_period() {
        let watch = QuotaWatch::default();
        let start = SystemTime::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let record = |value: &str, now: SystemTime| {
            watch.record(quota(value, now), now, 0.1, "client", &"audience=a")
        };
        assert_eq!(record("b=per_hour;q=100;r=50;t=600", at(0)), 0);
        assert_eq!(record("b=per_hour;q=100;r=9;t=590", at(10)), 1);
        assert_eq!(
            record("b=per_hour;q=100;r=3;t=580", at(20)),
            0,
            "once in a period"
        );
        assert_eq!(
            record(
                "b=per_hour;q=100;r=5;t=3000,b=per_day;q=10;r=0;t=9000",
                at(700)
            ),
            2,
            "the next hour's bucket runs low again, and the day's is spent"
        );
        assert!(watch.is_spent_at(at(700)));
        assert!(!watch.is_spent_at(at(700 + 9000)));
        assert_eq!(watch.last().unwrap().1, at(700));
        assert_eq!(
            QuotaWatch::default().record(
                quota("b=per_hour;q=10;r=0;t=60", at(0)),
                at(0),
                0.0,
                "client",
                &"a"
            ),
            0,
            "a share of 0 warns of nothing (the 429 of a spent bucket is warned of anyway)"
        );
    }
}
