//! Where tokens go and which: origins, the caller's predicate, routes by API, the default grant.
//!
//! And the bounds on the grants that requests name for themselves.

use std::sync::Arc;
use std::time::Duration;

use crate::grant::Grant;
use crate::middleware::attach::RequestInfo;
use crate::middleware::builder::ClientCredentialsBuilder;

impl ClientCredentialsBuilder {
    /// Attaches tokens only to requests to these origins (scheme, host and port, e.g.
    /// `"https://fruits.example.com"`); requests elsewhere pass through untouched: no token, no
    /// token fetched, no replay after a 401. Call it again to add origins.
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// let auth = ClientCredentials::builder("https://tenant.example/oauth/token", "id", "secret")
    ///     .audience("https://fruits.example.com")
    ///     .only_for(["https://fruits.example.com", "https://fruits.example.com:8443"])
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn only_for<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.only_for.extend(origins.into_iter().map(Into::into));
        self
    }

    /// Attaches tokens only to requests `predicate` accepts, on top of the other rules;
    /// requests it refuses pass through untouched, like those [`only_for`](Self::only_for)
    /// leaves out. It sees the request's method, URL, headers and extensions
    /// ([`RequestInfo`]).
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// let auth = ClientCredentials::builder("https://tenant.example/oauth/token", "id", "secret")
    ///     .attach_when(|request| request.url().path().starts_with("/api/"))
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn attach_when<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> bool + Send + Sync + 'static,
    {
        self.attach_when = Some(Arc::new(predicate));
        self
    }

    /// Requests under `prefix` get a token for `grant`: one middleware, one token per API.
    ///
    /// `prefix` is an origin (`https://orders.example`), or an origin and a path
    /// (`https://api.example/billing` takes `/billing` and the paths below it); the longest
    /// prefix that matches wins. Once a route is given, a request that matches none gets no
    /// token, unless it names a [`Grant`] of its own (`with_extension(grant)`) or a
    /// [`default_grant`](Self::default_grant) is set. The grant options of the builder itself
    /// (`audience`, `scope`, …) then go with `default_grant` only.
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::{ClientCredentials, Grant};
    ///
    /// let auth = ClientCredentials::auth0("tenant.eu.auth0.com", "id", "secret")
    ///     .route("https://orders.example", Grant::new().audience("https://orders.example/"))
    ///     .route("https://billing.example", Grant::new().audience("https://billing.example/"))
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn route(mut self, prefix: impl Into<String>, grant: Grant) -> Self {
        self.routes.push((prefix.into(), grant));
        self
    }

    /// The grant for requests that match no [`route`](Self::route) and name no grant of their
    /// own. Without routes, the builder's grant options (`audience`, `scope`, …) make the
    /// default grant; with routes, there is none unless named here.
    pub fn default_grant(mut self, grant: Grant) -> Self {
        self.grant = grant;
        self.default_grant = true;
        self
    }

    /// How many grants named per request (`with_extension(grant)`) keep a token at once (default
    /// [1000](Self::DEFAULT_MAX_GRANTS)). When one more is named, the one unused longest is
    /// forgotten. Routed and default grants do not count, and are never forgotten.
    pub fn max_grants(mut self, max: usize) -> Self {
        self.max_grants = max;
        self
    }

    /// How long a grant named per request keeps its token while no request names it (default
    /// [an hour](Self::DEFAULT_IDLE_GRANT_TIMEOUT)). A forgotten grant's token leaves the
    /// default in-memory storage with it; its next request gets a new one (from a shared
    /// storage, if there is one).
    pub fn idle_grant_timeout(mut self, timeout: Duration) -> Self {
        self.idle_grant_timeout = timeout;
        self
    }
}
