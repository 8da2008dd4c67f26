//! Auth0's token quota headers, read from every answer of the token endpoint.
//!
//! `Auth0-Client-Quota-Limit` and `Auth0-Organization-Quota-Limit` hold buckets such as
//! `b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200`: the bucket, its quota, what
//! remains, and the seconds until it starts again. A 429 with a spent bucket (`r=0`) means no
//! token before that bucket resets. What cannot be read is ignored (a `debug` event), never an
//! error: the headers only ever add to what the answer says.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::error::QuotaScope;
use crate::stats::{Quota, QuotaBucket};

/// The client's quota header.
const CLIENT_QUOTA: &str = "auth0-client-quota-limit";
/// The organization's quota header.
const ORGANIZATION_QUOTA: &str = "auth0-organization-quota-limit";

/// The longest a spent quota holds token requests: Auth0's buckets are hourly and daily. A
/// bucket that claims to reset later than this is ignored as nonsense.
pub(crate) const LONGEST_QUOTA_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The quotas one answer reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QuotaReport {
    pub(crate) client: Option<Quota>,
    pub(crate) organization: Option<Quota>,
}

impl QuotaReport {
    /// The quotas in `headers`, of an answer received at `now`.
    pub(crate) fn from_headers(headers: &HeaderMap, now: SystemTime) -> Self {
        let quota = |name: &str| {
            let value = headers.get(name)?;
            let parsed = value.to_str().ok().and_then(|text| parse_quota(text, now));
            if parsed.is_none() {
                tracing::debug!(
                    header = name,
                    "ignoring a token quota header that cannot be read"
                );
            }
            parsed
        };
        Self {
            client: quota(CLIENT_QUOTA),
            organization: quota(ORGANIZATION_QUOTA),
        }
    }

    /// When token requests may be made again if a bucket is spent at `now`: the latest reset
    /// among spent buckets, and whose quota that is.
    pub(crate) fn spent_until(&self, now: SystemTime) -> Option<(SystemTime, QuotaScope)> {
        let client = self.client.and_then(|quota| spent_until(&quota, now));
        let organization = self.organization.and_then(|quota| spent_until(&quota, now));
        match (client, organization) {
            (Some(c), Some(o)) if o > c => Some((o, QuotaScope::Organization)),
            (Some(c), _) => Some((c, QuotaScope::Client)),
            (None, Some(o)) => Some((o, QuotaScope::Organization)),
            (None, None) => None,
        }
    }
}

/// The latest reset among `quota`'s spent buckets, if one is spent at `now`.
pub(crate) fn spent_until(quota: &Quota, now: SystemTime) -> Option<SystemTime> {
    quota
        .buckets()
        .filter(|(_, bucket)| bucket.remaining == 0 && bucket.resets_at > now)
        .map(|(_, bucket)| bucket.resets_at)
        .max()
}

/// The buckets of one header value; `None` when no bucket in it can be read. A bucket with an
/// unknown name, a missing or non-numeric field, more remaining than its quota, or a reset
/// further off than a day is left out.
fn parse_quota(value: &str, now: SystemTime) -> Option<Quota> {
    let mut quota = Quota::default();
    for bucket in value.split(',') {
        let (mut name, mut limit, mut remaining, mut reset) = (None, None, None, None);
        for field in bucket.split(';') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let number = || value.trim().parse::<u64>().ok();
            match key.trim() {
                "b" => name = Some(value.trim()),
                "q" => limit = number(),
                "r" => remaining = number(),
                "t" => reset = number(),
                _ => {}
            }
        }
        let (Some(name), Some(limit), Some(remaining), Some(reset)) =
            (name, limit, remaining, reset)
        else {
            continue;
        };
        let reset = Duration::from_secs(reset);
        if remaining > limit || reset > LONGEST_QUOTA_WAIT {
            continue;
        }
        let bucket = QuotaBucket::new(limit, remaining, now + reset);
        match name {
            "per_hour" => quota.per_hour = Some(bucket),
            "per_day" => quota.per_day = Some(bucket),
            _ => {}
        }
    }
    (quota != Quota::default()).then_some(quota)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn report(client: &str, organization: Option<&str>) -> QuotaReport {
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_QUOTA, HeaderValue::from_str(client).unwrap());
        if let Some(value) = organization {
            headers.insert(ORGANIZATION_QUOTA, HeaderValue::from_str(value).unwrap());
        }
        QuotaReport::from_headers(&headers, at(1_000))
    }

    #[test]
    fn auth0s_example_is_read_bucket_by_bucket() {
        let quota = report(
            "b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200",
            None,
        )
        .client
        .unwrap();
        assert_eq!(
            quota.per_hour,
            Some(QuotaBucket::new(10, 7, at(1_000 + 3_540)))
        );
        assert_eq!(
            quota.per_day,
            Some(QuotaBucket::new(50, 47, at(1_000 + 43_200)))
        );
    }

    #[test]
    fn spaces_and_field_order_do_not_matter_and_unknown_fields_are_skipped() {
        let quota = report(" t=60 ; r=0;x=1; q=3 ;b=per_hour ", None)
            .client
            .unwrap();
        assert_eq!(quota.per_hour, Some(QuotaBucket::new(3, 0, at(1_060))));
        assert_eq!(quota.per_day, None);
    }

    #[test]
    fn what_cannot_be_read_is_left_out() {
        for garbage in [
            "",
            "garbage",
            "b=per_hour;q=10;r=7",
            "b=per_hour;q=ten;r=7;t=60",
            "b=per_hour;q=10;r=11;t=60",
            "b=per_hour;q=10;r=-1;t=60",
            "b=per_week;q=10;r=1;t=60",
            "b=per_day;q=10;r=1;t=90000",
            "b=per_day;q=10;r=1;t=99999999999999999999999",
        ] {
            assert_eq!(report(garbage, None).client, None, "{garbage}");
        }
        let one_good = report("b=per_hour;q=x;r=1;t=1,b=per_day;q=5;r=1;t=10", None);
        assert_eq!(
            one_good.client.unwrap().per_day,
            Some(QuotaBucket::new(5, 1, at(1_010)))
        );
    }

    #[test]
    fn a_spent_bucket_holds_until_the_latest_reset_of_the_spent_ones() {
        let now = at(1_000);
        assert_eq!(
            report("b=per_hour;q=3;r=1;t=60", None).spent_until(now),
            None
        );
        assert_eq!(
            report("b=per_hour;q=3;r=0;t=60,b=per_day;q=9;r=0;t=600", None).spent_until(now),
            Some((at(1_600), QuotaScope::Client))
        );
        assert_eq!(
            report("b=per_hour;q=3;r=0;t=60,b=per_day;q=9;r=4;t=600", None).spent_until(now),
            Some((at(1_060), QuotaScope::Client))
        );
        assert_eq!(
            report("b=per_day;q=9;r=4;t=600", Some("b=per_hour;q=3;r=0;t=60")).spent_until(now),
            Some((at(1_060), QuotaScope::Organization))
        );
        assert_eq!(
            report("b=per_hour;q=3;r=0;t=60", Some("b=per_day;q=3;r=0;t=600")).spent_until(now),
            Some((at(1_600), QuotaScope::Organization)),
            "the later reset wins"
        );
        assert_eq!(
            report("b=per_hour;q=3;r=0;t=0", None).spent_until(now),
            None,
            "a bucket that resets now is not spent"
        );
    }

    proptest! {
        #[test]
        fn any_header_value_is_read_without_a_panic(value in "[ -~]{0,200}") {
            if let Ok(header) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(CLIENT_QUOTA, header);
                let report = QuotaReport::from_headers(&headers, at(1_000));
                if let Some(quota) = report.client {
                    for (_, bucket) in quota.buckets() {
                        prop_assert!(bucket.remaining <= bucket.limit);
                        prop_assert!(bucket.resets_at <= at(1_000) + LONGEST_QUOTA_WAIT);
                    }
                }
            }
        }
    }
}
