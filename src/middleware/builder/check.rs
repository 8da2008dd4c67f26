//! Every option checked before the middleware is built: the first problem, as a ConfigError.

use std::time::Duration;

use url::Url;

use crate::endpoint::client_auth::AuthMethod;
use crate::error::{ConfigError, Error};
use crate::middleware::attach::is_loopback;
use crate::middleware::builder::ClientCredentialsBuilder;
use crate::time::MAX_EXPIRES_IN;

/// The longest refresh lease [`refresh_lease_ttl`](ClientCredentialsBuilder::refresh_lease_ttl)
/// takes: a lease is for one token request and its retries, not for minutes.
const MAX_REFRESH_LEASE_TTL: Duration = Duration::from_secs(600);

/// Below this, even an ordinary token response (a JWT with a few claims) would not fit.
const MIN_TOKEN_RESPONSE_BYTES: usize = 1024;

impl ClientCredentialsBuilder {
    /// The token endpoint, once every option has been checked; the first problem otherwise.
    pub(super) fn checked(&self) -> Result<Url, Error> {
        if let Some(error) = &self.preset_error {
            return Err(error.clone().into());
        }
        let url = self.validated_endpoint()?;
        if self.client_id.is_empty() {
            return Err(ConfigError::EmptyClientId.into());
        }
        if self.auth_method.uses_secret() && self.client_secret.is_empty() {
            return Err(ConfigError::EmptyClientSecret.into());
        }
        match &self.jwt_bearer {
            Some(assertion) => assertion.check()?,
            None if self.auth_method == AuthMethod::None => {
                return Err(ConfigError::ClientAuthenticationNeeded.into());
            }
            None => {}
        }
        if let AuthMethod::ClientAssertionFile(path) = &self.auth_method
            && path.as_os_str().is_empty()
        {
            return Err(ConfigError::EmptyValue("the client assertion file").into());
        }
        #[cfg(feature = "jwt")]
        if let AuthMethod::PrivateKeyJwt(key) = &self.auth_method {
            key.check()?;
        }
        #[cfg(feature = "default-tls")]
        let has_certificate = self.client_identity.is_some() || self.http_client.is_some();
        // Without reqwest's TLS, only a client of the caller's can hold a certificate.
        #[cfg(not(feature = "default-tls"))]
        let has_certificate = self.http_client.is_some();
        if self.auth_method.uses_certificate() && !has_certificate {
            return Err(ConfigError::MissingClientCertificate.into());
        }
        #[cfg(feature = "default-tls")]
        if self.client_identity.is_some() && self.http_client.is_some() {
            return Err(ConfigError::ClientCertificateWithHttpClient.into());
        }
        #[cfg(feature = "jwt")]
        if self.auth_method == AuthMethod::ClientSecretJwt && self.client_secret.expose().len() < 32
        {
            let secret_bytes = self.client_secret.expose().len();
            return Err(ConfigError::ShortClientSecret(secret_bytes).into());
        }
        self.grant.check()?;
        for (_, grant) in &self.routes {
            grant.check()?;
        }
        if !self.routes.is_empty() && !self.default_grant && !self.grant.is_empty() {
            return Err(ConfigError::GrantWithRoutes.into());
        }
        if self.max_grants == 0 {
            return Err(ConfigError::InvalidSize {
                option: "max_grants",
                expected: "at least 1",
            }
            .into());
        }
        if self.idle_grant_timeout < Duration::from_secs(1) {
            return Err(ConfigError::InvalidDuration {
                option: "idle_grant_timeout",
                expected: "at least 1 second",
            }
            .into());
        }
        if self.default_expires_in.is_zero() || self.default_expires_in > MAX_EXPIRES_IN {
            return Err(ConfigError::InvalidDuration {
                option: "default_expires_in",
                expected: "between 1 second and 10 years",
            }
            .into());
        }
        if self.max_token_lifetime < Duration::from_secs(1)
            || self.max_token_lifetime > MAX_EXPIRES_IN
        {
            return Err(ConfigError::InvalidDuration {
                option: "max_token_lifetime",
                expected: "between 1 second and 10 years",
            }
            .into());
        }
        if self.token_request_timeout.is_zero() {
            return Err(ConfigError::InvalidDuration {
                option: "token_request_timeout",
                expected: "longer than zero",
            }
            .into());
        }
        if self.token_retry.min_retry_interval > self.token_retry.max_retry_interval {
            return Err(ConfigError::InvalidRetryPolicy.into());
        }
        if let Some(window) = self.refresh_window
            && !(window > 0.0 && window < 1.0)
        {
            return Err(ConfigError::InvalidRefreshWindow.into());
        }
        if !(0.0..=1.0).contains(&self.quota_warning) {
            return Err(ConfigError::InvalidQuotaWarning.into());
        }
        if let Some(ttl) = self.refresh_lease_ttl
            && (ttl < Duration::from_millis(1) || ttl > MAX_REFRESH_LEASE_TTL)
        {
            return Err(ConfigError::InvalidDuration {
                option: "refresh_lease_ttl",
                expected: "between 1 millisecond and 10 minutes",
            }
            .into());
        }
        if self.max_token_response_bytes < MIN_TOKEN_RESPONSE_BYTES {
            return Err(ConfigError::InvalidSize {
                option: "max_token_response_bytes",
                expected: "at least 1024 bytes",
            }
            .into());
        }
        Ok(url)
    }

    fn validated_endpoint(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(self.token_endpoint.trim())
            .map_err(|e| ConfigError::InvalidTokenEndpoint(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::CredentialsInUrl);
        }
        let host = match url.host() {
            Some(host) => host,
            None => return Err(ConfigError::InvalidTokenEndpoint("it has no host".into())),
        };
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.allow_insecure_http || is_loopback(&host) => Ok(url),
            "http" => Err(ConfigError::InsecureTokenEndpoint(host.to_string())),
            other => Err(ConfigError::UnsupportedScheme(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientCredentials;
    use crate::endpoint::retry;
    use crate::grant::{Grant, RESERVED_PARAMS};

    fn build(endpoint: &str) -> Result<ClientCredentials, Error> {
        ClientCredentials::builder(endpoint, "id", "secret").build()
    }

    fn config_error(result: Result<ClientCredentials, Error>) -> ConfigError {
        match result {
            Err(Error::InvalidConfig(e)) => e,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for endpoint in [
            "https://tenant.example/oauth/token",
            "https://tenant.example:8443/token?api-version=2",
            "http://localhost:8080/token",
            "http://api.localhost/token",
            "http://127.0.0.1/token",
            "http://127.8.9.1/token",
            "http://[::1]:9000/token",
        ] {
            assert!(build(endpoint).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn bad_endpoints_are_refused_with_a_reason() {
        assert!(matches!(
            config_error(build("not a url")),
            ConfigError::InvalidTokenEndpoint(_)
        ));
        assert!(matches!(
            config_error(build("")),
            ConfigError::InvalidTokenEndpoint(_)
        ));
        assert_eq!(
            config_error(build("ftp://tenant.example/token")),
            ConfigError::UnsupportedScheme("ftp".into())
        );
        assert!(matches!(
            config_error(build("mailto:someone@tenant.example")),
            ConfigError::InvalidTokenEndpoint(_) | ConfigError::UnsupportedScheme(_)
        ));
        assert_eq!(
            config_error(build("http://tenant.example/token")),
            ConfigError::InsecureTokenEndpoint("tenant.example".into())
        );
        assert_eq!(
            config_error(build("https://user:pw@tenant.example/token")),
            ConfigError::CredentialsInUrl
        );
    }

    #[test]
    fn insecure_http_can_be_allowed() {
        let built = ClientCredentials::builder("http://tenant.example/token", "id", "secret")
            .allow_insecure_http(true)
            .build();
        assert!(built.is_ok());
    }

    #[test]
    fn empty_credentials_are_refused() {
        let e = config_error(ClientCredentials::builder("https://a.example/t", "", "s").build());
        assert_eq!(e, ConfigError::EmptyClientId);
        let e = config_error(ClientCredentials::builder("https://a.example/t", "id", "").build());
        assert_eq!(e, ConfigError::EmptyClientSecret);
    }

    #[test]
    fn empty_options_and_reserved_parameters_are_refused() {
        let builder = || ClientCredentials::builder("https://a.example/t", "id", "secret");
        assert_eq!(
            config_error(builder().audience("").build()),
            ConfigError::EmptyValue("audience")
        );
        assert_eq!(
            config_error(builder().scope("").build()),
            ConfigError::EmptyValue("scope")
        );
        assert!(matches!(
            config_error(builder().extra_param("", "x").build()),
            ConfigError::EmptyValue(_)
        ));
        for name in RESERVED_PARAMS {
            assert_eq!(
                config_error(builder().extra_param(*name, "x").build()),
                ConfigError::ReservedParameter(name.to_string())
            );
        }
    }

    #[test]
    fn routes_are_checked_and_leave_no_builder_grant_to_every_other_request() {
        let builder = || ClientCredentials::builder("https://a.example/t", "id", "secret");
        let orders = || Grant::new().audience("https://orders.example/");
        assert!(matches!(
            config_error(builder().route("orders.example", orders()).build()),
            ConfigError::InvalidRoute(_)
        ));
        assert!(matches!(
            config_error(
                builder()
                    .route("https://orders.example", orders())
                    .route("https://orders.example/", Grant::new().audience("x"))
                    .build()
            ),
            ConfigError::DuplicateRoute(_)
        ));
        assert_eq!(
            config_error(
                builder()
                    .route("https://orders.example", Grant::new().audience(""))
                    .build()
            ),
            ConfigError::EmptyValue("audience")
        );
        assert_eq!(
            config_error(
                builder()
                    .scope("read")
                    .route("https://orders.example", orders())
                    .build()
            ),
            ConfigError::GrantWithRoutes
        );
        assert!(
            builder()
                .default_grant(Grant::new().scope("read"))
                .route("https://orders.example", orders())
                .build()
                .is_ok()
        );
        assert!(matches!(
            config_error(builder().max_grants(0).build()),
            ConfigError::InvalidSize {
                option: "max_grants",
                ..
            }
        ));
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        let builder = || ClientCredentials::builder("https://a.example/t", "id", "secret");
        for lifetime in [Duration::ZERO, MAX_EXPIRES_IN + Duration::from_secs(1)] {
            assert!(matches!(
                config_error(builder().default_expires_in(lifetime).build()),
                ConfigError::InvalidDuration {
                    option: "default_expires_in",
                    ..
                }
            ));
        }
        for lifetime in [
            Duration::from_millis(999),
            MAX_EXPIRES_IN + Duration::from_secs(1),
        ] {
            assert!(matches!(
                config_error(builder().max_token_lifetime(lifetime).build()),
                ConfigError::InvalidDuration {
                    option: "max_token_lifetime",
                    ..
                }
            ));
        }
        assert!(matches!(
            config_error(builder().token_request_timeout(Duration::ZERO).build()),
            ConfigError::InvalidDuration {
                option: "token_request_timeout",
                ..
            }
        ));
    }

    #[test]
    fn an_upside_down_retry_policy_is_refused_not_a_panic() {
        let mut policy = retry::default_policy();
        policy.min_retry_interval = Duration::from_secs(5);
        policy.max_retry_interval = Duration::from_secs(1);
        let result = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .token_retry(policy)
            .build();
        assert_eq!(config_error(result), ConfigError::InvalidRetryPolicy);
    }

    #[test]
    fn a_resource_that_is_not_an_absolute_uri_without_a_fragment_is_refused() {
        for bad in ["fruits", "/api", "https://fruits.example/#part", ""] {
            let error = config_error(
                ClientCredentials::builder("https://a.example/t", "id", "secret")
                    .resource(bad)
                    .build(),
            );
            assert!(
                matches!(error, ConfigError::InvalidResource(_)),
                "{bad}: {error}"
            );
        }
        let shown = config_error(
            ClientCredentials::builder("https://a.example/t", "id", "secret")
                .resource("https://user:pa55@fruits.example/#x")
                .build(),
        )
        .to_string();
        assert!(!shown.contains("pa55"), "{shown}");
    }
}
