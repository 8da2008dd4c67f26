//! The crate's one error type, [`Error`], and the kinds of failure it carries.
//!
//! No message here ever holds a client secret or an access token: errors carry only what the
//! caller configured in the clear (endpoint, option names) and what the server said about itself,
//! made printable and capped in length.

mod config;
mod hint;
mod printable;
mod token_response;

use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;

use crate::time::http_date;
pub use config::ConfigError;
pub(crate) use hint::is_tls_failure;
use hint::{hint, response_hint, transport_failure};
pub(crate) use printable::{LONG_VALUE, SHORT_VALUE, printable, printable_without_userinfo};
pub use token_response::{OAuthError, TokenResponseError};

/// What the middleware returns when it could not give a request a token: the request was not
/// sent, and its source says why. A layer of its own, so that wrappers that forward `source()`
/// as theirs still lead to the reason (`Error::downcast_ref`).
#[derive(Debug, thiserror::Error)]
#[error("the request was not sent: no access token could be had")]
struct NotSent(#[source] Error);

/// A [`Result`](std::result::Result) with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building the middleware or getting a token.
///
/// The middleware returns it inside [`reqwest_middleware::Error::Middleware`], as the source of
/// an error that reads "the request was not sent: no access token could be had"; get it back
/// with [`Error::downcast_ref`], also from behind `reqwest-retry`. When this error comes back,
/// the API request was not sent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given settings that cannot work.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),

    /// The token endpoint could not be reached, or the connection broke, on every attempt.
    #[error(
        "could not reach the token endpoint {endpoint}: {what} ({attempts} attempt{s}) — check \
         the URL, DNS, proxy and TLS settings",
        what = transport_failure(source),
        s = plural(*attempts)
    )]
    #[non_exhaustive]
    Transport {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// How many requests were made.
        attempts: u32,
        /// What the HTTP client reported for the last attempt.
        #[source]
        source: Arc<reqwest::Error>,
    },

    /// The token endpoint answered with an error status (after any retries).
    #[error(
        "token endpoint {endpoint} answered {status}{detail} ({attempts} attempt{s}){hint}",
        detail = fmt_oauth_error(oauth_error.as_ref()),
        s = plural(*attempts),
        hint = hint(*status, oauth_error.as_ref()),
    )]
    #[non_exhaustive]
    TokenEndpoint {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// The HTTP status of the last answer.
        status: StatusCode,
        /// The RFC 6749 §5.2 error the server gave, when its body had one.
        oauth_error: Option<OAuthError>,
        /// How many requests were made.
        attempts: u32,
        /// When the server said it would take requests again: its `Retry-After`, or on a 429
        /// Auth0's `x-ratelimit-reset`. As `auth0-python`'s `RateLimitError.reset_at`.
        retry_at: Option<SystemTime>,
    },

    /// The token endpoint said it is rate limiting this client (429, or 503 with `Retry-After`;
    /// Auth0's `x-ratelimit-reset` counts too), or that an Auth0 token quota is spent, and that
    /// time has not come: until `retry_at` no token request is sent, by this middleware or,
    /// through a shared storage such as `RedisStorage`, by any other. A token that has not yet
    /// expired is used meanwhile; this error comes only when there is none.
    #[error(
        "token endpoint {endpoint} is rate limiting this client until {when}{quota}; no token \
         request is sent before then",
        when = http_date(*retry_at),
        quota = match spent_quota {
            Some(QuotaScope::Client) => " (the client's token quota is spent)",
            Some(QuotaScope::Organization) => " (the organization's token quota is spent)",
            None => "",
        }
    )]
    #[non_exhaustive]
    RateLimited {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// When token requests may be sent again: the end of a spent quota's bucket (a day at
        /// most), else capped by the retry policy's `max_retry_interval`.
        retry_at: SystemTime,
        /// The Auth0 token quota that is spent, when this middleware saw the token endpoint
        /// say so.
        spent_quota: Option<QuotaScope>,
    },

    /// The token endpoint's answer holds no usable token.
    #[error(
        "token endpoint {endpoint} sent an unusable token response: {reason}{hint}",
        hint = response_hint(reason)
    )]
    #[non_exhaustive]
    InvalidTokenResponse {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// What is wrong with the response.
        reason: TokenResponseError,
    },

    /// No assertion could be had: a client assertion, from its file
    /// ([`AuthMethod::ClientAssertionFile`](crate::AuthMethod::ClientAssertionFile)) or its
    /// source ([`AuthMethod::ClientAssertion`](crate::AuthMethod::ClientAssertion)), or the
    /// assertion of the JWT bearer grant ([`JwtBearer`](crate::JwtBearer)): no token request was
    /// sent. What the file holds, or the source returned, is never in the message.
    #[error("the {kind} from {from} {reason}: no token request was sent")]
    #[non_exhaustive]
    ClientAssertion {
        /// Which assertion: `client assertion`, or `JWT bearer grant's assertion`.
        kind: &'static str,
        /// Where it was to come from: `the file …`, or `the assertion source`.
        from: String,
        /// What went wrong.
        reason: &'static str,
        /// The source's own error, when it returned one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

/// Whose Auth0 token quota a spent bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaScope {
    /// The client's own (`Auth0-Client-Quota-Limit`): every grant of the client waits.
    Client,
    /// The organization's (`Auth0-Organization-Quota-Limit`): the grants for that organization
    /// wait; the client's other grants do not.
    Organization,
}

impl Error {
    /// This crate's error inside an error returned by a `reqwest_middleware` client, if that is
    /// what it holds: a request that failed because no token could be had. It is found where
    /// another middleware wrapped it too: `reqwest-retry`'s `RetryError`, or any error whose
    /// chain of sources holds a `reqwest_middleware::Error` that holds it.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
    /// if let Err(error) = client.get("https://api.example/things").send().await {
    ///     match reqwest_alf::Error::downcast_ref(&error) {
    ///         Some(no_token) => eprintln!("no token, request not sent: {no_token}"),
    ///         None => eprintln!("request failed: {error}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn downcast_ref(error: &reqwest_middleware::Error) -> Option<&Error> {
        let reqwest_middleware::Error::Middleware(inner) = error else {
            return None;
        };
        // The middleware's error is `NotSent`, whose source is this error: found down the chain
        // of sources, also where a wrapper forwards `source()` as its own (reqwest-middleware's
        // error does, and reqwest-retry's around it).
        inner
            .chain()
            .find_map(|cause| cause.downcast_ref::<Error>())
    }

    /// This error as the middleware returns it: the request was not sent, and this is why.
    pub(crate) fn not_sent(self) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(NotSent(self))
    }

    /// The old name of [`Error::downcast_ref`], which borrows rather than makes an error.
    #[deprecated(since = "0.1.0", note = "renamed: use `Error::downcast_ref`")]
    pub fn from_middleware_error(error: &reqwest_middleware::Error) -> Option<&Error> {
        Error::downcast_ref(error)
    }

    /// Whether trying again later may succeed: true for network failures, server errors (5xx),
    /// 408 and 429, and a client assertion file that could not be read (it may be between two
    /// rotations); false for a rejected client, bad configuration or an unusable response.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A file that rotates may be caught between two tokens.
            Error::Transport { .. } | Error::RateLimited { .. } | Error::ClientAssertion { .. } => {
                true
            }
            Error::TokenEndpoint { status, .. } => is_retryable_status(*status),
            Error::InvalidConfig(_) | Error::InvalidTokenResponse { .. } => false,
        }
    }

    /// When the token endpoint said it would take requests again: the end of a rate-limit
    /// cool-down, or the `Retry-After` of a failed token request.
    pub fn retry_at(&self) -> Option<SystemTime> {
        match self {
            Error::RateLimited { retry_at, .. } => Some(*retry_at),
            Error::TokenEndpoint { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// The server's RFC 6749 error, when the token endpoint gave one.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Error::TokenEndpoint { oauth_error, .. } => oauth_error.as_ref(),
            _ => None,
        }
    }
}

/// Whether an answer with this status may succeed if asked again: 5xx, 408 and 429. The one
/// rule for [`Error::is_retryable`] and for the token request's retries.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn fmt_oauth_error(error: Option<&OAuthError>) -> String {
    error.map(|e| format!(": {e}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn only_transient_statuses_are_retried() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 301, 400, 401, 403, 404, 405, 415] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn errors_are_send_sync_and_static() {
        assert_send_sync::<Error>();
    }

    #[test]
    fn token_endpoint_errors_name_the_cause_and_what_to_check() {
        let err = Error::TokenEndpoint {
            endpoint: "https://tenant.example/oauth/token".into(),
            status: StatusCode::UNAUTHORIZED,
            oauth_error: Some(OAuthError {
                error: "invalid_client".into(),
                description: Some("Unauthorized".into()),
                uri: None,
            }),
            attempts: 1,
            retry_at: None,
        };
        assert_eq!(
            err.to_string(),
            "token endpoint https://tenant.example/oauth/token answered 401 Unauthorized: \
             invalid_client (Unauthorized) (1 attempt) — check the client id and secret, and the \
             auth method"
        );
        assert!(!err.is_retryable());
        assert_eq!(
            err.oauth_error().map(OAuthError::error),
            Some("invalid_client")
        );
    }

    #[test]
    fn server_errors_are_retryable() {
        let err = Error::TokenEndpoint {
            endpoint: "https://tenant.example/oauth/token".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            oauth_error: None,
            attempts: 4,
            retry_at: None,
        };
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "token endpoint https://tenant.example/oauth/token answered 503 Service Unavailable \
             (4 attempts) — the server failed; try again later"
        );
    }

    #[test]
    fn rate_limits_say_until_when() {
        let retry_at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_445_412_510);
        let err = Error::RateLimited {
            endpoint: "https://tenant.example/oauth/token".into(),
            retry_at,
            spent_quota: None,
        };
        assert!(err.is_retryable());
        assert_eq!(err.retry_at(), Some(retry_at));
        assert_eq!(
            err.to_string(),
            "token endpoint https://tenant.example/oauth/token is rate limiting this client \
             until Wed, 21 Oct 2015 07:28:30 GMT; no token request is sent before then"
        );
        let far = Error::RateLimited {
            endpoint: "e".into(),
            retry_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::MAX / 4),
            spent_quota: None,
        };
        assert!(far.to_string().contains("until a time out of range"));
        let quota = Error::RateLimited {
            endpoint: "e".into(),
            retry_at,
            spent_quota: Some(QuotaScope::Organization),
        };
        assert_eq!(
            quota.to_string(),
            "token endpoint e is rate limiting this client until Wed, 21 Oct 2015 07:28:30 GMT \
             (the organization's token quota is spent); no token request is sent before then"
        );
    }

    #[test]
    fn config_and_response_errors_are_not_retryable() {
        assert!(!Error::from(ConfigError::EmptyClientId).is_retryable());
        let err = Error::InvalidTokenResponse {
            endpoint: "https://a.example/token".into(),
            reason: TokenResponseError::MissingAccessToken,
        };
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "token endpoint https://a.example/token sent an unusable token response: \
             access_token is missing — is this URL the token endpoint? A proxy or a login page \
             may have answered"
        );
    }
}
