//! [`ClientCredentials`]: the middleware that attaches a token, and replays once after a 401.
//!
//! The request side of the flow: where tokens go (`attach`), how the middleware is configured
//! (`builder`) and the Auth0 preset (`auth0`) live beside it.

pub(crate) mod attach;
pub(crate) mod auth0;
pub(crate) mod builder;
mod overlap;
mod put_token;
mod replay;
pub(crate) mod route;
mod unauthorized;

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{Extensions, HeaderValue, Method, StatusCode, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use url::Url;

use crate::cache::{Slot, Slots};
use crate::endpoint::dpop::header::ath;
use crate::error::{ConfigError, Error};
use crate::grant::Grant;
use crate::middleware::attach::AttachRules;
use crate::middleware::overlap::OverlapCheck;
use crate::middleware::put_token::attach_fresh_token;
use crate::middleware::replay::Replay;
use crate::middleware::route::{Routes, grant_in};
use crate::middleware::unauthorized::after_unauthorized;
use crate::stats::{GrantStats, Stats};
use crate::token::Token;

/// OAuth 2 client-credentials middleware for [`reqwest_middleware`]: gets an access token on
/// first use, keeps it until it is about to expire, and sends it as `Authorization: Bearer …`
/// with every request.
///
/// One middleware serves one client of the authorization server, and as many grants
/// (audiences, Auth0 organizations, scopes) as its requests need: by API with
/// [`route`](crate::ClientCredentialsBuilder::route), or per request with a [`Grant`]
/// extension. Each grant has its own token.
///
/// Cheap to clone: clones share their tokens. Make one per set of credentials, and clone it
/// where needed.
///
/// See the [crate documentation](crate) for an example and for how it behaves under concurrency
/// and failure.
#[derive(Clone)]
pub struct ClientCredentials {
    inner: Arc<Inner>,
}

/// What a middleware and its clones share.
struct Inner {
    attach: AttachRules,
    routes: Routes,
    slots: Arc<Slots>,
    overlap: OverlapCheck,
    /// The task that mirrors the counts to the metrics recorder.
    #[cfg(feature = "metrics")]
    mirror: crate::cache::metrics::Mirror,
}

/// The slot a request's token comes from: one fixed at build, borrowed (no reference count
/// written on the cached path), or one a request named, held.
enum Chosen<'a> {
    Fixed(&'a Arc<Slot>),
    Named(Arc<Slot>),
}

impl Deref for Chosen<'_> {
    type Target = Arc<Slot>;

    fn deref(&self) -> &Arc<Slot> {
        match self {
            Chosen::Fixed(slot) => slot,
            Chosen::Named(slot) => slot,
        }
    }
}

impl ClientCredentials {
    pub(crate) fn new(attach: AttachRules, routes: Routes, slots: Slots) -> Self {
        let slots = Arc::new(slots);
        overlap::register(&slots);
        let credentials = Self {
            inner: Arc::new(Inner {
                attach,
                routes,
                slots,
                overlap: OverlapCheck::default(),
                #[cfg(feature = "metrics")]
                mirror: crate::cache::metrics::Mirror::default(),
            }),
        };
        credentials.start_metrics();
        credentials
    }

    #[cfg(test)]
    pub(crate) fn slots(&self) -> &Slots {
        &self.inner.slots
    }

    #[cfg(test)]
    pub(crate) fn default_slot(&self) -> &Arc<Slot> {
        self.inner.routes.default_slot().expect("a default grant")
    }

    /// The access token of the default grant (the builder's `audience`, `scope`, …), fetched if
    /// there is none or it is about to expire: for callers that do not send their requests
    /// through `reqwest_middleware`. With routes, use [`token_for`](Self::token_for).
    ///
    /// # Errors
    /// When no token can be had: the token endpoint cannot be reached, refuses the client, or
    /// answers with something that is not a usable token; [`ConfigError::NoDefaultGrant`]
    /// when routes were given and no default grant.
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
        self.start_metrics();
        let slot = self
            .inner
            .routes
            .default_slot()
            .ok_or(ConfigError::NoDefaultGrant)?;
        token_of(slot).await
    }

    /// The access token for `grant`, fetched if there is none or it is about to expire: the
    /// same token the middleware puts on requests routed to `grant`, or naming it.
    ///
    /// # Errors
    /// As [`token`](Self::token), and [`Error::InvalidConfig`] when `grant` has a bad
    /// parameter (an empty audience, a reserved name, …).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(auth: reqwest_alf::ClientCredentials) -> Result<(), reqwest_alf::Error> {
    /// use reqwest_alf::Grant;
    ///
    /// let billing = Grant::new().audience("https://billing.example/");
    /// let token = auth.token_for(&billing).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token_for(&self, grant: &Grant) -> Result<Token, Error> {
        self.start_metrics();
        token_of(&self.inner.slots.get_or_make(grant)?).await
    }

    /// The `DPoP` header for a `method` request to `url` with `token` (RFC 9449 §7): for
    /// callers of [`token`](Self::token) on a middleware built with
    /// `dpop` (feature `jwt`), whose requests carry
    /// `Authorization: DPoP {token}` and this proof, made anew for each request. `None`
    /// without DPoP: the token is a bearer token.
    ///
    /// # Errors
    /// When the proof cannot be signed.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(auth: reqwest_alf::ClientCredentials) -> Result<(), Box<dyn std::error::Error>> {
    /// let url = reqwest::Url::parse("https://api.example/things")?;
    /// let token = auth.token().await?;
    /// let mut request = reqwest::Client::new().get(url.clone()).header(
    ///     "authorization",
    ///     format!("{} {}", token.token_type().scheme(), token.access_token().secret()),
    /// );
    /// if let Some(proof) = auth.dpop_proof(&reqwest::Method::GET, &url, &token)? {
    ///     request = request.header("dpop", proof);
    /// }
    /// let response = request.send().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn dpop_proof(
        &self,
        method: &Method,
        url: &Url,
        token: &Token,
    ) -> Result<Option<HeaderValue>, Error> {
        let Some(dpop) = &self.inner.slots.client().endpoint.dpop else {
            return Ok(None);
        };
        let ath = ath(token.access_token().secret());
        dpop.proof(method, url, Some(&ath)).map(Some)
    }

    /// What this middleware and its clones have done so far, over every grant: token requests,
    /// tokens served from memory and from the shared storage, waits on another instance's
    /// refresh lease, refreshes ahead, replays after a 401, rate-limited requests and storage
    /// errors.
    ///
    /// The same events are `tracing` events too (`debug`, with the storage key's readable part:
    /// the token endpoint's host).
    pub fn stats(&self) -> Stats {
        self.inner.slots.total()
    }

    /// The same counts for each grant that has a token now, by its readable label (audience,
    /// resources, organization, scope), in the label's order. A grant forgotten for being idle
    /// is no longer listed; its counts stay in [`stats`](Self::stats).
    pub fn stats_by_grant(&self) -> Vec<GrantStats> {
        self.inner.slots.by_grant()
    }

    /// Forgets `rejected`, here and in the storage, so that the next request or
    /// [`token`](Self::token) call gets a new token: for callers of `token()` whose API answered
    /// 401. The middleware does this by itself.
    ///
    /// Nothing happens if `rejected` is no longer the current token of its grant: a token
    /// another task has already fetched in its place is kept.
    pub async fn invalidate(&self, rejected: &Token) {
        let holders: Vec<Arc<Slot>> = self
            .inner
            .slots
            .all()
            .into_iter()
            .filter(|slot| slot.holds(rejected))
            .collect();
        if holders.is_empty() {
            // Replaced here already; the storage may still hold it for the default grant.
            if let Some(slot) = self.inner.routes.default_slot() {
                slot.invalidate(rejected).await;
            }
        }
        for slot in holders {
            slot.invalidate(rejected).await;
        }
    }

    /// Whether `found`, the `Authorization` on a request this middleware would have given a
    /// token, is another middleware's token: said once (`overlap.rs`).
    fn look_for_overlap(&self, request: &Request, extensions: &Extensions, found: &HeaderValue) {
        if !self.inner.attach.applies_to(request, extensions) {
            return;
        }
        if let Ok(Some(slot)) = self.slot_for(request, extensions) {
            self.inner
                .overlap
                .look(&self.inner.slots, &slot.grant, found);
        }
    }

    /// Starts mirroring the counts to the metrics recorder, unless that runs already or there is
    /// no Tokio runtime here yet (then the next request starts it). One load once it runs.
    fn start_metrics(&self) {
        #[cfg(feature = "metrics")]
        if !self.inner.mirror.is_started() {
            self.inner.mirror.start(&self.inner.slots);
        }
    }

    /// Publishes the counts of every grant and the gauges to the `metrics` recorder now; the
    /// middleware does it once a second by itself. For an exporter that renders on demand, call
    /// it just before rendering, so that the figures are those of [`stats`](Self::stats).
    ///
    /// The metrics (names as a Prometheus exporter writes them, each with the labels
    /// `token_endpoint`, `audience` and `organization`): `alf_token_requests`,
    /// `alf_token_fetches` (and `outcome`), `alf_token_fetch_duration` (seconds),
    /// `alf_tokens_served` (and `layer`: `memory`, `storage`), `alf_lease_waits`,
    /// `alf_refreshes_ahead`, `alf_replays`, `alf_rate_limited`, `alf_storage_errors`,
    /// `alf_token_expires_in` (seconds), and `alf_storage_breaker_open` (`token_endpoint`
    /// only).
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn record_metrics(&self) {
        crate::cache::metrics::mirror(&self.inner.slots);
    }

    /// The slot of the grant `request` gets, if any: the one it names, its route's, or the
    /// default.
    fn slot_for(
        &self,
        request: &Request,
        extensions: &Extensions,
    ) -> Result<Option<Chosen<'_>>, ConfigError> {
        if let Some(grant) = grant_in(extensions) {
            return self
                .inner
                .slots
                .get_or_make(grant)
                .map(|slot| Some(Chosen::Named(slot)));
        }
        Ok(self.inner.routes.slot_for(request.url()).map(Chosen::Fixed))
    }
}

/// `slot`'s token, from memory when it is fresh, else from the storage or the token endpoint.
async fn token_of(slot: &Arc<Slot>) -> Result<Token, Error> {
    match slot.cached(|cached| cached.token.clone()) {
        Ok(token) => Ok(token),
        Err((seen, now)) => Ok(slot.replace(seen, now).await?.token.clone()),
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
        if !request.headers().is_empty()
            && let Some(found) = request.headers().get(AUTHORIZATION)
        {
            if self.inner.overlap.wants_a_look() {
                self.look_for_overlap(&request, extensions, found);
            }
            return next.run(request, extensions);
        }
        // Not a place for a token (plain http, another origin, the caller's predicate).
        if !self.inner.attach.applies_to(&request, extensions) {
            tracing::debug!(
                origin = %request.url().origin().ascii_serialization(),
                "request sent without a token: it is not one tokens go to"
            );
            return next.run(request, extensions);
        }
        self.start_metrics();
        let slot = match self.slot_for(&request, extensions) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                tracing::debug!(
                    origin = %request.url().origin().ascii_serialization(),
                    "request sent without a token: no route matches it and there is no default grant"
                );
                return next.run(request, extensions);
            }
            Err(error) => {
                let error = Error::from(error).not_sent();
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        // Allocated first and the future made in place: no copy of it is moved into the box.
        let future = Box::write(
            Box::new_uninit(),
            self.send(slot, request, extensions, next),
        );
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
        slot: Chosen<'a>,
        mut request: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        async move {
            // Copied before the token goes on: the replay gets a new one.
            let replay = Replay::of(&request);
            let used = attach_fresh_token(&slot, &mut request).await?;
            // In a block of its own, so that the answer has no place in this future's state
            // across the await below: every request's future is the smaller for it.
            let after_unauthorized = {
                let response = next.clone().run(request, extensions).await?;
                if let Some(dpop) = &slot.client.endpoint.dpop {
                    dpop.remember_nonce(response.url(), response.headers());
                }
                if response.status() != StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                // Boxed, as every path but the common one, to keep this future small.
                Box::pin(after_unauthorized(
                    &slot, response, replay, used, extensions, next,
                ))
            };
            after_unauthorized.await
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client = self.inner.slots.client();
        f.debug_struct("ClientCredentials")
            .field("token_endpoint", &client.endpoint.display)
            .field("client_auth", &client.endpoint.client_auth)
            .field("attach", &self.inner.attach)
            .field("routes", &self.inner.routes)
            .field("default", &self.inner.routes.default_slot())
            .field("grants", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}
