//! Storage keys: stable across processes, readable in part, and free of secrets.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use url::Url;

/// The key a token is stored under: `{token endpoint host}:{hash}`, where the hash covers the
/// token endpoint, client id, audience, scope, extra parameters and the DPoP key's
/// thumbprint. Everything that changes
/// which token the server hands out changes the key; the client secret does not, and is never
/// part of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct StorageKey(Arc<str>);

impl StorageKey {
    pub(crate) fn new(
        endpoint: &Url,
        client_id: &str,
        audience: Option<&str>,
        scope: Option<&str>,
        extra_params: &[(String, String)],
        dpop_thumbprint: Option<&str>,
    ) -> Self {
        let mut extra: Vec<_> = extra_params.iter().collect();
        extra.sort();
        let mut hash = Sha256::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let mut field = |value: &str| {
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        };
        field(endpoint.as_str());
        field(client_id);
        field(audience.unwrap_or(""));
        field(scope.unwrap_or(""));
        for (name, value) in extra {
            field(name);
            field(value);
        }
        // A bound token is good only with its key: keys with no DPoP key stay as they were.
        if let Some(thumbprint) = dpop_thumbprint {
            field("dpop");
            field(thumbprint);
        }
        let digest = hash.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
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

    fn key(audience: Option<&str>, scope: Option<&str>, extra: &[(&str, &str)]) -> StorageKey {
        let extra: Vec<_> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StorageKey::new(
            &url("https://tenant.example/oauth/token"),
            "id",
            audience,
            scope,
            &extra,
            None,
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
                Some("a"),
                Some("s"),
                &[("resource".into(), "r".into())],
                None,
            )
        );
        assert_ne!(
            base,
            StorageKey::new(
                &url("https://tenant.example/oauth/token"),
                "id2",
                Some("a"),
                Some("s"),
                &[("resource".into(), "r".into())],
                None,
            )
        );
    }

    #[test]
    fn a_dpop_key_changes_the_key_and_no_key_keeps_it_as_it_was() {
        let thumbprint = |t: Option<&str>| {
            StorageKey::new(
                &url("https://tenant.example/oauth/token"),
                "id",
                Some("https://api.example"),
                None,
                &[],
                t,
            )
        };
        assert_eq!(
            thumbprint(None),
            key(Some("https://api.example"), None, &[])
        );
        assert_ne!(thumbprint(Some("abc")), thumbprint(None));
        assert_ne!(thumbprint(Some("abc")), thumbprint(Some("abd")));
    }

    #[test]
    fn extra_parameter_order_does_not_matter() {
        assert_eq!(
            key(None, None, &[("a", "1"), ("b", "2")]),
            key(None, None, &[("b", "2"), ("a", "1")])
        );
    }
}
