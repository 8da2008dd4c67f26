//! [`ClientCredentialsBuilder::build`]: the options checked (`check.rs`), then the middleware assembled.
//!
//! The token endpoint, the cache and the attach rules are made here, from the options.

use std::sync::Arc;

use crate::cache::cached_token::Timing;
use crate::cache::{CacheSettings, SlotLimits, Slots, TokenClient};
use crate::endpoint::TokenEndpoint;
use crate::endpoint::client_auth::ClientAuthentication;
#[cfg(feature = "jwt")]
use crate::endpoint::dpop::proof::DpopProofs;
use crate::endpoint::jwt_bearer::BearerGrant;
use crate::error::{ConfigError, Error};
use crate::grant::Grant;
use crate::middleware::ClientCredentials;
use crate::middleware::attach::{AttachRules, Origin};
use crate::middleware::builder::ClientCredentialsBuilder;
use crate::middleware::route::{RoutePrefix, Routes};
use crate::storage::{MemoryStorage, TokenStorage};

impl ClientCredentialsBuilder {
    /// Checks the options and makes the middleware. No request is sent: the first token is
    /// fetched on first use.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the token endpoint is not an `https` URL (or `http` to a
    /// loopback host, unless [`allow_insecure_http`](Self::allow_insecure_http)), the client id
    /// or secret is empty (a secret is not needed with `AuthMethod::PrivateKeyJwt`, whose key
    /// must fit its algorithm), a preset was given a bad value, an option is empty or out of range, or an extra parameter is one the
    /// crate sets itself.
    pub fn build(self) -> Result<ClientCredentials, Error> {
        let url = self.checked()?;
        let routes = self.parsed_routes()?;
        let attach = AttachRules {
            allow_insecure_http: self.allow_insecure_http,
            origins: self.allowed_origins()?,
            predicate: self.attach_when.clone(),
        };
        let http = match self.http_client {
            Some(client) => client,
            None => {
                let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
                #[cfg(feature = "default-tls")]
                let client = match self.client_identity {
                    Some(identity) => client.identity(identity),
                    None => client,
                };
                client
                    .build()
                    .map_err(|e| ConfigError::HttpClient(e.to_string()))?
            }
        };

        let mut display = url.clone();
        display.set_query(None);
        display.set_fragment(None);
        #[cfg(feature = "jwt")]
        let (thumbprint, dpop) = (
            self.dpop.as_ref().map(|key| key.thumbprint().to_owned()),
            self.dpop.map(|key| Arc::new(DpopProofs::new(key))),
        );
        #[cfg(not(feature = "jwt"))]
        let (thumbprint, dpop) = (None, None);
        let assertion_audience = self
            .assertion_audience
            .as_deref()
            .unwrap_or(display.as_str());
        let endpoint = TokenEndpoint {
            client_auth: ClientAuthentication::new(
                &self.auth_method,
                &self.client_id,
                &self.client_secret,
                assertion_audience,
            ),
            jwt_bearer: self
                .jwt_bearer
                .map(|assertion| BearerGrant::new(assertion, &self.client_id, assertion_audience)),
            display: Arc::from(display.as_str()),
            url,
            http,
            retry: self.token_retry,
            timeout: self.token_request_timeout,
            default_expires_in: self.default_expires_in,
            max_lifetime: self.max_token_lifetime,
            max_body_bytes: self.max_token_response_bytes,
            dpop,
        };
        // The default storage is this middleware's own: what it forgets, it can take out.
        let (storage, own_memory) = match self.storage {
            Some(storage) => (storage, None),
            None => {
                let memory = MemoryStorage::new();
                (
                    Arc::new(memory.clone()) as Arc<dyn TokenStorage>,
                    Some(memory),
                )
            }
        };
        let client = Arc::new(TokenClient::new(
            endpoint,
            storage,
            own_memory,
            CacheSettings {
                timing: Timing {
                    margin: self.expiry_margin,
                    window: self.refresh_window,
                    spread: Timing::random_spread(),
                },
                lease_ttl: self.refresh_lease_ttl,
                max_lifetime: self.max_token_lifetime,
                quota_warning: self.quota_warning,
            },
            self.client_id,
            thumbprint,
        ));

        let default = (self.routes.is_empty() || self.default_grant).then_some(self.grant);
        let mut slots = Slots::new(
            client,
            SlotLimits {
                max: self.max_grants,
                idle: self.idle_grant_timeout,
            },
        );
        let routes = Routes::new(
            routes
                .into_iter()
                .map(|(prefix, grant)| (prefix, slots.pin(&grant)))
                .collect(),
            default.as_ref().map(|grant| slots.pin(grant)),
        );
        Ok(ClientCredentials::new(attach, routes, slots))
    }

    /// The routes, each prefix parsed; the first bad or repeated one is an error.
    fn parsed_routes(&self) -> Result<Vec<(RoutePrefix, Grant)>, ConfigError> {
        let mut parsed: Vec<(RoutePrefix, Grant)> = Vec::new();
        for (prefix, grant) in &self.routes {
            let prefix = RoutePrefix::parse(prefix)?;
            if parsed.iter().any(|(seen, _)| *seen == prefix) {
                return Err(ConfigError::DuplicateRoute(prefix.to_string()));
            }
            parsed.push((prefix, grant.clone()));
        }
        Ok(parsed)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_holds_every_configured_parameter_and_no_secret() {
        let auth = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .audience("https://api.example/")
            .scope("read:a write:b")
            .extra_param("resource", "urn:x")
            .build()
            .unwrap();
        assert_eq!(
            auth.default_slot().form,
            "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example%2F\
             &scope=read%3Aa+write%3Ab&resource=urn%3Ax"
        );
    }

    #[test]
    fn each_resource_is_a_form_parameter_and_part_of_the_key() {
        let build = |resources: &[&str]| {
            resources
                .iter()
                .fold(
                    ClientCredentials::builder("https://a.example/t", "id", "secret"),
                    |builder, uri| builder.resource(*uri),
                )
                .build()
                .unwrap()
        };
        let two = build(&["https://fruits.example/", "https://veg.example/api"]);
        assert_eq!(
            two.default_slot().form,
            "grant_type=client_credentials&resource=https%3A%2F%2Ffruits.example%2F\
             &resource=https%3A%2F%2Fveg.example%2Fapi"
        );
        let one = build(&["https://fruits.example/"]);
        assert_ne!(one.default_slot().key, two.default_slot().key);
        let as_extra = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .extra_param("resource", "https://fruits.example/")
            .build()
            .unwrap();
        assert_eq!(
            one.default_slot().key,
            as_extra.default_slot().key,
            "the same token either way"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let builder = ClientCredentials::builder("https://a.example/t", "id", "hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}
