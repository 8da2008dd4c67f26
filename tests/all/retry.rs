//! Retrying the token call: only where a retry can help, honouring Retry-After.

use std::time::{Duration, Instant, SystemTime};

use httpmock::{HttpMockRequest, MockServer};
use reqwest_alf::retry_policies::Jitter;
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{ClientCredentials, Error};

use crate::support::{self, Counter, TOKEN_PATH};

/// One failed answer from the token endpoint.
#[derive(Clone, Copy)]
struct Failure {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

const fn status(status: u16) -> Failure {
    Failure {
        status,
        retry_after: None,
        body: "",
    }
}

/// A token endpoint that answers `failures` in turn, then a token; counts its calls.
async fn failing_then_ok(auth: &MockServer, failures: Vec<Failure>) -> Counter {
    let calls = Counter::default();
    let counter = calls.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            let n = counter.bump();
            match failures.get(n - 1) {
                Some(failure) => {
                    let mut response = httpmock::HttpMockResponse::builder().status(failure.status);
                    if let Some(seconds) = failure.retry_after {
                        response = response.header("retry-after", seconds);
                    }
                    response.body(failure.body).build()
                }
                None => support::json_response(200, &support::token_json("token-1", Some(3600))),
            }
        });
    })
    .await;
    calls
}

#[tokio::test]
async fn server_errors_are_retried_until_the_token_comes() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let token_calls = failing_then_ok(
        &auth,
        vec![
            Failure {
                body: "busy",
                ..status(503)
            },
            Failure {
                body: "<html>bad gateway</html>",
                ..status(502)
            },
        ],
    )
    .await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client.get(api.url("/fruits")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 3);
    fruits.assert_calls_async(1).await;
}

#[tokio::test]
async fn transient_statuses_are_retried_and_the_last_answer_is_reported() {
    for code in [500, 503, 504, 408, 429] {
        let auth = MockServer::start_async().await;
        let token_calls = failing_then_ok(&auth, vec![status(code); 10]).await;
        let credentials = support::builder(&auth)
            .token_retry(support::fast_retry(3))
            .build()
            .unwrap();

        let error = credentials.token().await.unwrap_err();

        assert_eq!(
            token_calls.get(),
            4,
            "status {code}: one call and 3 retries"
        );
        match &error {
            Error::TokenEndpoint {
                status: got,
                attempts,
                ..
            } => {
                assert_eq!(got.as_u16(), code);
                assert_eq!(*attempts, 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn rejections_are_final_and_carry_the_servers_words() {
    let cases = [
        (400, "invalid_grant", "Grant type not allowed"),
        (401, "invalid_client", "Unauthorized"),
        (
            403,
            "access_denied",
            "Service not enabled within domain: https://api.example",
        ),
        (400, "unauthorized_client", "Client is not authorized"),
        (400, "invalid_scope", "Unknown scope"),
    ];
    for (status, code, description) in cases {
        let auth = MockServer::start_async().await;
        let api = MockServer::start_async().await;
        let body = format!(r#"{{"error":"{code}","error_description":"{description}"}}"#);
        let token = auth
            .mock_async(move |when, then| {
                when.method("POST").path(TOKEN_PATH);
                then.status(status)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
        let any_api_call = support::api_counting_all(&api).await;
        let client = support::client(support::builder(&auth).build().unwrap());

        let error = client.get(api.url("/fruits")).send().await.unwrap_err();

        let error = support::alf_error(&error);
        token.assert_calls_async(1).await;
        any_api_call.assert_calls_async(0).await;
        let oauth = error.oauth_error().expect("the server's error is kept");
        assert_eq!(oauth.error(), code);
        assert_eq!(oauth.description(), Some(description));
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(
            message.contains(code) && message.contains(description),
            "{message}"
        );
        assert!(message.contains(&status.to_string()), "{message}");
    }
}

#[tokio::test]
async fn other_client_errors_are_final() {
    for code in [404, 405, 415] {
        let auth = MockServer::start_async().await;
        let token_calls = failing_then_ok(
            &auth,
            vec![
                Failure {
                    body: "nope",
                    ..status(code)
                };
                10
            ],
        )
        .await;
        let error = support::token_error(&auth).await;
        assert_eq!(token_calls.get(), 1, "status {code}");
        assert!(matches!(
            error,
            Error::TokenEndpoint {
                oauth_error: None,
                ..
            }
        ));
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_reported() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let credentials = ClientCredentials::builder(
        format!("http://127.0.0.1:{port}/oauth/token"),
        "id",
        "secret",
    )
    .token_retry(support::fast_retry(2))
    .build()
    .unwrap();

    let error = credentials.token().await.unwrap_err();

    match &error {
        Error::Transport {
            attempts, endpoint, ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(endpoint, &format!("http://127.0.0.1:{port}/oauth/token"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
}

#[tokio::test]
async fn zero_retries_means_one_attempt() {
    let auth = MockServer::start_async().await;
    let token_calls = failing_then_ok(&auth, vec![status(503)]).await;
    let error = support::error_of_one_attempt(support::builder(&auth)).await;
    assert_eq!(token_calls.get(), 1);
    assert!(matches!(error, Error::TokenEndpoint { attempts: 1, .. }));
}

#[tokio::test]
async fn retry_after_on_another_server_error_is_waited_for() {
    let auth = MockServer::start_async().await;
    let token_calls = failing_then_ok(
        &auth,
        vec![Failure {
            retry_after: Some("1"),
            ..status(502)
        }],
    )
    .await;
    // Backoff alone would wait a millisecond; the server asked for a second.
    let credentials = support::builder(&auth)
        .token_retry(
            ExponentialBackoff::builder()
                .retry_bounds(Duration::from_millis(1), Duration::from_secs(5))
                .jitter(Jitter::None)
                .build_with_max_retries(2),
        )
        .build()
        .unwrap();

    let started = Instant::now();
    credentials.token().await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(token_calls.get(), 2);
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_policy_waits_cools_down_every_request_until_its_capped_end() {
    for limited in [429, 503] {
        let auth = MockServer::start_async().await;
        let token_calls = failing_then_ok(
            &auth,
            vec![Failure {
                retry_after: Some("3"),
                body: r#"{"error":"too_many_requests"}"#,
                ..status(limited)
            }],
        )
        .await;
        let mut policy = support::fast_retry(3);
        policy.max_retry_interval = Duration::from_secs(2);
        let credentials = support::builder(&auth).token_retry(policy).build().unwrap();

        let first = credentials.token().await.unwrap_err();
        let second = credentials.token().await.unwrap_err();

        assert!(
            matches!(first, Error::RateLimited { .. }),
            "{limited}: {first:?}"
        );
        assert_eq!(first.retry_at(), second.retry_at());
        assert_eq!(
            token_calls.get(),
            1,
            "{limited}: asked again while cooling down"
        );

        support::sleep_until(first.retry_at().unwrap()).await;
        credentials.token().await.unwrap();
        assert_eq!(token_calls.get(), 2, "{limited}");
    }
}

#[tokio::test]
async fn retry_after_is_capped_by_the_policy() {
    let auth = MockServer::start_async().await;
    let token_calls = failing_then_ok(
        &auth,
        vec![Failure {
            retry_after: Some("86400"),
            ..status(503)
        }],
    )
    .await;
    let credentials = support::builder(&auth)
        .token_retry(support::fast_retry(1))
        .build()
        .unwrap();

    // The policy's max_retry_interval is 20 ms: a day-long Retry-After must not stop us for
    // longer.
    let error = credentials.token().await.unwrap_err();
    let retry_at = error.retry_at().unwrap();
    assert!(
        retry_at <= SystemTime::now() + Duration::from_millis(20),
        "{error:?}"
    );

    support::sleep_until(retry_at).await;
    assert!(credentials.token().await.is_ok());
    assert_eq!(token_calls.get(), 2);
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_in_time_is_a_retried_timeout() {
    let auth = MockServer::start_async().await;
    auth.mock_async(|when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.delay(Duration::from_secs(30))
            .body(support::token_json("late", Some(60)));
    })
    .await;
    let credentials = support::builder(&auth)
        .token_request_timeout(Duration::from_millis(100))
        .token_retry(support::fast_retry(1))
        .build()
        .unwrap();

    let error = credentials.token().await.unwrap_err();

    assert!(
        matches!(error, Error::Transport { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(error.is_retryable());
}
