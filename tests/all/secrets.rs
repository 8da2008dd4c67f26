//! Secrets never show: not in `Debug`, not in error messages, not in logs.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use httpmock::MockServer;
use reqwest_alf::{
    AuthMethod, ClientCredentials, ConfigError, Error, MemoryStorage, TokenResponseError,
};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{self, CLIENT_SECRET};

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
        Error::InvalidTokenResponse {
            endpoint: "https://example.com/t".into(),
            reason: TokenResponseError::AccessTokenNotHeaderSafe,
        },
    ];
    for error in errors {
        assert_hidden(&format!("{error} {error:?}"));
    }
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything the crate logs, from every test in this binary, at every level.
///
/// A process-wide subscriber rather than a per-test `set_default`: tracing caches per call site
/// whether anyone listens, and a sibling test on a thread with no subscriber would otherwise
/// switch the crate's call sites off for this one (tokio-rs/tracing#3611). As a bonus, the logs
/// of every test, all of which use the same client secret, are checked.
fn crate_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(captured.clone())
                    .with_ansi(false),
            )
            .with(Targets::new().with_target("reqwest_alf", tracing::Level::TRACE));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a global subscriber");
        captured
    })
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secret() {
    let captured = crate_logs();

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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
