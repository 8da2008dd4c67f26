//! Refreshing ahead: a token in its refresh window is replaced in the background while requests
//! keep going out with it, one refresh at a time, with a pause after a failure.

use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use httpmock::{HttpMockRequest, MockServer};
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{AccessToken, ClientCredentials, MemoryStorage, Token};
use reqwest_middleware::ClientWithMiddleware;

use crate::support::{self, Counter, Gate, Seeded, TOKEN_PATH, TokenUses};

/// A token endpoint that counts its calls and answers `status` with a token `new` for an
/// hour once `gate` opens.
async fn gated_token_endpoint(auth: &MockServer, gate: &Gate, status: u16) -> Counter {
    let calls = Counter::default();
    let (counter, gate) = (calls.clone(), gate.clone());
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            counter.bump();
            gate.wait();
            support::json_response(status, &support::token_json("new", Some(3600)))
        });
    })
    .await;
    calls
}

/// A middleware whose storage holds `old`, a token in its refresh window, and an API that
/// takes any token.
async fn in_the_window(
    auth: &MockServer,
    api: &MockServer,
    configure: impl FnOnce(
        reqwest_alf::ClientCredentialsBuilder,
    ) -> reqwest_alf::ClientCredentialsBuilder,
) -> (ClientCredentials, ClientWithMiddleware, TokenUses) {
    let uses = support::api_counting_by_token(api).await;
    let storage = Seeded {
        inner: MemoryStorage::new(),
        seed: support::token_in_its_refresh_window("old"),
    };
    let credentials = configure(support::builder(auth).storage(storage))
        .build()
        .unwrap();
    let client = support::client(credentials.clone());
    (credentials, client, uses)
}

/// Sends `n` requests at once; their statuses. Fails if they are still waiting after 10 s,
/// which only a request held up by the gated token endpoint would be.
async fn send_together(client: &ClientWithMiddleware, api: &MockServer, n: usize) -> Vec<u16> {
    let url = api.url("/fruits");
    let requests = join_all((0..n).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    }));
    tokio::time::timeout(Duration::from_secs(10), requests)
        .await
        .expect("requests waited for the token endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_the_window_go_out_at_once_with_the_current_token_while_one_refresh_runs() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let gate = Gate::default();
    let calls = gated_token_endpoint(&auth, &gate, 200).await;
    let (credentials, client, uses) = in_the_window(&auth, &api, |b| b).await;

    // The token endpoint holds the refresh until the gate opens: every request below
    // completes while it is in flight.
    assert_eq!(send_together(&client, &api, 1).await, [200]);
    assert_eq!(send_together(&client, &api, 50).await, [200; 50]);
    support::eventually(
        "the background refresh reaches the token endpoint",
        async || calls.get() == 1,
    )
    .await;
    assert_eq!(send_together(&client, &api, 50).await, [200; 50]);

    assert_eq!(uses.of("old"), 101);
    assert_eq!(calls.get(), 1);
    assert_eq!(credentials.stats().refreshes_ahead, 1);

    gate.open();
    support::eventually("the new token is in use", async || {
        credentials.token().await.unwrap().access_token().secret() == "new"
    })
    .await;
    assert_eq!(send_together(&client, &api, 10).await, [200; 10]);
    assert_eq!(uses.of("new"), 10);
    assert_eq!(calls.get(), 1);
    let stats = credentials.stats();
    assert_eq!(stats.refreshes_ahead, 1);
    assert_eq!(stats.tokens_fetched, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_refresh_keeps_the_current_token_and_waits_before_trying_again() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let gate = Gate::default();
    gate.open();
    let calls = gated_token_endpoint(&auth, &gate, 503).await;
    // No retries within a fetch; ten seconds between background refreshes after a failure.
    let pauses = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_secs(10), Duration::from_secs(60))
        .build_with_max_retries(0);
    let (credentials, client, uses) = in_the_window(&auth, &api, |b| b.token_retry(pauses)).await;

    assert_eq!(send_together(&client, &api, 2).await, [200; 2]);
    support::eventually("the refresh has failed", async || {
        credentials.stats().failed_fetches == 1
    })
    .await;
    assert_eq!(send_together(&client, &api, 50).await, [200; 50]);

    assert_eq!(uses.of("old"), 52);
    assert_eq!(calls.get(), 1, "no new attempt before the pause is over");
    assert_eq!(credentials.stats().refreshes_ahead, 1);
}

#[tokio::test]
async fn refreshing_ahead_can_be_turned_off() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let gate = Gate::default();
    gate.open();
    let calls = gated_token_endpoint(&auth, &gate, 200).await;
    let (credentials, client, uses) = in_the_window(&auth, &api, |b| b.refresh_ahead(false)).await;

    assert_eq!(send_together(&client, &api, 20).await, [200; 20]);

    assert_eq!(uses.of("old"), 20);
    assert_eq!(calls.get(), 0);
    assert_eq!(credentials.stats().refreshes_ahead, 0);
}

#[tokio::test]
async fn a_refresh_window_that_is_not_a_share_of_the_lifetime_is_refused() {
    let auth = MockServer::start_async().await;
    for window in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        let error = support::builder(&auth)
            .refresh_window(window)
            .build()
            .unwrap_err();
        assert!(
            error.to_string().contains("refresh_window"),
            "{window}: {error}"
        );
    }
    assert!(support::builder(&auth).refresh_window(0.5).build().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_lived_tokens_are_refreshed_ahead_too_and_no_request_waits() {
    // Four seconds, a minute, two minutes, with the default 30 s margin: each is taken
    // four fifths into its refresh window, after any middleware's starting point and before
    // it counts as expired.
    for (lifetime, margin) in [(4, 1), (60, 15), (120, 30)] {
        let (auth, api) = (
            MockServer::start_async().await,
            MockServer::start_async().await,
        );
        let gate = Gate::default();
        let calls = gated_token_endpoint(&auth, &gate, 200).await;
        let uses = support::api_counting_by_token(&api).await;
        let (lifetime, margin) = (Duration::from_secs(lifetime), Duration::from_secs(margin));
        let window = lifetime / 4;
        let age = lifetime - margin - window / 5;
        let now = SystemTime::now();
        let storage = Seeded {
            inner: MemoryStorage::new(),
            seed: Token::new(AccessToken::new("old"), now - age, now - age + lifetime),
        };
        let credentials = support::builder(&auth).storage(storage).build().unwrap();
        let client = support::client(credentials.clone());

        // The refresh is held at the token endpoint: a request that waited for it would
        // still be waiting.
        assert_eq!(
            send_together(&client, &api, 10).await,
            [200; 10],
            "{lifetime:?}"
        );

        assert_eq!(uses.of("old"), 10, "{lifetime:?}");
        assert_eq!(credentials.stats().refreshes_ahead, 1, "{lifetime:?}");
        support::eventually("the refresh reaches the token endpoint", async || {
            calls.get() == 1
        })
        .await;
        gate.open();
    }
}
