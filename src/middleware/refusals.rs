//! An API that refuses even a token fetched just now, remembered so requests fetch no more.
//!
//! A token the API refuses right after it was fetched is not worn out: the API does not take
//! this client's tokens at all (a wrong audience, resource or scope, or an API that trusts
//! another issuer). Fetching anew for every request would only spend the token quota.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::time::unix_millis;

/// How long a refusal of fresh tokens is remembered.
pub(crate) const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// Until when a 401 goes to the caller without a new token, in UNIX milliseconds; 0 for never.
#[derive(Debug, Default)]
pub(crate) struct FreshTokenRefusals {
    until_ms: AtomicU64,
}

impl FreshTokenRefusals {
    /// Whether the API refused a fresh token less than [`REMEMBERED_FOR`] before `now`.
    pub(crate) fn in_force(&self, now: SystemTime) -> bool {
        unix_millis(now) < self.until_ms.load(Ordering::Relaxed)
    }

    /// Remembers that the API refused a fresh token at `now`. True when no refusal was in
    /// force: the first of a run, the one worth a warning.
    pub(crate) fn remember(&self, now: SystemTime) -> bool {
        let before = self
            .until_ms
            .swap(unix_millis(now + REMEMBERED_FOR), Ordering::Relaxed);
        before <= unix_millis(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_remembered_for_a_while_and_warned_of_once_a_run() {
        let refusals = FreshTokenRefusals::default();
        let at = |seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        assert!(!refusals.in_force(at(1_000)));
        assert!(refusals.remember(at(1_000)), "the first of a run");
        assert!(refusals.in_force(at(1_000) + REMEMBERED_FOR - Duration::from_millis(1)));
        assert!(!refusals.remember(at(1_010)), "the same run");
        assert!(refusals.in_force(at(1_010) + REMEMBERED_FOR - Duration::from_millis(1)));
        assert!(!refusals.in_force(at(1_010) + REMEMBERED_FOR));
        assert!(refusals.remember(at(1_010) + REMEMBERED_FOR), "a new run");
    }
}
