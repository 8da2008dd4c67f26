//! The token cache: a client's tokens in the process, in front of the storage, one fetch at a time.
//!
//! A [`TokenClient`] holds what every token of one client shares (the token endpoint, the
//! storage, the rate-limit cool-down); a [`Slot`] one grant's token, with its single flight and
//! refresh ahead; [`Slots`] the bounded map from grants to slots. Slots are the only code that
//! talks to the storage (in `slot.rs`, and in `obtain.rs`, the fetch itself).

pub(crate) mod cached_token;
pub(crate) mod client;
mod cool_down;
mod current;
pub(crate) mod fault_log;
mod invalidate;
mod lease_wait;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod obtain;
mod quota;
mod refresh_ahead;
pub(crate) mod refusals;
mod single_flight;
pub(crate) mod slot;
pub(crate) mod slots;
mod storage_breaker;

pub(crate) use client::TokenClient;
pub(crate) use slot::Slot;
pub(crate) use slots::{SlotLimits, Slots};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::cached_token::{CachedToken, Timing};
use crate::error::Error;

type FlightResult = Result<Arc<CachedToken>, Error>;

/// What a look at the in-process token found when it was not fresh, and when: the token seen
/// there (none, rejected, or counting as expired), for [`Slot::replace`].
pub(crate) type Miss = (Option<Arc<CachedToken>>, SystemTime);

/// Why a flight runs, which decides what token it may settle for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// No usable token in memory: any fresh token will do.
    Replace,
    /// The token in memory is in its refresh window: only one that is not will do.
    RefreshAhead,
}

/// How a client gets and keeps its tokens: everything the builder decides.
pub(crate) struct CacheSettings {
    pub(crate) timing: Timing,
    /// How long a refresh lease lasts; `None` when the lease is off.
    pub(crate) lease_ttl: Option<Duration>,
    /// The longest lifetime a token is taken to have: a stored one that expires further ahead
    /// is damage.
    pub(crate) max_lifetime: Duration,
    /// The share of a token quota's bucket under which its remaining tokens are warned of.
    pub(crate) quota_warning: f64,
}

/// Whether the token endpoint refused this client (400 or 401: `invalid_client`,
/// `invalid_grant`, …), rather than failed to answer: such a refusal is the caller's to see,
/// even while a token it issued earlier has not expired.
fn refuses_client(error: &Error) -> bool {
    matches!(
        error,
        Error::TokenEndpoint { status, .. }
            if *status == http::StatusCode::BAD_REQUEST || *status == http::StatusCode::UNAUTHORIZED
    )
}
