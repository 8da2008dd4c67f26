//! `AuthMethod::ClientAssertionFile`: a workload's token, read from its file for every token
//! request, sent as the client assertion; a bad file is a typed error and nothing is sent.

use std::path::{Path, PathBuf};

use httpmock::MockServer;
use reqwest_alf::{AuthMethod, ClientCredentials, ConfigError, Error};

use crate::support::assertion::{assertion_refusal, field, recording_token_endpoint};
use crate::support::{self, logs};

/// A file of this test's own in the temporary directory, removed when dropped.
struct AssertionFile(PathBuf);

impl AssertionFile {
    fn new() -> Self {
        let name = format!(
            "alf-assertion-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        );
        Self(std::env::temp_dir().join(name))
    }

    fn holds(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for AssertionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn middleware(auth: &MockServer, file: &AssertionFile) -> ClientCredentials {
    ClientCredentials::builder(auth.url(support::TOKEN_PATH), support::CLIENT_ID, "")
        .token_retry(support::fast_retry(2))
        .auth_method(AuthMethod::ClientAssertionFile(file.path().to_owned()))
        .build()
        .unwrap()
}

const FIRST: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLTE";
const ROTATED: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EiLCJuIjoyfQ.c2lnbmF0dXJlLTI";

#[tokio::test]
async fn each_fetch_reads_the_file_again_and_sends_what_it_holds_as_the_assertion() {
    let auth = MockServer::start_async().await;
    let (calls, bodies) = recording_token_endpoint(&auth).await;
    let file = AssertionFile::new();
    file.holds(&format!("{FIRST}\n"));
    let credentials = middleware(&auth, &file);

    let token = credentials.token().await.unwrap();
    credentials.invalidate(&token).await;
    file.holds(ROTATED);
    credentials.token().await.unwrap();

    calls.assert_calls_async(2).await;
    let bodies = bodies.all();
    assert_eq!(field(&bodies[0], "client_assertion"), FIRST);
    assert_eq!(field(&bodies[1], "client_assertion"), ROTATED);
    for body in &bodies {
        assert_eq!(
            field(body, "client_assertion_type"),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(field(body, "client_id"), support::CLIENT_ID);
        assert!(!body.contains("client_secret"), "{body}");
    }
}

#[tokio::test]
async fn a_missing_empty_or_foreign_file_is_a_typed_error_and_nothing_is_sent() {
    let captured = logs::crate_logs();
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (calls, _) = recording_token_endpoint(&auth).await;
    let never = support::api_counting_all(&api).await;
    let file = AssertionFile::new();
    let client = support::client(middleware(&auth, &file));

    for (content, reason) in [
        (None, "does not exist"),
        (Some(""), "is empty"),
        (Some("s3cr3t-but-not-a-jwt"), "does not hold a JWT"),
    ] {
        if let Some(content) = content {
            file.holds(content);
        }
        let error = client.get(api.url("/fruits")).send().await.unwrap_err();
        let (kind, from, why) = assertion_refusal(&error);
        assert_eq!(kind, "client assertion");
        assert_eq!(from, format!("the file {}", file.path().display()));
        assert!(why.starts_with(reason), "{why}");
    }

    calls.assert_calls_async(0).await;
    never.assert_calls_async(0).await;
    assert!(
        !captured.text().contains("s3cr3t-but-not-a-jwt"),
        "the file's content was logged"
    );
}

#[test]
fn an_empty_path_is_refused_at_build() {
    let result = ClientCredentials::builder("https://a.example/t", "id", "")
        .auth_method(AuthMethod::ClientAssertionFile(PathBuf::new()))
        .build();
    assert!(matches!(
        result,
        Err(Error::InvalidConfig(ConfigError::EmptyValue(_)))
    ));
}
