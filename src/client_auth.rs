//! Client authentication: how the client proves who it is to the token endpoint (RFC 6749 §2.3).

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;
use url::form_urlencoded;

use crate::secret::Secret;

/// How the client id and secret are sent to the token endpoint.
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
}

/// The part of every token request that authenticates the client, worked out once at build time.
#[derive(Clone)]
pub(crate) enum ClientAuthentication {
    /// `Authorization: Basic …`, marked sensitive.
    Basic(HeaderValue),
    /// `client_id=…&client_secret=…`, already form-encoded.
    Post(Secret),
}

impl ClientAuthentication {
    pub(crate) fn new(method: &AuthMethod, client_id: &str, client_secret: &Secret) -> Self {
        match method {
            AuthMethod::ClientSecretBasic => Self::Basic(basic_header(client_id, client_secret)),
            AuthMethod::ClientSecretPost => Self::Post(Secret::new(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret.expose())
                    .finish(),
            )),
        }
    }

    /// The `Authorization` header to send, if this method uses one.
    pub(crate) fn header(&self) -> Option<&HeaderValue> {
        match self {
            Self::Basic(header) => Some(header),
            Self::Post(_) => None,
        }
    }

    /// The form fields to append to the body, if this method uses any.
    pub(crate) fn form_fields(&self) -> Option<&str> {
        match self {
            Self::Basic(_) => None,
            Self::Post(fields) => Some(fields.expose()),
        }
    }
}

impl fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic(_) => f.write_str("ClientSecretBasic([redacted])"),
            Self::Post(_) => f.write_str("ClientSecretPost([redacted])"),
        }
    }
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

    #[test]
    fn basic_encodes_id_and_secret_before_base64() {
        let auth = ClientAuthentication::new(
            &AuthMethod::ClientSecretBasic,
            "my client:1",
            &Secret::new("p@ss:w/rd é+"),
        );
        let header = auth.header().unwrap();
        assert!(header.is_sensitive());
        assert_eq!(
            decode_basic(header),
            "my+client%3A1:p%40ss%3Aw%2Frd+%C3%A9%2B"
        );
        assert_eq!(auth.form_fields(), None);
    }

    #[test]
    fn basic_matches_rfc_example() {
        // RFC 6749 §2.3.1's example: client id "s6BhdRkqt3", secret "7Fjfp0ZBr1KtDRbnfVdmIw".
        let auth = ClientAuthentication::new(
            &AuthMethod::ClientSecretBasic,
            "s6BhdRkqt3",
            &Secret::new("7Fjfp0ZBr1KtDRbnfVdmIw"),
        );
        assert_eq!(
            auth.header().unwrap(),
            "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"
        );
    }

    #[test]
    fn post_puts_the_credentials_in_the_body() {
        let auth =
            ClientAuthentication::new(&AuthMethod::ClientSecretPost, "id&1", &Secret::new("s=2"));
        assert_eq!(auth.header(), None);
        assert_eq!(
            auth.form_fields(),
            Some("client_id=id%261&client_secret=s%3D2")
        );
    }

    #[test]
    fn debug_is_redacted() {
        for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
            let auth = ClientAuthentication::new(&method, "id", &Secret::new("hunter2"));
            let shown = format!("{auth:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
                "{shown}"
            );
        }
    }
}
