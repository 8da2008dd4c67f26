//! Token endpoints that misbehave: bodies too large or never ending, bodies that drip, and
//! redirects. Each is an error within the time limit, never a hang, and no token is used.

use std::time::Duration;

use httpmock::MockServer;
use reqwest_alf::{ClientCredentials, ClientCredentialsBuilder, Error, TokenResponseError};

use crate::support::raw_server::{Body, misbehaving_token_endpoint};
use crate::support::{self, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH};

/// Far above every time limit below: only reached if something hangs.
const HANG: Duration = Duration::from_secs(60);

/// The error of one attempt at `endpoint`, with `configure`'s settings, or a panic if it hangs.
async fn token_error_from(
    endpoint: &str,
    configure: impl FnOnce(ClientCredentialsBuilder) -> ClientCredentialsBuilder,
) -> Error {
    let builder = configure(ClientCredentials::builder(
        endpoint,
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    tokio::time::timeout(HANG, support::error_of_one_attempt(builder))
        .await
        .expect("an error, not a hang")
}

#[tokio::test]
async fn a_never_ending_body_stops_at_the_size_limit() {
    let endpoint = misbehaving_token_endpoint(Body::Endless).await;
    let error = token_error_from(&endpoint, |b| b).await;
    assert!(
        matches!(
            error,
            Error::InvalidTokenResponse {
                reason: TokenResponseError::BodyTooLarge(65_536),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_dripping_body_stops_at_the_time_limit() {
    let endpoint = misbehaving_token_endpoint(Body::Drip(Duration::from_millis(200))).await;
    let error = token_error_from(&endpoint, |b| {
        b.token_request_timeout(Duration::from_millis(300))
    })
    .await;
    match &error {
        Error::Transport { source, .. } => assert!(source.is_timeout(), "{source:?}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn the_size_limit_can_be_set() {
    let auth = MockServer::start_async().await;
    let body = format!(
        r#"{{"access_token":"abc","token_type":"Bearer","padding":"{}"}}"#,
        "x".repeat(3000)
    );
    auth.mock_async(|when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.status(200).body(body);
    })
    .await;

    let small = token_error_from(&auth.url(TOKEN_PATH), |b| b.max_token_response_bytes(2048)).await;
    assert!(
        matches!(
            small,
            Error::InvalidTokenResponse {
                reason: TokenResponseError::BodyTooLarge(2048),
                ..
            }
        ),
        "{small:?}"
    );
    let roomy = support::builder(&auth)
        .max_token_response_bytes(4096)
        .build()
        .unwrap();
    assert_eq!(roomy.token().await.unwrap().access_token().secret(), "abc");

    let refused = support::builder(&auth).max_token_response_bytes(10).build();
    assert!(matches!(refused, Err(Error::InvalidConfig(_))));
}

#[tokio::test]
async fn a_redirect_followed_by_a_callers_client_is_refused() {
    let (auth, elsewhere) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let redirect = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(302).header("location", elsewhere.url("/token"));
        })
        .await;
    elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200)
                .body(support::token_json("planted", Some(3600)));
        })
        .await;

    // A client of the caller's that follows redirects (reqwest's default).
    let error = token_error_from(&auth.url(TOKEN_PATH), |b| {
        b.http_client(reqwest::Client::new())
    })
    .await;

    redirect.assert_calls_async(1).await;
    match &error {
        Error::InvalidTokenResponse {
            reason: TokenResponseError::Redirected(origin),
            ..
        } => assert_eq!(origin, &elsewhere.base_url()),
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert!(
        error.to_string().contains("does not follow redirects"),
        "{error}"
    );
}

#[tokio::test]
async fn an_https_url_to_a_plain_http_server_is_a_tls_error_asked_once() {
    let auth = MockServer::start_async().await;
    let plain = support::numbered_tokens(&auth, Some(3600)).await.1;
    let https = auth.url(support::TOKEN_PATH).replace("http://", "https://");

    let error = ClientCredentials::builder(https, support::CLIENT_ID, support::CLIENT_SECRET)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();

    let Error::Transport { attempts, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        *attempts, 1,
        "a handshake that failed is not retried: {error}"
    );
    let message = error.to_string();
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert!(message.contains("plain http:// server"), "{message}");
    assert_eq!(plain.get(), 0, "no token request was understood");
}
