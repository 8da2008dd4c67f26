//! What an error message tells the user to check: why a connection failed, the likely fix.
//!
//! The cause of a failed connection, and what to check after a refusal or an unusable answer.

use http::StatusCode;

use crate::error::token_response::{OAuthError, TokenResponseError};

/// What went wrong with a request that got no answer, in a few words.
pub(super) fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if is_tls_failure(error) {
        "the TLS handshake failed: is it a plain http:// server, or a certificate this client \
         does not trust?"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() {
        "the answer was cut short"
    } else {
        "the request failed"
    }
}

/// Whether `error` is a TLS handshake that failed: a connection was made, but what came back
/// was not TLS (a plain-HTTP server) or not a certificate this client trusts. The TLS stack
/// reports these as an I/O error of kind `InvalidData` beneath the connect error (wrapped in
/// another I/O error, whose `source` skips it), where a refused or reset connection is another
/// kind.
pub(crate) fn is_tls_failure(error: &reqwest::Error) -> bool {
    if !error.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let mut io = cause.downcast_ref::<std::io::Error>();
        while let Some(inner) = io {
            if inner.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
            io = inner
                .get_ref()
                .and_then(|e| e.downcast_ref::<std::io::Error>());
        }
        source = cause.source();
    }
    false
}

/// What to check, for the errors a user can fix.
pub(super) fn hint(status: StatusCode, error: Option<&OAuthError>) -> &'static str {
    match error.map(OAuthError::error) {
        Some("invalid_client") => " — check the client id and secret, and the auth method",
        Some("unauthorized_client") => {
            " — the client is not allowed this grant type (client_credentials, or the JWT \
             bearer grant); check its settings on the authorization server"
        }
        Some("access_denied") => {
            " — check the audience, and that the client is authorized for that API"
        }
        Some("invalid_scope") => " — check the requested scope",
        Some("invalid_request") => " — check the audience, scope and extra parameters",
        Some("invalid_grant") => {
            " — the server refused the grant; check the client's settings on the \
             authorization server, and a JWT bearer assertion's signature, issuer, audience and \
             lifetime"
        }
        _ if status == StatusCode::TOO_MANY_REQUESTS => " — rate limited; try again later",
        _ if status.is_server_error() => " — the server failed; try again later",
        _ if status == StatusCode::NOT_FOUND => " — check the token endpoint URL",
        _ if status.is_redirection() => {
            " — token requests do not follow redirects; use the URL it points to as the token \
             endpoint"
        }
        _ if status == StatusCode::UNAUTHORIZED => {
            " — check the client id and secret, and the auth method"
        }
        _ if status == StatusCode::FORBIDDEN => {
            " — check that the client may use the client_credentials grant and this audience"
        }
        _ if status == StatusCode::BAD_REQUEST => {
            " — check the audience, scope and extra parameters"
        }
        _ => "",
    }
}

/// What to check after an unusable token response.
pub(super) fn response_hint(reason: &TokenResponseError) -> &'static str {
    match reason {
        TokenResponseError::NotJson
        | TokenResponseError::MissingAccessToken
        | TokenResponseError::EmptyAccessToken
        | TokenResponseError::NotAString(_) => {
            " — is this URL the token endpoint? A proxy or a login page may have answered"
        }
        TokenResponseError::BodyTooLarge(_) => {
            " — is this URL the token endpoint? If so, raise max_token_response_bytes"
        }
        TokenResponseError::UnsupportedTokenType(_) => {
            " — this middleware sends Bearer tokens, and DPoP tokens when it has a DPoP key"
        }
        TokenResponseError::NotDpopBound(_) => "",
        TokenResponseError::InvalidExpiresIn(_) | TokenResponseError::AccessTokenNotHeaderSafe => {
            " — the authorization server is misbehaving"
        }
        TokenResponseError::Redirected(_) => "",
    }
}
