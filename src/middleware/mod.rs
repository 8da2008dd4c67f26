//! [`ClientCredentials`]: the middleware that attaches a token, and replays once after a 401.
//!
//! The request side of the flow: where tokens go (`attach`), how the middleware is configured
//! (`builder`) and the Auth0 preset (`auth0`) live beside it.

pub(crate) mod attach;
pub(crate) mod auth0;
pub(crate) mod builder;
mod refusals;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use http::{Extensions, StatusCode, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::cache::TokenCache;
use crate::cache::cached_token::CachedToken;
use crate::endpoint::dpop::proof::{DPOP, asks_for_nonce};
use crate::error::Error;
use crate::middleware::attach::{AttachRules, answered_where_sent};
use crate::middleware::refusals::{FreshTokenRefusals, REMEMBERED_FOR};
use crate::stats::{Stats, count};
use crate::token::Token;

/// OAuth 2 client-credentials middleware for [`reqwest_middleware`]: gets an access token on
/// first use, keeps it until it is about to expire, and sends it as `Authorization: Bearer …`
/// with every request.
///
/// Cheap to clone: clones share one token cache. Make one per set of credentials and audience,
/// and clone it where needed.
///
/// See the [crate documentation](crate) for an example and for how it behaves under concurrency
/// and failure.
#[derive(Clone)]
pub struct ClientCredentials {
    cache: Arc<TokenCache>,
    requests: Arc<RequestSide>,
}

/// What the middleware keeps about the requests it handles, shared by its clones.
#[derive(Debug)]
struct RequestSide {
    attach: AttachRules,
    refusals: FreshTokenRefusals,
}

impl ClientCredentials {
    pub(crate) fn new(attach: AttachRules, cache: TokenCache) -> Self {
        Self {
            cache: Arc::new(cache),
            requests: Arc::new(RequestSide {
                attach,
                refusals: FreshTokenRefusals::default(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn cache(&self) -> &Arc<TokenCache> {
        &self.cache
    }

    /// The current access token, fetched if there is none or it is about to expire: for callers
    /// that do not send their requests through `reqwest_middleware`.
    ///
    /// # Errors
    /// When no token can be had: the token endpoint cannot be reached, refuses the client, or
    /// answers with something that is not a usable token.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), reqwest_alf::Error> {
    /// let auth = reqwest_alf::ClientCredentials::builder(
    ///     "https://tenant.example/oauth/token", "id", "secret",
    /// )
    /// .build()?;
    /// let token = auth.token().await?;
    /// let response = reqwest::Client::new()
    ///     .get("https://api.example/things")
    ///     .bearer_auth(token.access_token().secret())
    ///     .send()
    ///     .await;
    /// if response.is_ok_and(|r| r.status() == 401) {
    ///     auth.invalidate(&token).await;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token(&self) -> Result<Token, Error> {
        Ok(self.cache.fresh_token().await?.token.clone())
    }

    /// What this middleware and its clones have done so far: token requests, tokens served from
    /// memory and from the shared storage, waits on another instance's refresh lease, refreshes
    /// ahead, replays after a 401, rate-limited requests and storage errors.
    ///
    /// The same events are `tracing` events too (`debug`, with the storage key's readable part:
    /// the token endpoint's host).
    pub fn stats(&self) -> Stats {
        self.cache.counters.snapshot()
    }

    /// Forgets `rejected`, here and in the storage, so that the next request or
    /// [`token`](Self::token) call gets a new token: for callers of `token()` whose API answered
    /// 401. The middleware does this by itself.
    ///
    /// Nothing happens if `rejected` is no longer the current token: a token another task has
    /// already fetched in its place is kept.
    pub async fn invalidate(&self, rejected: &Token) {
        self.cache.invalidate(rejected).await;
    }
}

#[async_trait]
impl Middleware for ClientCredentials {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // The caller chose its own credentials for this request: leave them alone.
        if request.headers().contains_key(AUTHORIZATION) {
            return next.run(request, extensions).await;
        }
        // Not a place for this token (plain http, another origin, the caller's predicate).
        if !self.requests.attach.applies_to(&request) {
            tracing::debug!(
                key = %self.cache.key,
                origin = %request.url().origin().ascii_serialization(),
                "request sent without a token: it is not one the token is for"
            );
            return next.run(request, extensions).await;
        }

        // Copied before the token goes on: the replay gets a new one, and a request without
        // headers of its own copies no header map.
        let replay = copy_for_replay(&request);
        // Where the token went, should a 401 come back; `replay` keeps it when it exists.
        let streamed_to = replay.is_none().then(|| request.url().clone());
        let used = self.attach_fresh_token(&mut request).await?;

        let response = next.clone().run(request, extensions).await?;
        if let Some(dpop) = &self.cache.endpoint.dpop {
            dpop.remember_nonce(response.url(), response.headers());
        }
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let sent_to = replay.as_ref().map(Request::url).or(streamed_to.as_ref());
        if let Some(sent_to) = sent_to
            && !answered_where_sent(sent_to, response.url())
        {
            tracing::debug!(
                key = %self.cache.key,
                answered_from = %response.url().origin().ascii_serialization(),
                "the 401 came from another origin a redirect led to, which never saw the token: \
                 the token is kept and the request is not replayed"
            );
            return Ok(response);
        }
        if self.cache.endpoint.dpop.is_some() && asks_for_nonce(response.headers()) {
            // The token is good; the proof lacked the server's nonce, which it has now given.
            // This is the request's one replay.
            let Some(mut replay) = replay else {
                return Ok(response);
            };
            tracing::debug!(key = %self.cache.key, "the API asked for a DPoP nonce; replaying once with it");
            self.put_token(&mut replay, &used)?;
            count(&self.cache.counters.replays);
            return next.run(replay, extensions).await;
        }
        if self.requests.refusals.in_force(SystemTime::now()) {
            tracing::debug!(
                key = %self.cache.key,
                "the API answered 401, as it did to a token fetched just now: the 401 goes to \
                 the caller, with no new token fetched"
            );
            return Ok(response);
        }
        // Replayed or not, the rejected token must not serve the next request.
        self.cache.invalidate(&used.token).await;
        let Some(mut replay) = replay else {
            tracing::warn!(
                key = %self.cache.key,
                "the API answered 401, and the request is not replayed: its body is a stream \
                 that cannot be sent twice; the next request gets a new token"
            );
            return Ok(response);
        };

        tracing::debug!(key = %self.cache.key, "the API answered 401; replaying once with a new token");
        self.attach_fresh_token(&mut replay).await?;
        count(&self.cache.counters.replays);
        let replayed_to = replay.url().clone();
        let replayed = next.run(replay, extensions).await?;
        if replayed.status() == StatusCode::UNAUTHORIZED
            && answered_where_sent(&replayed_to, replayed.url())
            && self.requests.refusals.remember(SystemTime::now())
        {
            tracing::warn!(
                key = %self.cache.key,
                "the API refused a token fetched just now: it does not take this client's tokens. \
                 Check the audience, the resource (RFC 8707) and the scope the token is asked \
                 for, and that the API trusts this authorization server. For the next {} s a \
                 401 goes to the caller with no new token fetched",
                REMEMBERED_FOR.as_secs()
            );
        }
        Ok(replayed)
    }
}

impl ClientCredentials {
    /// Puts a token that does not count as expired on `request`; the token it put there. The
    /// cached token needs no await: nearly every request takes it.
    async fn attach_fresh_token(
        &self,
        request: &mut Request,
    ) -> reqwest_middleware::Result<Arc<CachedToken>> {
        let token = match self.cache.cached_token() {
            Ok(cached) => cached,
            Err((seen, now)) => self
                .cache
                .replace(seen, now)
                .await
                .map_err(reqwest_middleware::Error::middleware)?,
        };
        self.put_token(request, &token)?;
        Ok(token)
    }

    /// Puts `token` on `request`: its `Authorization` header and, with DPoP, a new proof for
    /// the request's method and URL.
    fn put_token(
        &self,
        request: &mut Request,
        token: &CachedToken,
    ) -> reqwest_middleware::Result<()> {
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.header.clone());
        if let Some(dpop) = &self.cache.endpoint.dpop {
            let proof = dpop
                .proof(request.method(), request.url(), token.ath.as_deref())
                .map_err(reqwest_middleware::Error::middleware)?;
            request.headers_mut().insert(DPOP, proof);
        }
        Ok(())
    }
}

/// A copy of `request` to send again after a 401, or `None` when its body is a stream that
/// cannot be sent twice. For a request without a body, what `Request::try_clone` copies
/// (method, URL, headers, version and timeout, reqwest's only per-request setting), without
/// the timeout setting `try_clone` makes for a request that has none: a map allocated and
/// dropped for every request.
fn copy_for_replay(request: &Request) -> Option<Request> {
    if request.body().is_some() {
        return request.try_clone();
    }
    let mut copy = Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    Some(copy)
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_endpoint", &self.cache.endpoint.display)
            .field("client_auth", &self.cache.endpoint.client_auth)
            .field("attach", &self.requests.attach)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}
