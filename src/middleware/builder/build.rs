//! [`ClientCredentialsBuilder::build`]: every option checked, then the middleware assembled.
//!
//! The token endpoint, the cache and the attach rules are made here, from the options.

use std::sync::Arc;
use std::time::Duration;

use url::{Url, form_urlencoded};

use crate::cache::cached_token::Timing;
use crate::cache::fault_log::{FaultLog, WARNING_INTERVAL};
use crate::cache::{CacheSettings, TokenCache};
use crate::endpoint::TokenEndpoint;
use crate::endpoint::client_auth::{AuthMethod, ClientAuthentication};
use crate::error::{ConfigError, Error};
use crate::middleware::ClientCredentials;
use crate::middleware::attach::{AttachRules, Origin, is_loopback};
use crate::middleware::builder::ClientCredentialsBuilder;
use crate::storage::{MemoryStorage, StorageKey};
use crate::time::MAX_EXPIRES_IN;

/// The longest refresh lease [`refresh_lease_ttl`](ClientCredentialsBuilder::refresh_lease_ttl)
/// takes: a lease is for one token request and its retries, not for minutes.
const MAX_REFRESH_LEASE_TTL: Duration = Duration::from_secs(600);

/// Below this, even an ordinary token response (a JWT with a few claims) would not fit.
const MIN_TOKEN_RESPONSE_BYTES: usize = 1024;

/// Form parameters the crate sets itself, which [`extra_param`] may not override.
///
/// [`extra_param`]: ClientCredentialsBuilder::extra_param
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "audience",
    "scope",
    "client_assertion",
    "client_assertion_type",
];

impl ClientCredentialsBuilder {
    /// Checks the options and makes the middleware. No request is sent: the first token is
    /// fetched on first use.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the token endpoint is not an `https` URL (or `http` to a
    /// loopback host, unless [`allow_insecure_http`](Self::allow_insecure_http)), the client id
    /// or secret is empty (a secret is not needed with [`AuthMethod::PrivateKeyJwt`], whose key
    /// must fit its algorithm), a preset was given a bad value, an option is empty or out of range, or an extra parameter is one the
    /// crate sets itself.
    pub fn build(self) -> Result<ClientCredentials, Error> {
        if let Some(error) = self.preset_error {
            return Err(error.into());
        }
        let url = self.validated_endpoint()?;
        if self.client_id.is_empty() {
            return Err(ConfigError::EmptyClientId.into());
        }
        if self.auth_method.uses_secret() && self.client_secret.is_empty() {
            return Err(ConfigError::EmptyClientSecret.into());
        }
        if let AuthMethod::PrivateKeyJwt(key) = &self.auth_method {
            key.check()?;
        }
        for (option, value) in [("audience", &self.audience), ("scope", &self.scope)] {
            if value.as_deref() == Some("") {
                return Err(ConfigError::EmptyValue(option).into());
            }
        }
        for (name, _) in &self.extra_params {
            if name.is_empty() {
                return Err(ConfigError::EmptyValue("an extra parameter's name").into());
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(ConfigError::ReservedParameter(name.clone()).into());
            }
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
        let attach = AttachRules {
            allow_insecure_http: self.allow_insecure_http,
            origins: self.allowed_origins()?,
            predicate: self.attach_when.clone(),
        };
        let http = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?,
        };

        let key = StorageKey::new(
            &url,
            &self.client_id,
            self.audience.as_deref(),
            self.scope.as_deref(),
            &self.extra_params,
        );
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(audience) = &self.audience {
            form.append_pair("audience", audience);
        }
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        form.extend_pairs(&self.extra_params);

        let mut display = url.clone();
        display.set_query(None);
        display.set_fragment(None);
        let endpoint = TokenEndpoint {
            display: Arc::from(display.as_str()),
            url,
            form: form.finish(),
            client_auth: ClientAuthentication::new(
                &self.auth_method,
                &self.client_id,
                &self.client_secret,
                self.assertion_audience
                    .as_deref()
                    .unwrap_or(display.as_str()),
            ),
            http,
            retry: self.token_retry,
            timeout: self.token_request_timeout,
            default_expires_in: self.default_expires_in,
            max_lifetime: self.max_token_lifetime,
            max_body_bytes: self.max_token_response_bytes,
        };
        Ok(ClientCredentials::new(
            attach,
            TokenCache::new(
                key,
                self.storage
                    .unwrap_or_else(|| Arc::new(MemoryStorage::new())),
                endpoint,
                CacheSettings {
                    timing: Timing {
                        margin: self.expiry_margin,
                        window: self.refresh_window,
                        spread: Timing::random_spread(),
                    },
                    lease_ttl: self.refresh_lease_ttl,
                    max_lifetime: self.max_token_lifetime,
                },
                FaultLog::new(WARNING_INTERVAL),
            ),
        ))
    }

    /// The origins of [`only_for`](Self::only_for), or `None` when it was not used.
    fn allowed_origins(&self) -> Result<Option<Vec<Origin>>, ConfigError> {
        if self.only_for.is_empty() {
            return Ok(None);
        }
        self.only_for
            .iter()
            .map(|origin| Origin::parse(origin))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
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
    use crate::endpoint::retry;

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
    fn the_form_holds_every_configured_parameter_and_no_secret() {
        let auth = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .audience("https://api.example/")
            .scope("read:a write:b")
            .extra_param("resource", "urn:x")
            .build()
            .unwrap();
        assert_eq!(
            auth.cache().endpoint.form,
            "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example%2F\
             &scope=read%3Aa+write%3Ab&resource=urn%3Ax"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let builder = ClientCredentials::builder("https://a.example/t", "id", "hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}
