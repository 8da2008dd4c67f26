//! Client authentication: how the client proves who it is to the token endpoint (RFC 6749 §2.3).

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use http::HeaderValue;
use url::form_urlencoded;

use crate::endpoint::assertion_file::read_assertion;
use crate::endpoint::assertion_source::{AssertionRequest, AssertionSource};
#[cfg(feature = "jwt")]
use crate::endpoint::client_assertion::PrivateKey;
use crate::error::Error;
use crate::secret::Secret;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client assertion, as messages name it.
const CLIENT_ASSERTION: &str = "client assertion";

/// How the client proves who it is to the token endpoint.
///
/// # Example
/// ```
/// use reqwest_alf::{AuthMethod, ClientCredentials};
///
/// // Auth0's machine-to-machine applications expect the credentials in the form body.
/// let auth = ClientCredentials::builder("https://tenant.example/oauth/token", "id", "secret")
///     .auth_method(AuthMethod::ClientSecretPost)
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic authentication (RFC 6749 §2.3.1), the default, as alf does: the id and secret
    /// are form-urlencoded, joined with `:` and base64-encoded into `Authorization: Basic …`.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form parameters in the request body (RFC 6749 §2.3.1):
    /// the default of Auth0's machine-to-machine applications.
    ClientSecretPost,
    /// `private_key_jwt` (RFC 7523 §2.2): no secret is sent; each token request carries
    /// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a
    /// fresh `client_assertion` JWT signed with this key (see [`PrivateKey`]), with the
    /// `client_id`. The client secret given to the builder is not used and may be empty.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    PrivateKeyJwt(PrivateKey),
    /// `client_secret_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): the secret is not sent;
    /// each token request carries a fresh `client_assertion` JWT signed with it (HS256), with
    /// the same claims as [`PrivateKeyJwt`](Self::PrivateKeyJwt)'s and the `client_id`. The
    /// secret must be at least 32 bytes long, as HS256 asks (RFC 7518 §3.2).
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    ClientSecretJwt,
    /// A client assertion that something else issues into a file (RFC 7523 §2.2): a
    /// Kubernetes projected service account token, Azure workload identity's
    /// `AZURE_FEDERATED_TOKEN_FILE`. The file is read afresh for every token request, so a
    /// rotated token is used as soon as it is there, and sent as `client_assertion` with the
    /// JWT bearer assertion type and the `client_id`; no secret is sent, and the one given to the
    /// builder may be empty. A missing, unreadable or empty file, or one that holds no JWT, is
    /// [`Error::ClientAssertion`](crate::Error::ClientAssertion), and no API request is sent;
    /// what the file holds is never shown.
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::{AuthMethod, ClientCredentials};
    ///
    /// let path = std::env::var("AZURE_FEDERATED_TOKEN_FILE")
    ///     .unwrap_or_else(|_| "/var/run/secrets/azure/tokens/azure-identity-token".into());
    /// let auth = ClientCredentials::builder(
    ///     "https://login.microsoftonline.com/my-tenant/oauth2/v2.0/token",
    ///     "my-client-id",
    ///     "",
    /// )
    /// .auth_method(AuthMethod::ClientAssertionFile(path.into()))
    /// .scope("https://graph.microsoft.com/.default")
    /// .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    ClientAssertionFile(std::path::PathBuf),
    /// A client assertion (RFC 7523 §2.2) from the application's own
    /// [`ClientAssertionSource`](crate::ClientAssertionSource), asked for every token request:
    /// a KMS or an HSM signs the claims the crate gives it, and the key never enters the
    /// process. The call is bounded by the token request timeout; a failure, a timeout or an
    /// answer that is not a JWT is [`Error::ClientAssertion`](crate::Error::ClientAssertion),
    /// and no API request is sent. No secret is sent; the one given to the builder may be empty.
    ClientAssertion(AssertionSource),
    /// `tls_client_auth` (RFC 8705 §2.1): the client proves who it is with a TLS client
    /// certificate issued by a CA the server trusts, given with
    /// [`client_identity`](crate::ClientCredentialsBuilder::client_identity) (or on your own
    /// [`http_client`](crate::ClientCredentialsBuilder::http_client)). The body carries the
    /// `client_id`, and no secret: the one given to the builder is not used and may be empty.
    TlsClientAuth,
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): as [`TlsClientAuth`](Self::TlsClientAuth),
    /// with a self-signed certificate the server has registered for the client.
    SelfSignedTlsClientAuth,
    /// `none`: the client does not authenticate, and the body carries its `client_id` alone.
    /// Only with the JWT bearer grant ([`jwt_bearer`](crate::ClientCredentialsBuilder::jwt_bearer)),
    /// whose assertion proves who asks (RFC 7523 §3.1); the client credentials grant needs a
    /// client that authenticates, and [`build`](crate::ClientCredentialsBuilder::build) refuses
    /// this method with it. The secret given to the builder is not used and may be empty.
    None,
}

impl AuthMethod {
    /// Whether this method sends the client secret (and so needs one).
    pub(crate) fn uses_secret(&self) -> bool {
        match self {
            #[cfg(feature = "jwt")]
            Self::PrivateKeyJwt(_) => false,
            Self::TlsClientAuth
            | Self::SelfSignedTlsClientAuth
            | Self::ClientAssertionFile(_)
            | Self::ClientAssertion(_)
            | Self::None => false,
            _ => true,
        }
    }

    /// Whether this method authenticates with a TLS client certificate.
    pub(crate) fn uses_certificate(&self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// The part of every token request that authenticates the client, worked out once at build time.
#[derive(Clone)]
pub(crate) enum ClientAuthentication {
    /// `Authorization: Basic …`, marked sensitive.
    Basic(HeaderValue),
    /// `client_id=…&client_secret=…`, already form-encoded.
    Post(Secret),
    /// `client_id=…` alone: a TLS client certificate proves the rest, or nothing does.
    ClientIdOnly(String),
    /// `client_id=…&client_assertion_type=…&client_assertion=…`, the assertion read from the
    /// file for each request.
    AssertionFile {
        client_id: String,
        path: std::path::PathBuf,
    },
    /// The same, the assertion from the application's source for each request.
    AssertionSource {
        client_id: String,
        source: AssertionSource,
        audience: String,
    },
    /// `client_id=…&client_assertion_type=…&client_assertion=…`, signed anew for each request.
    #[cfg(feature = "jwt")]
    Assertion {
        client_id: String,
        key: PrivateKey,
        audience: String,
    },
}

impl ClientAuthentication {
    /// `assertion_audience` is the `aud` of client assertions unless the key names its own.
    #[cfg_attr(not(feature = "jwt"), allow(unused_variables))]
    pub(crate) fn new(
        method: &AuthMethod,
        client_id: &str,
        client_secret: &Secret,
        assertion_audience: &str,
    ) -> Self {
        match method {
            AuthMethod::ClientSecretBasic => Self::Basic(basic_header(client_id, client_secret)),
            AuthMethod::ClientSecretPost => Self::Post(Secret::new(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret.expose())
                    .finish(),
            )),
            #[cfg(feature = "jwt")]
            AuthMethod::PrivateKeyJwt(key) => Self::Assertion {
                client_id: client_id.to_owned(),
                audience: key.audience_or(assertion_audience).to_owned(),
                key: key.clone(),
            },
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth | AuthMethod::None => {
                Self::ClientIdOnly(
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("client_id", client_id)
                        .finish(),
                )
            }
            AuthMethod::ClientAssertionFile(path) => Self::AssertionFile {
                client_id: client_id.to_owned(),
                path: path.clone(),
            },
            AuthMethod::ClientAssertion(source) => Self::AssertionSource {
                client_id: client_id.to_owned(),
                source: source.clone(),
                audience: assertion_audience.to_owned(),
            },
            #[cfg(feature = "jwt")]
            AuthMethod::ClientSecretJwt => Self::Assertion {
                client_id: client_id.to_owned(),
                audience: assertion_audience.to_owned(),
                key: PrivateKey::from_client_secret(client_secret.expose()),
            },
        }
    }

    /// The `Authorization` header to send, if this method uses one.
    pub(crate) fn header(&self) -> Option<&HeaderValue> {
        match self {
            Self::Basic(header) => Some(header),
            _ => None,
        }
    }

    /// The form fields to append to the body of a request sent at `now`, if this method uses
    /// any; an assertion source has `timeout` to answer.
    ///
    /// # Errors
    /// When no client assertion can be had: its file or source fails, or it cannot be signed
    /// (the key was checked at build time, so only if the crypto library changes its mind).
    pub(crate) async fn form_fields(
        &self,
        now: SystemTime,
        timeout: std::time::Duration,
    ) -> Result<Option<Cow<'_, str>>, Error> {
        Ok(match self {
            Self::Basic(_) => None,
            Self::Post(fields) => Some(Cow::Borrowed(fields.expose())),
            Self::ClientIdOnly(fields) => Some(Cow::Borrowed(fields)),
            Self::AssertionFile { client_id, path } => Some(Cow::Owned(assertion_fields(
                client_id,
                &read_assertion(path, CLIENT_ASSERTION)?,
            ))),
            Self::AssertionSource {
                client_id,
                source,
                audience,
            } => {
                let request = AssertionRequest::new(client_id, client_id, audience, now);
                let assertion = source
                    .assertion(&request, timeout, CLIENT_ASSERTION)
                    .await?;
                Some(Cow::Owned(assertion_fields(client_id, &assertion)))
            }
            #[cfg(feature = "jwt")]
            Self::Assertion {
                client_id,
                key,
                audience,
            } => {
                let assertion = key.sign(client_id, client_id, audience, now)?;
                Some(Cow::Owned(assertion_fields(client_id, &assertion)))
            }
        })
    }
}

impl fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic(_) => f.write_str("ClientSecretBasic([redacted])"),
            Self::Post(_) => f.write_str("ClientSecretPost([redacted])"),
            Self::ClientIdOnly(_) => f.write_str("ClientIdOnly"),
            Self::AssertionFile { path, .. } => {
                f.debug_tuple("ClientAssertionFile").field(path).finish()
            }
            Self::AssertionSource { .. } => f.write_str("ClientAssertion(AssertionSource(..))"),
            #[cfg(feature = "jwt")]
            Self::Assertion { key, .. } if key.is_client_secret() => {
                f.write_str("ClientSecretJwt([redacted])")
            }
            #[cfg(feature = "jwt")]
            Self::Assertion { key, .. } => f.debug_tuple("PrivateKeyJwt").field(key).finish(),
        }
    }
}

/// The form fields of a client assertion (RFC 7523 §2.2): the client id, the assertion type and
/// the assertion.
fn assertion_fields(client_id: &str, assertion: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("client_assertion_type", JWT_BEARER_ASSERTION)
        .append_pair("client_assertion", assertion)
        .finish()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 §2.3.1 asks: the encoding
/// first is what lets ids and secrets hold `:` and non-ASCII characters.
fn basic_header(client_id: &str, client_secret: &Secret) -> HeaderValue {
    let credentials = format!(
        "{}:{}",
        form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(client_secret.expose().as_bytes()).collect::<String>()
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    // Base64 output is always a valid header value.
    let mut header = HeaderValue::try_from(format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    header.set_sensitive(true);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_basic(header: &HeaderValue) -> String {
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn basic_encodes_id_and_secret_before_base64() {
        let auth = ClientAuthentication::new(
            &AuthMethod::ClientSecretBasic,
            "my client:1",
            &Secret::new("p@ss:w/rd é+"),
            "",
        );
        let header = auth.header().unwrap();
        assert!(header.is_sensitive());
        assert_eq!(
            decode_basic(header),
            "my+client%3A1:p%40ss%3Aw%2Frd+%C3%A9%2B"
        );
        assert_eq!(
            auth.form_fields(SystemTime::now(), std::time::Duration::from_secs(1))
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn basic_matches_rfc_example() {
        // RFC 6749 §2.3.1's example: client id "s6BhdRkqt3", secret "7Fjfp0ZBr1KtDRbnfVdmIw".
        let auth = ClientAuthentication::new(
            &AuthMethod::ClientSecretBasic,
            "s6BhdRkqt3",
            &Secret::new("7Fjfp0ZBr1KtDRbnfVdmIw"),
            "",
        );
        assert_eq!(
            auth.header().unwrap(),
            "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"
        );
    }

    #[tokio::test]
    async fn post_puts_the_credentials_in_the_body() {
        let auth = ClientAuthentication::new(
            &AuthMethod::ClientSecretPost,
            "id&1",
            &Secret::new("s=2"),
            "",
        );
        assert_eq!(auth.header(), None);
        assert_eq!(
            auth.form_fields(SystemTime::now(), std::time::Duration::from_secs(1))
                .await
                .unwrap()
                .as_deref(),
            Some("client_id=id%261&client_secret=s%3D2")
        );
    }

    #[test]
    fn debug_is_redacted() {
        for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
            let auth = ClientAuthentication::new(&method, "id", &Secret::new("hunter2"), "");
            let shown = format!("{auth:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
                "{shown}"
            );
        }
    }
}
