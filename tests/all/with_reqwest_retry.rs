//! reqwest-alf stacked with reqwest-retry's `RetryTransientMiddleware`, in either order: the
//! typed error is found either way, and each middleware does its own job.

use std::time::Duration;

use httpmock::{HttpMockRequest, MockServer};
use reqwest_alf::ClientCredentials;
use reqwest_alf::policies::ExponentialBackoff;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;

use crate::support::{self, Counter};

fn retry() -> RetryTransientMiddleware<ExponentialBackoff> {
    RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
            .build_with_max_retries(2),
    )
}

/// The recommended order: the token first, then the retries of the API call.
fn auth_then_retry(auth: ClientCredentials) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .with(retry())
        .build()
}

/// The other order: each retry goes through the token middleware again.
fn retry_then_auth(auth: ClientCredentials) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(retry())
        .with(auth)
        .build()
}

#[tokio::test]
async fn a_refused_client_is_a_typed_error_in_either_order() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(401)
            .body(r#"{"error":"invalid_client","error_description":"no such client"}"#);
    })
    .await;
    let never = support::api_counting_all(&api).await;

    for stack in [auth_then_retry, retry_then_auth] {
        let client = stack(support::builder(&auth).build().unwrap());
        let error = client.get(api.url("/fruits")).send().await.unwrap_err();
        let ours = reqwest_alf::Error::downcast_ref(&error)
            .unwrap_or_else(|| panic!("not found in {error:?}"));
        assert_eq!(
            ours.oauth_error().map(|e| e.error()),
            Some("invalid_client")
        );
    }
    never.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_token_error_on_a_retry_is_found_through_the_retry_error() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    // One token that lives a second, then a failing token endpoint.
    let calls = Counter::default();
    let counter = calls.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| match counter.bump() {
            1 => support::json_response(200, &support::token_json("token-1", Some(1))),
            _ => support::json_response(500, "{}"),
        });
    })
    .await;
    // The first attempt takes longer than the token lives: the retry needs a new one.
    let slow = api
        .mock_async(|when, then| {
            when.method("GET").path("/fruits");
            then.delay(Duration::from_millis(1100)).status(503);
        })
        .await;
    let client = retry_then_auth(
        support::builder(&auth)
            .token_retry(support::fast_retry(0))
            .refresh_ahead(false)
            .build()
            .unwrap(),
    );

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();

    assert!(error.to_string().contains("after 1 retries"), "{error}");
    let ours = reqwest_alf::Error::downcast_ref(&error)
        .unwrap_or_else(|| panic!("not found in {error:?}"));
    assert!(ours.to_string().contains("answered 500"), "{ours}");
    slow.assert_calls_async(1).await;
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn retries_of_the_api_call_carry_the_token_and_fetch_no_other() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let busy = api
        .mock_async(|when, then| {
            when.method("GET")
                .path("/fruits")
                .header_exists("authorization");
            then.status(503);
        })
        .await;

    for stack in [auth_then_retry, retry_then_auth] {
        let client = stack(support::builder(&auth).build().unwrap());
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    busy.assert_calls_async(2 * 3).await;
    assert_eq!(
        token_calls.get(),
        2,
        "one token per middleware, whatever the retries"
    );
}
