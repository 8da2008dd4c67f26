//! Reading the token response: what is accepted, and what becomes a typed error with the API
//! request never sent.

use std::time::{Duration, SystemTime};

use httpmock::MockServer;
use reqwest_alf::{ClientCredentialsBuilder, Error, TokenResponseError};

use crate::support::{self, TOKEN_PATH};

/// Serves `body` (with `content_type`) from the token endpoint; returns what the API saw and
/// what the caller got.
async fn respond_with(content_type: &str, body: &str) -> (usize, Result<u16, Error>) {
    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    let (content_type, body) = (content_type.to_owned(), body.to_owned());
    let token = auth
        .mock_async(move |when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(200)
                .header("content-type", content_type)
                .body(body);
        })
        .await;
    let any_api_call = support::api_counting_all(&api).await;

    let client = support::client(support::builder(&auth).build().unwrap());
    let outcome = match client.get(api.url("/fruits")).send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => Err(support::alf_error(&error).clone()),
    };
    // A malformed answer is final: no retry.
    token.assert_calls_async(1).await;
    (any_api_call.calls_async().await, outcome)
}

#[tokio::test]
async fn unusable_token_responses_are_typed_errors_and_the_api_is_not_called() {
    use TokenResponseError as R;
    let cases = [
        (
            "text/html",
            "<html><body>Bad gateway</body></html>",
            R::NotJson,
        ),
        ("application/json", "", R::NotJson),
        ("application/json", "[\"token\"]", R::NotJson),
        (
            "application/json",
            r#"{"token_type":"Bearer"}"#,
            R::MissingAccessToken,
        ),
        (
            "application/json",
            r#"{"access_token":""}"#,
            R::EmptyAccessToken,
        ),
        (
            "application/json",
            r#"{"access_token":12345}"#,
            R::NotAString("access_token"),
        ),
        (
            "application/json",
            r#"{"access_token":"abc\r\nSet-Cookie: x=1"}"#,
            R::AccessTokenNotHeaderSafe,
        ),
        (
            "application/json",
            r#"{"access_token":"a b"}"#,
            R::AccessTokenNotHeaderSafe,
        ),
        (
            "application/json",
            r#"{"access_token":"abc","token_type":"MAC"}"#,
            R::UnsupportedTokenType("MAC".into()),
        ),
        (
            "application/json",
            r#"{"access_token":"abc","expires_in":-3600}"#,
            R::InvalidExpiresIn("-3600".into()),
        ),
        (
            "application/json",
            r#"{"access_token":"abc","expires_in":99999999999}"#,
            R::InvalidExpiresIn("99999999999".into()),
        ),
        (
            "application/json",
            r#"{"access_token":"abc","expires_in":"an hour"}"#,
            R::InvalidExpiresIn("(a string of 7 characters)".into()),
        ),
    ];
    for (content_type, body, expected) in cases {
        let (api_calls, outcome) = respond_with(content_type, body).await;
        assert_eq!(api_calls, 0, "the API was called after {body:?}");
        match outcome {
            Err(Error::InvalidTokenResponse {
                reason, endpoint, ..
            }) => {
                assert_eq!(reason, expected, "body: {body:?}");
                assert!(endpoint.ends_with(TOKEN_PATH), "{endpoint}");
            }
            other => panic!("body {body:?}: expected InvalidTokenResponse, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let huge = format!(
        r#"{{"access_token":"abc","padding":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let (api_calls, outcome) = respond_with("application/json", &huge).await;
    assert_eq!(api_calls, 0);
    assert!(
        matches!(
            outcome,
            Err(Error::InvalidTokenResponse {
                reason: TokenResponseError::BodyTooLarge(_),
                ..
            })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn lenient_forms_real_servers_send_are_accepted() {
    for body in [
        r#"{"access_token":"abc","token_type":"bearer","expires_in":"3600"}"#,
        r#"{"access_token":"abc","token_type":"BEARER","expires_in":3600,"extra":{"x":1}}"#,
        r#"{"access_token":"00Dx!AQ4AQ.b-_~+/=","expires_in":null,"scope":null}"#,
    ] {
        let (api_calls, outcome) = respond_with("application/json; charset=utf-8", body).await;
        assert_eq!(outcome.unwrap(), 200, "{body}");
        assert_eq!(api_calls, 1, "{body}");
    }
}

async fn lifetime_of(body: &str, default: Option<Duration>) -> (Duration, Duration) {
    let auth = MockServer::start_async().await;
    let body = body.to_owned();
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.status(200).body(body);
    })
    .await;
    let mut builder = support::builder(&auth);
    if let Some(default) = default {
        builder = builder.default_expires_in(default);
    }
    let before = SystemTime::now();
    let token = builder.build().unwrap().token().await.unwrap();
    let issued_after_start = token.issued_at().duration_since(before).unwrap();
    (token.lifetime(), issued_after_start)
}

#[tokio::test]
async fn expires_in_sets_the_lifetime_from_when_the_request_was_sent() {
    let (lifetime, issued_after_start) =
        lifetime_of(&support::token_json("abc", Some(120)), None).await;
    assert_eq!(lifetime, Duration::from_secs(120));
    // issued_at is taken just before sending, so it is never before we asked.
    assert!(issued_after_start < Duration::from_secs(5));
}

#[tokio::test]
async fn a_missing_expires_in_means_one_hour_by_default() {
    let (lifetime, _) = lifetime_of(&support::token_json("abc", None), None).await;
    assert_eq!(lifetime, ClientCredentialsBuilder::DEFAULT_EXPIRES_IN);
    assert_eq!(lifetime, Duration::from_secs(3600));
}

#[tokio::test]
async fn a_missing_expires_in_takes_the_configured_default() {
    let day = Duration::from_secs(24 * 60 * 60);
    let (lifetime, _) = lifetime_of(&support::token_json("abc", None), Some(day)).await;
    assert_eq!(lifetime, day);
    // The server's own expires_in always wins.
    let (lifetime, _) = lifetime_of(&support::token_json("abc", Some(60)), Some(day)).await;
    assert_eq!(lifetime, Duration::from_secs(60));
}

#[tokio::test]
async fn the_granted_scope_is_kept() {
    let auth = MockServer::start_async().await;
    auth.mock_async(|when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.status(200)
            .body(r#"{"access_token":"abc","expires_in":60,"scope":"read:fruits"}"#);
    })
    .await;
    let token = support::builder(&auth)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert_eq!(token.scope(), Some("read:fruits"));
}

#[tokio::test]
async fn a_lifetime_beyond_max_token_lifetime_is_shortened_to_it() {
    let auth = MockServer::start_async().await;
    support::numbered_tokens(&auth, Some(86_400)).await;
    let hour = Duration::from_secs(3600);
    let token = support::builder(&auth)
        .max_token_lifetime(hour)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert_eq!(token.lifetime(), hour);
}
