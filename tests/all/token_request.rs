//! The token request on the wire: method, form body, client authentication, headers.

use httpmock::MockServer;
use reqwest_alf::{AuthMethod, ClientCredentials};

use crate::support::{self, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH};

#[tokio::test]
async fn client_secret_basic_is_the_default_and_form_encodes_before_base64() {
    let auth = MockServer::start_async().await;
    // base64("my+client%3A1:p%40ss%3Aw%2Frd+%C3%A9%2B%26"), per RFC 6749 §2.3.1.
    let token = auth
        .mock_async(|when, then| {
            when.method("POST")
                .path(TOKEN_PATH)
                .header(
                    "authorization",
                    "Basic bXkrY2xpZW50JTNBMTpwJTQwc3MlM0F3JTJGcmQrJUMzJUE5JTJCJTI2",
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body("grant_type=client_credentials");
            then.status(200)
                .body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials =
        ClientCredentials::builder(auth.url(TOKEN_PATH), "my client:1", "p@ss:w/rd é+&")
            .build()
            .unwrap();
    let got = credentials.token().await.unwrap();

    assert_eq!(got.access_token().secret(), "tok");
    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let auth = MockServer::start_async().await;
    let token = auth
        .mock_async(|when, then| {
            when.method("POST")
                .path(TOKEN_PATH)
                .header_missing("authorization")
                .body(format!(
                    "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
                ));
            then.status(200).body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials = support::builder(&auth)
        .auth_method(AuthMethod::ClientSecretPost)
        .build()
        .unwrap();
    credentials.token().await.unwrap();

    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn audience_scope_and_extra_parameters_are_sent_in_order() {
    let auth = MockServer::start_async().await;
    let token = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH).body(
                "grant_type=client_credentials\
                 &audience=https%3A%2F%2Ffruits.example%2F\
                 &scope=read%3Afruits+write%3Afruits\
                 &resource=https%3A%2F%2Ffruits.example%2Fv2\
                 &organization=org_1\
                 &client_id=test-client&client_secret=s3cr3t-client-secret",
            );
            then.status(200)
                .body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials = support::builder(&auth)
        .auth_method(AuthMethod::ClientSecretPost)
        .audience("https://fruits.example/")
        .scope("read:fruits write:fruits")
        .extra_param("resource", "https://fruits.example/v2")
        .extra_param("organization", "org_1")
        .build()
        .unwrap();
    credentials.token().await.unwrap();

    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn token_requests_do_not_follow_redirects() {
    let auth = MockServer::start_async().await;
    let elsewhere = MockServer::start_async().await;
    let redirect = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(307).header("location", elsewhere.url("/steal"));
        })
        .await;
    let thief = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200)
                .body(support::token_json("stolen", Some(60)));
        })
        .await;

    let error = support::token_error(&auth).await;

    assert!(
        matches!(error, reqwest_alf::Error::TokenEndpoint { status, .. } if status == 307),
        "{error:?}"
    );
    redirect.assert_calls_async(1).await;
    thief.assert_calls_async(0).await;
}
