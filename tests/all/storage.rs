//! The token storage: read before fetching, written after, and never a reason for a request to
//! fail.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use httpmock::MockServer;
use reqwest_alf::{AccessToken, MemoryStorage, StorageError, Token, TokenStorage};

use crate::support::{self, CLIENT_SECRET, Counter};

/// A storage that records every key it is given, and can be told to fail or to hold garbage.
#[derive(Clone, Default)]
struct Recording {
    inner: MemoryStorage,
    keys: Arc<Mutex<Vec<String>>>,
    failing: Arc<Mutex<bool>>,
    errors: Counter,
}

impl Recording {
    fn fail(&self, fail: bool) {
        *self.failing.lock().unwrap() = fail;
    }

    fn check(&self, key: &str) -> Result<(), StorageError> {
        self.keys.lock().unwrap().push(key.to_owned());
        if *self.failing.lock().unwrap() {
            self.errors.bump();
            return Err("storage is down".into());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TokenStorage for Recording {
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
        self.check(key)?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        self.check(key)?;
        self.inner.set(key, token).await
    }
    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.check(key)?;
        self.inner.remove(key).await
    }
}

impl Recording {
    /// A middleware on `auth` that keeps its tokens here.
    fn middleware(&self, auth: &MockServer) -> reqwest_alf::ClientCredentials {
        support::builder(auth)
            .storage(self.clone())
            .build()
            .unwrap()
    }

    /// The key the middlewares on `auth` use, learnt from a first middleware's token call.
    async fn key_for(&self, auth: &MockServer) -> String {
        self.middleware(auth).token().await.unwrap();
        self.keys.lock().unwrap()[0].clone()
    }
}

fn token(value: &str, lifetime: Duration) -> Token {
    let now = SystemTime::now();
    Token::new(AccessToken::new(value), now, now + lifetime)
}

#[tokio::test]
async fn a_fresh_token_in_storage_is_used_without_a_token_call() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "from-storage").await;
    let recording = Recording::default();
    let key = recording.key_for(&auth).await;
    recording
        .inner
        .set(&key, &token("from-storage", Duration::from_secs(600)))
        .await
        .unwrap();

    let response = support::client(recording.middleware(&auth))
        .get(api.url("/fruits"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 1, "only the first middleware's call");
    fruits.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_token_within_the_margin_in_storage_is_replaced() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let recording = Recording::default();
    let key = recording.key_for(&auth).await;
    // Ten seconds left of an hour: within the 30 s margin.
    let now = SystemTime::now();
    let nearly_expired = Token::new(
        AccessToken::new("old"),
        now - Duration::from_secs(3590),
        now + Duration::from_secs(10),
    );
    recording.inner.set(&key, &nearly_expired).await.unwrap();

    let got = recording.middleware(&auth).token().await.unwrap();

    assert_eq!(got.access_token().secret(), "token-2");
    assert_eq!(token_calls.get(), 2);
    let kept = recording.inner.get(&key).await.unwrap().unwrap();
    assert_eq!(
        kept.access_token().secret(),
        "token-2",
        "the new token is stored"
    );
}

#[tokio::test]
async fn a_failing_storage_never_fails_a_request() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let recording = Recording::default();
    recording.fail(true);
    let client = support::client(
        support::builder(&auth)
            .storage(recording.clone())
            .build()
            .unwrap(),
    );

    for _ in 0..3 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    assert_eq!(
        recording.errors.get(),
        2,
        "one failed read, one failed write"
    );
    assert_eq!(
        token_calls.get(),
        1,
        "the in-process copy serves while storage is down"
    );
    fruits.assert_calls_async(3).await;
}

#[tokio::test]
async fn an_unusable_token_in_storage_is_a_miss_and_is_overwritten() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let recording = Recording::default();
    let key = recording.key_for(&auth).await;
    recording
        .inner
        .set(&key, &token("bad\ntoken", Duration::from_secs(600)))
        .await
        .unwrap();

    let got = recording.middleware(&auth).token().await.unwrap();

    assert_eq!(got.access_token().secret(), "token-2");
    assert_eq!(token_calls.get(), 2);
    let kept = recording.inner.get(&key).await.unwrap().unwrap();
    assert_eq!(kept.access_token().secret(), "token-2");
}

#[tokio::test]
async fn keys_hold_no_secret_and_depend_on_the_settings() {
    let auth = MockServer::start_async().await;
    support::numbered_tokens(&auth, Some(3600)).await;
    let recording = Recording::default();
    for audience in [
        "https://a.example",
        "https://b.example",
        "https://a.example",
    ] {
        support::builder(&auth)
            .audience(audience)
            .storage(recording.clone())
            .build()
            .unwrap()
            .token()
            .await
            .unwrap();
    }
    let keys = recording.keys.lock().unwrap().clone();
    assert!(keys.iter().all(|k| !k.contains(CLIENT_SECRET)), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("127.0.0.1:")), "{keys:?}");
    // get + set per middleware; the third reuses the first's token.
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(keys[0], keys[4]);
    assert_ne!(keys[0], keys[2]);
}

#[tokio::test]
async fn a_shared_storage_serves_a_middleware_built_later() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let storage = MemoryStorage::new();

    let first = support::builder(&auth)
        .storage(storage.clone())
        .build()
        .unwrap();
    let token = first.token().await.unwrap();
    drop(first);
    let second = support::builder(&auth)
        .storage(storage.clone())
        .build()
        .unwrap();

    assert_eq!(second.token().await.unwrap(), token);
    assert_eq!(token_calls.get(), 1);
    assert_eq!(storage.len(), 1);
}

#[tokio::test]
async fn an_arc_of_a_storage_is_a_storage() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let shared: Arc<dyn TokenStorage> = Arc::new(MemoryStorage::new());

    support::builder(&auth)
        .storage(shared.clone())
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    support::builder(&auth)
        .storage(shared)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();

    assert_eq!(token_calls.get(), 1);
}
