//! [`ClientCredentials`]: the middleware that attaches a token, and replays once after a 401.
//!
//! The request side of the flow: where tokens go (`attach`), how the middleware is configured
//! (`builder`) and the Auth0 preset (`auth0`) live beside it.

pub(crate) mod attach;
pub(crate) mod auth0;
pub(crate) mod builder;
mod refusals;
mod replay;
mod unauthorized;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{Extensions, StatusCode, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tokio::time::Instant;

use crate::cache::cached_token::{Lent, TokenId};
use crate::cache::{Miss, TokenCache};
use crate::endpoint::dpop::proof::DPOP;
use crate::error::Error;
use crate::middleware::attach::AttachRules;
use crate::middleware::refusals::RefusalPace;
use crate::middleware::replay::Replay;
use crate::stats::Stats;
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
    refusals: RefusalPace,
}

impl ClientCredentials {
    pub(crate) fn new(attach: AttachRules, cache: TokenCache) -> Self {
        Self {
            cache: Arc::new(cache),
            requests: Arc::new(RequestSide {
                attach,
                refusals: RefusalPace::default(),
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
        match self.cache.cached(|cached| cached.token.clone()) {
            Ok(token) => Ok(token),
            Err((seen, now)) => Ok(self.cache.replace(seen, now).await?.token.clone()),
        }
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

// By hand rather than through `#[async_trait]`: a request the token is not for goes on with no
// future of this middleware's own, and the state kept across the send stays small.
impl Middleware for ClientCredentials {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> BoxFuture<'async_trait, reqwest_middleware::Result<Response>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        // The caller chose its own credentials for this request: leave them alone. (Most
        // requests have no headers of their own yet; `contains_key` finds that out too, but
        // only after a call that costs some twenty instructions more per request.)
        if !request.headers().is_empty() && request.headers().contains_key(AUTHORIZATION) {
            return next.run(request, extensions);
        }
        // Not a place for this token (plain http, another origin, the caller's predicate).
        if !self.requests.attach.applies_to(&request) {
            tracing::debug!(
                key = %self.cache.key,
                origin = %request.url().origin().ascii_serialization(),
                "request sent without a token: it is not one the token is for"
            );
            return next.run(request, extensions);
        }
        // Allocated first and the future made in place: no copy of it is moved into the box.
        let future = Box::write(Box::new_uninit(), self.send(request, extensions, next));
        Box::into_pin(future)
    }
}

impl ClientCredentials {
    /// Puts a token on `request`, sends it, and after a 401 sends it once more.
    ///
    /// Everything happens in the future, in place in its box: the copy kept for a replay is
    /// made there, not moved in. A plain `async` block rather than an `async fn`, whose state
    /// would keep a second copy of each argument.
    #[allow(clippy::manual_async_fn)]
    fn send<'a>(
        &'a self,
        mut request: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        async move {
            // Copied before the token goes on: the replay gets a new one.
            let replay = Replay::of(&request);
            let used = self.attach_fresh_token(&mut request).await?;
            // In a block of its own, so that the answer has no place in this future's state
            // across the await below: every request's future is the smaller for it.
            let after_unauthorized = {
                let response = next.clone().run(request, extensions).await?;
                if let Some(dpop) = &self.cache.endpoint.dpop {
                    dpop.remember_nonce(response.url(), response.headers());
                }
                if response.status() != StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                // Boxed, as every path but the common one, to keep this future small.
                Box::pin(self.after_unauthorized(response, replay, used, extensions, next))
            };
            after_unauthorized.await
        }
    }

    /// Puts a token that does not count as expired on `request`; which token it put there.
    /// The cached token needs no await: nearly every request takes it.
    pub(super) async fn attach_fresh_token(
        &self,
        request: &mut Request,
    ) -> reqwest_middleware::Result<TokenId> {
        match self.cached_token() {
            Ok(lent) => self.put_token(request, lent),
            // Boxed: rare, and its state would otherwise make every request's future larger.
            Err(miss) => Box::pin(self.put_replacing_token(request, miss)).await,
        }
    }

    /// What a request takes of the in-process token, with the calling thread's copy of its
    /// header, when the token does not count as expired; otherwise what was seen there.
    fn cached_token(&self) -> Result<Lent, Miss> {
        self.cache
            .cached(|cached| cached.lend(self.cache.header_of(cached)))
    }

    /// Puts on `request` a token in place of the one `miss` saw; which token it put there.
    /// While the API refuses even the tokens replays get, a refused token is replaced only at
    /// the pace `refusals` sets: the request waits for that fetch.
    async fn put_replacing_token(
        &self,
        request: &mut Request,
        mut miss: Miss,
    ) -> reqwest_middleware::Result<TokenId> {
        if miss.0.as_ref().is_some_and(|seen| seen.is_rejected())
            && let Some(until) = self.requests.refusals.wait_until(Instant::now())
        {
            tracing::debug!(key = %self.cache.key, "the API refused a replay's token lately; waiting for the next token fetch");
            tokio::time::sleep_until(until).await;
            // Another request may have fetched the token meanwhile.
            match self.cached_token() {
                Ok(lent) => return self.put_token(request, lent),
                Err(again) => miss = again,
            }
        }
        let (seen, now) = miss;
        let fetched = self
            .cache
            .replace(seen, now)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        self.put_token(request, fetched.lend(self.cache.header_of(&fetched)))
    }

    /// Puts the token `lent` on `request`: its `Authorization` header and, with DPoP, a new
    /// proof for the request's method and URL; which token it was.
    fn put_token(&self, request: &mut Request, lent: Lent) -> reqwest_middleware::Result<TokenId> {
        if let Some(dpop) = &self.cache.endpoint.dpop {
            let proof = dpop
                .proof(request.method(), request.url(), lent.ath.as_deref())
                .map_err(reqwest_middleware::Error::middleware)?;
            request.headers_mut().insert(DPOP, proof);
        }
        request.headers_mut().insert(AUTHORIZATION, lent.header);
        Ok(lent.id)
    }
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
