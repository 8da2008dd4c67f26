//! Secrets never show: not in `Debug`, not in error messages, not in logs.

use std::time::Duration;

use httpmock::MockServer;
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{AuthMethod, ClientCredentials, ConfigError, Error, Grant, MemoryStorage};

#[cfg(feature = "jwt")]
use crate::support::assertion::RSA_PRIVATE;
use crate::support::{self, CLIENT_SECRET, logs};

const TOKEN: &str = "eyJ0eXAi.s3cr3t-access-token.sig";

fn assert_hidden(shown: &str) {
    assert!(!shown.contains(CLIENT_SECRET), "client secret in: {shown}");
    assert!(!shown.contains(TOKEN), "access token in: {shown}");
    assert!(!shown.contains("s3cr3t"), "part of a secret in: {shown}");
}

#[tokio::test]
async fn debug_output_of_every_public_type_is_redacted() {
    let auth = MockServer::start_async().await;
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(200)
            .body(support::token_json(TOKEN, Some(3600)));
    })
    .await;
    let builder = support::builder(&auth).auth_method(AuthMethod::ClientSecretPost);
    assert_hidden(&format!("{builder:?} {builder:#?}"));
    let storage = MemoryStorage::new();
    let credentials = builder.storage(storage.clone()).build().unwrap();
    let token = credentials.token().await.unwrap();
    assert_eq!(token.access_token().secret(), TOKEN);

    assert_hidden(&format!("{credentials:?} {credentials:#?}"));
    assert_hidden(&format!("{token:?} {token:#?}"));
    assert_hidden(&format!("{:?}", token.access_token()));
    assert_hidden(&format!("{storage:?}"));
    let basic = support::builder(&auth).build().unwrap();
    assert_hidden(&format!("{basic:?}"));

    // A grant's extra parameters may carry anything: their values never show, in its Debug,
    // its label, the stats per grant, or a middleware routing to it.
    let grant = Grant::new()
        .audience("https://orders.example/")
        .extra_param("signing_key", CLIENT_SECRET);
    let routed = support::builder(&auth)
        .route("https://orders.example", grant.clone())
        .build()
        .unwrap();
    routed.token_for(&grant).await.unwrap();
    for shown in [
        format!("{grant:?} {grant:#?} {grant}"),
        format!("{routed:?} {routed:#?}"),
        format!("{:?}", routed.stats_by_grant()),
    ] {
        assert_hidden(&shown);
    }
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_private_key_never_shows() {
    use reqwest_alf::PrivateKey;

    let auth = MockServer::start_async().await;
    let key = PrivateKey::from_pem(RSA_PRIVATE).unwrap().key_id("kid-1");
    let key_body: String = RSA_PRIVATE.lines().nth(1).unwrap().to_owned();
    let builder = support::builder(&auth).auth_method(AuthMethod::PrivateKeyJwt(key.clone()));
    let with_key = format!("{builder:?} {builder:#?}");
    let credentials = support::builder(&auth)
        .auth_method(AuthMethod::PrivateKeyJwt(key.clone()))
        .build()
        .unwrap();
    for shown in [
        format!("{key:?} {key:#?}"),
        with_key,
        format!("{credentials:#?}"),
    ] {
        assert_hidden(&shown);
        assert!(
            !shown.contains(&key_body) && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_storage_debug_hides_the_password() {
    let storage = reqwest_alf::RedisStorage::from_url(&format!(
        "rediss://alf:{CLIENT_SECRET}@redis.example:6380/2"
    ))
    .unwrap();
    assert_hidden(&format!("{storage:?} {storage:#?}"));
}

#[test]
fn no_error_message_holds_a_secret() {
    let errors: Vec<Error> = vec![
        ConfigError::EmptyClientSecret.into(),
        ClientCredentials::builder("http://example.com/token", "id", CLIENT_SECRET)
            .build()
            .unwrap_err(),
        ClientCredentials::builder(
            format!("https://id:{CLIENT_SECRET}@example.com/t"),
            "id",
            "x",
        )
        .build()
        .unwrap_err(),
        ClientCredentials::builder("https://example.com/t", "id", CLIENT_SECRET)
            .extra_param("client_secret", CLIENT_SECRET)
            .build()
            .unwrap_err(),
        ClientCredentials::auth0("https://tenant.example/", "id", CLIENT_SECRET)
            .build()
            .unwrap_err(),
        ClientCredentials::auth0(format!("user:{CLIENT_SECRET}@tenant.example"), "id", "x")
            .build()
            .unwrap_err(),
        ClientCredentials::builder("https://example.com/t", "id", CLIENT_SECRET)
            .only_for([format!("https://user:{CLIENT_SECRET}@api.example")])
            .build()
            .unwrap_err(),
        ClientCredentials::builder("https://example.com/t", "id", CLIENT_SECRET)
            .max_token_response_bytes(1)
            .build()
            .unwrap_err(),
    ];
    #[cfg(feature = "jwt")]
    let errors = [
        errors,
        vec![reqwest_alf::PrivateKey::from_pem(RSA_PRIVATE.replace("MII", "xx")).unwrap_err()],
    ]
    .concat();
    for error in errors {
        assert_hidden(&format!("{error} {error:?}"));
    }
}

/// Every way a token call can fail, against a server that puts the access token (and the
/// client secret it was sent) everywhere it can: none of it reaches an error.
#[tokio::test]
async fn errors_from_the_token_endpoint_hold_no_secret() {
    let bodies = [
        (200, format!(r#"{{"access_token":"{TOKEN}\n"}}"#)),
        (
            200,
            format!(r#"{{"access_token":"{TOKEN}","expires_in":"{TOKEN}"}}"#),
        ),
        (
            200,
            format!(r#"{{"access_token":"{TOKEN}","expires_in":-1}}"#),
        ),
        (
            200,
            format!(r#"{{"access_token":"{TOKEN}","token_type":"mac"}}"#),
        ),
        (
            200,
            format!(r#"{{"token":"{TOKEN}","secret":"{CLIENT_SECRET}"}}"#),
        ),
        (200, format!("<html>{TOKEN} {CLIENT_SECRET}</html>")),
        (
            200,
            format!(
                r#"{{"access_token":"{TOKEN}","padding":"{}"}}"#,
                "x".repeat(70_000)
            ),
        ),
        (
            401,
            format!(r#"{{"error":"invalid_client","echo":"{CLIENT_SECRET}"}}"#),
        ),
        (503, format!("echo {CLIENT_SECRET}")),
    ];
    for (status, body) in bodies {
        let auth = MockServer::start_async().await;
        auth.mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(status).body(body.clone());
        })
        .await;
        for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
            let error =
                support::error_of_one_attempt(support::builder(&auth).auth_method(method)).await;
            assert_hidden(&format!("{error} {error:?}"));
        }
    }

    // A rate limit: the error every task then gets until it ends.
    let auth = MockServer::start_async().await;
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(429).header("retry-after", "60").body(format!(
            r#"{{"error":"too_many_requests","echo":"{TOKEN} {CLIENT_SECRET}"}}"#
        ));
    })
    .await;
    let limited = support::builder(&auth).token_retry(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_secs(60))
            .build_with_max_retries(0),
    );
    let error = limited.build().unwrap().token().await.unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert_hidden(&format!("{error} {error:?}"));

    // Nobody listening: the transport error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth/token", closed.local_addr().unwrap());
    drop(closed);
    let error =
        support::error_of_one_attempt(ClientCredentials::builder(url, "id", CLIENT_SECRET)).await;
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_hidden(&format!("{error} {error:?}"));
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secret() {
    let captured = logs::crate_logs();

    let auth = MockServer::start_async().await;
    let api = MockServer::start_async().await;
    // A retry, a token, a 401 and a replay, and a failed fetch: every log line the crate has.
    let busy = auth
        .mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(503).body(format!("echo {CLIENT_SECRET}"));
        })
        .await;
    busy.up_to_n_times_async(1).await;
    let first = auth
        .mock_async(|when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.status(200)
                .body(support::token_json(TOKEN, Some(3600)));
        })
        .await;
    first.up_to_n_times_async(1).await;
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(401)
            .body(r#"{"error":"invalid_client","error_description":"no"}"#);
    })
    .await;
    support::api_rejecting(&api, TOKEN).await;
    let client = support::client(
        support::builder(&auth)
            .auth_method(AuthMethod::ClientSecretPost)
            .build()
            .unwrap(),
    );

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();
    assert_hidden(&format!("{error} {error:?}"));

    let logs = captured.text();
    let endpoint = auth.url(support::TOKEN_PATH);
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains(&endpoint)).collect();
    assert!(
        ours.iter().any(|l| l.contains("retrying")),
        "the retry was logged: {logs}"
    );
    assert!(
        ours.iter().any(|l| l.contains("invalid_client")),
        "the refusal was logged: {logs}"
    );
    assert!(
        logs.contains("replaying once"),
        "the replay was logged: {logs}"
    );
    assert_hidden(&logs);
}
