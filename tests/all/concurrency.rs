//! Many tasks at once: one token call per key, whatever the concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use httpmock::{HttpMockRequest, MockServer};
use reqwest_alf::{Error, MemoryStorage};
use tokio::sync::Barrier;

use crate::support::{self, Counter, Gate, TOKEN_PATH};

const TASKS: usize = 100;

/// Sends `TASKS` requests from as many tasks, released together; returns their statuses or
/// errors.
async fn send_together(
    client: reqwest_middleware::ClientWithMiddleware,
    url: String,
) -> Vec<Result<u16, reqwest_middleware::Error>> {
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, url, start) = (client.clone(), url.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                client.get(url).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_cache_makes_one_token_call_for_a_hundred_concurrent_requests() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let outcomes = send_together(client, api.url("/fruits")).await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert_eq!(token_calls.get(), 1);
    fruits.assert_calls_async(TASKS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn middlewares_with_the_same_settings_and_storage_share_one_fetch() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let storage = MemoryStorage::new();
    let first = support::client(
        support::builder(&auth)
            .storage(storage.clone())
            .build()
            .unwrap(),
    );
    let second = support::client(support::builder(&auth).storage(storage).build().unwrap());

    let (a, b) = tokio::join!(
        send_together(first, api.url("/fruits")),
        send_together(second, api.url("/fruits"))
    );

    assert!(a.iter().chain(&b).all(|o| matches!(o, Ok(200))));
    assert_eq!(token_calls.get(), 1);
    fruits.assert_calls_async(2 * TASKS).await;
}

/// On a current-thread runtime every spawned task runs up to its first await (where it joins
/// the fetch in flight) before the test task runs again and opens the gate, so all of them are
/// waiting on the one failing fetch.
#[tokio::test]
async fn a_failed_fetch_is_reported_to_every_waiter_and_the_next_request_tries_again() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let gate = Gate::default();
    let token_calls = Counter::default();
    let (held, counter) = (gate.clone(), token_calls.clone());
    let refusing = auth
        .mock_async(move |when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.respond_with(move |_: &HttpMockRequest| {
                counter.bump();
                held.wait();
                support::json_response(
                    401,
                    r#"{"error":"invalid_client","error_description":"Unauthorized"}"#,
                )
            });
        })
        .await;
    let any_api_call = support::api_counting_all(&api).await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, url) = (client.clone(), api.url("/fruits"));
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    tokio::task::yield_now().await;
    gate.open();

    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        match support::alf_error(&error) {
            Error::TokenEndpoint {
                status,
                oauth_error,
                ..
            } => {
                assert_eq!(*status, 401);
                assert_eq!(oauth_error.as_ref().unwrap().error(), "invalid_client");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(token_calls.get(), 1, "one fetch, its failure shared by all");
    any_api_call.assert_calls_async(0).await;

    refusing.delete_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let response = client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_401s_make_one_new_token_call() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let revoked = support::api_rejecting(&api, "token-1").await;
    let fruits = support::api_accepting(&api, "token-2").await;
    let credentials = support::builder(&auth).build().unwrap();
    // Every task starts with token-1 cached, so they meet their 401s together.
    credentials.token().await.unwrap();
    let client = support::client(credentials);

    let outcomes = send_together(client, api.url("/fruits")).await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert_eq!(
        token_calls.get(),
        2,
        "token-1, then one replacement for all"
    );
    // Each request ends with token-2, once; how many first met token-1 depends on when the
    // first 401 was handled, so it is only bounded.
    fruits.assert_calls_async(TASKS).await;
    let rejected = revoked.calls_async().await;
    assert!(
        (1..=TASKS).contains(&rejected),
        "{rejected} requests met the 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn storms_of_401s_on_many_threads_are_all_replayed_with_one_new_token_each() {
    const ROUNDS: usize = 20;
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let floor = Arc::new(AtomicUsize::new(1));
    support::api_taking_tokens_from(&api, floor.clone()).await;
    let credentials = support::builder(&auth).build().unwrap();
    credentials.token().await.unwrap();
    let client = support::client(credentials);

    for round in 1..=ROUNDS {
        // Every token issued so far is revoked: each request meets its 401 with the token it
        // holds, and all of them at once.
        floor.store(token_calls.get() + 1, Ordering::SeqCst);
        let outcomes = send_together(client.clone(), api.url("/fruits")).await;
        let refused = outcomes.iter().filter(|o| !matches!(o, Ok(200))).count();
        assert_eq!(refused, 0, "round {round}: {outcomes:?}");
        assert_eq!(token_calls.get(), 1 + round, "round {round}: one new token");
    }
}

/// A caller that gives up while its token is being fetched (a deadline, a dropped request)
/// leaves the fetch running: it stores its token and gives back its refresh lease, and the
/// next caller gets that token rather than wait for a lease no one holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_caller_gave_up_still_serves_the_next_one() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (gate, token_calls) = (Gate::default(), Counter::default());
    let (held, counter) = (gate.clone(), token_calls.clone());
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            let n = counter.bump();
            held.wait();
            support::json_response(200, &support::token_json(&format!("token-{n}"), Some(3600)))
        });
    })
    .await;
    let fruits = support::api_accepting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let gave_up = tokio::spawn({
        let (client, url) = (client.clone(), api.url("/fruits"));
        async move { client.get(url).send().await }
    });
    while token_calls.get() == 0 {
        tokio::task::yield_now().await;
    }
    gave_up.abort();
    assert!(gave_up.await.unwrap_err().is_cancelled());
    gate.open();

    let response = client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        token_calls.get(),
        1,
        "the abandoned fetch's token served the next caller"
    );
    fruits.assert_calls_async(1).await;
}
