//! Forgetting a token the API refused: in the process and in the storage, and only that token.

use std::sync::Arc;

use crate::cache::cached_token::TokenId;
use crate::cache::fault_log::StorageOperation;
use crate::cache::slot::Slot;
use crate::token::Token;

impl Slot {
    /// Forgets the token `used` names (the API answered 401 to it), here and in the storage,
    /// if it is still the in-process token. One that is no longer there was rejected already, or
    /// replaced by a token written to the storage over it: a token another task has just
    /// fetched stays.
    pub(crate) async fn invalidate_used(&self, used: TokenId) {
        let rejected = match self.current.load().as_ref() {
            Some(cached) if cached.id == used && !cached.is_rejected() => cached.token.clone(),
            _ => return,
        };
        self.invalidate(&rejected).await;
    }

    /// Forgets `rejected` (the API answered 401 to it), here and in the storage, unless it has
    /// already been replaced: a token another task has just fetched stays.
    /// Whether `token` is this slot's current token, rejected or not.
    pub(crate) fn holds(&self, token: &Token) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|cached| cached.token.access_token() == token.access_token())
    }

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
        let remove = self
            .client
            .storage
            .remove_if_same(self.key.as_str(), rejected);
        self.with_storage(StorageOperation::Remove, remove).await;
    }
}

#[cfg(test)]
mod tests {
    use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cache::cached_token::CachedToken;
    use crate::{ClientCredentials, TokenStorage};

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

    /// The token the cache's storage holds, if any.
    async fn stored(cache: &Slot) -> Option<String> {
        let stored = cache.client.storage.get(cache.key.as_str()).await.unwrap();
        stored.map(|token| token.access_token().secret().to_owned())
    }

    #[tokio::test]
    async fn a_401_to_the_token_in_use_forgets_it_here_and_in_the_storage() {
        let server = MockServer::start_async().await;
        let (credentials, calls) = numbered(&server).await;
        let cache = credentials.default_slot();
        let first = cache.fresh_token().await.unwrap();
        assert_eq!(stored(cache).await.as_deref(), Some("token-1"));

        cache.invalidate_used(first.id).await;

        assert!(cache.current.load().as_ref().unwrap().is_rejected());
        assert_eq!(stored(cache).await, None);
        assert_eq!(secret_of(&cache.fresh_token().await.unwrap()), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_late_401_to_an_old_token_keeps_the_new_one_here_and_in_the_storage() {
        let server = MockServer::start_async().await;
        let (credentials, calls) = numbered(&server).await;
        let cache = credentials.default_slot();
        let first = cache.fresh_token().await.unwrap();
        cache.invalidate_used(first.id).await;
        let second = cache.fresh_token().await.unwrap();
        assert_ne!(first.id, second.id);

        // Another request that went out with token-1 meets its 401 only now.
        cache.invalidate_used(first.id).await;

        let still = cache.fresh_token().await.unwrap();
        assert_eq!(secret_of(&still), "token-2");
        assert_eq!(stored(cache).await.as_deref(), Some("token-2"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_late_invalidation_of_an_old_token_keeps_the_new_one() {
        let server = MockServer::start_async().await;
        let (credentials, calls) = numbered(&server).await;
        let cache = credentials.default_slot();

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
        let cache = credentials.default_slot();

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
        let cache = credentials.default_slot();
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
        let cache = credentials.default_slot();
        let first = cache.fresh_token().await.unwrap();

        cache.invalidate(&first.token).await;
        let next = cache.fresh_token().await.unwrap();

        assert_eq!(secret_of(&next), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
