//! The token request (RFC 6749 §4.4): one fetch, its attempts and its retries.
//!
//! [`TokenEndpoint::fetch`] sends the form body with the client's authentication, retries where a
//! retry can help, and reads the answer into a [`Token`] or a typed [`Error`].

mod assertion_file;
pub(crate) mod assertion_source;
#[cfg(feature = "jwt")]
pub(crate) mod client_assertion;
pub(crate) mod client_auth;
pub(crate) mod dpop;
pub(crate) mod jwt_bearer;
pub(crate) mod quota;
mod response;
pub(crate) mod retry;
mod span;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use retry_policies::policies::ExponentialBackoff;
use tracing::Instrument;
use url::{Url, form_urlencoded};

use crate::endpoint::client_auth::ClientAuthentication;
use crate::endpoint::dpop::header::DPOP;
use crate::endpoint::dpop::proof::DpopProofs;
use crate::endpoint::jwt_bearer::{BearerGrant, JWT_BEARER_GRANT};
use crate::endpoint::quota::QuotaReport;
use crate::endpoint::response::{parse_oauth_error, parse_token_response, read_capped};
use crate::endpoint::retry::RateLimit;
use crate::error::{Error, OAuthError, QuotaScope, TokenResponseError, is_retryable_status};
use crate::stats::{Counters, count};
use crate::time::http_date;
use crate::token::{Token, TokenType};

/// Everything needed to ask the authorization server for a token.
pub(crate) struct TokenEndpoint {
    pub(crate) url: Url,
    /// The URL without its query, for messages and logs.
    pub(crate) display: Arc<str>,
    pub(crate) client_auth: ClientAuthentication,
    pub(crate) http: reqwest::Client,
    pub(crate) retry: ExponentialBackoff,
    pub(crate) timeout: Duration,
    pub(crate) default_expires_in: Duration,
    /// The longest lifetime a token is taken to have: a longer one is shortened to it.
    pub(crate) max_lifetime: Duration,
    /// The most a response body may hold: real ones are a few kilobytes at most; anything
    /// larger is a misbehaving server, and is not worth the memory.
    pub(crate) max_body_bytes: usize,
    /// The DPoP key and nonces, when tokens are bound to a key: each token request carries a
    /// proof, and the answer must be a DPoP token.
    pub(crate) dpop: Option<Arc<DpopProofs>>,
    /// The JWT bearer grant's assertion, when tokens are asked for with it rather than with the
    /// client credentials grant.
    pub(crate) jwt_bearer: Option<BearerGrant>,
}

/// Why one attempt failed, before deciding whether to try again.
enum Failure {
    Transport(reqwest::Error),
    Status {
        status: StatusCode,
        oauth_error: Option<OAuthError>,
        retry_at: Option<SystemTime>,
        /// A 429 with a spent quota bucket: `retry_at` is when the bucket resets.
        spent_quota: Option<QuotaScope>,
    },
    Response(TokenResponseError),
    /// The request could not be made (a client assertion that would not sign).
    Unsendable(Error),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Transport(error) => retry::is_retryable_transport(error),
            Failure::Status { status, .. } => is_retryable_status(*status),
            Failure::Response(_) | Failure::Unsendable(_) => false,
        }
    }

    fn retry_at(&self) -> Option<SystemTime> {
        match self {
            Failure::Status { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// What the server's rate limit, if this is one, asks of the fetch.
    fn rate_limit(
        &self,
        policy: &ExponentialBackoff,
        attempts: &Attempts,
        now: SystemTime,
    ) -> Option<RateLimit> {
        match self {
            Failure::Status {
                status,
                retry_at,
                spent_quota,
                ..
            } => retry::rate_limit(
                policy,
                attempts.started_at,
                attempts.made.saturating_sub(1),
                *status,
                *retry_at,
                spent_quota.is_some(),
                now,
            ),
            _ => None,
        }
    }

    fn into_error(self, endpoint: &str, attempts: u32) -> Error {
        let endpoint = endpoint.to_owned();
        match self {
            Failure::Transport(source) => Error::Transport {
                endpoint,
                attempts,
                source: Arc::new(source.without_url()),
            },
            Failure::Status {
                status,
                oauth_error,
                retry_at,
                ..
            } => Error::TokenEndpoint {
                endpoint,
                status,
                oauth_error,
                attempts,
                retry_at,
            },
            Failure::Response(reason) => Error::InvalidTokenResponse { endpoint, reason },
            Failure::Unsendable(error) => error,
        }
    }
}

/// The attempts of one fetch so far, which the retry policy counts, across the waits for a
/// rate limit too.
#[derive(Debug)]
pub(crate) struct Attempts {
    started_at: SystemTime,
    made: u32,
    /// The token quotas the last answer reported.
    pub(crate) quota: QuotaReport,
}

impl Attempts {
    pub(crate) fn new() -> Self {
        Self {
            started_at: SystemTime::now(),
            made: 0,
            quota: QuotaReport::default(),
        }
    }
}

/// How a fetch ended.
#[derive(Debug)]
pub(crate) enum Fetched {
    Token(Token),
    /// The server rate limits this client until then, briefly enough to wait for it, and the
    /// policy has an attempt left: wait, then fetch again with the same [`Attempts`]. Nobody
    /// should ask the token endpoint meanwhile.
    AfterRateLimit(SystemTime),
    Failed(Error),
}

impl Fetched {
    /// How the fetch ended, as its span (and a metric) says it, and whether that is a failure.
    pub(crate) fn outcome(&self) -> (&'static str, bool) {
        match self {
            Fetched::Token(_) => ("fetched", false),
            Fetched::AfterRateLimit(_) => ("rate_limited_briefly", false),
            Fetched::Failed(error) => (
                match error {
                    Error::RateLimited { .. } => "rate_limited",
                    Error::Transport { .. } => "transport_error",
                    Error::TokenEndpoint { status, .. } if status.is_server_error() => {
                        "server_error"
                    }
                    Error::TokenEndpoint { .. } => "refused",
                    Error::InvalidTokenResponse { .. } => "invalid_response",
                    _ => "error",
                },
                true,
            ),
        }
    }
}

impl TokenEndpoint {
    /// The `grant_type` of every token request.
    pub(crate) fn grant_type(&self) -> &'static str {
        match self.jwt_bearer {
            Some(_) => JWT_BEARER_GRANT,
            None => "client_credentials",
        }
    }

    /// The subject tokens are for, with the JWT bearer grant: part of their storage key.
    pub(crate) fn subject(&self) -> Option<&str> {
        self.jwt_bearer.as_ref().map(BearerGrant::subject)
    }

    /// Gets a new token, retrying where a retry can help. A rate limit ends the fetch at once:
    /// a short one with [`Fetched::AfterRateLimit`], for the caller to wait out with everyone
    /// else held back, a long one with [`Error::RateLimited`].
    ///
    /// `form` is the grant's form body, without the client's authentication.
    ///
    /// The fetch is a `tracing` span of its own (`span.rs`), a child of the current span.
    pub(crate) async fn fetch(
        &self,
        form: &str,
        counters: &Counters,
        attempts: &mut Attempts,
    ) -> Fetched {
        let span = span::fetch_span(&self.url, &self.display);
        let fetched = self
            .fetch_attempts(form, counters, attempts)
            .instrument(span.clone())
            .await;
        let (outcome, failed) = fetched.outcome();
        span::record_end(&span, attempts.made, outcome, failed);
        fetched
    }

    async fn fetch_attempts(
        &self,
        form: &str,
        counters: &Counters,
        attempts: &mut Attempts,
    ) -> Fetched {
        loop {
            attempts.made += 1;
            let made = attempts.made;
            tracing::debug!(endpoint = %self.display, attempt = made, "requesting an access token");
            count(&counters.token_requests);
            let failure = match self.attempt(form, counters, &mut attempts.quota).await {
                Ok(token) => return Fetched::Token(token),
                Err(failure) => failure,
            };
            match failure.rate_limit(&self.retry, attempts, SystemTime::now()) {
                Some(RateLimit::WaitOut(until)) => {
                    tracing::warn!(
                        endpoint = %self.display,
                        attempts = made,
                        retry_at = %http_date(until),
                        error = %failure.into_error(&self.display, made),
                        "the token endpoint is rate limiting this client briefly; asking again at retry_at"
                    );
                    return Fetched::AfterRateLimit(until);
                }
                Some(RateLimit::CoolDown(retry_at)) => {
                    let spent_quota = match failure {
                        Failure::Status { spent_quota, .. } => spent_quota,
                        _ => None,
                    };
                    tracing::warn!(
                        endpoint = %self.display,
                        attempts = made,
                        retry_at = %http_date(retry_at),
                        quota_spent = spent_quota.is_some(),
                        error = %failure.into_error(&self.display, made),
                        "the token endpoint is rate limiting this client; no token request is sent before retry_at"
                    );
                    return Fetched::Failed(Error::RateLimited {
                        endpoint: self.display.to_string(),
                        retry_at,
                        spent_quota,
                    });
                }
                None => {}
            }
            let delay = if failure.is_retryable() {
                retry::next_delay(
                    &self.retry,
                    attempts.started_at,
                    made - 1,
                    failure.retry_at(),
                )
            } else {
                None
            };
            let error = failure.into_error(&self.display, made);
            let Some(delay) = delay else {
                tracing::warn!(endpoint = %self.display, attempts = made, error = %error, "could not get an access token");
                return Fetched::Failed(error);
            };
            tracing::warn!(
                endpoint = %self.display,
                attempt = made,
                retry_in_ms = delay.as_millis() as u64,
                error = %error,
                "token request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One token request, and its answer read; sent a second time at once when the server
    /// asks for a DPoP proof with its new nonce (RFC 9449 §8), which is not a failure.
    async fn attempt(
        &self,
        form: &str,
        counters: &Counters,
        quota: &mut QuotaReport,
    ) -> Result<Token, Failure> {
        match self.attempt_once(form, quota).await {
            Err(Failure::Status {
                status: StatusCode::BAD_REQUEST,
                oauth_error: Some(error),
                ..
            }) if error.error() == "use_dpop_nonce" && self.dpop.is_some() => {
                tracing::debug!(endpoint = %self.display, "the token endpoint asked for a DPoP nonce; asking again with it");
                count(&counters.token_requests);
                self.attempt_once(form, quota).await
            }
            other => other,
        }
    }

    /// One request and its answer; the token quotas the answer reports go to `quota`.
    async fn attempt_once(&self, form: &str, quota: &mut QuotaReport) -> Result<Token, Failure> {
        // Expiry counts from here: the token cannot have been issued before it was asked for.
        let sent_at = SystemTime::now();
        let mut body = form.to_owned();
        if let Some(grant) = &self.jwt_bearer {
            let assertion = grant
                .assertion(sent_at, self.timeout)
                .await
                .map_err(Failure::Unsendable)?;
            body.push_str("&assertion=");
            body.extend(form_urlencoded::byte_serialize(assertion.as_bytes()));
        }
        let fields = self
            .client_auth
            .form_fields(sent_at, self.timeout)
            .await
            .map_err(Failure::Unsendable)?;
        if let Some(fields) = fields {
            body.push('&');
            body.push_str(&fields);
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(body);
        if let Some(header) = self.client_auth.header() {
            request = request.header(AUTHORIZATION, header.clone());
        }
        if let Some(dpop) = &self.dpop {
            let proof = dpop
                .proof(&http::Method::POST, &self.url, None)
                .map_err(Failure::Unsendable)?;
            request = request.header(DPOP, proof);
        }

        let mut response = request.send().await.map_err(Failure::Transport)?;
        if response.url() != &self.url {
            // A caller's http_client followed a redirect: whatever answered is not the token
            // endpoint we were given, and its token must not be trusted.
            return Err(Failure::Response(TokenResponseError::Redirected(
                response.url().origin().ascii_serialization(),
            )));
        }
        let status = response.status();
        span::record_status(status);
        if let Some(dpop) = &self.dpop {
            dpop.remember_nonce(&self.url, response.headers());
        }
        let now = SystemTime::now();
        *quota = QuotaReport::from_headers(response.headers(), now);
        let mut retry_at = retry::retry_at(status, response.headers(), now);
        // A spent quota bucket holds until it resets, whatever else the answer says.
        let spent_quota = match quota.spent_until(now) {
            Some((reset, scope)) if status == StatusCode::TOO_MANY_REQUESTS => {
                retry_at = retry_at.max(Some(reset));
                Some(scope)
            }
            _ => None,
        };
        let body = read_capped(&mut response, self.max_body_bytes)
            .await
            .map_err(Failure::Transport)?;

        if !status.is_success() {
            return Err(Failure::Status {
                status,
                oauth_error: body.as_deref().and_then(parse_oauth_error),
                retry_at,
                spent_quota,
            });
        }
        let body = body.ok_or(Failure::Response(TokenResponseError::BodyTooLarge(
            self.max_body_bytes,
        )))?;
        let expected = match self.dpop {
            Some(_) => TokenType::Dpop,
            None => TokenType::Bearer,
        };
        parse_token_response(&body, sent_at, self.default_expires_in, expected)
            .map(|token| token.with_lifetime_at_most(self.max_lifetime))
            .map_err(Failure::Response)
    }
}
