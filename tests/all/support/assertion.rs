//! Test keys, a token endpoint that records the bodies it gets, and a check of the client
//! assertions in them.

use std::sync::{Arc, Mutex};

use httpmock::{HttpMockRequest, Mock, MockServer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest_alf::{AssertionError, AssertionRequest, ClientAssertionSource};
use url::form_urlencoded;

use super::{TOKEN_PATH, json_response, token_json};

pub const RSA_PRIVATE: &str = include_str!("../keys/rsa-private.pem");
pub const RSA_PUBLIC: &str = include_str!("../keys/rsa-public.pem");
pub const EC_PRIVATE: &str = include_str!("../keys/ec-private.pem");
pub const EC_PUBLIC: &str = include_str!("../keys/ec-public.pem");

/// The form bodies a token endpoint received, in order.
#[derive(Clone, Default)]
pub struct Bodies(Arc<Mutex<Vec<String>>>);

impl Bodies {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A token endpoint that answers `tok` and keeps every body it gets.
pub async fn recording_token_endpoint(auth: &MockServer) -> (Mock<'_>, Bodies) {
    let bodies = Bodies::default();
    let kept = bodies.clone();
    let mock = auth
        .mock_async(move |when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.respond_with(move |request: &HttpMockRequest| {
                let body = String::from_utf8(request.body().to_vec()).unwrap();
                kept.0.lock().unwrap().push(body);
                json_response(200, &token_json("tok", Some(3600)))
            });
        })
        .await;
    (mock, bodies)
}

/// A form body's fields, decoded, in order.
pub fn fields(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// The field `name` of a form body.
pub fn field(body: &str, name: &str) -> String {
    fields(body)
        .into_iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .1
}

/// The header and claims of `assertion`, after checking its signature with `public_pem`, its
/// algorithm, `aud`, and that it has not expired.
pub fn verified(
    assertion: &str,
    public_pem: &str,
    algorithm: Algorithm,
    audience: &str,
) -> (Header, serde_json::Value) {
    let key = match algorithm {
        Algorithm::ES256 => DecodingKey::from_ec_pem(public_pem.as_bytes()),
        _ => DecodingKey::from_rsa_pem(public_pem.as_bytes()),
    }
    .unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation)
        .expect("a valid client assertion");
    (data.header, data.claims)
}

/// Signs the claims the crate gives it with `RSA_PRIVATE` (RS256), as a KMS would.
pub struct Kms;

#[async_trait::async_trait]
impl ClientAssertionSource for Kms {
    async fn assertion(&self, request: &AssertionRequest) -> Result<String, AssertionError> {
        let claims: serde_json::Value = serde_json::from_str(request.claims())?;
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes())?;
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &key,
        )?)
    }
}

/// What a refused assertion's error says: which assertion, where it was to come from, and
/// what went wrong. Panics unless it is `Error::ClientAssertion`, or if the error, shown in any
/// form, holds `s3cr3t` (what the tests' bad assertions hold).
pub fn assertion_refusal(
    error: &reqwest_middleware::Error,
) -> (&'static str, String, &'static str) {
    assert!(
        !format!("{error} {error:?}").contains("s3cr3t"),
        "{error:?}"
    );
    match super::alf_error(error) {
        reqwest_alf::Error::ClientAssertion {
            kind, from, reason, ..
        } => (*kind, from.clone(), *reason),
        other => panic!("expected an assertion error, got {other:?}"),
    }
}
