//! A 401 from the API: a new token and one replay, never more.

use futures_util::stream;
use std::sync::{Arc, Mutex};

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use reqwest_alf::MemoryStorage;

use crate::support::{self, logs};

#[tokio::test]
async fn a_401_gets_a_new_token_and_replays_once() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let revoked = support::api_rejecting(&api, "token-1").await;
    let fruits = api
        .mock_async(|when, then| {
            when.method("POST")
                .path("/fruits")
                .header("authorization", "Bearer token-2")
                .header("x-request", "kept")
                .body("name=cherry");
            then.status(201);
        })
        .await;
    let revoked_post = api
        .mock_async(|when, then| {
            when.method("POST")
                .path("/fruits")
                .header("authorization", "Bearer token-1");
            then.status(401);
        })
        .await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client
        .post(api.url("/fruits"))
        .header("x-request", "kept")
        .body("name=cherry")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 201);
    assert_eq!(token_calls.get(), 2);
    revoked_post.assert_calls_async(1).await;
    fruits.assert_calls_async(1).await;
    revoked.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_second_401_goes_to_the_caller_as_it_is() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let always_401 = api
        .mock_async(|when, then| {
            when.method("GET").path("/fruits");
            then.status(401)
                .header("www-authenticate", "Bearer")
                .body("go away");
        })
        .await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client.get(api.url("/fruits")).send().await.unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.text().await.unwrap(), "go away");
    assert_eq!(token_calls.get(), 2);
    always_401.assert_calls_async(2).await;
}

#[tokio::test]
async fn a_streaming_body_is_not_replayed() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let revoked = api
        .mock_async(|when, then| {
            when.method("PUT")
                .path("/upload")
                .header("authorization", "Bearer token-1");
            then.status(401);
        })
        .await;
    let accepted = support::api_accepting(&api, "token-2").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let chunks = stream::iter([Ok::<_, std::io::Error>("part one, "), Ok("part two")]);
    let response = client
        .put(api.url("/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401, "the 401 goes to the caller");
    assert_eq!(
        token_calls.get(),
        1,
        "no new token for a request that is not replayed"
    );
    revoked.assert_calls_async(1).await;

    // The rejected token is forgotten all the same: the next request gets a new one.
    let response = client.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 2);
    accepted.assert_calls_async(1).await;
}

#[tokio::test]
async fn an_authorization_header_set_by_the_caller_is_left_alone() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let own = api
        .mock_async(|when, then| {
            when.method("GET")
                .path("/fruits")
                .header("authorization", "Basic b3du");
            then.status(401);
        })
        .await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client
        .get(api.url("/fruits"))
        .header("authorization", "Basic b3du")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401, "not replayed");
    assert_eq!(token_calls.get(), 0, "no token fetched");
    own.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_stale_401_does_not_wipe_the_token_another_instance_just_stored() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let storage = MemoryStorage::new();
    let a = support::client(
        support::builder(&auth)
            .storage(storage.clone())
            .build()
            .unwrap(),
    );
    let b_credentials = support::builder(&auth)
        .storage(storage.clone())
        .build()
        .unwrap();
    let b = support::client(b_credentials.clone());

    // Both instances start with token-1, shared through the storage.
    let accepted = support::api_accepting(&api, "token-1").await;
    a.get(api.url("/fruits")).send().await.unwrap();
    b.get(api.url("/fruits")).send().await.unwrap();
    assert_eq!(token_calls.get(), 1);
    accepted.delete_async().await;

    // token-1 is revoked. A meets the 401 first and stores token-2.
    let revoked = support::api_rejecting(&api, "token-1").await;
    let fruits = support::api_accepting(&api, "token-2").await;
    assert_eq!(
        a.get(api.url("/fruits")).send().await.unwrap().status(),
        200
    );
    assert_eq!(token_calls.get(), 2);

    // B still holds token-1; its 401 must not remove token-2, which B then picks up.
    assert_eq!(
        b.get(api.url("/fruits")).send().await.unwrap().status(),
        200
    );
    assert_eq!(token_calls.get(), 2, "token-2 survived B's stale 401");
    assert_eq!(
        b_credentials.token().await.unwrap().access_token().secret(),
        "token-2"
    );
    revoked.assert_calls_async(2).await;
    fruits.assert_calls_async(2).await;
}

#[tokio::test]
async fn if_no_new_token_can_be_had_after_a_401_the_caller_gets_the_error() {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let first = auth
        .mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(200)
                .body(support::token_json("token-1", Some(3600)));
        })
        .await;
    first.up_to_n_times_async(1).await;
    let refused = auth
        .mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(401).body(r#"{"error":"invalid_client"}"#);
        })
        .await;
    let revoked = support::api_rejecting(&api, "token-1").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();

    let error = support::alf_error(&error);
    assert_eq!(error.oauth_error().unwrap().error(), "invalid_client");
    first.assert_calls_async(1).await;
    refused.assert_calls_async(1).await;
    revoked.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_401_from_another_origin_a_redirect_led_to_keeps_the_token_and_is_not_replayed() {
    let captured = logs::crate_logs();
    let (auth, api, elsewhere) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let moved = api
        .mock_async(|when, then| {
            when.method("POST")
                .path("/fruits")
                .header("authorization", "Bearer token-1");
            then.status(302)
                .header("location", elsewhere.url("/fruits"));
        })
        .await;
    // reqwest drops the token on the way to another origin: this server never sees it.
    let refusing = elsewhere
        .mock_async(|when, then| {
            when.path("/fruits").header_missing("authorization");
            then.status(401);
        })
        .await;
    let auth_middleware = support::builder(&auth)
        .audience("https://redirected-401.example")
        .build()
        .unwrap();
    let client = support::client(auth_middleware);

    for _ in 0..3 {
        let response = client
            .post(api.url("/fruits"))
            .body("name=cherry")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.url().origin(),
            url::Url::parse(&elsewhere.base_url()).unwrap().origin()
        );
    }

    assert_eq!(token_calls.get(), 1, "the token was never rejected");
    moved.assert_calls_async(3).await;
    refusing.assert_calls_async(3).await;
    let logged = captured.text();
    let why = logged
        .lines()
        .filter(|line| line.contains("DEBUG") && line.contains("never saw the token"))
        .count();
    assert!(why >= 3, "each unreplayed 401 says why: {logged}");
}

#[tokio::test]
async fn a_401_after_a_redirect_within_the_origin_gets_a_new_token_and_one_replay() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let moved = api
        .mock_async(|when, then| {
            when.method("GET").path("/old-fruits");
            then.status(302).header("location", "/fruits");
        })
        .await;
    let revoked = support::api_rejecting(&api, "token-1").await;
    let accepted = support::api_accepting(&api, "token-2").await;
    let client = support::client(support::builder(&auth).build().unwrap());

    let response = client.get(api.url("/old-fruits")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(token_calls.get(), 2);
    moved.assert_calls_async(2).await;
    revoked.assert_calls_async(1).await;
    accepted.assert_calls_async(1).await;
}

#[tokio::test]
async fn an_api_that_refuses_every_token_gets_new_ones_at_a_slowing_pace_and_one_warning() {
    let captured = logs::crate_logs();
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, token_calls) = support::numbered_tokens(&auth, Some(3600)).await;
    // Issued for another API: this one refuses every token, and notes which it was sent.
    let sent = Arc::new(Mutex::new(Vec::new()));
    let noted = sent.clone();
    let refusing = api
        .mock_async(move |when, then| {
            when.method("GET").path("/fruits");
            then.respond_with(move |request: &HttpMockRequest| {
                let authorization = request.headers().get("authorization").cloned();
                noted.lock().unwrap().push(format!("{authorization:?}"));
                HttpMockResponse::builder()
                    .status(401)
                    .header("www-authenticate", r#"Bearer error="invalid_token""#)
                    .build()
            });
        })
        .await;
    let middleware = support::builder(&auth)
        .audience("https://refused-everywhere.example")
        .build()
        .unwrap();
    // This middleware's storage key, which its log lines carry, from its Debug output.
    let shown = format!("{middleware:?}");
    let key = shown
        .split("key: \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let client = support::client(middleware);

    // Each request waits for the pace (1 s, then 2 s) before its token is fetched, and then
    // its replay's: no token the API refused goes out again.
    for request in 1..=3 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(token_calls.get(), 2 * request, "after request {request}");
    }
    refusing.assert_calls_async(2 * 3).await;
    let sent = sent.lock().unwrap().clone();
    let mut distinct = sent.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        sent.len(),
        "a refused token went out again: {sent:?}"
    );
    let logged = captured.text();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains(&key))
        .filter(|line| line.contains("WARN") && line.contains("refused the token a replay got"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    for cause in ["audience", "resource", "scope"] {
        assert!(warnings[0].contains(cause), "{}", warnings[0]);
    }
}
