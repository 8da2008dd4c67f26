//! What can be wrong with the token endpoint's answer: an unusable token, or an OAuth error.
//!
//! [`TokenResponseError`] for a success that holds no usable token, [`OAuthError`] for the
//! RFC 6749 §5.2 error the server sent instead.

use std::fmt;

use crate::time::MAX_EXPIRES_IN;

/// Why a token response could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenResponseError {
    /// The body is not a JSON object (often an HTML error page from a proxy).
    #[error("the body is not a JSON object")]
    NotJson,
    /// The body is larger than a token response can sensibly be.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The body has no `access_token`.
    #[error("access_token is missing")]
    MissingAccessToken,
    /// `access_token` is the empty string.
    #[error("access_token is empty")]
    EmptyAccessToken,
    /// A field that must be a string is not.
    #[error("{0} is not a string")]
    NotAString(&'static str),
    /// The answer came from elsewhere: the HTTP client followed a redirect from the token
    /// endpoint (RFC 6749 §3.2: token requests go to one fixed endpoint).
    #[error(
        "the request was redirected to {0}, whose answer is not trusted — give the final token \
         endpoint URL, and an http_client that does not follow redirects"
    )]
    Redirected(String),
    /// `access_token` holds characters that cannot go into an HTTP header.
    #[error("access_token holds characters that cannot be sent in an HTTP header")]
    AccessTokenNotHeaderSafe,
    /// `token_type` is neither `Bearer` nor, with a DPoP key, `DPoP`.
    #[error("token_type {0:?} is not supported (only Bearer is, and DPoP with a DPoP key)")]
    UnsupportedTokenType(String),
    /// The token request carried a DPoP proof, and the answer is not a DPoP-bound token.
    #[error(
        "the token request carried a DPoP proof, but token_type is {0:?}, not DPoP: the server \
         did not bind the token to the key (does it support DPoP for this client?)"
    )]
    NotDpopBound(String),
    /// `expires_in` is not a number of seconds in range (a fraction counts rounded down).
    #[error(
        "expires_in {0} is not a number of seconds between 1 and {max}",
        max = MAX_EXPIRES_IN.as_secs()
    )]
    InvalidExpiresIn(String),
}

/// An error response from the token endpoint, as RFC 6749 §5.2 defines it.
///
/// Values are as the server sent them, with control characters removed and length capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub(crate) error: String,
    pub(crate) description: Option<String>,
    pub(crate) uri: Option<String>,
}

impl OAuthError {
    /// The error code: `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `invalid_scope`, `access_denied` (Auth0), …
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The server's `error_description`, when it gave one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The server's `error_uri`, when it gave one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(description) = &self.description {
            write!(f, " ({description})")?;
        }
        Ok(())
    }
}
