//! The JWT bearer grant (RFC 7523 §2.1): tokens for the subject of an assertion from a file, the
//! application's source or the crate's own key, against a token endpoint that verifies the
//! assertion's signature; subjects never share a token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpmock::{HttpMockRequest, Mock, MockServer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest_alf::{
    AssertionError, AssertionRequest, AssertionSource, AuthMethod, ClientAssertionSource,
    ClientCredentials, ClientCredentialsBuilder, ConfigError, Error, JwtBearer,
};

use crate::support::assertion::{
    EC_PRIVATE, Kms, RSA_PRIVATE, RSA_PUBLIC, assertion_refusal, field, fields,
};
use crate::support::{self, alf_error, json_response, token_json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token endpoint that takes the JWT bearer grant alone, verifies the assertion's signature
/// (RS256, `RSA_PUBLIC`) and audience, and issues `{subject}-token-N`; every assertion it is
/// sent, and the bodies, are kept.
struct VerifyingEndpoint {
    bodies: Arc<Mutex<Vec<String>>>,
    issued: Arc<AtomicUsize>,
}

impl VerifyingEndpoint {
    async fn on(auth: &MockServer) -> (Self, Mock<'_>) {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(AtomicUsize::new(0));
        let (kept, count) = (bodies.clone(), issued.clone());
        let audience = auth.url(support::TOKEN_PATH);
        let mock = auth
            .mock_async(move |when, then| {
                when.method("POST").path(support::TOKEN_PATH);
                then.respond_with(move |request: &HttpMockRequest| {
                    let body = String::from_utf8(request.body().to_vec()).unwrap();
                    kept.lock().unwrap().push(body.clone());
                    let form = fields(&body);
                    let value = |name: &str| {
                        form.iter()
                            .find(|(key, _)| key == name)
                            .map(|(_, value)| value.clone())
                    };
                    let subject = (value("grant_type").as_deref() == Some(JWT_BEARER))
                        .then(|| value("assertion"))
                        .flatten()
                        .and_then(|assertion| verified_subject(&assertion, &audience));
                    match subject {
                        Some(subject) => {
                            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                            json_response(
                                200,
                                &token_json(&format!("{subject}-token-{n}"), Some(3600)),
                            )
                        }
                        None => json_response(400, r#"{"error":"invalid_grant"}"#),
                    }
                });
            })
            .await;
        (Self { bodies, issued }, mock)
    }

    fn assertions(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|body| field(body, "assertion"))
            .collect()
    }
}

/// The `sub` of `assertion` if its signature, algorithm, audience and lifetime hold.
fn verified_subject(assertion: &str, audience: &str) -> Option<String> {
    let key = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).ok()?;
    data.claims["sub"].as_str().map(str::to_owned)
}

/// An assertion about `subject` for `audience`, signed with `pem` (RS256, or ES256 for the EC
/// key), as a platform issues one; `jti` tells two apart.
fn assertion(subject: &str, audience: &str, pem: &str, jti: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "https://kubernetes.default.svc",
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
        "jti": jti,
    });
    let (header, key) = if pem == EC_PRIVATE {
        (
            Header::new(Algorithm::ES256),
            EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        )
    } else {
        (
            Header::new(Algorithm::RS256),
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
    };
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn holding(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "alf-jwt-bearer-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn replace(&self, text: &str) {
        // Written beside and renamed over, as the kubelet swaps a projected token.
        let next = self.0.with_extension("next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn builder(auth: &MockServer, assertion: JwtBearer) -> ClientCredentialsBuilder {
    ClientCredentials::builder(auth.url(support::TOKEN_PATH), support::CLIENT_ID, "")
        .token_retry(support::fast_retry(0))
        .auth_method(AuthMethod::None)
        .jwt_bearer(assertion)
}

#[tokio::test]
async fn a_verified_assertion_from_a_source_gets_a_token_for_its_subject() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (endpoint, calls) = VerifyingEndpoint::on(&auth).await;
    let uses = support::api_counting_by_token(&api).await;
    let client = support::client(
        builder(
            &auth,
            JwtBearer::from_source("alice", AssertionSource::new(Kms)),
        )
        .scope("orders:read")
        .build()
        .unwrap(),
    );

    for _ in 0..3 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    calls.assert_calls_async(1).await;
    assert_eq!(uses.of("alice-token-1"), 3);
    let body = endpoint.bodies.lock().unwrap()[0].clone();
    assert_eq!(field(&body, "grant_type"), JWT_BEARER);
    assert_eq!(field(&body, "scope"), "orders:read");
    assert_eq!(field(&body, "client_id"), support::CLIENT_ID);
    for absent in ["client_secret", "client_assertion", "client_assertion_type"] {
        assert!(
            fields(&body).iter().all(|(name, _)| name != absent),
            "{absent} in {body}"
        );
    }
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn the_crate_signs_the_assertion_with_its_key() {
    let auth = MockServer::start_async().await;
    let (endpoint, calls) = VerifyingEndpoint::on(&auth).await;
    let key = reqwest_alf::PrivateKey::from_pem(RSA_PRIVATE).unwrap();
    let assertion = JwtBearer::signed("bob", key);
    let shown = format!("{assertion:?}");
    assert!(
        shown.contains("bob") && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
        "{shown}"
    );

    let token = builder(&auth, assertion)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();

    assert_eq!(token.access_token().secret(), "bob-token-1");
    calls.assert_calls_async(1).await;
    let claims = crate::support::assertion::verified(
        &endpoint.assertions()[0],
        RSA_PUBLIC,
        Algorithm::RS256,
        &auth.url(support::TOKEN_PATH),
    )
    .1;
    assert_eq!(claims["iss"], support::CLIENT_ID);
    assert_eq!(claims["sub"], "bob");
}

#[tokio::test]
async fn a_rotated_file_is_read_again_when_the_token_is_renewed() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let audience = auth.url(support::TOKEN_PATH);
    let first = assertion("alice", &audience, RSA_PRIVATE, "first");
    let second = assertion("alice", &audience, RSA_PRIVATE, "second");
    let file = TempFile::holding(&first);
    let (endpoint, calls) = VerifyingEndpoint::on(&auth).await;
    // The first token is refused: it is renewed, and the request replayed with the new one.
    let refused = support::api_rejecting(&api, "alice-token-1").await;
    let accepted = support::api_accepting(&api, "alice-token-2").await;
    let middleware = builder(&auth, JwtBearer::from_file("alice", &file.0))
        .build()
        .unwrap();

    let token = middleware.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "alice-token-1");
    file.replace(&second);
    let response = support::client(middleware)
        .get(api.url("/fruits"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    calls.assert_calls_async(2).await;
    assert_eq!(endpoint.assertions(), [first, second]);
    refused.assert_calls_async(1).await;
    accepted.assert_calls_async(1).await;
}

/// One API request by "alice"'s middleware whose assertion file holds what `write` makes for
/// the token endpoint's URL: its error, the file's path, and the calls the token endpoint (a
/// verifying one) and the API got.
async fn alices_failed_request(
    write: impl FnOnce(&str) -> String,
) -> (reqwest_middleware::Error, String, usize, usize) {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let file = TempFile::holding(&write(&auth.url(support::TOKEN_PATH)));
    let (endpoint, calls) = VerifyingEndpoint::on(&auth).await;
    let never = support::api_counting_all(&api).await;
    let client = support::client(
        builder(&auth, JwtBearer::from_file("alice", &file.0))
            .build()
            .unwrap(),
    );

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();

    assert_eq!(endpoint.issued.load(Ordering::SeqCst), 0);
    (
        error,
        file.0.display().to_string(),
        calls.calls_async().await,
        never.calls_async().await,
    )
}

#[tokio::test]
async fn an_assertion_the_server_cannot_verify_gets_no_token_and_nothing_is_sent() {
    let (error, _, token_calls, api_calls) =
        alices_failed_request(|audience| assertion("alice", audience, EC_PRIVATE, "1")).await;

    match alf_error(&error) {
        Error::TokenEndpoint {
            status,
            oauth_error,
            ..
        } => {
            assert_eq!(status.as_u16(), 400);
            assert_eq!(oauth_error.as_ref().unwrap().error(), "invalid_grant");
            let message = alf_error(&error).to_string();
            assert!(
                message.contains("a JWT bearer assertion's signature"),
                "{message}"
            );
        }
        other => panic!("expected the token endpoint's refusal, got {other:?}"),
    }
    assert_eq!((token_calls, api_calls), (1, 0));
}

#[tokio::test]
async fn an_assertion_about_another_subject_is_refused_and_nothing_is_sent() {
    let (error, path, token_calls, api_calls) =
        alices_failed_request(|audience| assertion("bob", audience, RSA_PRIVATE, "1")).await;

    let (kind, from, reason) = assertion_refusal(&error);
    assert_eq!(kind, "JWT bearer grant's assertion");
    assert_eq!(from, format!("the file {path}"));
    assert_eq!(
        reason,
        "is about another subject (`sub`) than the one configured"
    );
    assert_eq!((token_calls, api_calls), (0, 0));
}

#[test]
fn without_the_jwt_bearer_grant_the_client_must_authenticate() {
    let built = ClientCredentials::builder("https://idp.example/token", "id", "")
        .auth_method(AuthMethod::None)
        .build();
    assert!(matches!(
        built,
        Err(Error::InvalidConfig(
            ConfigError::ClientAuthenticationNeeded
        ))
    ));
    let empty_subject = ClientCredentials::builder("https://idp.example/token", "id", "")
        .auth_method(AuthMethod::None)
        .jwt_bearer(JwtBearer::from_file("", "/var/run/secrets/token"))
        .build();
    assert!(matches!(
        empty_subject,
        Err(Error::InvalidConfig(ConfigError::EmptyValue(_)))
    ));
}

/// Two subjects' instances and the API, on one storage per instance made by `storage`: each
/// API request carries its own subject's token, and each subject costs one token call.
async fn subjects_sharing_a_storage_never_share_a_token(
    storage: impl Fn() -> Arc<dyn reqwest_alf::TokenStorage>,
) {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let audience = auth.url(support::TOKEN_PATH);
    let files = [
        TempFile::holding(&assertion("alice", &audience, RSA_PRIVATE, "a")),
        TempFile::holding(&assertion("bob", &audience, RSA_PRIVATE, "b")),
    ];
    let (_, calls) = VerifyingEndpoint::on(&auth).await;
    let uses = support::api_counting_by_token(&api).await;
    // Four instances of each subject, as four processes would run them, the same path in each
    // (a mounted file): only what the file holds tells the subjects apart.
    let mut tasks = Vec::new();
    for instance in 0..8 {
        let (subject, file) = [("alice", &files[0]), ("bob", &files[1])][instance % 2];
        let middleware = builder(&auth, JwtBearer::from_file(subject, &file.0))
            .storage(storage())
            .build()
            .unwrap();
        let url = api.url("/fruits");
        tasks.push(tokio::spawn(async move {
            let client = support::client(middleware);
            for _ in 0..5 {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    calls.assert_calls_async(2).await;
    assert_eq!(uses.of("alice-token-1") + uses.of("alice-token-2"), 20);
    assert_eq!(uses.of("bob-token-1") + uses.of("bob-token-2"), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_sharing_a_memory_storage_never_share_a_token() {
    let shared = reqwest_alf::MemoryStorage::new();
    subjects_sharing_a_storage_never_share_a_token(|| Arc::new(shared.clone())).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_sharing_a_redis_server_never_share_a_token() {
    let redis = crate::support::redis_server::RedisServer::start().await;
    let url = redis.url();
    subjects_sharing_a_storage_never_share_a_token(|| {
        Arc::new(reqwest_alf::RedisStorage::from_url(&url).unwrap())
    })
    .await;
}

#[tokio::test]
async fn a_slow_source_is_bounded_by_the_token_request_timeout() {
    struct Hangs;
    #[async_trait::async_trait]
    impl ClientAssertionSource for Hangs {
        async fn assertion(&self, _: &AssertionRequest) -> Result<String, AssertionError> {
            std::future::pending().await
        }
    }
    let auth = MockServer::start_async().await;
    let (_, calls) = VerifyingEndpoint::on(&auth).await;

    let error = builder(
        &auth,
        JwtBearer::from_source("alice", AssertionSource::new(Hangs)),
    )
    .token_request_timeout(Duration::from_millis(200))
    .build()
    .unwrap()
    .token()
    .await
    .unwrap_err();

    assert!(
        matches!(&error, Error::ClientAssertion { reason, .. } if *reason == "did not answer within the token request timeout"),
        "{error:?}"
    );
    calls.assert_calls_async(0).await;
}
