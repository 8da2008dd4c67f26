//! The crate's one error type.
//!
//! No message here ever holds a client secret or an access token: errors carry only what the
//! caller configured in the clear (endpoint, option names) and what the server said about itself,
//! made printable and capped in length.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;

/// A [`Result`](std::result::Result) with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building the middleware or getting a token.
///
/// The middleware returns it inside [`reqwest_middleware::Error::Middleware`]; get it back with
/// [`Error::from_middleware_error`]. When this error comes back, the API request was not sent.
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
    /// Auth0's `x-ratelimit-reset` counts too), and that time has not come: until `retry_at`
    /// no token request is sent, by this middleware or, through a shared storage such as
    /// `RedisStorage`, by any other. A token that has not yet expired is used meanwhile; this
    /// error comes only when there is none.
    #[error(
        "token endpoint {endpoint} is rate limiting this client until {when}; no token request \
         is sent before then",
        when = http_date(*retry_at)
    )]
    RateLimited {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// When token requests may be sent again (capped by the retry policy's
        /// `max_retry_interval`).
        retry_at: SystemTime,
    },

    /// The token endpoint's answer holds no usable token.
    #[error(
        "token endpoint {endpoint} sent an unusable token response: {reason}{hint}",
        hint = response_hint(reason)
    )]
    InvalidTokenResponse {
        /// The token endpoint, without its query string.
        endpoint: String,
        /// What is wrong with the response.
        reason: TokenResponseError,
    },
}

impl Error {
    /// This crate's error inside an error returned by a `reqwest_middleware` client, if that is
    /// what it holds: a request that failed because no token could be had.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
    /// if let Err(error) = client.get("https://api.example/things").send().await {
    ///     match reqwest_alf::Error::from_middleware_error(&error) {
    ///         Some(no_token) => eprintln!("no token, request not sent: {no_token}"),
    ///         None => eprintln!("request failed: {error}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn from_middleware_error(error: &reqwest_middleware::Error) -> Option<&Error> {
        match error {
            reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<Error>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    /// Whether trying again later may succeed: true for network failures, server errors (5xx),
    /// 408 and 429; false for a rejected client, bad configuration or an unusable response.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::RateLimited { .. } => true,
            Error::TokenEndpoint { status, .. } => crate::retry::is_retryable_status(*status),
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

/// A setting the builder refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token endpoint is not a URL.
    #[error("the token endpoint is not a valid URL: {0}")]
    InvalidTokenEndpoint(String),
    /// The token endpoint is neither `http` nor `https`.
    #[error("the token endpoint must use https (or http to a loopback host), not {0:?}")]
    UnsupportedScheme(String),
    /// The token endpoint is plain `http` to a host that is not loopback.
    #[error(
        "the token endpoint uses plain http to {0}, which would send the client secret in the \
         clear — use https, or allow_insecure_http(true) on a trusted network"
    )]
    InsecureTokenEndpoint(String),
    /// The token endpoint URL holds a user name or password.
    #[error(
        "the token endpoint URL holds credentials — pass the client id and secret to the \
         builder instead"
    )]
    CredentialsInUrl,
    /// The client id is empty.
    #[error("the client id is empty")]
    EmptyClientId,
    /// The client secret is empty.
    #[error("the client secret is empty")]
    EmptyClientSecret,
    /// An option was given an empty value.
    #[error("{0} is empty — leave it out instead")]
    EmptyValue(&'static str),
    /// An extra form parameter would override one the crate sets itself.
    #[error("extra parameter {0:?} is set by the crate itself and cannot be overridden")]
    ReservedParameter(String),
    /// A duration option is out of range.
    #[error("{option} must be {expected}")]
    InvalidDuration {
        /// The builder option.
        option: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
    /// A size option is out of range.
    #[error("{option} must be {expected}")]
    InvalidSize {
        /// The builder option.
        option: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
    /// An origin given to `only_for` is not `scheme://host[:port]`.
    #[error("only_for takes origins like https://api.example.com[:port]: {0}")]
    InvalidOrigin(String),
    /// The refresh window is not a share of a token's lifetime.
    #[error(
        "refresh_window must be a share of the token's lifetime between 0 and 1, both excluded \
         (0.25 is the last quarter); use refresh_ahead(false) to turn refreshing ahead off"
    )]
    InvalidRefreshWindow,
    /// The retry policy's bounds are the wrong way round.
    #[error("token_retry: min_retry_interval is longer than max_retry_interval")]
    InvalidRetryPolicy,
    /// The default HTTP client for token requests could not be built.
    #[error("could not build the HTTP client for token requests: {0}")]
    HttpClient(String),
    /// The Auth0 domain is not a bare host name.
    #[error(
        "the Auth0 domain must be a host name like tenant.eu.auth0.com, without https:// or a \
         path: {0}"
    )]
    InvalidAuth0Domain(String),
    /// The private key for `private_key_jwt` cannot sign client assertions.
    #[error("the private key cannot be used: {0}")]
    InvalidPrivateKey(&'static str),
    /// The Redis URL given to [`RedisStorage::from_url`](crate::RedisStorage::from_url) is not
    /// one. The message never repeats the URL, which may hold a password.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error("invalid Redis URL: {0}")]
    InvalidRedisUrl(String),
}

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
    /// `token_type` is not `Bearer`.
    #[error("token_type {0:?} is not supported (only Bearer is)")]
    UnsupportedTokenType(String),
    /// `expires_in` is not a whole number of seconds in range.
    #[error(
        "expires_in {0} is not a whole number of seconds between 1 and {max}",
        max = crate::token::MAX_EXPIRES_IN.as_secs()
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

/// How many characters of a short server-sent value (a token type, an error code) to keep.
pub(crate) const SHORT_VALUE: usize = 64;
/// How many characters of a server's `error_description` to keep.
pub(crate) const LONG_VALUE: usize = 512;

/// A configured URL or host made safe to put in an error message: as [`printable`], and
/// anything before an `@` (a user name and password) left out.
pub(crate) fn printable_without_userinfo(value: &str) -> String {
    let Some(at) = value.rfind('@') else {
        return printable(value, SHORT_VALUE);
    };
    let scheme = value
        .find("://")
        .filter(|end| *end < at)
        .map_or("", |end| &value[..end + 3]);
    printable(&format!("{scheme}…@{}", &value[at + 1..]), SHORT_VALUE)
}

/// A server-sent value made safe to put in an error message: control characters dropped and the
/// length capped, so a hostile server can neither flood nor garble logs.
pub(crate) fn printable(value: &str, max_chars: usize) -> String {
    let mut kept = value.chars().filter(|c| !c.is_control());
    let mut out: String = kept.by_ref().take(max_chars).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// `time` as an HTTP date, as `Retry-After` gives it; times an HTTP date cannot hold are
/// described instead (formatting them would panic).
pub(crate) fn http_date(time: SystemTime) -> String {
    const LAST_HTTP_DATE: std::time::Duration = std::time::Duration::from_secs(253_402_300_799);
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since <= LAST_HTTP_DATE => httpdate::fmt_http_date(time),
        _ => "a time out of range".to_owned(),
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() {
        "the answer was cut short"
    } else {
        "the request failed"
    }
}

fn fmt_oauth_error(error: Option<&OAuthError>) -> String {
    error.map(|e| format!(": {e}")).unwrap_or_default()
}

/// What to check, for the errors a user can fix.
fn hint(status: StatusCode, error: Option<&OAuthError>) -> &'static str {
    match error.map(OAuthError::error) {
        Some("invalid_client") => " — check the client id and secret, and the auth method",
        Some("unauthorized_client") => {
            " — the client is not allowed the client_credentials grant; check its settings on \
             the authorization server"
        }
        Some("access_denied") => {
            " — check the audience, and that the client is authorized for that API"
        }
        Some("invalid_scope") => " — check the requested scope",
        Some("invalid_request") => " — check the audience, scope and extra parameters",
        Some("invalid_grant") => {
            " — the server refused the client_credentials grant; check the client's settings \
             on the authorization server"
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
fn response_hint(reason: &TokenResponseError) -> &'static str {
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
            " — this middleware sends bearer tokens only; ask the server for a Bearer token"
        }
        TokenResponseError::InvalidExpiresIn(_) | TokenResponseError::AccessTokenNotHeaderSafe => {
            " — the authorization server is misbehaving"
        }
        TokenResponseError::Redirected(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn userinfo_is_left_out() {
        assert_eq!(
            printable_without_userinfo("https://user:pw@api.example/x"),
            "https://…@api.example/x"
        );
        assert_eq!(
            printable_without_userinfo("user:pw@tenant.example"),
            "…@tenant.example"
        );
        assert_eq!(printable_without_userinfo("api.example"), "api.example");
    }

    #[test]
    fn printable_strips_control_characters_and_caps_length() {
        assert_eq!(printable("a\u{0}b\nc", 10), "abc");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
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
        };
        assert!(far.to_string().contains("until a time out of range"));
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
