//! Storage keys: stable across processes, readable in part, and free of secrets.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{Context, SHA256};
use url::Url;

use crate::grant::Grant;

/// The key a token is stored under: `{token endpoint host}:{hash}`, where the hash covers the
/// token endpoint, client id, the grant (audience, scope, resources, organization, extra
/// parameters), the JWT bearer grant's subject and the DPoP key's thumbprint. Everything that
/// changes which token the server hands out changes the key; the client secret and assertions
/// do not, and are never part of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct StorageKey(Arc<str>);

/// Who a client's tokens are for, besides its id: the parts of a key the grant does not give.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyParts<'a> {
    /// The subject of the JWT bearer grant's assertions.
    pub(crate) bearer_subject: Option<&'a str>,
    /// The thumbprint of the DPoP key tokens are bound to.
    pub(crate) dpop_thumbprint: Option<&'a str>,
}

impl StorageKey {
    pub(crate) fn new(endpoint: &Url, client_id: &str, grant: &Grant, parts: KeyParts) -> Self {
        let mut extra: Vec<_> = grant.params().collect();
        extra.sort();
        let mut hash = Context::new(&SHA256);
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let mut field = |value: &str| {
            hash.update(&(value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        };
        field(endpoint.as_str());
        field(client_id);
        field(grant.audience_param().unwrap_or(""));
        field(grant.scope_param().unwrap_or(""));
        for (name, value) in extra {
            field(name);
            field(value);
        }
        // Keys without a subject or a DPoP key stay as they were.
        if let Some(subject) = parts.bearer_subject {
            field("jwt-bearer");
            field(subject);
        }
        // A bound token is good only with its key.
        if let Some(thumbprint) = parts.dpop_thumbprint {
            field("dpop");
            field(thumbprint);
        }
        let digest = hash.finish();
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let host = endpoint.host_str().unwrap_or("token");
        Self(Arc::from(format!("{host}:{hex}")))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn grant(audience: Option<&str>, scope: Option<&str>, extra: &[(&str, &str)]) -> Grant {
        let mut grant = Grant::new();
        if let Some(audience) = audience {
            grant = grant.audience(audience);
        }
        if let Some(scope) = scope {
            grant = grant.scope(scope);
        }
        extra.iter().fold(grant, |grant, (name, value)| {
            grant.extra_param(*name, *value)
        })
    }

    fn key(audience: Option<&str>, scope: Option<&str>, extra: &[(&str, &str)]) -> StorageKey {
        StorageKey::new(
            &url("https://tenant.example/oauth/token"),
            "id",
            &grant(audience, scope, extra),
            KeyParts::default(),
        )
    }

    #[test]
    fn keys_are_stable_and_readable() {
        let k = key(Some("https://api.example"), None, &[]);
        // A fixed value, worked out independently (Python hashlib): keys are shared across
        // processes and releases, so they must not drift.
        assert_eq!(
            k.as_str(),
            "tenant.example:ffc61b0793e58b0e31bbe9385fdf7781"
        );
    }

    #[test]
    fn every_setting_that_changes_the_token_changes_the_key() {
        let base = key(Some("a"), Some("s"), &[("resource", "r")]);
        assert_ne!(base, key(Some("b"), Some("s"), &[("resource", "r")]));
        assert_ne!(base, key(Some("a"), Some("t"), &[("resource", "r")]));
        assert_ne!(base, key(Some("a"), Some("s"), &[("resource", "q")]));
        assert_ne!(base, key(Some("a"), Some("s"), &[]));
        assert_ne!(
            key(Some("ab"), Some("c"), &[]),
            key(Some("a"), Some("bc"), &[])
        );
        assert_ne!(
            base,
            StorageKey::new(
                &url("https://other.example/oauth/token"),
                "id",
                &grant(Some("a"), Some("s"), &[("resource", "r")]),
                KeyParts::default(),
            )
        );
        assert_ne!(
            base,
            StorageKey::new(
                &url("https://tenant.example/oauth/token"),
                "id2",
                &grant(Some("a"), Some("s"), &[("resource", "r")]),
                KeyParts::default(),
            )
        );
    }

    #[test]
    fn a_dpop_key_or_a_subject_changes_the_key_and_neither_keeps_it_as_it_was() {
        let with = |bearer_subject: Option<&str>, dpop_thumbprint: Option<&str>| {
            StorageKey::new(
                &url("https://tenant.example/oauth/token"),
                "id",
                &grant(Some("https://api.example"), None, &[]),
                KeyParts {
                    bearer_subject,
                    dpop_thumbprint,
                },
            )
        };
        assert_eq!(
            with(None, None),
            key(Some("https://api.example"), None, &[])
        );
        assert_ne!(with(None, Some("abc")), with(None, None));
        assert_ne!(with(None, Some("abc")), with(None, Some("abd")));
        assert_ne!(with(Some("alice"), None), with(None, None));
        assert_ne!(with(Some("alice"), None), with(Some("bob"), None));
        assert_ne!(with(Some("abc"), None), with(None, Some("abc")));
    }

    #[test]
    fn an_organization_keys_the_same_token_as_the_same_extra_parameter_and_no_other() {
        let org = |org: &str| {
            StorageKey::new(
                &url("https://tenant.example/oauth/token"),
                "id",
                &Grant::new().audience("a").organization(org),
                KeyParts::default(),
            )
        };
        assert_eq!(
            org("org_1"),
            key(Some("a"), None, &[("organization", "org_1")])
        );
        assert_ne!(org("org_1"), org("org_2"));
        assert_ne!(org("org_1"), key(Some("a"), None, &[]));
    }

    #[test]
    fn extra_parameter_order_does_not_matter() {
        assert_eq!(
            key(None, None, &[("a", "1"), ("b", "2")]),
            key(None, None, &[("b", "2"), ("a", "1")])
        );
    }
}
