//! A token as the cache holds it: its header and its due and stale moments, worked out once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::HeaderValue;

use crate::endpoint::dpop::header::ath;
use crate::error::TokenResponseError;
use crate::random::random_fraction;
use crate::time::UnixNanos;
use crate::token::{Token, TokenType};

/// The share of a token's lifetime at its end in which it is refreshed ahead, unless
/// [`refresh_window`](crate::ClientCredentialsBuilder::refresh_window) says otherwise.
pub(crate) const DEFAULT_REFRESH_WINDOW: f64 = 0.25;

/// How much of the refresh window the middlewares' starting points spread over.
const SPREAD_SHARE: f64 = 0.75;

/// When a token is refreshed: the expiry margin, and the refresh-ahead window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long before its expiry a token counts as expired, as configured; what a given token
    /// gets is [`Token::stale_at`]'s.
    pub(crate) margin: Duration,
    /// The share of a token's lifetime, at its end, in which it is refreshed in the
    /// background; `None` when refreshing ahead is off.
    pub(crate) window: Option<f64>,
    /// Where in the first three quarters of the window this middleware starts its refresh, from
    /// 0 (the window's start) to 1 (three quarters in). Random per middleware, so that a fleet
    /// whose members all hold the same token do not all reach for a new one at the same
    /// instant: the first to refresh stores the new token, and most of the others find it
    /// there. The last quarter is left for a refresh that starts late to finish.
    pub(crate) spread: f64,
}

impl Timing {
    /// A spread drawn at random, for a new middleware.
    pub(crate) fn random_spread() -> f64 {
        random_fraction()
    }

    /// When the first request to see `token` starts refreshing it in the background: inside
    /// the refresh window, the share `window` of the token's lifetime that ends where the token
    /// counts as expired.
    fn refresh_from(&self, token: &Token, stale_at: SystemTime) -> SystemTime {
        let Some(window) = self.window else {
            return stale_at;
        };
        let window_start = stale_at
            .checked_sub(token.lifetime().mul_f64(window))
            .unwrap_or(stale_at)
            .max(token.issued_at());
        let window = stale_at.duration_since(window_start).unwrap_or_default();
        window_start + window.mul_f64(self.spread.clamp(0.0, 1.0) * SPREAD_SHARE)
    }
}

/// Which token a request went out with: enough to tell, after a 401, whether the cache still
/// holds it, without keeping the token itself alive across the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenId(u64);

impl TokenId {
    /// A number no other token of this process has.
    pub(crate) fn next() -> Self {
        static LAST: AtomicU64 = AtomicU64::new(0);
        Self(LAST.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a request takes from a cached token: its header, which token it is and, for a DPoP
/// token, the hash its proofs carry.
pub(crate) struct Lent {
    pub(crate) header: HeaderValue,
    pub(crate) id: TokenId,
    pub(crate) ath: Option<Arc<str>>,
}

/// A token ready for use: the header is built once, and each check is one comparison.
pub(crate) struct CachedToken {
    pub(crate) token: Token,
    /// The `Authorization` header, marked sensitive; requests take the copy of it their thread
    /// keeps.
    pub(crate) header: HeaderValue,
    /// This token, among all the tokens of the process; its rejected copy keeps it.
    pub(crate) id: TokenId,
    /// For a DPoP token, the hash of the token that each proof carries (`ath`).
    pub(crate) ath: Option<Arc<str>>,
    /// From here on, the first request to see the token starts a background refresh.
    refresh_from: UnixNanos,
    /// From here on, the token counts as expired.
    stale_at: UnixNanos,
}

impl CachedToken {
    pub(crate) fn new(token: Token, timing: &Timing) -> Result<Self, TokenResponseError> {
        let stale_at = token.stale_at(timing.margin);
        Ok(Self {
            header: token.access_token().header(token.token_type())?,
            id: TokenId::next(),
            ath: (token.token_type() == TokenType::Dpop)
                .then(|| ath(token.access_token().secret()).into()),
            refresh_from: timing.refresh_from(&token, stale_at).into(),
            stale_at: stale_at.into(),
            token,
        })
    }

    /// What a request takes to go out with this token, with `header`, a copy of its header.
    pub(crate) fn lend(&self, header: HeaderValue) -> Lent {
        Lent {
            header,
            id: self.id,
            ath: self.ath.clone(),
        }
    }

    /// Whether the token may be used at `now`.
    pub(crate) fn is_fresh_at(&self, now: impl Into<UnixNanos>) -> bool {
        now.into() < self.stale_at
    }

    /// Whether the token is in its refresh window at `now` (and should be replaced soon).
    pub(crate) fn is_due_at(&self, now: impl Into<UnixNanos>) -> bool {
        now.into() >= self.refresh_from
    }

    /// Whether the server still takes the token at `now`: not rejected, not really expired,
    /// though perhaps within the expiry margin.
    pub(crate) fn is_valid_at(&self, now: SystemTime) -> bool {
        !self.is_rejected() && !self.token.is_expired_at(now)
    }

    /// The same token, marked as no longer usable.
    pub(crate) fn rejected(&self) -> Self {
        Self {
            token: self.token.clone(),
            header: self.header.clone(),
            id: self.id,
            ath: self.ath.clone(),
            refresh_from: UnixNanos::EPOCH,
            stale_at: UnixNanos::EPOCH,
        }
    }

    pub(crate) fn is_rejected(&self) -> bool {
        self.stale_at == UnixNanos::EPOCH
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::AccessToken;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn cached(issued: u64, expires: u64, timing: Timing) -> CachedToken {
        let token = Token::new(AccessToken::new("t"), at(issued), at(expires));
        CachedToken::new(token, &timing).unwrap()
    }

    fn timing(margin: u64, window: Option<f64>, spread: f64) -> Timing {
        Timing {
            margin: Duration::from_secs(margin),
            window,
            spread,
        }
    }

    #[test]
    fn the_window_is_a_quarter_of_the_life_up_to_the_margin() {
        // One hour, 30 s margin: stale at 3570 s, window from 2670 s.
        let token = cached(0, 3_600, timing(30, Some(0.25), 0.0));
        assert!(!token.is_due_at(at(2_669)));
        assert!(token.is_due_at(at(2_670)));
        assert!(token.is_fresh_at(at(3_569)));
        assert!(!token.is_fresh_at(at(3_570)));
    }

    #[test]
    fn the_spread_moves_the_start_within_the_first_three_quarters_of_the_window() {
        // Window 2670..3570 s: 900 s, three quarters of it 675 s.
        let late = cached(0, 3_600, timing(30, Some(0.25), 1.0));
        assert!(!late.is_due_at(at(3_344)));
        assert!(late.is_due_at(at(3_345)));
        let middle = cached(0, 3_600, timing(30, Some(0.25), 0.5));
        assert!(!middle.is_due_at(at(3_007)));
        assert!(middle.is_due_at(at(3_008)));
    }

    #[test]
    fn short_tokens_keep_a_window_before_they_count_as_expired() {
        // The default 30 s margin, capped at a quarter of the life, and the window before it.
        for lifetime in [2, 4, 60, 120, 3_600] {
            let token = cached(0, lifetime, timing(30, Some(0.25), 1.0));
            let margin = Duration::from_secs(30).min(Duration::from_secs(lifetime) / 4);
            let stale_at = at(lifetime) - margin;
            assert!(
                token.is_fresh_at(stale_at - Duration::from_millis(1)),
                "{lifetime}"
            );
            assert!(!token.is_fresh_at(stale_at), "{lifetime}");
            let due_from = (0..lifetime * 1000)
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
                .find(|t| token.is_due_at(*t))
                .unwrap();
            assert!(
                due_from < stale_at,
                "{lifetime} s: due from {due_from:?}, stale at {stale_at:?}"
            );
            assert!(due_from > at(0), "{lifetime} s: not due at once");
        }
    }

    #[test]
    fn the_margin_is_at_least_a_second_for_whole_second_expiry() {
        // A 500 ms margin would meet a server whose clock rounds `exp` its own way.
        let token = cached(0, 60, timing(0, Some(0.25), 0.0));
        assert!(token.is_fresh_at(SystemTime::UNIX_EPOCH + Duration::from_millis(58_999)));
        assert!(!token.is_fresh_at(at(59)));
        let half_a_second = Timing {
            margin: Duration::from_millis(500),
            window: None,
            spread: 0.0,
        };
        let token = CachedToken::new(
            Token::new(AccessToken::new("t"), at(0), at(60)),
            &half_a_second,
        )
        .unwrap();
        assert!(!token.is_fresh_at(at(59)));
    }

    #[test]
    fn without_a_window_a_token_is_due_when_it_counts_as_expired() {
        let token = cached(0, 3_600, timing(30, None, 0.3));
        assert!(!token.is_due_at(at(3_569)));
        assert!(token.is_due_at(at(3_570)));
    }

    #[test]
    fn random_spreads_are_fractions() {
        for _ in 0..1_000 {
            let spread = Timing::random_spread();
            assert!((0.0..1.0).contains(&spread), "{spread}");
        }
    }

    #[test]
    fn a_rejected_token_is_neither_fresh_nor_valid() {
        let token = cached(0, u64::from(u32::MAX), timing(30, Some(0.25), 0.0)).rejected();
        assert!(!token.is_fresh_at(at(1)));
        assert!(!token.is_valid_at(at(1)));
        assert!(token.is_rejected());
    }
}
