//! Client assertions from the application's own code: a KMS or HSM that signs, a platform SDK.
//!
//! The crate asks [`ClientAssertionSource::assertion`] for each token request, with the claims
//! it would sign itself; the call is bounded by the token request timeout, and what it returns
//! must be a JWT. Its failures are typed, and what it returns is never shown.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::endpoint::assertion_file::is_jwt;
use crate::error::Error;
use crate::random::random_hex;
use crate::time::unix_seconds;

/// How long a client assertion is good for: long enough for a slow network and a little clock
/// skew, short enough that a leaked one is soon useless. Servers cap it (Auth0 at 5 minutes).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(120);

/// The claims of an assertion (RFC 7523 §3) by `issuer` about `subject` for `audience`, made
/// at `now`: what the crate signs itself, and what it gives a source to sign. A client
/// assertion's issuer and subject are both the client id; the JWT bearer grant's subject is the
/// one configured.
pub(crate) fn assertion_claims(
    issuer: &str,
    subject: &str,
    audience: &str,
    now: SystemTime,
) -> serde_json::Value {
    let iat = unix_seconds(now);
    serde_json::json!({
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "jti": random_hex(),
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME.as_secs(),
    })
}

/// The error a [`ClientAssertionSource`] may return: any error, boxed.
pub type AssertionError = Box<dyn std::error::Error + Send + Sync>;

/// Makes client assertions (RFC 7523 §2.2) for [`AuthMethod::ClientAssertion`], or the JWT
/// bearer grant's assertions (RFC 7523 §2.1) for [`JwtBearer::from_source`]: sign
/// [`AssertionRequest::claims`] with a key the process never holds (a KMS, an HSM), or fetch an
/// assertion a platform issues.
///
/// [`AuthMethod::ClientAssertion`]: crate::AuthMethod::ClientAssertion
/// [`JwtBearer::from_source`]: crate::JwtBearer::from_source
///
/// # Example
/// ```
/// use reqwest_alf::{AssertionError, AssertionRequest, ClientAssertionSource};
///
/// struct Kms;
///
/// #[async_trait::async_trait]
/// impl ClientAssertionSource for Kms {
///     async fn assertion(&self, request: &AssertionRequest) -> Result<String, AssertionError> {
///         // Sign `request.claims()` with the key in the KMS, e.g. as RS256:
///         // base64url(header) + "." + base64url(claims) + "." + base64url(signature).
///         # let _ = request.claims();
///         Err("no KMS in this example".into())
///     }
/// }
/// ```
#[async_trait]
pub trait ClientAssertionSource: Send + Sync + 'static {
    /// A client assertion (a compact JWT) for one token request.
    ///
    /// # Errors
    /// Whatever keeps it from making one; the token request is then not sent, and the caller
    /// gets [`Error::ClientAssertion`] with this error as its source.
    async fn assertion(&self, request: &AssertionRequest) -> Result<String, AssertionError>;
}

/// What an assertion is for: the client, its subject, the token endpoint (its audience), and the
/// claims the crate would sign (`iss` the client id, `sub`, `aud`, a fresh `jti`, `iat`, `exp`).
#[derive(Debug, Clone)]
pub struct AssertionRequest {
    client_id: String,
    subject: String,
    audience: String,
    claims: String,
}

impl AssertionRequest {
    /// The request for an assertion by `client_id` about `subject`, for `audience`, at `now`.
    pub(crate) fn new(client_id: &str, subject: &str, audience: &str, now: SystemTime) -> Self {
        Self {
            client_id: client_id.to_owned(),
            subject: subject.to_owned(),
            audience: audience.to_owned(),
            claims: assertion_claims(client_id, subject, audience, now).to_string(),
        }
    }

    /// The client id: the assertion's `iss`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The assertion's `sub`: the client id for a client assertion, the configured subject for
    /// the JWT bearer grant ([`JwtBearer`](crate::JwtBearer)).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The assertion's `aud`: the token endpoint, or what the preset or key names.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The claims as JSON, ready to be signed as the JWT's payload.
    pub fn claims(&self) -> &str {
        &self.claims
    }
}

/// A [`ClientAssertionSource`], as [`AuthMethod::ClientAssertion`] holds it: cheap to clone;
/// two are equal when they are the same source.
///
/// [`AuthMethod::ClientAssertion`]: crate::AuthMethod::ClientAssertion
#[derive(Clone)]
pub struct AssertionSource(Arc<dyn ClientAssertionSource>);

impl AssertionSource {
    /// Wraps `source`.
    pub fn new(source: impl ClientAssertionSource) -> Self {
        Self(Arc::new(source))
    }

    /// An assertion from the source for `request`, within `timeout`, checked to be a JWT;
    /// `kind` says which assertion it is, for messages.
    pub(crate) async fn assertion(
        &self,
        request: &AssertionRequest,
        timeout: Duration,
        kind: &'static str,
    ) -> Result<String, Error> {
        let refuse =
            |reason: &'static str, source: Option<AssertionError>| Error::ClientAssertion {
                kind,
                from: "the assertion source".to_owned(),
                reason,
                source: source.map(Arc::from),
            };
        let assertion = match tokio::time::timeout(timeout, self.0.assertion(request)).await {
            Err(_) => {
                return Err(refuse(
                    "did not answer within the token request timeout",
                    None,
                ));
            }
            Ok(Err(error)) => return Err(refuse("failed", Some(error))),
            Ok(Ok(assertion)) => assertion,
        };
        let assertion = assertion.trim();
        if !is_jwt(assertion) {
            return Err(refuse("returned something that is not a JWT", None));
        }
        Ok(assertion.to_owned())
    }
}

impl PartialEq for AssertionSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AssertionSource {}

impl fmt::Debug for AssertionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssertionSource(..)")
    }
}
