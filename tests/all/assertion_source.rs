//! `AuthMethod::ClientAssertion`: assertions from the application's own source (a KMS that
//! signs the claims the crate gives it), bounded by the token request timeout, typed failures.

use std::time::Duration;

use httpmock::MockServer;
use jsonwebtoken::Algorithm;
use reqwest_alf::{
    AssertionError, AssertionRequest, AssertionSource, AuthMethod, ClientAssertionSource,
    ClientCredentials,
};

use crate::support::assertion::{
    Kms, RSA_PUBLIC, assertion_refusal, field, recording_token_endpoint, verified,
};
use crate::support::{self, logs};

/// A source that fails, never answers, or answers with something that is not a JWT.
enum Broken {
    Fails,
    Hangs,
    Garbage,
}

#[async_trait::async_trait]
impl ClientAssertionSource for Broken {
    async fn assertion(&self, _: &AssertionRequest) -> Result<String, AssertionError> {
        match self {
            Broken::Fails => Err("the KMS refused: key disabled".into()),
            Broken::Hangs => std::future::pending().await,
            Broken::Garbage => Ok("s3cr3t garbage".to_owned()),
        }
    }
}

fn middleware(auth: &MockServer, source: impl ClientAssertionSource) -> ClientCredentials {
    ClientCredentials::builder(auth.url(support::TOKEN_PATH), support::CLIENT_ID, "")
        .token_retry(support::fast_retry(2))
        .token_request_timeout(Duration::from_millis(300))
        .auth_method(AuthMethod::ClientAssertion(AssertionSource::new(source)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_token_endpoint_gets_an_assertion_the_source_signed_for_it() {
    let auth = MockServer::start_async().await;
    let (calls, bodies) = recording_token_endpoint(&auth).await;

    middleware(&auth, Kms).token().await.unwrap();

    calls.assert_calls_async(1).await;
    let body = &bodies.all()[0];
    let endpoint = auth.url(support::TOKEN_PATH);
    let (_, claims) = verified(
        &field(body, "client_assertion"),
        RSA_PUBLIC,
        Algorithm::RS256,
        &endpoint,
    );
    assert_eq!(claims["iss"], support::CLIENT_ID);
    assert_eq!(claims["sub"], support::CLIENT_ID);
    assert_eq!(field(body, "client_id"), support::CLIENT_ID);
    assert!(!body.contains("client_secret"), "{body}");
}

#[tokio::test]
async fn a_source_that_fails_hangs_or_returns_garbage_is_a_typed_error_and_nothing_is_sent() {
    let captured = logs::crate_logs();
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (calls, _) = recording_token_endpoint(&auth).await;
    let never = support::api_counting_all(&api).await;

    for (source, reason) in [
        (Broken::Fails, "failed"),
        (
            Broken::Hangs,
            "did not answer within the token request timeout",
        ),
        (Broken::Garbage, "returned something that is not a JWT"),
    ] {
        let client = support::client(middleware(&auth, source));
        let error = client.get(api.url("/fruits")).send().await.unwrap_err();
        let (kind, from, why) = assertion_refusal(&error);
        assert_eq!(
            (kind, from.as_str()),
            ("client assertion", "the assertion source")
        );
        assert_eq!(why, reason);
    }

    calls.assert_calls_async(0).await;
    never.assert_calls_async(0).await;
    assert!(
        !captured.text().contains("s3cr3t garbage"),
        "what the source returned was logged"
    );
}

#[tokio::test]
async fn a_failing_sources_own_error_is_the_errors_source() {
    let auth = MockServer::start_async().await;
    recording_token_endpoint(&auth).await;

    let error = middleware(&auth, Broken::Fails).token().await.unwrap_err();

    let source = std::error::Error::source(&error).expect("the source's error");
    assert_eq!(source.to_string(), "the KMS refused: key disabled");
}
