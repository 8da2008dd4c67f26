//! An API that refuses even a replay's token: new tokens are paced, not fetched per request.
//!
//! A replay goes out with a token other than the one the API refused. When the API refuses
//! that one too, either it was revoked while in flight (a short burst of revocations), or the
//! API does not take this client's tokens at all (a wrong audience, resource or scope, or an
//! API that trusts another issuer). A refused token is never used again either way, but the
//! tokens that replace refused ones are then fetched at most once per interval: one second,
//! doubled at each further token refused up to [`LONGEST_PACE`], and back to none at the first
//! replay the API accepts. Requests that need such a token meanwhile wait for the interval's
//! end and share the one fetch made then, so a burst costs a short wait and a misconfigured
//! client does not spend the token quota a request at a time.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::cache::cached_token::TokenId;

/// The first interval between fetches after a refused replay.
pub(crate) const FIRST_PACE: Duration = Duration::from_secs(1);

/// The longest interval between fetches, reached while refusals go on.
pub(crate) const LONGEST_PACE: Duration = Duration::from_secs(30);

/// Until when tokens that replace refused ones are not fetched, and the interval behind it.
#[derive(Debug, Default)]
pub(crate) struct RefusalPace(Mutex<Pace>);

#[derive(Debug, Default, Clone, Copy)]
struct Pace {
    /// No fetch to replace a refused token before this; `None` when the API takes tokens.
    next_fetch: Option<Instant>,
    /// The interval that set `next_fetch`; zero when none did.
    interval: Duration,
    /// The last replay's token refused: the many replays that went out with one token and
    /// were refused together count once.
    last_refused: Option<TokenId>,
}

impl RefusalPace {
    /// Until when a request needing a token in place of a refused one waits, if it must.
    pub(crate) fn wait_until(&self, now: Instant) -> Option<Instant> {
        let pace = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pace.next_fetch.filter(|next| *next > now)
    }

    /// The API refused `token`, a replay's, at `now`: the next fetch waits a longer interval,
    /// unless that token was refused already. True when no refusal was remembered before: the
    /// first of a run, the one worth a warning.
    pub(crate) fn refused(&self, token: TokenId, now: Instant) -> bool {
        let mut pace = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pace.last_refused == Some(token) {
            return false;
        }
        let first = pace.next_fetch.is_none();
        pace.interval = (pace.interval * 2).clamp(FIRST_PACE, LONGEST_PACE);
        pace.next_fetch = Some(now + pace.interval);
        pace.last_refused = Some(token);
        first
    }

    /// The API accepted a replay: tokens are fetched as soon as they are needed again.
    pub(crate) fn accepted(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Pace::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tokens_double_the_pace_up_to_its_longest_and_warn_once_a_run() {
        let (pace, token, start) = (RefusalPace::default(), TokenId::next, Instant::now());
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(pace.wait_until(at(0)), None);
        let first = token();
        assert!(pace.refused(first, at(0)), "the first of a run");
        assert_eq!(pace.wait_until(at(0)), Some(at(1)));
        assert_eq!(pace.wait_until(at(1)), None, "the interval is over");
        assert!(!pace.refused(first, at(1)), "the same token counts once");
        assert_eq!(pace.wait_until(at(1)), None);
        assert!(!pace.refused(token(), at(1)), "the same run");
        assert_eq!(pace.wait_until(at(1)), Some(at(3)));
        let mut now = at(3);
        for _ in 0..10 {
            pace.refused(token(), now);
            now = pace.wait_until(now).unwrap();
        }
        assert!(!pace.refused(token(), now));
        assert_eq!(pace.wait_until(now), Some(now + LONGEST_PACE));
    }

    #[test]
    fn an_accepted_replay_ends_the_pace() {
        let (pace, token, start) = (RefusalPace::default(), TokenId::next, Instant::now());
        pace.refused(token(), start);
        pace.refused(token(), start + FIRST_PACE);
        pace.accepted();
        assert_eq!(pace.wait_until(start + FIRST_PACE), None);
        let later = start + LONGEST_PACE;
        assert!(pace.refused(token(), later), "a new run");
        assert_eq!(
            pace.wait_until(later),
            Some(later + FIRST_PACE),
            "from the first interval again"
        );
    }
}
