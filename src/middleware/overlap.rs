//! Two middlewares stacked on one client that give tokens to the same requests: said once.
//!
//! The outer one puts its token on a request; the inner one finds `Authorization` set, takes it
//! for the caller's own choice, and leaves it: the API gets the outer one's token, perhaps one
//! for another API, and nothing says so. So the inner one looks at what it was left: when it is
//! the current token of another middleware's grant, it warns, once, naming both. Only requests
//! that carry `Authorization` already, and that this middleware would give a token, are looked
//! at, and only the first few: the cached path of a request never pays for it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use http::HeaderValue;

use crate::cache::Slots;
use crate::grant::Grant;

/// The slots of every middleware alive in the process.
static LIVE: Mutex<Vec<Weak<Slots>>> = Mutex::new(Vec::new());

/// How many requests that carry their own `Authorization` each middleware looks at.
const LOOKS: u32 = 64;

/// Makes `slots` known to the middlewares built after and before it.
pub(crate) fn register(slots: &Arc<Slots>) {
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    live.retain(|slots| slots.strong_count() > 0);
    live.push(Arc::downgrade(slots));
}

/// One middleware's looks at the tokens it finds on requests.
#[derive(Debug)]
pub(crate) struct OverlapCheck {
    /// Looks left; none once it has warned.
    looks_left: AtomicU32,
}

impl Default for OverlapCheck {
    fn default() -> Self {
        Self {
            looks_left: AtomicU32::new(LOOKS),
        }
    }
}

impl OverlapCheck {
    /// Whether a request found with `Authorization` set is still worth a look.
    pub(crate) fn wants_a_look(&self) -> bool {
        self.looks_left.load(Ordering::Relaxed) > 0
    }

    /// Looks at `found`, the `Authorization` of a request that `ours` would have given a token
    /// for `grant`: when it is another middleware's token, warns, once.
    pub(crate) fn look(&self, ours: &Arc<Slots>, grant: &Grant, found: &HeaderValue) {
        if self
            .looks_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        let live: Vec<Arc<Slots>> = LIVE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let outer = live
            .iter()
            .filter(|other| !Arc::ptr_eq(other, ours))
            .find_map(|other| {
                let slot = other.all().into_iter().find(|slot| slot.sends(found))?;
                Some((
                    Arc::clone(&other.client().endpoint.display),
                    slot.grant.to_string(),
                ))
            });
        let Some((outer_endpoint, outer_grant)) = outer else {
            return;
        };
        if self.looks_left.swap(0, Ordering::Relaxed) == 0 {
            return;
        }
        tracing::warn!(
            outer_token_endpoint = %outer_endpoint,
            outer_grant = %outer_grant,
            token_endpoint = %ours.client().endpoint.display,
            grant = %grant,
            "two ClientCredentials middlewares are stacked and both give tokens to this request: \
             the outer one's token (outer_grant) went out, not this one's (grant). Narrow the \
             outer one with route(...) or only_for(...), or use one middleware with a route \
             per API"
        );
    }
}
