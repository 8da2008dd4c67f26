//! OAuth 2 client-credentials middleware for [`reqwest`]: an access token on every request.
//!
//! Every request that goes through it carries an access token, fetched on first use, kept until
//! it is about to expire, and replaced when the API says it is no longer good. A port of Python's
//! `alf` to [`reqwest_middleware`].
//!
//! # Quick start
//! ```no_run
//! use reqwest_alf::ClientCredentials;
//! use reqwest_middleware::ClientBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = ClientCredentials::builder(
//!     "https://tenant.eu.auth0.com/oauth/token",
//!     "my-client-id",
//!     "my-client-secret",
//! )
//! .audience("https://fruits.example.com")
//! .build()?;
//!
//! let client = ClientBuilder::new(reqwest::Client::new()).with(auth).build();
//!
//! // The first request fetches a token; the next ones reuse it until it is about to expire.
//! let fruits = client.get("https://fruits.example.com/fruits").send().await?;
//! println!("{}", fruits.text().await?);
//! # Ok(())
//! # }
//! ```
//!
//! For an Auth0 tenant, [`ClientCredentials::auth0`] sets the token endpoint, client
//! authentication and default lifetime from the domain; `AuthMethod::PrivateKeyJwt` (feature `jwt`) signs
//! each token request with a private key instead of sending a secret. With no secret at all, a
//! workload's identity token is the client assertion ([`AuthMethod::ClientAssertionFile`], or
//! a KMS through [`ClientAssertionSource`]), or the grant itself ([`JwtBearer`]).
//!
//! One middleware serves many APIs and Auth0 organizations, a token per [`Grant`]: by API with
//! [`route`](ClientCredentialsBuilder::route), or per request:
//! ```no_run
//! use reqwest_alf::{ClientCredentials, Grant};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = ClientCredentials::auth0("tenant.eu.auth0.com", "my-client-id", "my-client-secret")
//!     .route("https://orders.example", Grant::new().audience("https://orders.example/"))
//!     .route("https://billing.example", Grant::new().audience("https://billing.example/"))
//!     .build()?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(auth).build();
//!
//! client.get("https://orders.example/v1/orders").send().await?; // the orders API's token
//! client
//!     .get("https://members.example/v1/members")
//!     .with_extension(Grant::new().audience("https://members.example/").organization("org_acme"))
//!     .send()
//!     .await?; // a token for that organization
//! client.get("https://elsewhere.example/").send().await?; // no route, no default: no token
//! # Ok(())
//! # }
//! ```
//!
//! When no token can be had, the request is not sent and the error says why:
//! ```no_run
//! # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
//! match client.get("https://fruits.example.com/fruits").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(error) => match reqwest_alf::Error::downcast_ref(&error) {
//!         Some(no_token) => eprintln!("no token: {no_token} (retryable: {})", no_token.is_retryable()),
//!         None => eprintln!("request failed: {error}"),
//!     },
//! }
//! # }
//! ```
//!
//! # How it works
//! For each request:
//! 1. If the request already has an `Authorization` header, it is sent as it is.
//! 2. Its grant is the [`Grant`] it names (an extension), else its route's, else the default
//!    grant; with none, it is sent as it is. Each grant has a token of its own; below, "the
//!    token" is that grant's.
//! 3. The current token is taken from an in-process copy when it is not within the expiry
//!    margin: no lock, no await, no I/O. In its refresh window, the first request to notice
//!    also starts one background refresh, and goes out at once with the current token.
//! 4. Otherwise one task fetches: it reads the [`TokenStorage`] (a token another middleware
//!    or process stored), and only if that holds no fresh token, takes the storage's refresh
//!    lease and asks the token endpoint (`POST`, `grant_type=client_credentials`), retrying
//!    transient failures with backoff. Instances that find the lease taken wait for the
//!    holder's token instead. The new token goes to the storage and the in-process copy.
//! 5. The token is sent as `Authorization: Bearer …`, a header value marked sensitive.
//! 6. If the API answers 401, that token is forgotten (unless already replaced), a new one is
//!    got the same way, and the request is sent once more. A second 401 goes to the caller.
//!
//! # Behavior
//! - **Concurrency.** N concurrent requests on a cold cache make one token call, and wait for
//!   its result. So do requests through different [`ClientCredentials`] with the same settings
//!   given the same storage (clones of one [`MemoryStorage`], or a `RedisStorage` on one Redis
//!   from any number of processes), through the storage's refresh lease. A failed fetch is
//!   reported to every request that waited for it; the next request tries again. A fetch that
//!   has started runs to its end in a Tokio task of its own, even when every request waiting
//!   for it gave up (a deadline passed, the request was dropped): it stores its token and gives
//!   back its refresh lease, and the next request gets that token. (Called outside a Tokio
//!   runtime, through [`ClientCredentials::token`], a fetch is dropped with its last caller,
//!   and a lease it held runs out after
//!   [`refresh_lease_ttl`](ClientCredentialsBuilder::refresh_lease_ttl).)
//! - **Refresh ahead.** In the last quarter of a token's life
//!   ([`refresh_window`](ClientCredentialsBuilder::refresh_window)) it is replaced in the
//!   background; no request waits for the token endpoint while a valid token exists. A failed
//!   background refresh is tried again after a backoff, and the current token serves until it
//!   counts as expired. Each middleware starts its refresh at a random point in the first three quarters
//!   of the window, so that a fleet sharing one token does not reach for a new one at once.
//! - **Expiry.** A token expires `expires_in` seconds after its request was sent, or after
//!   [`default_expires_in`](ClientCredentialsBuilder::default_expires_in) (one hour by default)
//!   when the server does not say. It is replaced
//!   [`expiry_margin`](ClientCredentialsBuilder::expiry_margin) (30 s) early: never less than
//!   a second (servers write `exp` in whole seconds), never more than a quarter of its
//!   lifetime, so that a short-lived token keeps its refresh window before it counts as
//!   expired. Every token of 2 s or more is refreshed ahead.
//! - **Retries of the token call** happen only on connection failures, timeouts, 5xx, 408 and
//!   429, honouring `Retry-After`; see
//!   [`token_retry`](ClientCredentialsBuilder::token_retry).
//! - **Rate limits.** A 429, or a 503 with `Retry-After` (Auth0's `x-ratelimit-reset` counts),
//!   stops token requests until the time the server gave, for every task and, through the
//!   storage, every instance. A short one, within the retry policy's `max_retry_interval` (10 s
//!   by default) with a retry left, is waited out: one fetch waits and asks again, and every
//!   other request, here and in instances sharing the storage, waits for its token instead of
//!   failing. A longer one fails fast: no token request before its time (capped by
//!   `max_retry_interval`). An Auth0 token quota's spent bucket (`Auth0-Client-Quota-Limit`,
//!   `Auth0-Organization-Quota-Limit`) holds until it resets, a day at most; what remains is in
//!   [`Stats`]. A cool-down read from the storage holds until its time and no longer; one
//!   further ahead than a day is ignored as damage. A token
//!   that has not expired keeps serving; without one, requests fail with
//!   [`Error::RateLimited`] and are not sent. A 400 or 401 from the token
//!   endpoint (`invalid_client`, `invalid_grant`, …) is final, and the error carries the
//!   server's `error` and `error_description`.
//! - **Replay after 401.** Only requests whose body can be cloned are replayed, and only once.
//!   A streaming body cannot be sent twice: its 401 goes to the caller (with a `tracing`
//!   warning), and the next request gets a new token. A 401 makes the middleware forget only
//!   the token that was rejected: a token another task fetched meanwhile is kept, and a token
//!   the API refused is never sent again. A task that has seen a token replaced or rejected
//!   never gets that token, or an older one, from the cache. When the API refuses the replay's
//!   token too, that token was revoked in flight or the API does not take this client's tokens
//!   (audience, [`resource`](ClientCredentialsBuilder::resource) or scope): one warning says
//!   so, the replay's 401 goes to the caller, and from then on the tokens that replace refused
//!   ones are fetched at most once a second, an interval that doubles with each further token
//!   refused, up to 30 s, and ends at the first replay the API accepts. Requests that need such
//!   a token meanwhile wait for the interval's end and share its one fetch.
//! - **A failing token endpoint.** When a token counts as expired (inside its expiry margin)
//!   but has not really expired, and getting a new one fails (5xx, a time-out, no connection,
//!   an unusable answer, a rate limit), the current token keeps serving until it expires, with
//!   the failure logged and counted. Only a refusal of the client (400 or 401: `invalid_client`,
//!   `invalid_grant`, …) reaches the caller at once.
//! - **Failures.** When no token can be had, the API request is not sent and the caller gets
//!   [`Error`] inside [`reqwest_middleware::Error::Middleware`]
//!   ([`Error::downcast_ref`] gets it out). A token response that is not JSON, lacks
//!   `access_token`, has a token that cannot go in a header, a `token_type` other than `Bearer`
//!   or an `expires_in` that is not between 1 s and 10 years is such an error, never a panic.
//!   RFC 6749 asks for whole seconds; a fraction is taken rounded down (1.5 is 1 s, 0.9 is
//!   refused), as is a number sent as a string.
//!   Storage failures never fail a request: a failed read is a miss, a failed write is logged,
//!   and a storage that keeps failing is reported once a minute, not once per request. A
//!   storage that stops answering costs one fetch its timeout; it is then left alone until a
//!   read in the background gets an answer.
//! - **Sharing across processes.** Give every process a [`RedisStorage`] (feature `redis`) on
//!   the same Redis and they use one token: the first to need one takes the refresh lease,
//!   fetches and stores it, the others wait for it and read it. One token call per refresh for
//!   the whole fleet; a warm request never touches the storage. After a 401 the stored token is deleted only if it is still the rejected
//!   one, so a token another process has just stored survives.
//! - **Where tokens go.** Only to `https` requests, and plain `http` to loopback hosts, unless
//!   [`allow_insecure_http`](ClientCredentialsBuilder::allow_insecure_http);
//!   [`only_for`](ClientCredentialsBuilder::only_for) and
//!   [`attach_when`](ClientCredentialsBuilder::attach_when) narrow it further. Other requests
//!   are sent untouched (no token fetched, no replay). reqwest drops the token when it follows
//!   a redirect to another origin, so a 401 from there is not held against the token: it goes
//!   to the caller as it is, with no replay. With [routes](ClientCredentialsBuilder::route), a
//!   request that matches none and names no grant gets no token unless a
//!   [`default_grant`](ClientCredentialsBuilder::default_grant) is set.
//! - **Many grants.** Each grant has its own token, single flight, refresh ahead and storage
//!   key (organizations never share a token, in memory or in Redis); the rate-limit cool-down
//!   is the client's, for all of them. Grants named per request are kept up to
//!   [`max_grants`](ClientCredentialsBuilder::max_grants), and forgotten after
//!   [`idle_grant_timeout`](ClientCredentialsBuilder::idle_grant_timeout) unused. A middleware
//!   stacked behind another that gives the same requests a token warns, once.
//! - **Hostile servers.** A token response is read with a size cap and a time limit; an
//!   answer that came through a redirect is refused.
//! - **Secrets.** The client secret, private keys and access tokens never appear in `Debug`
//!   output, error messages or logs, and storage keys are derived without the secret. See
//!   `SECURITY.md` for what the crate protects and what it does not.
//!
//! # With reqwest-retry
//! Stack `reqwest-retry`'s `RetryTransientMiddleware` after this middleware
//! (`.with(auth).with(retry)`): each retry of the API call carries the request's token, and a
//! 401 comes back here to be replayed with a new token. In the other order every retry goes
//! through this middleware again. Either way [`Error::downcast_ref`] finds this crate's error,
//! inside `reqwest-retry`'s when it wrapped it.
//!
//! # Features
//! - `default-tls` (default): reqwest's default TLS for the token client. Turn it off to choose
//!   a TLS backend through reqwest's own features.
//! - `jwt`: client authentication with signed JWTs (`AuthMethod::PrivateKeyJwt`,
//!   `AuthMethod::ClientSecretJwt`, `PrivateKey`) and tokens bound to a key with DPoP
//!   (`DpopKey`, `ClientCredentialsBuilder::dpop`). Off by default: it adds a JWT library to
//!   the build.
//! - `metrics`: each grant's counts, fetch latency and outcome, the token's remaining life and
//!   the storage breaker through the [`metrics`](https://docs.rs/metrics) facade (see
//!   `ClientCredentials::record_metrics`); nothing is written on a request's path.
//! - `redis`: [`RedisStorage`], tokens shared through Redis (`redis://`, or `rediss://` with
//!   TLS by rustls).
//!
//! # Logging and stats
//! [`ClientCredentials::stats`] counts token requests, tokens served from memory and from the
//! storage, lease waits, refreshes ahead, replays, rate-limited requests and storage errors.
//! Events go to [`tracing`], with the storage key's readable part (the token endpoint's host):
//! `debug` for each token request, storage hit, lease wait, refresh ahead and replay, `warn`
//! for retries, failed fetches, rate limits, storage failures and requests that could not be
//! replayed. A storage that
//! keeps failing gets one `warn` a minute; the failures in between are `debug` events.
//!
#![cfg_attr(feature = "redis", doc = "[`RedisStorage`]: crate::RedisStorage")]
#![cfg_attr(
    not(feature = "redis"),
    doc = "[`RedisStorage`]: https://docs.rs/reqwest-alf/latest/reqwest_alf/struct.RedisStorage.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_debug_implementations)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cache;
mod endpoint;
mod error;
mod grant;
mod middleware;
mod per_thread;
mod random;
mod secret;
mod stats;
mod storage;
mod time;
mod token;

pub use endpoint::assertion_source::{
    AssertionError, AssertionRequest, AssertionSource, ClientAssertionSource,
};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use endpoint::client_assertion::{JwtAlgorithm, PrivateKey};
pub use endpoint::client_auth::AuthMethod;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use endpoint::dpop::DpopKey;
pub use endpoint::jwt_bearer::JwtBearer;
pub use error::{ConfigError, Error, OAuthError, QuotaScope, Result, TokenResponseError};
pub use grant::Grant;
pub use middleware::ClientCredentials;
pub use middleware::attach::RequestInfo;
pub use middleware::builder::ClientCredentialsBuilder;
pub use stats::{GrantStats, Quota, QuotaBucket, Stats};
#[cfg(feature = "redis")]
pub use storage::RedisStorage;
pub use storage::{Lease, MemoryStorage, StorageError, TokenStorage};
pub use token::{AccessToken, Token, TokenType};

/// The retry policy crate used by [`ClientCredentialsBuilder::token_retry`], re-exported so no
/// second dependency is needed; it is the one `reqwest-retry` uses.
pub use retry_policies;
/// The retry policies and jitter of [`retry_policies`], at the crate root as `reqwest-retry`
/// has them: `reqwest_alf::policies::ExponentialBackoff`.
pub use retry_policies::{Jitter, policies};
