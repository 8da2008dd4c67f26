//! [`ConfigError`]: the settings the builder refuses, each with what to do instead.

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
    /// The client secret is too short to sign `client_secret_jwt` assertions with HS256,
    /// which takes a key of at least 32 bytes (RFC 7518 §3.2).
    #[error(
        "client_secret_jwt signs with the client secret, which must be at least 32 bytes for \
         HS256 (RFC 7518 §3.2); this one has {0}"
    )]
    ShortClientSecret(usize),
    /// A TLS client authentication method without a certificate to present.
    #[error(
        "tls_client_auth and self_signed_tls_client_auth need a client certificate: give one \
         with client_identity, or to your own http_client"
    )]
    MissingClientCertificate,
    /// `AuthMethod::None` with the client credentials grant, which needs a client that
    /// authenticates (RFC 6749 §4.4).
    #[error(
        "the client credentials grant needs the client to authenticate: AuthMethod::None is for          the JWT bearer grant (jwt_bearer) alone"
    )]
    ClientAuthenticationNeeded,
    /// A client certificate given to the builder along with an HTTP client of your own, which
    /// the builder cannot add it to.
    #[error(
        "client_identity cannot be added to an http_client of your own: give the certificate \
         to that client (reqwest::ClientBuilder::identity)"
    )]
    ClientCertificateWithHttpClient,
    /// An option was given an empty value.
    #[error("{0} is empty — leave it out instead")]
    EmptyValue(&'static str),
    /// An extra form parameter would override one the crate sets itself.
    #[error("extra parameter {0:?} is set by the crate itself and cannot be overridden")]
    ReservedParameter(String),
    /// A duration option is out of range.
    #[error("{option} must be {expected}")]
    #[non_exhaustive]
    InvalidDuration {
        /// The builder option.
        option: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
    /// A size option is out of range.
    #[error("{option} must be {expected}")]
    #[non_exhaustive]
    InvalidSize {
        /// The builder option.
        option: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
    /// An origin given to `only_for` is not `scheme://host[:port]`.
    #[error("only_for takes origins like https://api.example.com[:port]: {0}")]
    InvalidOrigin(String),
    /// A `resource` is not an absolute URI without a fragment (RFC 8707 §2).
    #[error(
        "resource must be an absolute URI without a fragment, like https://api.example.com/: {0}"
    )]
    InvalidResource(String),
    /// The refresh window is not a share of a token's lifetime.
    #[error(
        "refresh_window must be a share of the token's lifetime between 0 and 1, both excluded \
         (0.25 is the last quarter); use refresh_ahead(false) to turn refreshing ahead off"
    )]
    InvalidRefreshWindow,
    /// The quota warning is not a share of a bucket.
    #[error(
        "quota_warning must be a share of a quota's bucket between 0 and 1 (0.1 warns when a \
         tenth is left; 0 never warns)"
    )]
    InvalidQuotaWarning,
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
    /// The base URL given to [`ClientCredentials::auth0_at`](crate::ClientCredentials::auth0_at)
    /// is not one.
    #[error(
        "the Auth0 base URL must be like https://tenant.eu.auth0.com or http://127.0.0.1:8080, \
         without a query: {0}"
    )]
    InvalidAuth0BaseUrl(String),
    /// A prefix given to [`route`](crate::ClientCredentialsBuilder::route) is not
    /// `scheme://host[:port][/path]`.
    #[error(
        "route takes prefixes like https://api.example.com or https://api.example.com/billing: {0}"
    )]
    InvalidRoute(String),
    /// Two routes were given for one prefix.
    #[error("two routes for {0}: give each prefix one grant")]
    DuplicateRoute(String),
    /// Routes were given, and grant options (audience, scope, resource, organization,
    /// extra_param) on the builder itself, whose grant would then go to any request no route
    /// matches.
    #[error(
        "routes were given, and a grant option (audience, scope, resource, organization or \
         extra_param) on the builder itself, whose token would go to every request no route \
         matches: put it in each route's Grant, or name a default_grant(...)"
    )]
    GrantWithRoutes,
    /// [`token`](crate::ClientCredentials::token) was called on a middleware with routes and no
    /// default grant: there is no one token to give.
    #[error(
        "this middleware has routes and no default grant: call token_for(&grant) with the grant          the token is for"
    )]
    NoDefaultGrant,
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
