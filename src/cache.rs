//! The token cache: an in-process copy of the current token in front of the [`TokenStorage`],
//! one fetch at a time, refreshing ahead in the background, the storage's refresh lease and
//! rate-limit cool-down, and invalidation after a 401. The only code that talks to the storage.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use retry_policies::policies::{ExponentialBackoff, ExponentialBackoffTimed};
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

use crate::cached_token::{CachedToken, Timing};
use crate::cool_down::CoolDown;
use crate::endpoint::TokenEndpoint;
use crate::error::{Error, http_date};
use crate::fault_log::{FaultLog, StorageOperation};
use crate::refresh_ahead::RefreshAhead;
use crate::single_flight::SingleFlight;
use crate::stats::{Counters, count};
use crate::storage::{Lease, StorageKey, TokenStorage};
use crate::token::Token;

type FlightResult = Result<Arc<CachedToken>, Error>;

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
}

pub(crate) struct TokenCache {
    pub(crate) key: StorageKey,
    pub(crate) storage: Arc<dyn TokenStorage>,
    pub(crate) endpoint: TokenEndpoint,
    settings: CacheSettings,
    current: ArcSwapOption<CachedToken>,
    flight: SingleFlight<FlightResult>,
    ahead: RefreshAhead,
    cool_down: CoolDown,
    pub(crate) counters: Counters,
    faults: FaultLog,
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
            current: ArcSwapOption::empty(),
            flight: SingleFlight::new(),
            ahead: RefreshAhead::default(),
            cool_down: CoolDown::default(),
            counters: Counters::default(),
            faults,
        }
    }

    /// A token that does not count as expired: the in-process copy when it is fresh (no lock,
    /// no await; in its refresh window it also starts a background refresh), otherwise from
    /// the storage or the token endpoint, one fetch at a time.
    ///
    /// # Errors
    /// When no token can be had; every caller waiting on the same fetch gets the same error.
    /// While the token endpoint cools down, a token that has not yet expired is used instead.
    pub(crate) async fn fresh_token(self: &Arc<Self>) -> FlightResult {
        let now = SystemTime::now();
        match self.current.load_full() {
            Some(cached) if cached.is_fresh_at(now) => {
                if cached.is_due_at(now) {
                    self.refresh_ahead(&cached, now);
                }
                count(&self.counters.memory_hits);
                Ok(cached)
            }
            seen => self.replace(seen, now).await,
        }
    }

    /// A token in place of `seen` (none, rejected, or counting as expired): from the storage or
    /// the token endpoint, one fetch at a time.
    async fn replace(
        self: &Arc<Self>,
        seen: Option<Arc<CachedToken>>,
        now: SystemTime,
    ) -> FlightResult {
        let outcome = match self.cool_down.until(now) {
            Some(retry_at) => Err(self.rate_limited(retry_at)),
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
                if matches!(error, Error::RateLimited { .. }) {
                    if let Some(valid) = seen.filter(|c| c.is_valid_at(SystemTime::now())) {
                        // Within its expiry margin, but the server still takes it, and it will
                        // not give us another yet.
                        count(&self.counters.memory_hits);
                        return Ok(valid);
                    }
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

    /// Forgets `rejected` (the API answered 401 to it), here and in the storage, unless it has
    /// already been replaced: a token another task has just fetched stays.
    pub(crate) async fn invalidate(&self, rejected: &Token) {
        let current = self.current.load();
        if let Some(cached) = current.as_ref()
            && !cached.is_rejected()
            && cached.token.access_token() == rejected.access_token()
        {
            // A marked copy rather than `None`: a task still holding the `None` it saw before
            // the first fetch must not be able to put the rejected token back.
            let marked = Arc::new(cached.rejected());
            self.current.compare_and_swap(&current, Some(marked));
        }
        let removed = self
            .storage
            .remove_if_same(self.key.as_str(), rejected)
            .await;
        self.note(StorageOperation::Remove, removed);
    }

    /// Hands a storage call's outcome to the fault log and the counters, and its value back.
    fn note<T>(
        &self,
        operation: StorageOperation,
        outcome: Result<T, crate::StorageError>,
    ) -> Option<T> {
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

    /// The flight: a token from the storage if it holds one good enough, else from the token
    /// endpoint, under the storage's refresh lease when it has one, so that of all the
    /// middlewares sharing the storage one makes the call and the others wait for its token.
    /// Without a lease (the storage has none, is down, or the lease is off) this middleware
    /// fetches for itself.
    async fn obtain(self: Arc<Self>, purpose: Purpose) -> FlightResult {
        let Some(lease_ttl) = self.settings.lease_ttl else {
            return self.load_or_fetch(purpose).await;
        };
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let mut wait: Option<LeaseWait> = None;
        loop {
            if let Some(stored) = self.load(purpose).await {
                return Ok(stored);
            }
            if let Some(retry_at) = self.cool_down.until(SystemTime::now()) {
                return Err(self.rate_limited(retry_at));
            }
            let lease = self
                .storage
                .try_lease(self.key.as_str(), &holder, lease_ttl)
                .await;
            match self.note(StorageOperation::TakeLease, lease) {
                Some(Lease::Acquired) => return self.fetch_under_lease(&holder, purpose).await,
                Some(Lease::HeldElsewhere) => {
                    let wait = wait.get_or_insert_with(|| {
                        count(&self.counters.lease_waits);
                        tracing::debug!(key = %self.key, "another instance is fetching a token; waiting for it");
                        LeaseWait::new(lease_ttl, purpose)
                    });
                    match wait.next_pause() {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => {
                            tracing::warn!(key = %self.key, "the refresh lease stayed taken for twice its time to live; fetching without it");
                            return self.fetch_and_store().await;
                        }
                    }
                }
                Some(Lease::CoolingDown(until)) => {
                    // Capped like a cool-down of our own: a damaged or hostile value in a
                    // shared storage cannot stop token requests for longer.
                    let cap = SystemTime::now() + self.endpoint.retry.max_retry_interval;
                    let retry_at = self.cool_down.extend(until.min(cap));
                    return Err(self.rate_limited(retry_at));
                }
                Some(Lease::Unsupported) | None => return self.fetch_and_store().await,
            }
        }
    }

    /// Fetches while holding the refresh lease, then gives it up.
    async fn fetch_under_lease(&self, holder: &str, purpose: Purpose) -> FlightResult {
        // The previous holder may have stored its token between our read and our lease.
        let outcome = self.load_or_fetch(purpose).await;
        let released = self.storage.release_lease(self.key.as_str(), holder).await;
        self.note(StorageOperation::ReleaseLease, released);
        outcome
    }

    /// A token from the storage if it holds one good enough for `purpose`, else a new one.
    async fn load_or_fetch(&self, purpose: Purpose) -> FlightResult {
        match self.load(purpose).await {
            Some(stored) => Ok(stored),
            None => self.fetch_and_store().await,
        }
    }

    /// A new token from the token endpoint, kept in the storage. A rate limit is kept there
    /// too, so that no one sharing the storage asks again before it ends.
    async fn fetch_and_store(&self) -> FlightResult {
        let token = match self.endpoint.fetch(&self.counters).await {
            Ok(token) => token,
            Err(error) => {
                count(&self.counters.failed_fetches);
                let Error::RateLimited { retry_at, .. } = error else {
                    return Err(error);
                };
                let retry_at = self.cool_down.extend(retry_at);
                let shared = self.storage.cool_down(self.key.as_str(), retry_at).await;
                self.note(StorageOperation::CoolDown, shared);
                return Err(self.rate_limited(retry_at));
            }
        };
        count(&self.counters.tokens_fetched);
        tracing::debug!(key = %self.key, expires_at = %http_date(token.expires_at()), "fetched a new access token");
        let cached = CachedToken::new(token, &self.settings.timing).map_err(|reason| {
            Error::InvalidTokenResponse {
                endpoint: self.endpoint.display.to_string(),
                reason,
            }
        })?;
        let kept = self.storage.set(self.key.as_str(), &cached.token).await;
        self.note(StorageOperation::Write, kept);
        Ok(Arc::new(cached))
    }

    fn rate_limited(&self, retry_at: SystemTime) -> Error {
        Error::RateLimited {
            endpoint: self.endpoint.display.to_string(),
            retry_at,
        }
    }

    /// Whether `token` is the one this cache last saw rejected by the API.
    fn was_rejected(&self, token: &Token) -> bool {
        self.current.load().as_ref().is_some_and(|cached| {
            cached.is_rejected() && cached.token.access_token() == token.access_token()
        })
    }

    /// A token from the storage good enough for `purpose`: fresh, and for a refresh ahead not
    /// itself in its refresh window. Anything else is a miss: storage errors and unusable
    /// values are logged, never passed on.
    async fn load(&self, purpose: Purpose) -> Option<Arc<CachedToken>> {
        let read = self.storage.get(self.key.as_str()).await;
        let stored = self.note(StorageOperation::Read, read)??;
        if self.was_rejected(&stored) {
            // The storage could not remove it after the 401 (it was down, say): still no good.
            tracing::debug!(key = %self.key, "the storage still holds the rejected token; fetching a new one");
            return None;
        }
        let now = SystemTime::now();
        match CachedToken::new(stored, &self.settings.timing) {
            Ok(cached)
                if cached.is_fresh_at(now)
                    && (purpose == Purpose::Replace || !cached.is_due_at(now)) =>
            {
                count(&self.counters.shared_hits);
                tracing::debug!(key = %self.key, "using the token from storage");
                Some(Arc::new(cached))
            }
            Ok(_) => None,
            Err(reason) => {
                tracing::warn!(key = %self.key, %reason, "token storage holds an unusable token; fetching a new one");
                None
            }
        }
    }
}

/// The pauses of a middleware waiting for another's token: short at first (a token call takes
/// tens of milliseconds), growing to 25 ms, with jitter so that waiters do not poll the
/// storage in step; over after twice the lease's time to live. A request that waits starts at
/// 2 ms; a refresh ahead, which holds up no request, starts at 10 ms and looks less often.
struct LeaseWait {
    started_at: SystemTime,
    pauses: ExponentialBackoffTimed,
    past: u32,
}

impl LeaseWait {
    const LONGEST_PAUSE: Duration = Duration::from_millis(25);

    fn new(lease_ttl: Duration, purpose: Purpose) -> Self {
        let first_pause = match purpose {
            Purpose::Replace => Duration::from_millis(2),
            Purpose::RefreshAhead => Duration::from_millis(10),
        };
        Self {
            started_at: SystemTime::now(),
            pauses: ExponentialBackoff::builder()
                .retry_bounds(first_pause, Self::LONGEST_PAUSE)
                .jitter(Jitter::Bounded)
                .build_with_total_retry_duration(lease_ttl.saturating_mul(2)),
            past: 0,
        }
    }

    /// How long to wait before looking again, or `None` when the wait is over.
    fn next_pause(&mut self) -> Option<Duration> {
        let decision = self.pauses.should_retry(self.started_at, self.past);
        self.past = self.past.saturating_add(1);
        match decision {
            RetryDecision::Retry { execute_after } => Some(
                execute_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
            ),
            RetryDecision::DoNotRetry => None,
        }
    }
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

#[cfg(test)]
mod tests {
    use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ClientCredentials;

    /// A middleware whose token endpoint hands out `token-1`, `token-2`, …, and its call count.
    async fn numbered(server: &MockServer) -> (ClientCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        server
            .mock_async(move |when, then| {
                when.method("POST").path("/token");
                then.respond_with(move |_: &HttpMockRequest| {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    HttpMockResponse::builder()
                        .status(200)
                        .body(format!(
                            r#"{{"access_token":"token-{n}","expires_in":3600}}"#
                        ))
                        .build()
                });
            })
            .await;
        let credentials = ClientCredentials::builder(server.url("/token"), "id", "secret")
            .build()
            .unwrap();
        (credentials, calls)
    }

    fn secret_of(cached: &CachedToken) -> &str {
        cached.token.access_token().secret()
    }

    #[test]
    fn lease_waits_poll_often_and_end_after_twice_the_ttl() {
        let mut wait = LeaseWait::new(Duration::from_secs(60), Purpose::Replace);
        for _ in 0..50 {
            let pause = wait.next_pause().expect("still waiting");
            assert!(pause <= LeaseWait::LONGEST_PAUSE, "{pause:?}");
        }
        let mut over = LeaseWait::new(Duration::ZERO, Purpose::RefreshAhead);
        assert_eq!(over.next_pause(), None);
    }

    #[tokio::test]
    async fn a_late_invalidation_of_an_old_token_keeps_the_new_one() {
        let server = MockServer::start_async().await;
        let (credentials, calls) = numbered(&server).await;
        let cache = credentials.cache();

        let first = cache.fresh_token().await.unwrap();
        cache.invalidate(&first.token).await;
        let second = cache.fresh_token().await.unwrap();
        assert_eq!(secret_of(&second), "token-2");

        // Another request that used token-1 meets its 401 only now.
        cache.invalidate(&first.token).await;
        let still = cache.fresh_token().await.unwrap();

        assert_eq!(secret_of(&still), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_waiter_that_saw_an_empty_cache_cannot_restore_a_rejected_token() {
        let server = MockServer::start_async().await;
        let (credentials, calls) = numbered(&server).await;
        let cache = credentials.cache();

        // Two waiters of the first fetch both saw an empty cache; the first installs token-1.
        let first = cache.fresh_token().await.unwrap();
        // token-1 is rejected before the second waiter gets round to installing it.
        cache.invalidate(&first.token).await;
        cache.install(&None, &first);

        let next = cache.fresh_token().await.unwrap();
        assert_eq!(secret_of(&next), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rejected_token_is_invalidated_once() {
        let server = MockServer::start_async().await;
        let (credentials, _) = numbered(&server).await;
        let cache = credentials.cache();
        let first = cache.fresh_token().await.unwrap();

        cache.invalidate(&first.token).await;
        let marked = cache.current.load_full().unwrap();
        cache.invalidate(&first.token).await;

        assert!(marked.is_rejected());
        assert!(
            Arc::ptr_eq(&marked, &cache.current.load_full().unwrap()),
            "left as it was"
        );
    }

    /// A storage that keeps what it is given but cannot remove anything, like a shared store
    /// that went away between the write and the 401.
    #[derive(Default)]
    struct CannotRemove(crate::MemoryStorage);

    #[async_trait::async_trait]
    impl TokenStorage for CannotRemove {
        async fn get(&self, key: &str) -> Result<Option<Token>, crate::StorageError> {
            self.0.get(key).await
        }
        async fn set(&self, key: &str, token: &Token) -> Result<(), crate::StorageError> {
            self.0.set(key, token).await
        }
        async fn remove(&self, _: &str) -> Result<(), crate::StorageError> {
            Err("unreachable".into())
        }
        async fn remove_if_same(&self, _: &str, _: &Token) -> Result<bool, crate::StorageError> {
            Err("unreachable".into())
        }
    }

    #[tokio::test]
    async fn a_rejected_token_the_storage_could_not_remove_is_not_used_again() {
        let server = MockServer::start_async().await;
        let (_, calls) = numbered(&server).await;
        let credentials = ClientCredentials::builder(server.url("/token"), "id", "secret")
            .storage(CannotRemove::default())
            .build()
            .unwrap();
        let cache = credentials.cache();
        let first = cache.fresh_token().await.unwrap();

        cache.invalidate(&first.token).await;
        let next = cache.fresh_token().await.unwrap();

        assert_eq!(secret_of(&next), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
