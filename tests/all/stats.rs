//! `ClientCredentials::stats()`: what a middleware did, counted, and the same events logged with
//! the storage key's readable part.

use httpmock::MockServer;
use reqwest_alf::Stats;

use crate::support::{self, logs};

#[tokio::test]
async fn fetches_memory_hits_and_replays_are_counted_and_logged() {
    let captured = logs::crate_logs();
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    support::api_rejecting(&api, "token-1").await;
    support::api_accepting(&api, "token-2").await;
    let credentials = support::builder(&auth)
        .audience("https://stats.example")
        .build()
        .unwrap();
    let client = support::client(credentials.clone());
    let logged_before = captured.text().len();

    for _ in 0..3 {
        let status = client
            .get(api.url("/fruits"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }

    assert_eq!(calls.get(), 2);
    let mut expected = Stats::default();
    expected.token_requests = 2;
    expected.tokens_fetched = 2;
    expected.memory_hits = 2;
    expected.replays = 1;
    assert_eq!(credentials.stats(), expected);
    assert_eq!(
        credentials.clone().stats(),
        expected,
        "clones share the counts"
    );

    let debug = format!("{credentials:?}");
    let key = debug
        .split("key: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("Debug shows the storage key");
    assert!(key.starts_with("127.0.0.1:"), "{key}");
    let logged = captured.text()[logged_before..].to_owned();
    let lines: Vec<_> = logged.lines().filter(|line| line.contains(key)).collect();
    for event in [
        "fetched a new access token",
        "replaying once with a new token",
    ] {
        assert_eq!(
            lines.iter().filter(|line| line.contains(event)).count(),
            if event.starts_with("fetched") { 2 } else { 1 },
            "{event}: {lines:#?}"
        );
    }
}
