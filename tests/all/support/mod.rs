//! Shared test helpers: a mock authorization server that hands out numbered tokens, a mock API
//! that accepts a given token, and middleware builders with millisecond backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use httpmock::{HttpMockRequest, HttpMockResponse, Mock, MockServer};
use reqwest_alf::retry_policies::Jitter;
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{
    AccessToken, ClientCredentials, ClientCredentialsBuilder, Lease, StorageError, Token,
    TokenStorage,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

// Keys and checks of signed JWTs, for the `jwt` feature's tests (and a form parser for all).
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub mod assertion;
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub mod dpop;
#[cfg(feature = "redis")]
pub mod failover;
pub mod issuer;
pub mod logs;
#[cfg(feature = "default-tls")]
pub mod mtls;
pub mod raw_server;
#[cfg(feature = "redis")]
pub mod redis_cluster;
#[cfg(feature = "redis")]
pub mod redis_sentinel;
#[cfg(feature = "redis")]
pub mod redis_server;
#[cfg(feature = "default-tls")]
pub mod tls;
#[cfg(feature = "redis")]
pub mod topology;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "s3cr3t-client-secret";
pub const TOKEN_PATH: &str = "/oauth/token";

/// Retries after 1, 2, 4 … ms: tests never wait for seconds.
pub fn fast_retry(max_retries: u32) -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(20))
        .jitter(Jitter::None)
        .build_with_max_retries(max_retries)
}

/// A builder aimed at `auth`'s token endpoint, with fast retries.
/// Waits until `at`: a time that has to pass (a cool-down, an expiry), not an event to wait
/// for.
pub async fn sleep_until(at: SystemTime) {
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(5)).await;
    }
}

pub fn builder(auth: &MockServer) -> ClientCredentialsBuilder {
    ClientCredentials::builder(auth.url(TOKEN_PATH), CLIENT_ID, CLIENT_SECRET)
        .token_retry(fast_retry(3))
}

/// The error a default middleware on `auth` gets when asking for a token.
pub async fn token_error(auth: &MockServer) -> reqwest_alf::Error {
    builder(auth).build().unwrap().token().await.unwrap_err()
}

/// The error a middleware made from `builder` gets from its one attempt (no retries).
pub async fn error_of_one_attempt(builder: ClientCredentialsBuilder) -> reqwest_alf::Error {
    builder
        .token_retry(fast_retry(0))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err()
}

pub fn client(auth: ClientCredentials) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build()
}

/// The status of `GET /fruits` on `api`, sent through `instance` (for the Redis tests).
#[cfg(feature = "redis")]
pub async fn fruits_status(instance: &ClientCredentials, api: &MockServer) -> u16 {
    client(instance.clone())
        .get(api.url("/fruits"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A JSON token response.
pub fn token_json(token: &str, expires_in: Option<u64>) -> String {
    match expires_in {
        Some(seconds) => {
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{seconds}}}"#)
        }
        None => format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#),
    }
}

/// Counts calls across mocks and threads.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// Adds one and returns the new count.
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A token endpoint that answers `token-1`, `token-2`, … with the given `expires_in`, and counts
/// its calls.
pub async fn numbered_tokens<'a>(
    auth: &'a MockServer,
    expires_in: Option<u64>,
) -> (Mock<'a>, Counter) {
    numbered_tokens_after(auth, expires_in, Duration::ZERO).await
}

/// As [`numbered_tokens`], each answered after `delay`, so that many callers are in flight at
/// once. The mock server answers one request at a time meanwhile.
pub async fn numbered_tokens_after(
    auth: &MockServer,
    expires_in: Option<u64>,
    delay: Duration,
) -> (Mock<'_>, Counter) {
    let calls = Counter::default();
    let counter = calls.clone();
    let mock = auth
        .mock_async(move |when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.respond_with(move |_: &HttpMockRequest| {
                let n = counter.bump();
                std::thread::sleep(delay);
                json_response(200, &token_json(&format!("token-{n}"), expires_in))
            });
        })
        .await;
    (mock, calls)
}

pub fn json_response(status: u16, body: &str) -> HttpMockResponse {
    HttpMockResponse::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .build()
}

/// An API endpoint `GET /fruits` that answers 200 to `Authorization: Bearer {token}`.
pub async fn api_accepting<'a>(api: &'a MockServer, token: &str) -> Mock<'a> {
    let bearer = format!("Bearer {token}");
    api.mock_async(move |when, then| {
        when.method("GET")
            .path("/fruits")
            .header("authorization", bearer);
        then.status(200).body("apple,banana");
    })
    .await
}

/// An API endpoint `GET /fruits` that answers 401 to `Authorization: Bearer {token}`.
pub async fn api_rejecting<'a>(api: &'a MockServer, token: &str) -> Mock<'a> {
    let bearer = format!("Bearer {token}");
    api.mock_async(move |when, then| {
        when.method("GET")
            .path("/fruits")
            .header("authorization", bearer);
        then.status(401)
            .header("www-authenticate", r#"Bearer error="invalid_token""#);
    })
    .await
}

/// An API that answers 200 to anything: for counting requests that should never be sent.
pub async fn api_counting_all(api: &MockServer) -> Mock<'_> {
    api.mock_async(|when, then| {
        when.any_request();
        then.status(200);
    })
    .await
}

/// The crate's error inside a middleware error, or a panic saying what came instead.
pub fn alf_error(error: &reqwest_middleware::Error) -> &reqwest_alf::Error {
    reqwest_alf::Error::downcast_ref(error)
        .unwrap_or_else(|| panic!("expected a reqwest_alf::Error, got {error:?}"))
}

/// A gate a mock responder waits at (on the mock server's thread) until the test opens it, so
/// that a token request stays in flight for as long as the test needs.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (open, opened) = &*self.0;
        let mut is_open = open.lock().unwrap();
        while !*is_open {
            is_open = opened.wait(is_open).unwrap();
        }
    }

    pub fn open(&self) {
        let (open, opened) = &*self.0;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
}

/// An API endpoint `GET /fruits` that answers 200 to any bearer token and counts the requests
/// each token got.
pub async fn api_counting_by_token(api: &MockServer) -> TokenUses {
    let uses = TokenUses::default();
    let seen = uses.clone();
    api.mock_async(move |when, then| {
        when.method("GET").path("/fruits");
        then.respond_with(move |request: &HttpMockRequest| {
            let token = bearer_token(request).unwrap_or_default();
            *seen.0.lock().unwrap().entry(token).or_default() += 1;
            HttpMockResponse::builder().status(200).build()
        });
    })
    .await;
    uses
}

/// The bearer token `request` carries, if any.
pub fn bearer_token(request: &HttpMockRequest) -> Option<String> {
    let headers = request.headers();
    let authorization = headers.get("authorization")?.to_str().ok()?;
    Some(authorization.strip_prefix("Bearer ")?.to_owned())
}

/// An API endpoint `GET /fruits` that takes `token-N` only while N is at least `floor`: raising
/// the floor revokes every token numbered below it.
pub async fn api_taking_tokens_from(api: &MockServer, floor: Arc<AtomicUsize>) {
    api.mock_async(move |when, then| {
        when.method("GET").path("/fruits");
        then.respond_with(move |request: &HttpMockRequest| {
            let number = bearer_token(request)
                .and_then(|token| token.strip_prefix("token-")?.parse::<usize>().ok());
            let status = match number {
                Some(n) if n >= floor.load(Ordering::SeqCst) => 200,
                _ => 401,
            };
            HttpMockResponse::builder().status(status).build()
        });
    })
    .await;
}

/// Requests per bearer token, as an API saw them.
#[derive(Clone, Default)]
pub struct TokenUses(Arc<Mutex<HashMap<String, usize>>>);

impl TokenUses {
    pub fn of(&self, token: &str) -> usize {
        self.0.lock().unwrap().get(token).copied().unwrap_or(0)
    }
}

/// A token issued 9 500 s ago that expires in 500 s: fresh (with the default 30 s margin) for
/// far longer than any test takes on a loaded machine, and in its refresh window wherever a
/// middleware's refresh starts in it (7 470 s to 9 345 s).
pub fn token_in_its_refresh_window(value: &str) -> Token {
    let now = SystemTime::now();
    Token::new(
        AccessToken::new(value),
        now - Duration::from_secs(9_500),
        now + Duration::from_secs(500),
    )
}

/// A storage that answers a miss on any key with `seed`, as if another process had stored it
/// there, until a token is stored in its place. Everything else goes to `inner`.
pub struct Seeded<S> {
    pub inner: S,
    pub seed: Token,
}

#[async_trait::async_trait]
impl<S: TokenStorage> TokenStorage for Seeded<S> {
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
        Ok(Some(
            self.inner
                .get(key)
                .await?
                .unwrap_or_else(|| self.seed.clone()),
        ))
    }
    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        self.inner.set(key, token).await
    }
    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.inner.remove(key).await
    }
    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StorageError> {
        self.inner.try_lease(key, holder, ttl).await
    }
    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StorageError> {
        self.inner.release_lease(key, holder).await
    }
    async fn cool_down(&self, key: &str, until: SystemTime) -> Result<(), StorageError> {
        self.inner.cool_down(key, until).await
    }
}

/// Waits, up to 10 s, for `condition` to hold: for something a background task does, which
/// the test cannot await directly.
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
