//! [`Grant`]: what a token is asked for — audience, scope, resources, organization, extras.
//!
//! One client (token endpoint, client id, credentials) can hold tokens for many grants: one
//! per API, per Auth0 organization, per scope. A grant is a plain value: it makes its form
//! fields, and with the client's identity its storage key (`storage/key.rs`).

use std::fmt;

use url::{Url, form_urlencoded};

use crate::error::{ConfigError, printable, printable_without_userinfo};

/// Form parameters the crate sets itself, which [`Grant::extra_param`] may not override.
pub(crate) const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "audience",
    "scope",
    "client_assertion",
    "client_assertion_type",
    "assertion",
];

/// The longest label shown: enough for an audience, an organization and a scope.
const LABEL_CHARS: usize = 200;

/// What a token is asked for: the API it is for (`audience`, or `resource` per RFC 8707), the
/// scope, an Auth0 organization, and any extra form parameters. Each distinct grant has a token
/// of its own, cached and shared on its own.
///
/// Used three ways: as the builder's own grant (its [`audience`], [`scope`], … options make
/// one), for the requests to an API with [`route`], and for one request as an extension:
///
/// ```
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
/// use reqwest_alf::Grant;
///
/// let orders_for_acme = Grant::new()
///     .audience("https://orders.example/")
///     .organization("org_acme");
/// let response = client
///     .get("https://orders.example/v1/orders")
///     .with_extension(orders_for_acme)
///     .send()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// Its [`Display`](fmt::Display) is a readable label (audience, resources, organization,
/// scope), for logs and [`stats_by_grant`](crate::ClientCredentials::stats_by_grant); the
/// values of extra parameters are left out of it.
///
/// [`audience`]: crate::ClientCredentialsBuilder::audience
/// [`scope`]: crate::ClientCredentialsBuilder::scope
/// [`route`]: crate::ClientCredentialsBuilder::route
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Grant {
    audience: Option<String>,
    scope: Option<String>,
    resources: Vec<String>,
    organization: Option<String>,
    extra_params: Vec<(String, String)>,
}

impl Grant {
    /// A grant with no parameters: `grant_type=client_credentials` alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `audience` form parameter: the API the token is for. Auth0 requires it (the API's
    /// identifier); servers that follow RFC 8707 take [`resource`](Self::resource) instead.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The `scope` form parameter: space-separated scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// A `resource` form parameter (RFC 8707): an API the token is for, as an absolute URI
    /// without a fragment. Call it again to name several.
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resources.push(uri.into());
        self
    }

    /// The `organization` form parameter: the Auth0 organization (its id, `org_…`, or its
    /// name) the token is issued for. Tokens of different organizations are kept apart, in
    /// memory and in the storage.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Any other form parameter the token endpoint wants. The parameters the crate sets
    /// itself (`grant_type`, `client_id`, `audience`, `scope`, …) are refused.
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// Whether nothing at all is set: the bare client-credentials grant.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every parameter: the first problem, as a [`ConfigError`].
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        for (option, value) in [
            ("audience", &self.audience),
            ("scope", &self.scope),
            ("organization", &self.organization),
        ] {
            if value.as_deref() == Some("") {
                return Err(ConfigError::EmptyValue(option));
            }
        }
        for resource in &self.resources {
            let uri = Url::parse(resource)
                .ok()
                .filter(|uri| uri.fragment().is_none());
            if uri.is_none() {
                return Err(ConfigError::InvalidResource(printable_without_userinfo(
                    resource,
                )));
            }
        }
        for (name, _) in &self.extra_params {
            if name.is_empty() {
                return Err(ConfigError::EmptyValue("an extra parameter's name"));
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(ConfigError::ReservedParameter(name.clone()));
            }
        }
        Ok(())
    }

    /// The token request's form body, before the client's authentication and any assertion:
    /// the client's `grant_type` (`client_credentials`, or the JWT bearer grant's) and every
    /// parameter, form-encoded. Never holds a secret.
    pub(crate) fn form(&self, grant_type: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", grant_type);
        if let Some(audience) = &self.audience {
            form.append_pair("audience", audience);
        }
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        form.extend_pairs(self.params());
        form.finish()
    }

    pub(crate) fn audience_param(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn organization_param(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    pub(crate) fn scope_param(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The parameters besides `audience` and `scope`: resources, the organization and the
    /// extra ones. An organization is the same parameter as `extra_param("organization", …)`,
    /// and keys the same token.
    pub(crate) fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        let resources = self.resources.iter().map(|uri| ("resource", uri.as_str()));
        let organization = self
            .organization
            .iter()
            .map(|org| ("organization", org.as_str()));
        let extra = self
            .extra_params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()));
        resources.chain(organization).chain(extra)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(audience) = &self.audience {
            parts.push(format!("audience={audience}"));
        }
        parts.extend(self.resources.iter().map(|uri| format!("resource={uri}")));
        if let Some(organization) = &self.organization {
            parts.push(format!("organization={organization}"));
        }
        if let Some(scope) = &self.scope {
            parts.push(format!("scope={scope}"));
        }
        parts.extend(
            self.extra_params
                .iter()
                .map(|(name, _)| format!("{name}=…")),
        );
        if parts.is_empty() {
            return f.write_str("client_credentials");
        }
        // Configured text, shown safely: no control characters, and not without end.
        f.write_str(&printable(&parts.join(" "), LABEL_CHARS))
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .field("organization", &self.organization)
            .field(
                "extra_params",
                &self
                    .extra_params
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_holds_every_parameter_in_order() {
        let grant = Grant::new()
            .audience("https://api.example/")
            .scope("read:a write:b")
            .resource("https://r.example/")
            .organization("org_1")
            .extra_param("x", "y");
        assert_eq!(
            grant.form("client_credentials"),
            "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example%2F\
             &scope=read%3Aa+write%3Ab&resource=https%3A%2F%2Fr.example%2F\
             &organization=org_1&x=y"
        );
        assert_eq!(
            Grant::new().form("client_credentials"),
            "grant_type=client_credentials"
        );
    }

    #[test]
    fn the_label_is_readable_and_leaves_extra_values_out() {
        let grant = Grant::new()
            .audience("https://api.example/")
            .organization("org_1")
            .scope("read")
            .extra_param("signing_secret", "hunter2");
        let label = grant.to_string();
        assert_eq!(
            label,
            "audience=https://api.example/ organization=org_1 scope=read signing_secret=…"
        );
        assert!(!format!("{grant:?}").contains("hunter2"));
        assert_eq!(Grant::new().to_string(), "client_credentials");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert_eq!(
            Grant::new().audience("").check(),
            Err(ConfigError::EmptyValue("audience"))
        );
        assert_eq!(
            Grant::new().organization("").check(),
            Err(ConfigError::EmptyValue("organization"))
        );
        assert!(matches!(
            Grant::new().resource("not a uri").check(),
            Err(ConfigError::InvalidResource(_))
        ));
        assert!(matches!(
            Grant::new().extra_param("grant_type", "x").check(),
            Err(ConfigError::ReservedParameter(_))
        ));
        assert!(Grant::new().audience("a").organization("o").check().is_ok());
    }
}
