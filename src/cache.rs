//! The token cache: an in-process copy of the current token in front of the [`TokenStorage`],
//! one fetch at a time per key, and invalidation after a 401. The only code that talks to the
//! storage.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::endpoint::TokenEndpoint;
use crate::error::{Error, TokenResponseError};
use crate::fault_log::{FaultLog, StorageOperation};
use crate::secret::Secret;
use crate::single_flight::SingleFlight;
use crate::storage::{StorageKey, TokenStorage};
use crate::token::Token;

/// A token ready for use: the header is built once, and freshness is one comparison.
pub(crate) struct CachedToken {
    pub(crate) token: Token,
    pub(crate) header: HeaderValue,
    refresh_at: SystemTime,
}

impl CachedToken {
    fn new(token: Token, margin: Duration) -> Result<Self, TokenResponseError> {
        Ok(Self {
            header: token.access_token().bearer_header()?,
            refresh_at: token.refresh_at(margin),
            token,
        })
    }

    fn is_fresh_at(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }

    /// The same token, marked as no longer usable.
    fn rejected(&self) -> Self {
        Self {
            token: self.token.clone(),
            header: self.header.clone(),
            refresh_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn is_rejected(&self) -> bool {
        self.refresh_at == SystemTime::UNIX_EPOCH
    }
}

/// Identifies the fetches that would get the same token: same storage key, same credentials,
/// same expiry settings. A hash, so no secret is kept in the process-wide map.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlightKey([u8; 32]);

impl FlightKey {
    pub(crate) fn new(
        key: &StorageKey,
        client_secret: &Secret,
        auth_method: &str,
        default_expires_in: Duration,
        margin: Duration,
    ) -> Self {
        let mut hash = Sha256::new();
        for field in [key.as_str(), client_secret.expose(), auth_method] {
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field.as_bytes());
        }
        hash.update(default_expires_in.as_nanos().to_be_bytes());
        hash.update(margin.as_nanos().to_be_bytes());
        Self(hash.finalize().into())
    }
}

type FlightResult = Result<Arc<CachedToken>, Error>;

/// Fetches in flight in this process. Every [`TokenCache`] with the same [`FlightKey`] joins
/// the same one, so N tasks over M middlewares with the same settings make one token call.
static FLIGHTS: LazyLock<SingleFlight<FlightKey, FlightResult>> = LazyLock::new(SingleFlight::new);

pub(crate) struct TokenCache {
    pub(crate) key: StorageKey,
    pub(crate) flight_key: FlightKey,
    pub(crate) storage: Arc<dyn TokenStorage>,
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) margin: Duration,
    pub(crate) current: ArcSwapOption<CachedToken>,
    pub(crate) faults: FaultLog,
}

impl TokenCache {
    /// A token that is not within the expiry margin: the in-process copy when it is fresh (no
    /// lock, no await), otherwise from the storage or the token endpoint, one fetch per key.
    ///
    /// # Errors
    /// When no token can be had; every caller waiting on the same fetch gets the same error.
    pub(crate) async fn fresh_token(self: &Arc<Self>) -> FlightResult {
        let seen = self.current.load_full();
        if let Some(cached) = &seen
            && cached.is_fresh_at(SystemTime::now())
        {
            return Ok(Arc::clone(cached));
        }
        let this = Arc::clone(self);
        let fetched = FLIGHTS
            .run(self.flight_key, move || this.load_or_fetch())
            .await?;
        self.install(&seen, &fetched);
        Ok(fetched)
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

    /// Hands a storage call's outcome to the fault log, and its value back.
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
                self.faults.failed(&self.key, operation, &error);
                None
            }
        }
    }

    /// The flight itself: the storage first, then the token endpoint.
    async fn load_or_fetch(self: Arc<Self>) -> FlightResult {
        if let Some(stored) = self.load().await {
            return Ok(stored);
        }
        let token = self.endpoint.fetch().await?;
        tracing::debug!(key = %self.key, expires_at = ?token.expires_at(), "fetched a new access token");
        let cached =
            CachedToken::new(token, self.margin).map_err(|reason| Error::InvalidTokenResponse {
                endpoint: self.endpoint.display.to_string(),
                reason,
            })?;
        let kept = self.storage.set(self.key.as_str(), &cached.token).await;
        self.note(StorageOperation::Write, kept);
        Ok(Arc::new(cached))
    }

    /// Whether `token` is the one this cache last saw rejected by the API.
    fn was_rejected(&self, token: &Token) -> bool {
        self.current.load().as_ref().is_some_and(|cached| {
            cached.is_rejected() && cached.token.access_token() == token.access_token()
        })
    }

    /// A fresh, usable token from the storage. Anything else is a miss: storage errors and
    /// unusable values are logged, never passed on.
    async fn load(&self) -> Option<Arc<CachedToken>> {
        let read = self.storage.get(self.key.as_str()).await;
        let stored = self.note(StorageOperation::Read, read)??;
        if self.was_rejected(&stored) {
            // The storage could not remove it after the 401 (it was down, say): still no good.
            tracing::debug!(key = %self.key, "the storage still holds the rejected token; fetching a new one");
            return None;
        }
        match CachedToken::new(stored, self.margin) {
            Ok(cached) if cached.is_fresh_at(SystemTime::now()) => {
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

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("key", &self.key)
            .field("margin", &self.margin)
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
