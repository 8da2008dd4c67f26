//! The token cache: the in-process token in front of the storage, one fetch at a time.
//!
//! [`TokenCache`] keeps an in-process copy of the current token in front of the
//! [`TokenStorage`], refreshes ahead in the background, honours the rate-limit cool-down and
//! forgets a token after a 401. It is the only code that talks to the storage (here, and in
//! `obtain.rs`, the fetch itself).

pub(crate) mod cached_token;
mod cool_down;
mod current;
pub(crate) mod fault_log;
mod invalidate;
mod lease_wait;
mod obtain;
mod refresh_ahead;
mod single_flight;
mod storage_breaker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::cached_token::{CachedToken, Timing};
use crate::cache::cool_down::CoolDown;
use crate::cache::current::Current;
use crate::cache::fault_log::{FaultLog, StorageOperation};
use crate::cache::refresh_ahead::RefreshAhead;
use crate::cache::single_flight::SingleFlight;
use crate::cache::storage_breaker::{StorageBreaker, is_timeout};
use crate::endpoint::TokenEndpoint;
use crate::error::Error;
use crate::stats::{Counters, count};
use crate::storage::{StorageError, StorageKey, TokenStorage};
use crate::time::{UnixNanos, http_date};

type FlightResult = Result<Arc<CachedToken>, Error>;

/// What a look at the in-process token found when it was not fresh, and when: the token seen
/// there (none, rejected, or counting as expired), for [`TokenCache::replace`].
pub(crate) type Miss = (Option<Arc<CachedToken>>, SystemTime);

/// Why a flight runs, which decides what token it may settle for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// No usable token in memory: any fresh token will do.
    Replace,
    /// The token in memory is in its refresh window: only one that is not will do.
    RefreshAhead,
}

/// How a middleware gets and keeps its tokens: everything the builder decides.
pub(crate) struct CacheSettings {
    pub(crate) timing: Timing,
    /// How long a refresh lease lasts; `None` when the lease is off.
    pub(crate) lease_ttl: Option<Duration>,
    /// The longest lifetime a token is taken to have: a stored one that expires further ahead
    /// is damage.
    pub(crate) max_lifetime: Duration,
}

pub(crate) struct TokenCache {
    pub(crate) key: StorageKey,
    pub(crate) storage: Arc<dyn TokenStorage>,
    pub(crate) endpoint: TokenEndpoint,
    settings: CacheSettings,
    current: Current,
    flight: SingleFlight<FlightResult>,
    ahead: RefreshAhead,
    cool_down: CoolDown,
    pub(crate) counters: Counters,
    faults: FaultLog,
    breaker: Arc<StorageBreaker>,
}

impl TokenCache {
    pub(crate) fn new(
        key: StorageKey,
        storage: Arc<dyn TokenStorage>,
        endpoint: TokenEndpoint,
        settings: CacheSettings,
        faults: FaultLog,
    ) -> Self {
        Self {
            key,
            storage,
            endpoint,
            settings,
            current: Current::new(),
            flight: SingleFlight::new(),
            ahead: RefreshAhead::default(),
            cool_down: CoolDown::default(),
            counters: Counters::default(),
            faults,
            breaker: Arc::default(),
        }
    }

    /// A token that does not count as expired: the in-process copy when it is fresh (no lock,
    /// no await; in its refresh window it also starts a background refresh), otherwise from
    /// the storage or the token endpoint, one fetch at a time. The middleware takes the same
    /// two steps, keeping only what it needs of the token.
    ///
    /// # Errors
    /// When no token can be had; every caller waiting on the same fetch gets the same error.
    /// While the token endpoint cools down, a token that has not yet expired is used instead.
    #[cfg(test)]
    pub(crate) async fn fresh_token(self: &Arc<Self>) -> FlightResult {
        match self.cached(Arc::clone) {
            Ok(cached) => Ok(cached),
            Err((seen, now)) => self.replace(seen, now).await,
        }
    }

    /// `take` of the in-process token when it does not count as expired: the path of nearly
    /// every request, with no lock, no await and no reference count written (the token is
    /// borrowed from the cell). Otherwise what was seen there, and when, for
    /// [`replace`](Self::replace).
    pub(crate) fn cached<T>(
        self: &Arc<Self>,
        take: impl FnOnce(&Arc<CachedToken>) -> T,
    ) -> Result<T, Miss> {
        // A tick behind at most, where a token counts as expired a second early at least.
        let now = UnixNanos::coarse_now();
        match &*self.current.load() {
            Some(token) if token.is_fresh_at(now) => {
                if token.is_due_at(now) {
                    self.refresh_ahead(token, SystemTime::now());
                }
                self.counters.memory_hits.add();
                Ok(take(token))
            }
            seen => Err((seen.clone(), SystemTime::now())),
        }
    }

    /// `token`'s `Authorization` header, from the calling thread's copy of it.
    pub(crate) fn header_of(&self, token: &CachedToken) -> http::HeaderValue {
        self.current.header_of(token)
    }

    /// A token in place of `seen` (none, rejected, or counting as expired): from the storage or
    /// the token endpoint, one fetch at a time.
    pub(crate) async fn replace(
        self: &Arc<Self>,
        seen: Option<Arc<CachedToken>>,
        now: SystemTime,
    ) -> FlightResult {
        let outcome = match self.cool_down.until(now) {
            // A fetch in flight is waiting a short rate limit out: its token is for us too.
            Some(retry_at) => match self.flight.join() {
                Some(flight) => flight.await,
                None => Err(self.rate_limited(retry_at)),
            },
            None => {
                let this = Arc::clone(self);
                self.flight.run(move || this.obtain(Purpose::Replace)).await
            }
        };
        match outcome {
            Ok(fetched) => {
                self.install(&seen, &fetched);
                Ok(fetched)
            }
            Err(error) => {
                // Within its expiry margin, but the server still takes it: better than no token,
                // unless the token endpoint refused this client outright.
                if !refuses_client(&error)
                    && let Some(valid) = seen.filter(|c| c.is_valid_at(SystemTime::now()))
                {
                    if !matches!(error, Error::RateLimited { .. }) {
                        tracing::warn!(
                            key = %self.key,
                            %error,
                            expires_at = %http_date(valid.token.expires_at()),
                            "could not get a new token; using the current one until it expires"
                        );
                    }
                    self.counters.memory_hits.add();
                    return Ok(valid);
                }
                if matches!(error, Error::RateLimited { .. }) {
                    count(&self.counters.rate_limited);
                }
                Err(error)
            }
        }
    }

    /// Starts refreshing `cached` in the background, unless a refresh runs already, a failed
    /// one asked for a pause, or the token endpoint cools down. Never waits.
    fn refresh_ahead(self: &Arc<Self>, cached: &Arc<CachedToken>, now: SystemTime) {
        if self.cool_down.until(now).is_some() || !self.ahead.try_start(now) {
            return;
        }
        // Outside a Tokio runtime (a caller of `token()` on another executor) there is nowhere
        // to run it: the token is then replaced once it counts as expired.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.ahead.cancel();
            return;
        };
        count(&self.counters.refreshes_ahead);
        tracing::debug!(key = %self.key, expires_at = %http_date(cached.token.expires_at()), "the token is in its refresh window; refreshing it in the background");
        let this = Arc::clone(self);
        let seen = Some(Arc::clone(cached));
        runtime.spawn(async move {
            let flight = Arc::clone(&this);
            let outcome = this
                .flight
                .run(move || flight.obtain(Purpose::RefreshAhead))
                .await;
            match outcome {
                Ok(fetched) => {
                    this.install(&seen, &fetched);
                    this.ahead.succeeded();
                }
                Err(error) => {
                    let pause = this.ahead.failed(
                        SystemTime::now(),
                        error.retry_at(),
                        &this.endpoint.retry,
                    );
                    tracing::warn!(
                        key = %this.key,
                        %error,
                        retry_in_ms = pause.as_millis() as u64,
                        "refreshing the token ahead of its expiry failed; the current token is used until it counts as expired"
                    );
                }
            }
        });
    }

    /// Makes `fetched` the in-process copy, unless the copy has changed since it was `seen`: a
    /// token another task has invalidated or replaced meanwhile is not put back over that.
    fn install(&self, seen: &Option<Arc<CachedToken>>, fetched: &Arc<CachedToken>) {
        self.current
            .compare_and_swap(seen, Some(Arc::clone(fetched)));
    }

    /// Makes one storage call, unless the storage is being left alone after a timeout: its
    /// value, or `None` when it was skipped or failed. A timeout opens the breaker, so that
    /// the rest of this fetch, and the fetches after it, do not wait for the storage again.
    async fn with_storage<T>(
        &self,
        operation: StorageOperation,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Option<T> {
        if !self.breaker.allows(SystemTime::now()) {
            return None;
        }
        let outcome = call.await;
        if let Err(error) = &outcome
            && is_timeout(error)
            && self
                .breaker
                .open(&self.storage, &self.key, SystemTime::now())
        {
            tracing::warn!(
                key = %self.key,
                "the token storage did not answer in time; tokens are fetched without it until it answers again"
            );
        }
        self.note(operation, outcome)
    }

    /// Hands a storage call's outcome to the fault log and the counters, and its value back.
    fn note<T>(&self, operation: StorageOperation, outcome: Result<T, StorageError>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.faults.succeeded(&self.key);
                Some(value)
            }
            Err(error) => {
                count(&self.counters.storage_errors);
                self.faults.failed(&self.key, operation, &error);
                None
            }
        }
    }

    fn rate_limited(&self, retry_at: SystemTime) -> Error {
        Error::RateLimited {
            endpoint: self.endpoint.display.to_string(),
            retry_at,
        }
    }
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

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("key", &self.key)
            .field("timing", &self.settings.timing)
            .field("lease_ttl", &self.settings.lease_ttl)
            .field("has_token", &self.current.load().is_some())
            .finish_non_exhaustive()
    }
}
