//! Reusing a token until it counts as expired, and replacing it then.

use std::time::{Duration, SystemTime};

use httpmock::MockServer;

use crate::support;

#[tokio::test]
async fn the_first_request_fetches_and_the_next_ones_reuse() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    for _ in 0..5 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "apple,banana");
    }

    assert_eq!(token_calls.get(), 1);
    fruits.assert_calls_async(5).await;
}

#[tokio::test]
async fn token_and_the_middleware_share_one_cache() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let credentials = support::builder(&auth).build().unwrap();
    let client = support::client(credentials.clone());

    let token = credentials.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "token-1");
    client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(credentials.token().await.unwrap(), token);

    assert_eq!(token_calls.get(), 1);
    fruits.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_token_is_replaced_once_it_counts_as_expired() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    // A 4-second token: the 30 s margin is capped at a quarter of its lifetime, so it is
    // replaced after three seconds, not at once and not never.
    let (_, token_calls) = support::numbered_tokens(&auth, Some(4)).await;
    let first = support::api_accepting(&api, "token-1").await;
    let second = support::api_accepting(&api, "token-2").await;
    let credentials = support::builder(&auth).build().unwrap();
    let client = support::client(credentials.clone());

    client.get(api.url("/fruits")).send().await.unwrap();
    client.get(api.url("/fruits")).send().await.unwrap();
    let token = credentials.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "token-1");
    assert_eq!(token_calls.get(), 1);

    // Wait for the clock to pass the moment the token counts as expired.
    let refresh_at = token.stale_at(reqwest_alf::ClientCredentialsBuilder::DEFAULT_EXPIRY_MARGIN);
    assert_eq!(refresh_at, token.issued_at() + Duration::from_secs(3));
    if let Ok(left) = refresh_at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(20)).await;
    }

    let response = client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 2);
    first.assert_calls_async(2).await;
    second.assert_calls_async(1).await;
}

#[tokio::test]
async fn the_expiry_margin_is_configurable() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    // With a margin of an hour, a one-hour token is replaced three quarters in, never at once.
    let credentials = support::builder(&auth)
        .expiry_margin(Duration::from_secs(3600))
        .build()
        .unwrap();

    let token = credentials.token().await.unwrap();
    credentials.token().await.unwrap();

    assert_eq!(token_calls.get(), 1);
    assert_eq!(
        token.stale_at(Duration::from_secs(3600)),
        token.issued_at() + Duration::from_secs(2700)
    );
}

#[tokio::test]
async fn a_failed_fetch_is_tried_again_by_the_next_request() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let failing = auth
        .mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(400)
                .body(r#"{"error":"invalid_request","error_description":"try again"}"#);
        })
        .await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();
    assert!(matches!(
        support::alf_error(&error),
        reqwest_alf::Error::TokenEndpoint { .. }
    ));
    failing.assert_calls_async(1).await;
    failing.delete_async().await;

    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let response = client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 1);
    fruits.assert_calls_async(1).await;
}

#[tokio::test]
async fn callers_of_token_can_invalidate_a_rejected_token() {
    let auth = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let credentials = support::builder(&auth).build().unwrap();

    let first = credentials.token().await.unwrap();
    credentials.invalidate(&first).await;
    let second = credentials.token().await.unwrap();
    // A late invalidation of the old token leaves the new one alone.
    credentials.invalidate(&first).await;
    let still = credentials.token().await.unwrap();

    assert_eq!(first.access_token().secret(), "token-1");
    assert_eq!(second.access_token().secret(), "token-2");
    assert_eq!(still, second);
    assert_eq!(token_calls.get(), 2);
}
