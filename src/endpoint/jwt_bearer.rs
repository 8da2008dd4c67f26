//! The JWT bearer grant (RFC 7523 §2.1): a token for the subject of an assertion.
//!
//! The assertion comes from a file read for each token request, from the application's
//! [`ClientAssertionSource`](crate::ClientAssertionSource), or from a key the crate signs with
//! (feature `jwt`). Its subject is named at build time: it keeps the tokens of different subjects
//! apart in the storage (the assertion itself is never part of a key), and every assertion is
//! checked to be about it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::endpoint::assertion_file::read_assertion;
use crate::endpoint::assertion_source::{AssertionRequest, AssertionSource};
#[cfg(feature = "jwt")]
use crate::endpoint::client_assertion::PrivateKey;
use crate::error::{ConfigError, Error};

/// The `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The grant's assertion, as messages name it.
const GRANT_ASSERTION: &str = "JWT bearer grant's assertion";

/// The JWT bearer grant (RFC 7523 §2.1): tokens are asked for with
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an `assertion` about a subject,
/// instead of the client credentials grant. Given to
/// [`jwt_bearer`](crate::ClientCredentialsBuilder::jwt_bearer).
///
/// The assertion is made or read afresh for every token request; tokens are cached, shared, and
/// refreshed as any other. The subject you name is the assertion's `sub`: tokens of different
/// subjects never share a storage key, and an assertion about another subject is
/// [`Error::ClientAssertion`] with nothing sent.
///
/// # Example
/// ```
/// use reqwest_alf::{AuthMethod, ClientCredentials, JwtBearer};
///
/// // A token for the workload whose identity token the platform writes to a file.
/// let auth = ClientCredentials::builder("https://idp.example/oauth2/token", "my-client", "")
///     .auth_method(AuthMethod::None)
///     .jwt_bearer(JwtBearer::from_file(
///         "system:serviceaccount:shop:orders",
///         "/var/run/secrets/tokens/idp-token",
///     ))
///     .scope("orders:read")
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearer {
    subject: String,
    from: AssertionFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AssertionFrom {
    File(PathBuf),
    Source(AssertionSource),
    #[cfg(feature = "jwt")]
    Key(PrivateKey),
}

impl JwtBearer {
    /// An assertion about `subject` that something else issues into the file at `path` (a
    /// Kubernetes projected service account token, say), read for every token request.
    pub fn from_file(subject: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new(subject, AssertionFrom::File(path.into()))
    }

    /// An assertion about `subject` from the application's source, asked for every token
    /// request within the token request timeout; its [`AssertionRequest`] carries `subject` as
    /// `sub` and the client id as `iss`.
    pub fn from_source(subject: impl Into<String>, source: AssertionSource) -> Self {
        Self::new(subject, AssertionFrom::Source(source))
    }

    /// An assertion about `subject` that the crate signs with `key` for every token request:
    /// `iss` the client id, `sub` the subject, `aud` the token endpoint (or the key's
    /// audience), a fresh `jti`, and two minutes of life.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn signed(subject: impl Into<String>, key: PrivateKey) -> Self {
        Self::new(subject, AssertionFrom::Key(key))
    }

    fn new(subject: impl Into<String>, from: AssertionFrom) -> Self {
        Self {
            subject: subject.into(),
            from,
        }
    }

    fn subject(&self) -> &str {
        &self.subject
    }

    /// Checks the subject and where the assertion comes from: the first problem.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.subject.is_empty() {
            return Err(ConfigError::EmptyValue("the JWT bearer grant's subject").into());
        }
        match &self.from {
            AssertionFrom::File(path) if path.as_os_str().is_empty() => {
                Err(ConfigError::EmptyValue("the JWT bearer grant's assertion file").into())
            }
            #[cfg(feature = "jwt")]
            AssertionFrom::Key(key) => key.check(),
            _ => Ok(()),
        }
    }
}

/// The JWT bearer grant of one client: its assertion, and who makes it for which audience.
#[derive(Debug)]
pub(crate) struct BearerGrant {
    assertion: JwtBearer,
    client_id: String,
    /// The `aud` of assertions the crate makes or asks for: the token endpoint, or what the
    /// preset names.
    audience: String,
}

impl BearerGrant {
    /// The grant of `client_id`, whose assertions are for `audience`.
    pub(crate) fn new(assertion: JwtBearer, client_id: &str, audience: &str) -> Self {
        Self {
            assertion,
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The subject tokens are for: part of their storage key.
    pub(crate) fn subject(&self) -> &str {
        self.assertion.subject()
    }

    /// The assertion for a token request made at `now`, checked to be a JWT about the subject;
    /// a source has `timeout` to answer.
    ///
    /// # Errors
    /// [`Error::ClientAssertion`] when the file or the source fails, the key cannot sign, or the
    /// assertion is about another subject.
    pub(crate) async fn assertion(
        &self,
        now: SystemTime,
        timeout: Duration,
    ) -> Result<String, Error> {
        let subject = self.assertion.subject();
        let (assertion, from) = match &self.assertion.from {
            AssertionFrom::File(path) => (
                read_assertion(path, GRANT_ASSERTION)?,
                format!("the file {}", path.display()),
            ),
            AssertionFrom::Source(source) => {
                let request = AssertionRequest::new(&self.client_id, subject, &self.audience, now);
                (
                    source.assertion(&request, timeout, GRANT_ASSERTION).await?,
                    "the assertion source".to_owned(),
                )
            }
            #[cfg(feature = "jwt")]
            AssertionFrom::Key(key) => (
                key.sign(
                    &self.client_id,
                    subject,
                    key.audience_or(&self.audience),
                    now,
                )?,
                "the private key".to_owned(),
            ),
        };
        match claimed_subject(&assertion) {
            Some(claimed) if claimed == subject => Ok(assertion),
            claimed => Err(Error::ClientAssertion {
                kind: GRANT_ASSERTION,
                from,
                reason: match claimed {
                    Some(_) => "is about another subject (`sub`) than the one configured",
                    None => "names no subject (`sub`)",
                },
                source: None,
            }),
        }
    }
}

/// The `sub` claim of a compact JWT, read without checking its signature (the server does).
fn claimed_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn the_subject_is_read_from_the_payload() {
        assert_eq!(
            claimed_subject(&jwt(r#"{"sub":"system:serviceaccount:a:b","iss":"k8s"}"#)).as_deref(),
            Some("system:serviceaccount:a:b")
        );
        for no_subject in [
            jwt(r#"{"iss":"k8s"}"#),
            jwt(r#"{"sub":7}"#),
            jwt("not json"),
            "a.%%%.c".to_owned(),
            "nodots".to_owned(),
        ] {
            assert_eq!(claimed_subject(&no_subject), None, "{no_subject}");
        }
    }

    #[tokio::test]
    async fn an_assertion_about_another_subject_is_refused_without_showing_it() {
        let path = std::env::temp_dir().join(format!("alf-bearer-{}", crate::random::random_hex()));
        std::fs::write(&path, jwt(r#"{"sub":"someone-else","secret":"s3cr3t"}"#)).unwrap();
        let grant = BearerGrant::new(
            JwtBearer::from_file("me", &path),
            "client",
            "https://idp.example/token",
        );
        let error = grant
            .assertion(SystemTime::now(), Duration::from_secs(1))
            .await
            .unwrap_err();
        let _ = std::fs::remove_file(&path);
        let message = error.to_string();
        assert!(
            message.starts_with("the JWT bearer grant's assertion from the file "),
            "{message}"
        );
        assert!(message.contains("is about another subject"), "{message}");
        assert!(!message.contains("s3cr3t") && !message.contains("someone-else"));
    }

    #[test]
    fn an_empty_subject_or_path_is_refused_at_build() {
        assert!(JwtBearer::from_file("", "/x").check().is_err());
        assert!(JwtBearer::from_file("me", "").check().is_err());
        assert!(JwtBearer::from_file("me", "/x").check().is_ok());
    }
}
