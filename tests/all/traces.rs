//! A token fetch is a `tracing` span of its own, with OpenTelemetry's HTTP client fields: under
//! the span of the request that waited for it, or a root for a background refresh.

use httpmock::MockServer;
use reqwest_alf::MemoryStorage;
use tracing::Instrument;

use crate::support::logs::{self, ClosedSpan};
use crate::support::{self, Seeded};

/// The fetch spans closed for the token endpoint of `auth` after the first `mark` of them
/// (mock servers are pooled: an earlier test may have used the same address).
fn fetches_from(auth: &MockServer, mark: usize) -> Vec<ClosedSpan> {
    let endpoint = auth.url(support::TOKEN_PATH);
    let mut fetches = logs::closed_spans()
        .matching(|span| span.name == "POST" && span.field("url.full") == Some(endpoint.as_str()));
    fetches.drain(..mark.min(fetches.len()));
    fetches
}

/// A token endpoint handing out `token-1`, `token-2`, … and an API, on servers of their own;
/// how many fetch spans that token endpoint's address had before.
async fn servers() -> (MockServer, MockServer, usize) {
    logs::crate_logs();
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let mark = fetches_from(&auth, 0).len();
    support::numbered_tokens(&auth, Some(3600)).await;
    (auth, api, mark)
}

#[tokio::test]
async fn a_fetch_is_a_span_under_the_request_that_waited_for_it() {
    let (auth, api, mark) = servers().await;
    support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let status = client
        .get(api.url("/fruits"))
        .send()
        .instrument(tracing::info_span!("api_call"))
        .await
        .unwrap()
        .status();

    assert_eq!(status, 200);
    let [fetch] = <[ClosedSpan; 1]>::try_from(fetches_from(&auth, mark)).unwrap();
    assert_eq!(fetch.parent.as_deref(), Some("api_call"));
    for (field, value) in [
        ("otel.kind", "client"),
        ("http.request.method", "POST"),
        ("http.response.status_code", "200"),
        ("server.address", "127.0.0.1"),
        ("alf.attempts", "1"),
        ("alf.outcome", "fetched"),
        ("otel.status_code", "OK"),
    ] {
        assert_eq!(fetch.field(field), Some(value), "{field} in {fetch:?}");
    }
    assert_eq!(
        fetch.field("server.port"),
        Some(auth.address().port().to_string().as_str())
    );
    assert_eq!(fetch.field("error.type"), None);
}

#[tokio::test]
async fn a_failed_fetch_says_how_often_it_asked_and_why_it_failed() {
    logs::crate_logs();
    let auth = MockServer::start_async().await;
    let mark = fetches_from(&auth, 0).len();
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(503);
    })
    .await;

    support::builder(&auth)
        .token_retry(support::fast_retry(2))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();

    let [fetch] = <[ClosedSpan; 1]>::try_from(fetches_from(&auth, mark)).unwrap();
    for (field, value) in [
        ("http.response.status_code", "503"),
        ("alf.attempts", "3"),
        ("alf.outcome", "server_error"),
        ("error.type", "server_error"),
        ("otel.status_code", "ERROR"),
    ] {
        assert_eq!(fetch.field(field), Some(value), "{field} in {fetch:?}");
    }
}

#[tokio::test]
async fn a_background_refresh_is_a_root_span() {
    let (auth, api, mark) = servers().await;
    support::api_counting_all(&api).await;
    let storage = Seeded {
        inner: MemoryStorage::new(),
        seed: support::token_in_its_refresh_window("old"),
    };
    let client = support::client(support::builder(&auth).storage(storage).build().unwrap());

    // The first request takes the stored token; the second finds it due, and starts the
    // refresh in the background.
    for _ in 0..2 {
        client
            .get(api.url("/fruits"))
            .send()
            .instrument(tracing::info_span!("api_call"))
            .await
            .unwrap();
    }

    support::eventually("the background refresh ends", async || {
        !fetches_from(&auth, mark).is_empty()
    })
    .await;
    let [fetch] = <[ClosedSpan; 1]>::try_from(fetches_from(&auth, mark)).unwrap();
    assert_eq!(fetch.parent, None, "{fetch:?}");
    assert_eq!(fetch.field("alf.outcome"), Some("fetched"));
}
