//! [`ClientCredentialsBuilder`]: the options and their defaults; `build.rs` checks them.

mod build;
mod check;
mod defaults;
mod routing;
mod sender_constraint;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use retry_policies::policies::ExponentialBackoff;

use crate::endpoint::client_auth::AuthMethod;
#[cfg(feature = "jwt")]
use crate::endpoint::dpop::DpopKey;
use crate::endpoint::jwt_bearer::JwtBearer;
use crate::endpoint::retry;
use crate::error::ConfigError;
use crate::grant::Grant;
use crate::middleware::ClientCredentials;
use crate::middleware::attach::Predicate;
use crate::secret::Secret;
use crate::storage::TokenStorage;

/// Options for a [`ClientCredentials`] middleware; made by [`ClientCredentials::builder`].
///
/// Nothing is checked until [`build`](Self::build), which reports the first problem it finds.
#[must_use = "a builder does nothing until .build() is called"]
pub struct ClientCredentialsBuilder {
    token_endpoint: String,
    client_id: String,
    client_secret: Secret,
    /// The builder's own grant: the default one, unless routes are given.
    grant: Grant,
    /// Whether `default_grant` named the builder's grant as the default even with routes.
    default_grant: bool,
    /// Each route's prefix, as given, and its grant.
    routes: Vec<(String, Grant)>,
    max_grants: usize,
    idle_grant_timeout: Duration,
    auth_method: AuthMethod,
    jwt_bearer: Option<JwtBearer>,
    #[cfg(feature = "jwt")]
    dpop: Option<DpopKey>,
    /// The client certificate for token requests (mTLS), when the builder makes the client.
    #[cfg(feature = "default-tls")]
    client_identity: Option<reqwest::Identity>,
    default_expires_in: Duration,
    max_token_lifetime: Duration,
    expiry_margin: Duration,
    storage: Option<Arc<dyn TokenStorage>>,
    token_retry: ExponentialBackoff,
    token_request_timeout: Duration,
    http_client: Option<reqwest::Client>,
    allow_insecure_http: bool,
    max_token_response_bytes: usize,
    refresh_window: Option<f64>,
    quota_warning: f64,
    refresh_lease_ttl: Option<Duration>,
    only_for: Vec<String>,
    attach_when: Option<Predicate>,
    /// The `aud` of client assertions, unless the key names its own; the token endpoint when
    /// `None`. Set by presets whose servers want something else.
    assertion_audience: Option<String>,
    /// A problem a preset found in what it was given, reported by `build`.
    preset_error: Option<ConfigError>,
}

impl ClientCredentials {
    /// Starts building a middleware for the given token endpoint and client credentials.
    ///
    /// Nothing is checked or sent until [`build`](ClientCredentialsBuilder::build).
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// let auth = ClientCredentials::builder("https://tenant.example/oauth/token", "id", "secret")
    ///     .audience("https://api.example")
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn builder(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder::new(token_endpoint, client_id, client_secret)
    }
}

impl ClientCredentialsBuilder {
    pub(crate) fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret),
            grant: Grant::new(),
            default_grant: false,
            routes: Vec::new(),
            max_grants: Self::DEFAULT_MAX_GRANTS,
            idle_grant_timeout: Self::DEFAULT_IDLE_GRANT_TIMEOUT,
            auth_method: AuthMethod::default(),
            jwt_bearer: None,
            #[cfg(feature = "jwt")]
            dpop: None,
            #[cfg(feature = "default-tls")]
            client_identity: None,
            default_expires_in: Self::DEFAULT_EXPIRES_IN,
            max_token_lifetime: Self::MAX_EXPIRES_IN,
            expiry_margin: Self::DEFAULT_EXPIRY_MARGIN,
            storage: None,
            token_retry: retry::default_policy(),
            token_request_timeout: Self::DEFAULT_TOKEN_REQUEST_TIMEOUT,
            http_client: None,
            allow_insecure_http: false,
            max_token_response_bytes: Self::DEFAULT_MAX_TOKEN_RESPONSE_BYTES,
            refresh_window: Some(Self::DEFAULT_REFRESH_WINDOW),
            quota_warning: Self::DEFAULT_QUOTA_WARNING,
            refresh_lease_ttl: Some(Self::DEFAULT_REFRESH_LEASE_TTL),
            only_for: Vec::new(),
            attach_when: None,
            assertion_audience: None,
            preset_error: None,
        }
    }

    /// Sets the default `aud` of client assertions (a preset's choice; a key's own wins).
    pub(crate) fn assertion_audience(mut self, audience: String) -> Self {
        self.assertion_audience = Some(audience);
        self
    }

    /// Makes `build` fail with `error`: how a preset reports what it was given.
    pub(crate) fn preset_error(mut self, error: ConfigError) -> Self {
        self.preset_error.get_or_insert(error);
        self
    }

    /// The `audience` form parameter: the API the token is for. Auth0 requires it (the API's
    /// identifier); servers that follow RFC 8707 take [`resource`](Self::resource) instead.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.grant = self.grant.audience(audience);
        self
    }

    /// A `resource` form parameter (RFC 8707): an API the token is for, as an absolute URI
    /// without a fragment. Call it again to name several. Servers that follow RFC 8707 (panva's
    /// oidc-provider, among others) issue a token for an API only when it is named this way;
    /// Auth0 takes [`audience`](Self::audience) instead. A token asked for without the
    /// resource its API expects is issued, then refused by the API.
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// let auth = ClientCredentials::builder("https://op.example/token", "id", "secret")
    ///     .resource("https://fruits.example.com/")
    ///     .scope("read:fruits")
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.grant = self.grant.resource(uri);
        self
    }

    /// The `scope` form parameter: space-separated scopes, e.g. `"read:fruits write:fruits"`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.grant = self.grant.scope(scope);
        self
    }

    /// The `organization` form parameter: the Auth0 organization (its id, `org_…`, or its
    /// name) tokens are issued for. For a client that serves many organizations, name one per
    /// request instead, with a [`Grant`] extension.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.grant = self.grant.organization(organization);
        self
    }

    /// Adds a form parameter to every token request, e.g. `resource` for RFC 8707 servers.
    ///
    /// The parameters the crate sets itself (`grant_type`, `client_id`, `client_secret`,
    /// `audience`, `scope`, `client_assertion*`, `assertion`) are refused at build time: use
    /// the options named after them.
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.grant = self.grant.extra_param(name, value);
        self
    }

    /// How the client authenticates to the token endpoint. Default:
    /// [`AuthMethod::ClientSecretBasic`]; Auth0 uses [`AuthMethod::ClientSecretPost`].
    pub fn auth_method(mut self, auth_method: AuthMethod) -> Self {
        self.auth_method = auth_method;
        self
    }

    /// Asks for tokens with the JWT bearer grant (RFC 7523 §2.1) and this assertion, instead of
    /// the client credentials grant: tokens for the assertion's subject. The client still
    /// authenticates with its [`auth_method`](Self::auth_method), or not at all with
    /// [`AuthMethod::None`]. See [`JwtBearer`] for an example.
    pub fn jwt_bearer(mut self, assertion: JwtBearer) -> Self {
        self.jwt_bearer = Some(assertion);
        self
    }

    /// The lifetime of a token whose response has no `expires_in` (Auth0 may leave it out).
    /// Default: [one hour](Self::DEFAULT_EXPIRES_IN). Must be between 1 second and 10 years.
    /// This is alf's `token_default_expire_in`.
    pub fn default_expires_in(mut self, lifetime: Duration) -> Self {
        self.default_expires_in = lifetime;
        self
    }

    /// The longest lifetime a token is taken to have (default: [ten years](Self::MAX_EXPIRES_IN), the
    /// most an `expires_in` may say). A longer `expires_in` is shortened to it, and a token read
    /// from the storage that expires further ahead than this (give or take a few seconds of
    /// clock difference) is damage, not a token: it is read as a miss and logged. Set it a
    /// little above your server's token lifetime to bound what anyone who can write to a shared
    /// storage can plant there, and give every instance sharing the storage the same value.
    /// Between 1 second and 10 years.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use reqwest_alf::ClientCredentials;
    ///
    /// // The server issues tokens for one hour.
    /// let auth = ClientCredentials::builder("https://a.example/token", "id", "secret")
    ///     .max_token_lifetime(Duration::from_secs(2 * 60 * 60))
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// How long before its expiry a token is treated as expired and replaced, so that it does
    /// not expire on its way to the API. Default: [30 seconds](Self::DEFAULT_EXPIRY_MARGIN). Never less
    /// than a second is taken, because servers write `exp` in whole seconds and round their
    /// own way, and never more than a quarter of a token's lifetime, so that a short-lived
    /// token is still used, and refreshed ahead before it counts as expired.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Where tokens are kept. Default: a new [`MemoryStorage`](crate::MemoryStorage), private to this middleware and
    /// its clones. Give several middlewares the same storage (or clones of one
    /// `MemoryStorage`) to share tokens between them.
    pub fn storage(mut self, storage: impl TokenStorage) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// How failed token requests are retried: connection failures, timeouts, 5xx, 408 and 429
    /// only, honouring `Retry-After` up to the policy's `max_retry_interval`. The same policy
    /// type as `reqwest-retry`'s. Default: 3 retries, 100 ms doubling up to 10 s, with jitter.
    ///
    /// A 429, or a 503 with `Retry-After` (or Auth0's `x-ratelimit-reset`), stops token
    /// requests until the time the server gave. When that time is within `max_retry_interval`
    /// and a retry is left, one fetch waits it out and asks again while every other request
    /// waits for its token; otherwise requests without a valid token fail at once with
    /// [`Error::RateLimited`](crate::Error::RateLimited) until then (capped by
    /// `max_retry_interval`). Raise `max_retry_interval` to wait out longer limits, lower it
    /// to fail faster. The same policy paces background refreshes after a failure.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use reqwest_alf::ClientCredentials;
    /// use reqwest_alf::retry_policies::policies::ExponentialBackoff;
    ///
    /// let auth = ClientCredentials::builder("https://a.example/token", "id", "secret")
    ///     .token_retry(
    ///         ExponentialBackoff::builder()
    ///             .retry_bounds(Duration::from_millis(50), Duration::from_secs(2))
    ///             .build_with_max_retries(5),
    ///     )
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    /// `build_with_max_retries(0)` turns retries off.
    pub fn token_retry(mut self, policy: ExponentialBackoff) -> Self {
        self.token_retry = policy;
        self
    }

    /// How long one token request may take, reading the answer included. Default:
    /// [10 seconds](Self::DEFAULT_TOKEN_REQUEST_TIMEOUT). Retries get their own.
    pub fn token_request_timeout(mut self, timeout: Duration) -> Self {
        self.token_request_timeout = timeout;
        self
    }

    /// The HTTP client for token requests. Default: a new client that follows no redirects
    /// (token requests go to one fixed endpoint, RFC 6749 §3.2). Pass your own to share its
    /// connection pool, proxy or TLS settings; give it `redirect::Policy::none()` too: an answer
    /// that came through a redirect is refused, but by then the request (and with
    /// [`AuthMethod::ClientSecretPost`], the secret in its body) has gone to the new location.
    /// A client of its own costs each middleware about 100 KB (reqwest's TLS set-up); with
    /// many middlewares, share one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Allows plain `http` to hosts that are not loopback: for the token endpoint, and for the
    /// API requests that get a token. The client secret and the tokens then cross the network
    /// in the clear: only for trusted networks and tests. Without it, a plain `http` request to
    /// such a host is sent without a token.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The most a token response body may hold (default
    /// [64 KiB](Self::DEFAULT_MAX_TOKEN_RESPONSE_BYTES)); a longer one is an error, and is not read
    /// further. Real token responses are a few kilobytes at most.
    pub fn max_token_response_bytes(mut self, bytes: usize) -> Self {
        self.max_token_response_bytes = bytes;
        self
    }

    /// Whether to refresh a token in the background before it expires (default: on). When a
    /// token enters its refresh window (see [`refresh_window`](Self::refresh_window)), the
    /// first request to notice starts one background refresh and is sent at once with the
    /// current token, as are all requests while the refresh runs: no request waits for the
    /// token endpoint while a valid token exists. A failed refresh is tried again after a
    /// backoff (the [`token_retry`](Self::token_retry) policy's), while the current token
    /// serves until it counts as expired. Off, a token is replaced only once it counts as
    /// expired, by the request that finds it so, which waits for the new one.
    pub fn refresh_ahead(mut self, enabled: bool) -> Self {
        self.refresh_window =
            enabled.then_some(self.refresh_window.unwrap_or(Self::DEFAULT_REFRESH_WINDOW));
        self
    }

    /// The share of a token's lifetime in which it is refreshed ahead: default
    /// [0.25](Self::DEFAULT_REFRESH_WINDOW), a quarter, which ends where the token counts as
    /// expired ([`expiry_margin`](Self::expiry_margin)) and starts no earlier than its issue. Each middleware starts its refresh at
    /// a point of its own in the first three quarters of the window, so that instances sharing a token
    /// through `RedisStorage` do not all reach for a new one at once.
    /// Must be between 0 and 1, both excluded. Turns refreshing ahead on.
    pub fn refresh_window(mut self, share_of_lifetime: f64) -> Self {
        self.refresh_window = Some(share_of_lifetime);
        self
    }

    /// The share of an Auth0 token quota's bucket under which a `warn` event says it runs low,
    /// once per bucket and period: default [0.1](Self::DEFAULT_QUOTA_WARNING), a tenth; 0 for
    /// none. Must be between 0 and 1. The quotas are read from every answer of the token
    /// endpoint (`Auth0-Client-Quota-Limit`, `Auth0-Organization-Quota-Limit`) and shown in
    /// [`stats`](crate::ClientCredentials::stats); a spent bucket holds token requests until
    /// it resets, whatever this share.
    pub fn quota_warning(mut self, share: f64) -> Self {
        self.quota_warning = share;
        self
    }

    /// Whether to take the storage's refresh lease before calling the token endpoint (default:
    /// on). With a storage that keeps leases (`RedisStorage`, or a
    /// [`MemoryStorage`](crate::MemoryStorage) shared by several middlewares), only the holder calls the token
    /// endpoint, and the others wait for its token to appear in the storage: one token call
    /// per refresh for every instance on that storage. Off, every instance that needs a token
    /// fetches its own.
    pub fn shared_refresh_lease(mut self, enabled: bool) -> Self {
        self.refresh_lease_ttl = enabled.then_some(
            self.refresh_lease_ttl
                .unwrap_or(Self::DEFAULT_REFRESH_LEASE_TTL),
        );
        self
    }

    /// How long a refresh lease lasts at most (default [5 seconds](Self::DEFAULT_REFRESH_LEASE_TTL)):
    /// if its holder dies mid-fetch, another instance takes over after this long, and waiting
    /// instances give up waiting after twice this long (plus the retry policy's
    /// `max_retry_interval`, which a holder may spend waiting out a rate limit, its lease
    /// renewed) and fetch for themselves. Between 1 ms and 10 minutes. Turns the lease on.
    pub fn refresh_lease_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_lease_ttl = Some(ttl);
        self
    }
}

impl ClientCredentialsBuilder {
    /// Whether a client certificate was given, for `Debug`: never the certificate or its key.
    fn client_identity_given(&self) -> bool {
        #[cfg(feature = "default-tls")]
        return self.client_identity.is_some();
        #[cfg(not(feature = "default-tls"))]
        false
    }
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = f.debug_struct("ClientCredentialsBuilder");
        shown
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("grant", &self.grant)
            .field("default_grant", &self.default_grant)
            .field("routes", &self.routes)
            .field("max_grants", &self.max_grants)
            .field("idle_grant_timeout", &self.idle_grant_timeout)
            .field("auth_method", &self.auth_method);
        #[cfg(feature = "jwt")]
        shown.field("dpop", &self.dpop);
        shown
            .field("client_identity", &self.client_identity_given())
            .field("default_expires_in", &self.default_expires_in)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .field("expiry_margin", &self.expiry_margin)
            .field("custom_storage", &self.storage.is_some())
            .field("token_retry", &self.token_retry)
            .field("token_request_timeout", &self.token_request_timeout)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("max_token_response_bytes", &self.max_token_response_bytes)
            .field("refresh_window", &self.refresh_window)
            .field("quota_warning", &self.quota_warning)
            .field("refresh_lease_ttl", &self.refresh_lease_ttl)
            .field("only_for", &self.only_for)
            .field(
                "attach_when",
                &self.attach_when.as_ref().map(|_| "<predicate>"),
            )
            .field("assertion_audience", &self.assertion_audience)
            .field("jwt_bearer", &self.jwt_bearer)
            .finish_non_exhaustive()
    }
}
