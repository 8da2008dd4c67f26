//! Rate limits from the token endpoint: a short one is waited out by one fetch while every
//! other request waits for its token; a long one fails fast with the time in the error.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{ClientCredentials, Error};

use crate::support::{self, Counter, TOKEN_PATH};

/// A token endpoint that answers its first call with 429 and `header: value`, then with
/// tokens; its call count.
async fn limited_once(auth: &MockServer, header: &'static str, value: String) -> Counter {
    let calls = Counter::default();
    let counter = calls.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            if counter.bump() > 1 {
                return support::json_response(200, &support::token_json("token", Some(3600)));
            }
            HttpMockResponse::builder()
                .status(429)
                .header(header, value.clone())
                .body(r#"{"error":"too_many_requests"}"#)
                .build()
        });
    })
    .await;
    calls
}

/// The default policy's bounds: a rate limit of up to 10 s is waited out.
fn middleware(auth: &MockServer) -> ClientCredentials {
    support::builder(auth)
        .token_retry(
            ExponentialBackoff::builder()
                .retry_bounds(Duration::from_millis(1), Duration::from_secs(10))
                .build_with_max_retries(3),
        )
        .build()
        .unwrap()
}

/// One request, then 99 more while the first waits: every status, and how long it all took.
async fn a_hundred_requests(
    middleware: ClientCredentials,
    api: &MockServer,
) -> (Vec<u16>, Duration) {
    let client = support::client(middleware);
    let started = Instant::now();
    let url = api.url("/fruits");
    let first = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await }
    });
    // The others come while the first one waits the limit out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let others = join_all((0..99).map(|_| client.get(&url).send())).await;
    let mut statuses = vec![first.await.unwrap().expect("a response").status().as_u16()];
    for response in others {
        statuses.push(
            response
                .expect("a response, not an error")
                .status()
                .as_u16(),
        );
    }
    (statuses, started.elapsed())
}

#[tokio::test]
async fn a_one_second_retry_after_is_waited_out_and_every_request_gets_the_token() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let calls = limited_once(&auth, "retry-after", "1".to_owned()).await;
    let accepted = support::api_accepting(&api, "token").await;

    let (statuses, took) = a_hundred_requests(middleware(&auth), &api).await;

    assert_eq!(statuses, vec![200; 100]);
    assert!(
        took >= Duration::from_secs(1),
        "the second was waited out: {took:?}"
    );
    assert_eq!(calls.get(), 2, "one 429, then one token for every request");
    accepted.assert_calls_async(100).await;
}

#[tokio::test]
async fn an_x_ratelimit_reset_two_seconds_ahead_is_waited_out_the_same() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let calls = limited_once(&auth, "x-ratelimit-reset", reset.to_string()).await;
    support::api_accepting(&api, "token").await;
    let auth_middleware = middleware(&auth);

    let (statuses, _) = a_hundred_requests(auth_middleware.clone(), &api).await;

    assert_eq!(statuses, vec![200; 100]);
    assert!(SystemTime::now() >= UNIX_EPOCH + Duration::from_secs(reset));
    assert_eq!(calls.get(), 2);
    assert_eq!(auth_middleware.stats().rate_limited, 0);
}

#[tokio::test]
async fn a_two_minute_limit_fails_fast_with_its_time_and_the_api_is_never_called() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let calls = limited_once(&auth, "retry-after", "120".to_owned()).await;
    let never = support::api_counting_all(&api).await;
    let client = support::client(middleware(&auth));

    let started = Instant::now();
    let error = client.get(api.url("/fruits")).send().await.unwrap_err();
    let took = started.elapsed();

    let error = support::alf_error(&error);
    assert!(matches!(error, Error::RateLimited { .. }), "{error}");
    assert!(took < Duration::from_millis(500), "failed fast: {took:?}");
    let retry_at = error.retry_at().unwrap();
    assert!(
        retry_at <= SystemTime::now() + Duration::from_secs(10),
        "capped at the policy's longest wait"
    );
    assert_eq!(calls.get(), 1);
    never.assert_calls_async(0).await;
}
