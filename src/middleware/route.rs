//! Which grant a request gets: the grant it carries, its API's route, or the default; or none.
//!
//! Fixed at build: the routes (an origin, perhaps with a path) and the default grant, each with
//! its slot at hand, so that the cached path of a request finds its slot without a lookup.
//! A grant a request carries as an extension is looked up among the client's slots.

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::cache::Slot;
use crate::error::{ConfigError, printable_without_userinfo};
use crate::grant::Grant;
use crate::middleware::attach::{Origin, web_url};

/// Where a route applies: an origin, and within it a path and the paths below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutePrefix {
    origin: Origin,
    /// Without its trailing `/`; empty for the whole origin.
    path: String,
}

impl RoutePrefix {
    /// `https://api.example` for a whole origin, `https://api.example/billing` for the paths
    /// under `/billing` there.
    pub(crate) fn parse(prefix: &str) -> Result<Self, ConfigError> {
        let refuse = |why: &str| {
            ConfigError::InvalidRoute(format!("{:?} {why}", printable_without_userinfo(prefix)))
        };
        let url = web_url(prefix, refuse)?;
        let origin = Origin::of(&url).ok_or_else(|| refuse("has no host"))?;
        Ok(Self {
            origin,
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether `url` is at this origin, at this path or below it: `/billing` takes
    /// `/billing` and `/billing/x`, not `/billingx`.
    fn contains(&self, url: &Url) -> bool {
        self.origin.contains(url)
            && url
                .path()
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl fmt::Display for RoutePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// The routes and the default grant, each with its slot.
pub(crate) struct Routes {
    /// Longest path first, so that the most specific route wins.
    routes: Vec<(RoutePrefix, Arc<Slot>)>,
    default: Option<Arc<Slot>>,
}

impl Routes {
    /// `routes` in any order; `default` for requests that match none.
    pub(crate) fn new(
        mut routes: Vec<(RoutePrefix, Arc<Slot>)>,
        default: Option<Arc<Slot>>,
    ) -> Self {
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.path.len()));
        Self { routes, default }
    }

    /// The slot of the grant for a request to `url`: its route's, else the default's, else none.
    pub(crate) fn slot_for(&self, url: &Url) -> Option<&Arc<Slot>> {
        if self.routes.is_empty() {
            return self.default.as_ref();
        }
        self.routes
            .iter()
            .find(|(prefix, _)| prefix.contains(url))
            .map(|(_, slot)| slot)
            .or(self.default.as_ref())
    }

    /// The default grant's slot, if there is a default grant.
    pub(crate) fn default_slot(&self) -> Option<&Arc<Slot>> {
        self.default.as_ref()
    }
}

/// The grant a request names for itself: reqwest-middleware's extensions, set with
/// `with_extension(grant)`.
pub(crate) fn grant_in(extensions: &http::Extensions) -> Option<&Grant> {
    extensions.get::<Grant>()
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|(prefix, slot)| format!("{prefix} → {}", slot.grant))
                    .collect::<Vec<_>>(),
            )
            .field(
                "default",
                &self.default.as_ref().map(|slot| slot.grant.to_string()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> RoutePrefix {
        RoutePrefix::parse(s).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_prefix_takes_its_path_and_the_paths_below_it() {
        let billing = prefix("https://api.example/billing/");
        for (u, inside) in [
            ("https://api.example/billing", true),
            ("https://api.example/billing/", true),
            ("https://api.example/billing/invoices?x=1", true),
            ("https://api.example:443/billing/x", true),
            ("https://api.example/billingx", false),
            ("https://api.example/", false),
            ("https://api.example:8443/billing", false),
            ("http://api.example/billing", false),
        ] {
            assert_eq!(billing.contains(&url(u)), inside, "{u}");
        }
        let whole = prefix("https://api.example");
        assert!(whole.contains(&url("https://api.example/anything")));
        assert!(!whole.contains(&url("https://other.example/")));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in [
            "api.example",
            "ftp://api.example",
            "https://api.example/x?y",
            "https://u:p@api.example",
            "",
        ] {
            assert!(
                matches!(RoutePrefix::parse(bad), Err(ConfigError::InvalidRoute(_))),
                "{bad}"
            );
        }
    }
}
