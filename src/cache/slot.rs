//! [`Slot`]: one grant's token — its key, the current token, one flight, refresh ahead.
//!
//! A slot keeps an in-process copy of its grant's token in front of the client's storage,
//! refreshes it ahead in the background and forgets it after a 401. Everything the slots of
//! one client share (endpoint, storage, cool-down) is its [`TokenClient`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tracing::{Instrument, Span};

use crate::cache::cached_token::CachedToken;
use crate::cache::client::TokenClient;
use crate::cache::cool_down::CoolDown;
use crate::cache::current::Current;
use crate::cache::fault_log::StorageOperation;
use crate::cache::quota::QuotaWatch;
use crate::cache::refresh_ahead::RefreshAhead;
use crate::cache::refusals::RefusalPace;
use crate::cache::single_flight::SingleFlight;
use crate::cache::storage_breaker::is_timeout;
use crate::cache::{FlightResult, Miss, Purpose, refuses_client};
use crate::endpoint::quota::QuotaReport;
use crate::error::{Error, QuotaScope};
use crate::grant::Grant;
use crate::stats::{Counters, Stats, count};
use crate::storage::{StorageError, StorageKey};
use crate::time::{UnixNanos, http_date, unix_seconds};

/// One grant's token and what it takes to keep it: a cheap `Arc` shared by every request for
/// the grant.
pub(crate) struct Slot {
    pub(crate) client: Arc<TokenClient>,
    pub(crate) grant: Grant,
    pub(crate) key: StorageKey,
    /// The grant's form body, made once.
    pub(crate) form: String,
    pub(super) current: Current,
    pub(super) flight: SingleFlight<FlightResult>,
    ahead: RefreshAhead,
    /// While the API refuses even the tokens replays get: the pace of new tokens.
    pub(crate) refusals: RefusalPace,
    pub(crate) counters: Counters,
    /// This grant's own cool-down, besides the client's: its organization's spent quota, or a
    /// cool-down read from the storage under its key.
    pub(super) cool_down: CoolDown,
    /// Its organization's token quota (Auth0), as last reported.
    organization_quota: QuotaWatch,
    /// When a request last asked for this slot through the map of slots (UNIX seconds): what
    /// eviction goes by.
    last_used_s: AtomicU64,
    /// Its metrics' handles, registered on first use.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: std::sync::OnceLock<crate::cache::metrics::SlotMetrics>,
}

impl Slot {
    pub(crate) fn new(client: Arc<TokenClient>, grant: Grant) -> Self {
        Self {
            key: client.key_for(&grant),
            form: grant.form(client.endpoint.grant_type()),
            grant,
            client,
            current: Current::new(),
            flight: SingleFlight::new(),
            ahead: RefreshAhead::default(),
            refusals: RefusalPace::default(),
            counters: Counters::default(),
            cool_down: CoolDown::default(),
            organization_quota: QuotaWatch::default(),
            last_used_s: AtomicU64::new(unix_seconds(SystemTime::now())),
            #[cfg(feature = "metrics")]
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// Notes a use at `now_s` (UNIX seconds). Written only when the second has changed, so
    /// that the requests of one second do not all write one cache line.
    pub(crate) fn touch(&self, now_s: u64) {
        if self.last_used_s.load(Ordering::Relaxed) != now_s {
            self.last_used_s.store(now_s, Ordering::Relaxed);
        }
    }

    /// Whether `header` is the `Authorization` this slot's current token goes out with.
    pub(crate) fn sends(&self, header: &http::HeaderValue) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|cached| cached.header == *header)
    }

    /// How long until the current token expires at `now`; zero without one, or for one the
    /// API refused.
    #[cfg(feature = "metrics")]
    pub(crate) fn expires_in(&self, now: SystemTime) -> std::time::Duration {
        match &*self.current.load() {
            Some(token) if !token.is_rejected() => token
                .token
                .expires_at()
                .duration_since(now)
                .unwrap_or_default(),
            _ => std::time::Duration::ZERO,
        }
    }

    /// When a request last asked for this slot (UNIX seconds).
    pub(crate) fn last_used_s(&self) -> u64 {
        self.last_used_s.load(Ordering::Relaxed)
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
        let outcome = match self.cooling_down_until(now) {
            // A fetch in flight is waiting a short rate limit out: its token is for us too.
            Some(retry_at) => match self.flight.join() {
                Some(flight) => flight.await,
                None => Err(self.rate_limited(retry_at)),
            },
            None => {
                let this = Arc::clone(self);
                // The flight runs in a task of its own: its spans are the caller's children.
                self.flight
                    .run(move || this.obtain(Purpose::Replace).instrument(Span::current()))
                    .await
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
        if self.cooling_down_until(now).is_some() || !self.ahead.try_start(now) {
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
                        &this.client.endpoint.retry,
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
    pub(super) fn install(&self, seen: &Option<Arc<CachedToken>>, fetched: &Arc<CachedToken>) {
        self.current
            .compare_and_swap(seen, Some(Arc::clone(fetched)));
    }

    /// Makes one storage call, unless the storage is being left alone after a timeout: its
    /// value, or `None` when it was skipped or failed. A timeout opens the breaker, so that
    /// the rest of this fetch, and the fetches after it, do not wait for the storage again.
    pub(super) async fn with_storage<T>(
        &self,
        operation: StorageOperation,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Option<T> {
        if !self.client.breaker.allows(SystemTime::now()) {
            return None;
        }
        let outcome = call.await;
        if let Err(error) = &outcome
            && is_timeout(error)
            && self
                .client
                .breaker
                .open(&self.client.storage, &self.key, SystemTime::now())
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
                self.client.faults.succeeded(&self.key);
                Some(value)
            }
            Err(error) => {
                count(&self.counters.storage_errors);
                self.client.faults.failed(&self.key, operation, &error);
                None
            }
        }
    }

    /// The end of the cool-down in force at `now` for this grant: the client's or its own.
    pub(super) fn cooling_down_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.client
            .cool_down
            .until(now)
            .max(self.cool_down.until(now))
    }

    pub(super) fn rate_limited(&self, retry_at: SystemTime) -> Error {
        let now = SystemTime::now();
        let spent_quota = if self.client.quota.is_spent_at(now) {
            Some(QuotaScope::Client)
        } else if self.organization_quota.is_spent_at(now) {
            Some(QuotaScope::Organization)
        } else {
            None
        };
        Error::RateLimited {
            endpoint: self.client.endpoint.display.to_string(),
            retry_at,
            spent_quota,
        }
    }

    /// Keeps the token quotas a fetch's last answer reported: the client's, and this grant's
    /// organization's.
    pub(super) fn note_quota(&self, report: &QuotaReport) {
        let now = SystemTime::now();
        let share = self.client.settings.quota_warning;
        if let Some(quota) = report.client {
            self.client
                .quota
                .record(quota, now, share, "client", &self.grant);
        }
        if let Some(quota) = report.organization {
            self.organization_quota
                .record(quota, now, share, "organization", &self.grant);
        }
    }

    /// Its counts, with the quotas last reported: the client's, and its organization's.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            client_quota: self.client.quota.last().map(|(quota, _)| quota),
            organization_quota: self.organization_quota().map(|(quota, _)| quota),
            ..self.counters.snapshot()
        }
    }

    /// Its organization's quota as last reported, and when.
    pub(crate) fn organization_quota(&self) -> Option<(crate::stats::Quota, SystemTime)> {
        self.organization_quota.last()
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("grant", &self.grant)
            .field("key", &self.key)
            .field("timing", &self.client.settings.timing)
            .field("lease_ttl", &self.client.settings.lease_ttl)
            .field("has_token", &self.current.load().is_some())
            .finish_non_exhaustive()
    }
}
