//! DPoP (RFC 9449) against a server that verifies every proof: tokens bound to the key, a
//! proof per request, server nonces, and sharing only between middlewares with the same key.

use std::sync::{Arc, Mutex};

use http::{Extensions, HeaderMap};
use httpmock::MockServer;
use reqwest::{Request, Response};
use reqwest_alf::{ClientCredentials, DpopKey, JwtAlgorithm, MemoryStorage, TokenResponseError};
use reqwest_middleware::{ClientBuilder, Middleware, Next};

use crate::support::assertion::{EC_PRIVATE, RSA_PRIVATE};
use crate::support::dpop::{self, Verifier};
use crate::support::{self, Counter, alf_error};

fn ed25519_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}

fn middleware(auth: &MockServer, key: DpopKey) -> ClientCredentials {
    support::builder(auth).dpop(key).build().unwrap()
}

/// A token endpoint and an API on their own servers, each verifying every proof and asking for
/// its nonce (when given), and what they counted.
struct Verified {
    auth: MockServer,
    api: MockServer,
    verifier: Verifier,
    issued: Counter,
    accepted: Counter,
}

async fn verified(auth_nonce: Option<&'static str>, api_nonce: Option<&'static str>) -> Verified {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let verifier = Verifier::default();
    let issued = dpop::token_endpoint(&auth, &verifier, auth_nonce).await;
    let accepted = dpop::api(&api, &verifier, api_nonce).await;
    Verified {
        auth,
        api,
        verifier,
        issued,
        accepted,
    }
}

/// Keeps the headers of the last request that went past it, as it went on the wire.
#[derive(Clone, Default)]
struct LastHeaders(Arc<Mutex<HeaderMap>>);

#[async_trait::async_trait]
impl Middleware for LastHeaders {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        *self.0.lock().unwrap() = request.headers().clone();
        next.run(request, extensions).await
    }
}

#[tokio::test]
async fn every_token_and_api_request_carries_a_proof_the_server_verifies_for_each_key_type() {
    let keys = [
        ("generated", DpopKey::generate().unwrap()),
        ("EC P-256", DpopKey::from_pem(EC_PRIVATE).unwrap()),
        ("RSA", DpopKey::from_pem(RSA_PRIVATE).unwrap()),
        (
            "RSA PS256",
            DpopKey::from_pem(RSA_PRIVATE)
                .unwrap()
                .algorithm(JwtAlgorithm::Ps256)
                .unwrap(),
        ),
        ("Ed25519", DpopKey::from_pem(ed25519_pem()).unwrap()),
    ];
    for (name, key) in keys {
        let Verified {
            auth,
            api,
            verifier,
            issued,
            accepted,
            ..
        } = verified(None, None).await;
        let client = support::client(middleware(&auth, key.clone()));

        for _ in 0..3 {
            let response = client.get(api.url("/fruits")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
        }
        let response = client
            .post(api.url("/fruits?colour=red#top"))
            .body("apple")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{name}: htu without query and fragment"
        );

        assert_eq!(issued.get(), 1, "{name}");
        assert_eq!(accepted.get(), 4, "{name}");
        assert!(verifier.refusals.lock().unwrap().is_empty(), "{name}");
        let thumbprints = verifier.thumbprints.lock().unwrap().clone();
        assert_eq!(
            thumbprints.len(),
            5,
            "{name}: one token request, four API requests"
        );
        assert!(
            thumbprints.iter().all(|t| t == key.thumbprint()),
            "{name}: every proof signed with the key"
        );
    }
}

#[tokio::test]
async fn nonces_are_learned_from_the_token_endpoint_and_the_api_and_remembered() {
    let Verified {
        auth,
        api,
        verifier,
        issued,
        accepted,
    } = verified(Some("auth-nonce-1"), Some("api-nonce-1")).await;
    let auth_middleware = middleware(&auth, DpopKey::generate().unwrap());
    let client = support::client(auth_middleware.clone());

    for _ in 0..3 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    assert_eq!(issued.get(), 1);
    assert_eq!(accepted.get(), 3);
    let refusals = verifier.refusals.lock().unwrap().clone();
    assert_eq!(
        refusals.len(),
        2,
        "one proof without each server's nonce, then never again: {refusals:?}"
    );
    let stats = auth_middleware.stats();
    assert_eq!(
        stats.token_requests, 2,
        "the token request, sent again with the nonce"
    );
    assert_eq!(
        stats.replays, 1,
        "the first API request, replayed with the nonce"
    );
}

#[tokio::test]
async fn a_server_that_answers_a_bearer_token_to_a_proof_gets_no_api_request() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    support::numbered_tokens(&auth, Some(3600)).await;
    let api_mock = support::api_counting_all(&api).await;
    let client = support::client(middleware(&auth, DpopKey::generate().unwrap()));

    let error = client.get(api.url("/fruits")).send().await.unwrap_err();

    assert!(
        matches!(
            alf_error(&error),
            reqwest_alf::Error::InvalidTokenResponse {
                reason: TokenResponseError::NotDpopBound(_),
                ..
            }
        ),
        "{error:?}"
    );
    api_mock.assert_calls_async(0).await;
}

#[tokio::test]
async fn middlewares_share_tokens_only_with_the_same_key() {
    let Verified {
        auth,
        api,
        issued,
        accepted,
        ..
    } = verified(None, None).await;
    let storage = MemoryStorage::new();
    let instance = |pem: &str| {
        support::builder(&auth)
            .dpop(DpopKey::from_pem(pem).unwrap())
            .storage(storage.clone())
            .build()
            .unwrap()
    };
    let (a, b, c) = (
        instance(EC_PRIVATE),
        instance(EC_PRIVATE),
        instance(RSA_PRIVATE),
    );

    let mut tokens = Vec::new();
    for instance in [&a, &b, &c] {
        let response = support::client(instance.clone())
            .get(api.url("/fruits"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokens.push(instance.token().await.unwrap());
    }

    assert_eq!(issued.get(), 2, "one token per key");
    assert_eq!(accepted.get(), 3);
    assert_eq!(tokens[0], tokens[1], "the same key shares the token");
    assert_ne!(tokens[0], tokens[2], "another key never picks it up");
    assert_eq!(b.stats().shared_hits, 1);
    assert_eq!(c.stats().shared_hits, 0);
}

#[tokio::test]
async fn a_proof_sent_twice_is_refused_and_the_middleware_never_sends_one_twice() {
    let Verified {
        auth,
        api,
        verifier,
        accepted,
        ..
    } = verified(None, None).await;
    let last = LastHeaders::default();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(middleware(&auth, DpopKey::generate().unwrap()))
        .with(last.clone())
        .build();
    let mut proofs = Vec::new();
    for _ in 0..5 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        proofs.push(last.0.lock().unwrap()["dpop"].clone());
    }
    proofs.dedup();
    assert_eq!(proofs.len(), 5, "a new proof for each request");

    let last_headers = last.0.lock().unwrap().clone();
    let sent_again = reqwest::Client::new()
        .get(api.url("/fruits"))
        .headers(last_headers)
        .send()
        .await
        .unwrap();

    assert_eq!(sent_again.status(), 401);
    assert_eq!(accepted.get(), 5);
    let refusals = verifier.refusals.lock().unwrap().clone();
    assert!(refusals[0].contains("replayed proof"), "{refusals:?}");
}

#[test]
fn keys_are_checked_and_never_shown() {
    for bad in ["", "not a key", &RSA_PRIVATE[..RSA_PRIVATE.len() / 2]] {
        let error = DpopKey::from_pem(bad).unwrap_err();
        assert!(error.to_string().contains("private key"), "{error}");
    }
    let ec = DpopKey::from_pem(EC_PRIVATE).unwrap();
    assert!(ec.clone().algorithm(JwtAlgorithm::Rs256).is_err());
    assert_eq!(ec, DpopKey::from_pem(EC_PRIVATE).unwrap());
    assert_ne!(ec, DpopKey::generate().unwrap());
    assert_eq!(ec.thumbprint().len(), 43, "base64url SHA-256");

    let builder =
        || ClientCredentials::builder("https://idp.example/token", "id", "secret").dpop(ec.clone());
    let shown = format!("{:?} {:?}", builder(), builder().build().unwrap());
    assert!(shown.contains("thumbprint"), "{shown}");
    for secret_part in ["BEGIN", "MIG", "secret\""] {
        assert!(!shown.contains(secret_part), "{secret_part} in {shown}");
    }
}

#[tokio::test]
async fn logs_of_a_dpop_run_with_nonces_hold_no_token_proof_or_key() {
    let captured = crate::support::logs::crate_logs();
    let Verified { auth, api, .. } = verified(Some("auth-nonce-2"), Some("api-nonce-2")).await;
    let last = LastHeaders::default();
    let key = DpopKey::from_pem(EC_PRIVATE).unwrap();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(middleware(&auth, key))
        .with(last.clone())
        .build();

    let response = client.get(api.url("/fruits")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let proof = last.0.lock().unwrap()["dpop"].to_str().unwrap().to_owned();
    let logs = captured.text();
    assert!(logs.contains("asked for a DPoP nonce"), "{logs}");
    let key_body = EC_PRIVATE.lines().nth(1).unwrap();
    for secret in ["dpop-token-1", proof.as_str(), &proof[..40], key_body] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test]
async fn a_caller_of_token_makes_each_request_a_proof_the_api_verifies() {
    let Verified {
        auth,
        api,
        verifier,
        accepted,
        ..
    } = verified(None, None).await;
    let credentials = middleware(&auth, DpopKey::generate().unwrap());
    let http = reqwest::Client::new();

    for path in ["/fruits", "/vegetables"] {
        let token = credentials.token().await.unwrap();
        let url = reqwest::Url::parse(&api.url(path)).unwrap();
        let proof = credentials
            .dpop_proof(&reqwest::Method::GET, &url, &token)
            .unwrap()
            .expect("a proof, with DPoP");
        let response = http
            .get(url)
            .header(
                "authorization",
                format!(
                    "{} {}",
                    token.token_type().scheme(),
                    token.access_token().secret()
                ),
            )
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{:?}",
            verifier.refusals.lock().unwrap()
        );
    }
    assert_eq!(accepted.get(), 2);

    let bearer = support::builder(&auth).build().unwrap();
    let url = reqwest::Url::parse(&api.url("/fruits")).unwrap();
    let token = credentials.token().await.unwrap();
    assert!(
        bearer
            .dpop_proof(&reqwest::Method::GET, &url, &token)
            .unwrap()
            .is_none(),
        "no proof without DPoP"
    );
}
