//! The Auth0 preset against a mock that answers like Auth0: behind TLS for `auth0(domain)`,
//! which only speaks `https://{domain}`, and on plain loopback HTTP for `auth0_at(base_url)`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpmock::{HttpMockRequest, HttpMockResponse, Mock, MockServer};
use reqwest_alf::retry_policies::Jitter;
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{ClientCredentials, ClientCredentialsBuilder, Error, Grant};

use crate::support::tls::{TlsFront, tls_front};
use crate::support::{self, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH};

const DOMAIN: &str = "tenant.auth0.test";

/// Auth0 and a preset pointed at it.
async fn auth0(mock: &MockServer) -> (TlsFront, ClientCredentialsBuilder) {
    let front = tls_front(mock, DOMAIN).await;
    let builder = ClientCredentials::auth0(&front.domain, CLIENT_ID, CLIENT_SECRET)
        .audience(format!("https://{}/api/v2/", front.domain))
        .http_client(front.http.clone());
    (front, builder)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn retries(max_retries: u32, max_interval: Duration) -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), max_interval)
        .jitter(Jitter::None)
        .build_with_max_retries(max_retries)
}

/// Answers 429 with Auth0's rate-limit headers (`reset` in UNIX seconds) the first `limited`
/// times, then a token; records when each call arrived.
async fn rate_limited(
    mock: &MockServer,
    limited: usize,
    reset: u64,
) -> Arc<Mutex<Vec<SystemTime>>> {
    let arrivals: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let seen = arrivals.clone();
    mock.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            let mut seen = seen.lock().unwrap();
            seen.push(SystemTime::now());
            if seen.len() <= limited {
                HttpMockResponse::builder()
                    .status(429)
                    .header("x-ratelimit-limit", "10")
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-reset", reset.to_string())
                    .body(r#"{"error":"too_many_requests","error_description":"Global limit has been reached"}"#)
                    .build()
            } else {
                support::json_response(200, &support::token_json("tok", Some(86400)))
            }
        });
    })
    .await;
    arrivals
}

/// A token endpoint that takes only what Auth0 expects for `audience` (the id and secret in
/// the form, no Basic header) and answers with `token` and, as Auth0 may, no `expires_in`.
async fn auth0_form_answered_with<'a>(
    mock: &'a MockServer,
    audience: &str,
    token: &str,
) -> Mock<'a> {
    let (audience, body) = (audience.to_owned(), support::token_json(token, None));
    mock.mock_async(move |when, then| {
        when.method("POST")
            .path(TOKEN_PATH)
            .header_missing("authorization")
            .form_urlencoded_tuple("grant_type", "client_credentials")
            .form_urlencoded_tuple("audience", audience)
            .form_urlencoded_tuple("client_id", CLIENT_ID)
            .form_urlencoded_tuple("client_secret", CLIENT_SECRET);
        then.status(200).body(body);
    })
    .await
}

#[tokio::test]
async fn the_preset_posts_the_credentials_and_assumes_a_day_without_expires_in() {
    let mock = MockServer::start_async().await;
    let (front, builder) = auth0(&mock).await;
    let audience = format!("https://{}/api/v2/", front.domain);
    let token = auth0_form_answered_with(&mock, &audience, "tok").await;

    let got = builder.build().unwrap().token().await.unwrap();

    token.assert_calls_async(1).await;
    assert_eq!(got.lifetime(), ClientCredentials::AUTH0_DEFAULT_EXPIRES_IN);
    assert_eq!(
        ClientCredentials::AUTH0_DEFAULT_EXPIRES_IN,
        Duration::from_secs(24 * 3600)
    );
}

#[tokio::test]
async fn the_preset_at_a_local_base_url_keeps_its_defaults() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let token = auth0_form_answered_with(&auth, "https://orders.example/", "token-1").await;
    let orders = support::api_accepting(&api, "token-1").await;
    let middleware = ClientCredentials::auth0_at(auth.base_url(), CLIENT_ID, CLIENT_SECRET)
        .audience("https://orders.example/")
        .build()
        .unwrap();

    let response = support::client(middleware.clone())
        .get(api.url("/fruits"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    token.assert_calls_async(1).await;
    orders.assert_calls_async(1).await;
    let got = middleware.token().await.unwrap();
    assert_eq!(got.lifetime(), ClientCredentials::AUTH0_DEFAULT_EXPIRES_IN);
}

#[tokio::test]
async fn the_preset_asks_for_the_organization_of_the_builder_or_of_the_request() {
    let auth = MockServer::start_async().await;
    let for_org = |org: &'static str, token: &'static str| {
        let auth = &auth;
        async move {
            auth.mock_async(move |when, then| {
                when.method("POST")
                    .path(TOKEN_PATH)
                    .form_urlencoded_tuple("audience", "https://orders.example/")
                    .form_urlencoded_tuple("organization", org)
                    .form_urlencoded_tuple("client_secret", CLIENT_SECRET);
                then.status(200).body(support::token_json(token, None));
            })
            .await
        }
    };
    let (acme, globex) = (
        for_org("org_acme", "acme-token").await,
        for_org("org_globex", "globex-token").await,
    );
    let middleware = ClientCredentials::auth0_at(auth.base_url(), CLIENT_ID, CLIENT_SECRET)
        .audience("https://orders.example/")
        .organization("org_acme")
        .build()
        .unwrap();

    let token = middleware.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "acme-token");
    let globex_grant = Grant::new()
        .audience("https://orders.example/")
        .organization("org_globex");
    let token = middleware.token_for(&globex_grant).await.unwrap();
    assert_eq!(token.access_token().secret(), "globex-token");

    acme.assert_calls_async(1).await;
    globex.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_429_is_waited_out_until_a_near_x_ratelimit_reset() {
    let mock = MockServer::start_async().await;
    let (_front, builder) = auth0(&mock).await;
    let reset = unix_now() + 2;
    let arrivals = rate_limited(&mock, 1, reset).await;
    let auth = builder
        .token_retry(retries(3, Duration::from_secs(5)))
        .build()
        .unwrap();

    auth.token().await.unwrap();

    let reset_at = UNIX_EPOCH + Duration::from_secs(reset);
    assert_eq!(auth.stats().rate_limited, 0);
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1] >= reset_at, "asked again before the reset");
}

#[tokio::test]
async fn a_far_reset_is_capped_by_the_retry_policy() {
    let mock = MockServer::start_async().await;
    let (_front, builder) = auth0(&mock).await;
    let arrivals = rate_limited(&mock, 1, unix_now() + 86_400).await;
    let auth = builder
        .token_retry(retries(1, Duration::from_millis(50)))
        .build()
        .unwrap();

    let asked_at = SystemTime::now();
    let error = auth.token().await.unwrap_err();
    let retry_at = error.retry_at().unwrap();
    assert!(
        retry_at <= SystemTime::now() + Duration::from_millis(50),
        "capped at 50 ms: {:?}",
        retry_at.duration_since(asked_at)
    );

    support::sleep_until(retry_at).await;
    auth.token().await.unwrap();
    assert_eq!(arrivals.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_error_says_when_the_rate_limit_resets() {
    let mock = MockServer::start_async().await;
    let (_front, builder) = auth0(&mock).await;
    let reset = unix_now() + 3600;
    rate_limited(&mock, usize::MAX, reset).await;

    // No retry left: the hour is not waited out, and the error says when it ends.
    let error = builder
        .token_retry(retries(0, Duration::from_secs(7200)))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();

    match &error {
        Error::RateLimited { retry_at, .. } => {
            assert_eq!(*retry_at, UNIX_EPOCH + Duration::from_secs(reset));
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(
        error
            .to_string()
            .contains("is rate limiting this client until"),
        "{error}"
    );
}

#[tokio::test]
async fn access_denied_is_final_and_keeps_its_description() {
    let mock = MockServer::start_async().await;
    let (_front, builder) = auth0(&mock).await;
    let denied = mock
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(401)
                .header("content-type", "application/json")
                .body(r#"{"error":"access_denied","error_description":"Unauthorized"}"#);
        })
        .await;

    let error = builder.build().unwrap().token().await.unwrap_err();

    denied.assert_calls_async(1).await;
    assert!(!error.is_retryable());
    let oauth = error.oauth_error().expect("the server's error is kept");
    assert_eq!(oauth.error(), "access_denied");
    assert_eq!(oauth.description(), Some("Unauthorized"));
    let message = error.to_string();
    assert!(
        message.contains("access_denied") && message.contains("Unauthorized"),
        "{message}"
    );
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn private_key_jwt_assertions_are_for_the_tenant() {
    use jsonwebtoken::Algorithm;
    use reqwest_alf::{AuthMethod, PrivateKey};

    use crate::support::assertion::{self, RSA_PRIVATE, RSA_PUBLIC};

    let mock = MockServer::start_async().await;
    let (front, builder) = auth0(&mock).await;
    let (calls, bodies) = assertion::recording_token_endpoint(&mock).await;

    builder
        .auth_method(AuthMethod::PrivateKeyJwt(
            PrivateKey::from_pem(RSA_PRIVATE).unwrap(),
        ))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();

    calls.assert_calls_async(1).await;
    let body = &bodies.all()[0];
    assert!(!body.contains("client_secret"), "{body}");
    let tenant = format!("https://{}/", front.domain);
    let (_, claims) = assertion::verified(
        &assertion::field(body, "client_assertion"),
        RSA_PUBLIC,
        Algorithm::RS256,
        &tenant,
    );
    assert_eq!(claims["aud"], tenant.as_str());
    assert_eq!(claims["iss"], CLIENT_ID);
}
