//! The builder's defaults, and the bounds of some options, as associated constants.

use std::time::Duration;

use crate::cache::cached_token;
use crate::middleware::builder::ClientCredentialsBuilder;
use crate::{time, token};

/// The defaults of the options, and the bounds of some.
impl ClientCredentialsBuilder {
    /// How long before its expiry a token counts as expired, unless
    /// [`expiry_margin`](Self::expiry_margin) says otherwise.
    pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

    /// The lifetime given to a token whose response has no `expires_in`, unless
    /// [`default_expires_in`](Self::default_expires_in) says otherwise.
    pub const DEFAULT_EXPIRES_IN: Duration = token::DEFAULT_EXPIRES_IN;

    /// The longest `expires_in` taken at face value (ten years), and the default of
    /// [`max_token_lifetime`](Self::max_token_lifetime): a longer one is an error, as it can
    /// only be a mistake and would overflow time arithmetic on some platforms.
    pub const MAX_EXPIRES_IN: Duration = time::MAX_EXPIRES_IN;

    /// How long one token request may take, body included, unless
    /// [`token_request_timeout`](Self::token_request_timeout) says otherwise.
    pub const DEFAULT_TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// The most a token response body may hold unless
    /// [`max_token_response_bytes`](Self::max_token_response_bytes) says otherwise.
    pub const DEFAULT_MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

    /// The share of a token's lifetime in which it is refreshed ahead, unless
    /// [`refresh_window`](Self::refresh_window) says otherwise.
    pub const DEFAULT_REFRESH_WINDOW: f64 = cached_token::DEFAULT_REFRESH_WINDOW;

    /// The share of a token quota's bucket under which it is warned of, unless
    /// [`quota_warning`](Self::quota_warning) says otherwise.
    pub const DEFAULT_QUOTA_WARNING: f64 = 0.1;

    /// How long a refresh lease lasts unless [`refresh_lease_ttl`](Self::refresh_lease_ttl)
    /// says otherwise: long enough for a token request and a retry or two; a holder that dies
    /// delays the others this much.
    pub const DEFAULT_REFRESH_LEASE_TTL: Duration = Duration::from_secs(5);

    /// How many grants named per request keep a token at once, unless
    /// [`max_grants`](Self::max_grants) says otherwise.
    pub const DEFAULT_MAX_GRANTS: usize = 1000;

    /// How long a grant named per request keeps its token unused, unless
    /// [`idle_grant_timeout`](Self::idle_grant_timeout) says otherwise.
    pub const DEFAULT_IDLE_GRANT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
}
