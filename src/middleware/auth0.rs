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
    /// [`AuthMethod::PrivateKeyJwt`].
    ///
    /// `domain` is the tenant's domain (`tenant.eu.auth0.com`) or a custom domain, without
    /// `https://` or a path. Then set [`audience`](ClientCredentialsBuilder::audience) to the
    /// API's identifier; for the Management API, `https://{domain}/api/v2/`. Auth0's
    /// rate-limit headers are honoured: after a 429, no token request is sent before
    /// `x-ratelimit-reset`; a near reset is waited out, a far one fails fast with
    /// [`Error::RateLimited`], which tells when (its `retry_at`).
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
            Ok(domain) => ClientCredentialsBuilder::new(
                format!("https://{domain}/oauth/token"),
                client_id,
                client_secret,
            )
            .auth_method(AuthMethod::ClientSecretPost)
            .default_expires_in(Self::AUTH0_DEFAULT_EXPIRES_IN)
            .assertion_audience(format!("https://{domain}/")),
            Err(error) => {
                ClientCredentialsBuilder::new("", client_id, client_secret).preset_error(error)
            }
        }
    }
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
        let endpoint = &auth.cache().endpoint;
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
