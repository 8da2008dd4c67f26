//! The Auth0 preset: a tenant's domain sets the token endpoint, client auth and lifetime.

use std::time::Duration;

use url::Url;

use crate::endpoint::client_auth::AuthMethod;
use crate::error::{ConfigError, printable_without_userinfo};
use crate::middleware::ClientCredentials;
use crate::middleware::builder::ClientCredentialsBuilder;

impl ClientCredentials {
    /// The lifetime of an Auth0 token whose response has no `expires_in`: Auth0's default for
    /// machine-to-machine tokens (the Management API's included) is 24 hours.
    pub const AUTH0_DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(24 * 60 * 60);

    /// A builder set up for an Auth0 tenant: token endpoint `https://{domain}/oauth/token`,
    /// [`AuthMethod::ClientSecretPost`] (what Auth0 applications expect), a default lifetime
    /// of [24 hours](Self::AUTH0_DEFAULT_EXPIRES_IN) for responses without `expires_in`, and
    /// `https://{domain}/` as the audience of client assertions if you switch to
    /// `AuthMethod::PrivateKeyJwt` (feature `jwt`).
    ///
    /// `domain` is the tenant's domain (`tenant.eu.auth0.com`) or a custom domain, without
    /// `https://` or a path. Then set [`audience`](ClientCredentialsBuilder::audience) to the
    /// API's identifier; for the Management API, `https://{domain}/api/v2/`. Auth0's
    /// rate-limit headers are honoured: after a 429, no token request is sent before
    /// `x-ratelimit-reset`; a near reset is waited out, a far one fails fast with
    /// [`Error::RateLimited`], which tells when (its `retry_at`). Its token quotas are read
    /// from every answer: a spent bucket holds token requests, fleet-wide, until it resets;
    /// what remains is in [`stats`](ClientCredentials::stats), and a bucket running low is
    /// warned of ([`quota_warning`](ClientCredentialsBuilder::quota_warning)).
    ///
    /// A bad `domain` is reported by [`build`](ClientCredentialsBuilder::build) as
    /// [`ConfigError::InvalidAuth0Domain`].
    ///
    /// [`Error::RateLimited`]: crate::Error::RateLimited
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// let management_api = ClientCredentials::auth0("tenant.eu.auth0.com", "client-id", "client-secret")
    ///     .audience("https://tenant.eu.auth0.com/api/v2/")
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn auth0(
        domain: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        match validated_domain(domain.as_ref()) {
            Ok(domain) => Self::auth0_at(format!("https://{domain}"), client_id, client_secret),
            Err(error) => {
                ClientCredentialsBuilder::new("", client_id, client_secret).preset_error(error)
            }
        }
    }

    /// The [Auth0 preset](Self::auth0) for a tenant reached at `base_url` rather than at
    /// `https://{domain}`: an Auth0 mock on this machine (`http://127.0.0.1:8080`), or a
    /// gateway that serves the tenant under a path (`https://gateway.example/auth0`). The
    /// token endpoint is `{base_url}/oauth/token` and client assertions are for
    /// `{base_url}/`; everything else is as [`auth0`](Self::auth0) sets it. Plain `http://`
    /// is taken for loopback addresses only, unless
    /// [`allow_insecure_http`](ClientCredentialsBuilder::allow_insecure_http) says otherwise.
    ///
    /// A `base_url` that is not a URL, or has a query or a fragment, is reported by
    /// [`build`](ClientCredentialsBuilder::build) as [`ConfigError::InvalidAuth0BaseUrl`].
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::ClientCredentials;
    ///
    /// // An Auth0 mock listening on this machine.
    /// let auth = ClientCredentials::auth0_at("http://127.0.0.1:8080", "client-id", "client-secret")
    ///     .audience("https://orders.example/")
    ///     .build()?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn auth0_at(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        let base = match validated_base_url(base_url.as_ref()) {
            Ok(base) => base,
            Err(error) => {
                return ClientCredentialsBuilder::new("", client_id, client_secret)
                    .preset_error(error);
            }
        };
        ClientCredentialsBuilder::new(format!("{base}oauth/token"), client_id, client_secret)
            .auth_method(AuthMethod::ClientSecretPost)
            .default_expires_in(Self::AUTH0_DEFAULT_EXPIRES_IN)
            .assertion_audience(base)
    }
}

/// The base URL with one `/` at its end, ready for `oauth/token`, or why it cannot be one.
/// What the token endpoint must be besides (https, or http on loopback; no credentials) is
/// the builder's check.
fn validated_base_url(base_url: &str) -> Result<String, ConfigError> {
    let url = Url::parse(base_url.trim())
        .map_err(|error| ConfigError::InvalidAuth0BaseUrl(error.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::InvalidAuth0BaseUrl(format!(
            "{:?} has a query or a fragment",
            printable_without_userinfo(base_url)
        )));
    }
    Ok(format!("{}/", url.as_str().trim_end_matches('/')))
}

/// The domain as it goes in a URL (`host` or `host:port`), or why it cannot.
fn validated_domain(domain: &str) -> Result<String, ConfigError> {
    let shown = || printable_without_userinfo(domain);
    let refuse = |why: &str| ConfigError::InvalidAuth0Domain(format!("{:?} {why}", shown()));
    let domain = domain.trim();
    if domain.is_empty() {
        return Err(ConfigError::InvalidAuth0Domain("it is empty".into()));
    }
    if domain.contains("://") {
        return Err(refuse("has a scheme"));
    }
    if domain.contains(['/', '?', '#']) {
        return Err(refuse("has a path"));
    }
    if domain.contains('@') {
        return Err(refuse("holds credentials"));
    }
    let url = Url::parse(&format!("https://{domain}/"))
        .map_err(|error| refuse(&format!("is not a host name ({error})")))?;
    let host = url.host_str().ok_or_else(|| refuse("is not a host name"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn tenant_and_custom_domains_are_accepted() {
        for (domain, expected) in [
            ("tenant.eu.auth0.com", "tenant.eu.auth0.com"),
            (" login.example.com ", "login.example.com"),
            ("Tenant.Auth0.com", "tenant.auth0.com"),
            ("auth.example.com:8443", "auth.example.com:8443"),
        ] {
            assert_eq!(validated_domain(domain).unwrap(), expected);
        }
    }

    #[test]
    fn urls_paths_and_junk_are_refused_with_a_reason() {
        for (domain, reason) in [
            ("", "empty"),
            ("https://tenant.auth0.com", "scheme"),
            ("tenant.auth0.com/", "path"),
            ("tenant.auth0.com/oauth/token", "path"),
            ("tenant.auth0.com?x=1", "path"),
            ("user:pw@tenant.auth0.com", "credentials"),
            ("tenant auth0.com", "not a host name"),
            ("tenant.auth0.com:99999", "not a host name"),
        ] {
            let error = validated_domain(domain).unwrap_err().to_string();
            assert!(error.contains(reason), "{domain:?}: {error}");
        }
    }

    #[test]
    fn a_base_url_gets_one_slash_before_oauth_token() {
        for (base, endpoint) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth/token"),
            (
                " http://localhost:3001/ ",
                "http://localhost:3001/oauth/token",
            ),
            (
                "https://gateway.example/auth0",
                "https://gateway.example/auth0/oauth/token",
            ),
            (
                "https://gateway.example/auth0/",
                "https://gateway.example/auth0/oauth/token",
            ),
        ] {
            let auth = ClientCredentials::auth0_at(base, "id", "secret")
                .build()
                .unwrap();
            assert_eq!(
                auth.default_slot().client.endpoint.url.as_str(),
                endpoint,
                "{base:?}"
            );
        }
    }

    #[test]
    fn a_bad_base_url_fails_the_build_with_a_reason() {
        for (base, reason) in [
            ("", "relative URL without a base"),
            ("127.0.0.1:8080", "relative URL without a base"),
            ("https://tenant.auth0.com/?x=1", "query"),
            ("https://tenant.auth0.com/#top", "fragment"),
        ] {
            let error = ClientCredentials::auth0_at(base, "id", "secret")
                .build()
                .unwrap_err();
            let Error::InvalidConfig(error @ ConfigError::InvalidAuth0BaseUrl(_)) = &error else {
                panic!("{base:?}: {error:?}");
            };
            assert!(error.to_string().contains(reason), "{base:?}: {error}");
        }
        let remote_http = ClientCredentials::auth0_at("http://tenant.auth0.com", "id", "secret")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                remote_http,
                Error::InvalidConfig(ConfigError::InsecureTokenEndpoint(_))
            ),
            "{remote_http:?}"
        );
    }

    #[test]
    fn a_bad_domain_fails_the_build() {
        let built = ClientCredentials::auth0("https://tenant.auth0.com/", "id", "secret").build();
        assert!(matches!(
            built,
            Err(Error::InvalidConfig(ConfigError::InvalidAuth0Domain(_)))
        ));
    }

    #[test]
    fn the_preset_posts_the_secret_to_the_tenant_with_a_day_long_default() {
        let auth = ClientCredentials::auth0("tenant.eu.auth0.com", "id", "secret")
            .build()
            .unwrap();
        let endpoint = &auth.default_slot().client.endpoint;
        assert_eq!(
            endpoint.url.as_str(),
            "https://tenant.eu.auth0.com/oauth/token"
        );
        assert_eq!(
            endpoint.default_expires_in,
            ClientCredentials::AUTH0_DEFAULT_EXPIRES_IN
        );
        assert!(endpoint.client_auth.header().is_none(), "no Basic header");
    }
}
