//! A fetch that fails while the current token counts as expired (inside its expiry margin) but
//! has not really expired: the current token keeps serving, unless the server refused the
//! client.

use std::time::Duration;

use httpmock::MockServer;
use reqwest_alf::ClientCredentials;

use crate::support::{self, raw_server};

/// The token lives 24 s and counts as expired after 18: the 6 s between, a quarter of its life
/// (the most a margin can take), are the window each test's requests must fall in, long enough
/// for a machine whose every core is busy elsewhere.
const LIFETIME_S: u64 = 24;
const MARGIN: Duration = Duration::from_secs(6);

/// How the token endpoint fails once it has handed out `token-1`.
enum Failure {
    Status(u16),
    TimedOut,
    Refused,
}

/// Gets `token-1`, lets the token endpoint fail as `failure` says, waits until the token counts
/// as expired, then sends 10 requests at once; what the API answered to each, and the
/// middleware.
async fn requests_inside_the_margin(failure: Failure) -> (Vec<u16>, ClientCredentials) {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    support::api_accepting(&api, "token-1").await;
    let first = support::token_json("token-1", Some(LIFETIME_S));
    let endpoint = match failure {
        Failure::Refused => raw_server::token_endpoint_answering_once(first).await,
        _ => {
            let body = first.clone();
            auth.mock_async(move |when, then| {
                when.method("POST").path(support::TOKEN_PATH);
                then.status(200).body(body);
            })
            .await;
            auth.url(support::TOKEN_PATH)
        }
    };
    let middleware =
        ClientCredentials::builder(endpoint, support::CLIENT_ID, support::CLIENT_SECRET)
            .token_retry(support::fast_retry(1))
            .token_request_timeout(Duration::from_millis(200))
            .expiry_margin(MARGIN)
            .refresh_ahead(false)
            .build()
            .unwrap();
    let token = middleware.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "token-1");

    auth.reset_async().await;
    match failure {
        Failure::Status(status) => {
            auth.mock_async(move |when, then| {
                when.method("POST").path(support::TOKEN_PATH);
                then.status(status).body("{}");
            })
            .await;
        }
        Failure::TimedOut => {
            auth.mock_async(|when, then| {
                when.method("POST").path(support::TOKEN_PATH);
                then.status(200)
                    .delay(Duration::from_secs(5))
                    .body(support::token_json("token-late", Some(3600)));
            })
            .await;
        }
        Failure::Refused => {}
    }
    support::sleep_until(token.stale_at(MARGIN)).await;

    let client = support::client(middleware.clone());
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let (client, url) = (client.clone(), api.url("/fruits"));
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        let response = request.await.unwrap().expect("a response, not an error");
        statuses.push(response.status().as_u16());
    }
    assert!(
        !token.is_expired_at(std::time::SystemTime::now()),
        "the test ran past the token's real expiry: it proves nothing"
    );
    (statuses, middleware)
}

async fn assert_the_current_token_served(failure: Failure) {
    let (statuses, middleware) = requests_inside_the_margin(failure).await;
    assert_eq!(statuses, vec![200; 10], "no request failed");
    let stats = middleware.stats();
    assert!(
        stats.failed_fetches >= 1,
        "a fetch was tried, and failed: {stats:?}"
    );
    assert_eq!(stats.tokens_fetched, 1, "{stats:?}");
}

#[tokio::test]
async fn a_500_from_the_token_endpoint_leaves_the_current_token_in_use() {
    assert_the_current_token_served(Failure::Status(500)).await;
}

#[tokio::test]
async fn a_503_without_a_time_leaves_the_current_token_in_use() {
    assert_the_current_token_served(Failure::Status(503)).await;
}

#[tokio::test]
async fn a_token_endpoint_that_times_out_leaves_the_current_token_in_use() {
    assert_the_current_token_served(Failure::TimedOut).await;
}

#[tokio::test]
async fn a_token_endpoint_that_refuses_connections_leaves_the_current_token_in_use() {
    assert_the_current_token_served(Failure::Refused).await;
}

#[tokio::test]
async fn a_refused_client_is_told_even_while_its_token_has_not_expired() {
    for status in [400, 401] {
        let (auth, api) = (
            MockServer::start_async().await,
            MockServer::start_async().await,
        );
        let accepted = support::api_accepting(&api, "token-1").await;
        let (tokens, _) = support::numbered_tokens(&auth, Some(LIFETIME_S)).await;
        let middleware = support::builder(&auth)
            .expiry_margin(MARGIN)
            .refresh_ahead(false)
            .build()
            .unwrap();
        let token = middleware.token().await.unwrap();
        tokens.delete_async().await;
        auth.mock_async(move |when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(status).body(r#"{"error":"invalid_client"}"#);
        })
        .await;
        support::sleep_until(token.stale_at(MARGIN)).await;

        let error = support::client(middleware)
            .get(api.url("/fruits"))
            .send()
            .await
            .unwrap_err();
        let error = support::alf_error(&error);
        assert_eq!(
            error.oauth_error().map(|e| e.error()),
            Some("invalid_client"),
            "{status}: {error}"
        );
        accepted.assert_calls_async(0).await;
    }
}
