//! Where tokens go: https and loopback by default, `only_for` origins, `attach_when`, and never
//! across a redirect to another origin. Requests left out pass through untouched.

use httpmock::MockServer;
use reqwest_middleware::ClientBuilder;

use crate::support;

/// An API that counts requests with and without a bearer token, and answers 401 to all.
async fn api_counting_tokens(api: &MockServer) -> (httpmock::Mock<'_>, httpmock::Mock<'_>) {
    let with = api
        .mock_async(|when, then| {
            when.header_exists("authorization");
            then.status(401);
        })
        .await;
    let without = api
        .mock_async(|when, then| {
            when.header_missing("authorization");
            then.status(401);
        })
        .await;
    (with, without)
}

#[tokio::test]
async fn requests_to_other_origins_get_no_token_no_fetch_and_no_replay() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (token_mock, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let (with, without) = api_counting_tokens(&api).await;
    let client = support::client(
        support::builder(&auth)
            .only_for(["https://fruits.example.com"])
            .build()
            .unwrap(),
    );

    let response = client.get(api.url("/fruits")).send().await.unwrap();

    assert_eq!(response.status(), 401, "the API's answer, as it is");
    assert_eq!(calls.get(), 0);
    token_mock.assert_calls_async(0).await;
    with.assert_calls_async(0).await;
    without.assert_calls_async(1).await;
}

#[tokio::test]
async fn only_for_origins_get_the_token() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    support::numbered_tokens(&auth, Some(3600)).await;
    let accepted = support::api_accepting(&api, "token-1").await;
    let client = support::client(
        support::builder(&auth)
            .only_for(["https://fruits.example.com", &api.base_url()])
            .build()
            .unwrap(),
    );

    assert_eq!(
        client
            .get(api.url("/fruits"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    accepted.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_predicate_keeps_tokens_off_the_requests_it_refuses() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let (with, without) = api_counting_tokens(&api).await;
    let client = support::client(
        support::builder(&auth)
            .attach_when(|request| request.url().path().starts_with("/api/"))
            .build()
            .unwrap(),
    );

    client.get(api.url("/health")).send().await.unwrap();
    assert_eq!(calls.get(), 0);
    without.assert_calls_async(1).await;

    client.get(api.url("/api/fruits")).send().await.unwrap();
    assert!(calls.get() >= 1, "the accepted request got a token");
    assert!(with.calls_async().await >= 1);
}

#[tokio::test]
async fn plain_http_to_a_host_that_is_not_loopback_gets_no_token_unless_allowed() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let (with, without) = api_counting_tokens(&api).await;
    // `fruits.test` resolves to the mock, but by name it is not a loopback host.
    let url = format!("http://fruits.test:{}/fruits", api.address().port());
    let http = || {
        reqwest::Client::builder()
            .resolve("fruits.test", *api.address())
            .build()
            .unwrap()
    };

    let strict = ClientBuilder::new(http())
        .with(support::builder(&auth).build().unwrap())
        .build();
    strict.get(&url).send().await.unwrap();
    assert_eq!(token_calls.get(), 0);
    without.assert_calls_async(1).await;

    let insecure = ClientBuilder::new(http())
        .with(
            support::builder(&auth)
                .allow_insecure_http(true)
                .build()
                .unwrap(),
        )
        .build();
    insecure.get(&url).send().await.unwrap();
    assert!(token_calls.get() >= 1);
    assert!(with.calls_async().await >= 1);
}

#[tokio::test]
async fn a_redirect_to_another_origin_arrives_without_the_token() {
    let (auth, api, elsewhere) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    support::numbered_tokens(&auth, Some(3600)).await;
    // Same port space, another origin: `localhost` instead of `127.0.0.1`.
    let target = format!("http://localhost:{}/landing", elsewhere.address().port());
    let redirect = api
        .mock_async(|when, then| {
            when.path("/fruits")
                .header("authorization", "Bearer token-1");
            then.status(302).header("location", target);
        })
        .await;
    let (with, without) = (
        elsewhere
            .mock_async(|when, then| {
                when.path("/landing").header_exists("authorization");
                then.status(200);
            })
            .await,
        elsewhere
            .mock_async(|when, then| {
                when.path("/landing").header_missing("authorization");
                then.status(200);
            })
            .await,
    );
    // reqwest's default client follows redirects and drops credentials across origins.
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client.get(api.url("/fruits")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    redirect.assert_calls_async(1).await;
    with.assert_calls_async(0).await;
    without.assert_calls_async(1).await;
}
