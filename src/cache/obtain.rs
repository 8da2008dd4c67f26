//! One fetch: a token from the storage, or from the token endpoint under the refresh lease.

use std::sync::Arc;
use std::time::SystemTime;

use crate::cache::cached_token::CachedToken;
use crate::cache::cool_down::{CoolDown, is_credible};
use crate::cache::fault_log::StorageOperation;
use crate::cache::lease_wait::LeaseWait;
use crate::cache::slot::Slot;
use crate::cache::{FlightResult, Purpose};
use crate::endpoint::{Attempts, Fetched};
use crate::error::{Error, QuotaScope};
use crate::random::random_hex;
use crate::stats::count;
use crate::storage::Lease;
use crate::time::{CLOCK_SKEW, http_date};
use crate::token::Token;

impl Slot {
    /// The flight: a token from the storage if it holds one good enough, else from the token
    /// endpoint, under the storage's refresh lease when it has one, so that of all the
    /// middlewares sharing the storage one makes the call and the others wait for its token.
    /// Without a lease (the storage has none, is down, or the lease is off) this middleware
    /// fetches for itself.
    pub(super) async fn obtain(self: Arc<Self>, purpose: Purpose) -> FlightResult {
        let Some(lease_ttl) = self.client.settings.lease_ttl else {
            return self.load_or_fetch(purpose, None).await;
        };
        let holder = random_hex();
        let mut wait: Option<LeaseWait> = None;
        loop {
            if let Some(stored) = self.load(purpose).await {
                return Ok(stored);
            }
            if let Some(retry_at) = self.cooling_down_until(SystemTime::now()) {
                return Err(self.rate_limited(retry_at));
            }
            let lease = self
                .client
                .storage
                .try_lease(self.key.as_str(), &holder, lease_ttl);
            match self.with_storage(StorageOperation::TakeLease, lease).await {
                Some(Lease::Acquired) => return self.fetch_under_lease(&holder, purpose).await,
                Some(Lease::HeldElsewhere) => {
                    let wait = wait.get_or_insert_with(|| {
                        count(&self.counters.lease_waits);
                        tracing::debug!(key = %self.key, "another instance is fetching a token; waiting for it");
                        LeaseWait::new(lease_ttl, self.client.endpoint.retry.max_retry_interval, purpose)
                    });
                    match wait.next_pause() {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => {
                            tracing::warn!(key = %self.key, "the refresh lease stayed taken for twice its time to live; fetching without it");
                            return self.fetch_and_store(None).await;
                        }
                    }
                }
                Some(Lease::CoolingDown(until)) => {
                    // This key's: another instance met a rate limit, or this grant's quota.
                    let (now, max_wait) = (
                        SystemTime::now(),
                        self.client.endpoint.retry.max_retry_interval,
                    );
                    if until <= now {
                        tracing::debug!(key = %self.key, "the storage's rate-limit cool-down has ended, though its key lives on; asking the token endpoint");
                    } else if is_credible(until, now, max_wait) {
                        let retry_at = self.cool_down.extend(until);
                        return Err(self.rate_limited(retry_at));
                    } else {
                        tracing::warn!(key = %self.key, until = %http_date(until), "the storage holds a rate-limit cool-down further ahead than any instance writes; ignoring it as damaged");
                    }
                    // Without the lease, which the cool-down keeps: a 429 writes a fresh one.
                    return self.fetch_and_store(None).await;
                }
                Some(Lease::Unsupported) | None => return self.fetch_and_store(None).await,
            }
        }
    }

    /// Fetches while holding the refresh lease, then gives it up.
    async fn fetch_under_lease(&self, holder: &str, purpose: Purpose) -> FlightResult {
        // The previous holder may have stored its token between our read and our lease.
        let outcome = self.load_or_fetch(purpose, Some(holder)).await;
        let release = self.client.storage.release_lease(self.key.as_str(), holder);
        self.with_storage(StorageOperation::ReleaseLease, release)
            .await;
        outcome
    }

    /// A token from the storage if it holds one good enough for `purpose`, else a new one,
    /// fetched under `lease` when this fetch holds one.
    async fn load_or_fetch(&self, purpose: Purpose, lease: Option<&str>) -> FlightResult {
        match self.load(purpose).await {
            Some(stored) => Ok(stored),
            None => self.fetch_and_store(lease).await,
        }
    }

    /// Keeps the token endpoint alone until `until`, here (for the whole client, or with
    /// `cool_down` the slot's own, for this grant alone) and, through the storage, everywhere;
    /// the end of the cool-down now in force.
    async fn share_cool_down(&self, cool_down: &CoolDown, until: SystemTime) -> SystemTime {
        let until = cool_down.extend(until);
        let share = self.client.storage.cool_down(self.key.as_str(), until);
        self.with_storage(StorageOperation::CoolDown, share).await;
        until
    }

    /// A new token from the token endpoint, kept in the storage. A rate limit is kept there
    /// too, so that no one sharing the storage asks again before it ends. A short one is
    /// waited out, holding `lease` (this fetch's, when it has one) until after the wait, so
    /// that everyone else waits for this fetch's token rather than fail.
    async fn fetch_and_store(&self, lease: Option<&str>) -> FlightResult {
        let mut attempts = Attempts::new();
        let token = loop {
            #[cfg(feature = "metrics")]
            let started = std::time::Instant::now();
            let fetched = self
                .client
                .endpoint
                .fetch(&self.form, &self.counters, &mut attempts)
                .await;
            #[cfg(feature = "metrics")]
            crate::cache::metrics::record_fetch(self, fetched.outcome().0, started.elapsed());
            self.note_quota(&attempts.quota);
            match fetched {
                Fetched::Token(token) => break token,
                Fetched::AfterRateLimit(until) => {
                    let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
                    if let (Some(holder), Some(ttl)) = (lease, self.client.settings.lease_ttl) {
                        let renew =
                            self.client
                                .storage
                                .try_lease(self.key.as_str(), holder, wait + ttl);
                        self.with_storage(StorageOperation::TakeLease, renew).await;
                    }
                    self.share_cool_down(&self.client.cool_down, until).await;
                    tokio::time::sleep(wait).await;
                }
                Fetched::Failed(error) => {
                    count(&self.counters.failed_fetches);
                    let Error::RateLimited {
                        retry_at,
                        spent_quota,
                        ..
                    } = error
                    else {
                        return Err(error);
                    };
                    // An organization's spent quota holds its grants alone.
                    let cool_down = match spent_quota {
                        Some(QuotaScope::Organization) => &self.cool_down,
                        _ => &self.client.cool_down,
                    };
                    let retry_at = self.share_cool_down(cool_down, retry_at).await;
                    return Err(self.rate_limited(retry_at));
                }
            }
        };
        count(&self.counters.tokens_fetched);
        tracing::debug!(key = %self.key, expires_at = %http_date(token.expires_at()), "fetched a new access token");
        let cached = CachedToken::new(token, &self.client.settings.timing).map_err(|reason| {
            Error::InvalidTokenResponse {
                endpoint: self.client.endpoint.display.to_string(),
                reason,
            }
        })?;
        let keep = self.client.storage.set(self.key.as_str(), &cached.token);
        self.with_storage(StorageOperation::Write, keep).await;
        Ok(Arc::new(cached))
    }

    /// Whether `token` is the one this cache last saw rejected by the API.
    fn was_rejected(&self, token: &Token) -> bool {
        self.current.load().as_ref().is_some_and(|cached| {
            cached.is_rejected() && cached.token.access_token() == token.access_token()
        })
    }

    /// A token from the storage good enough for `purpose`: fresh, and for a refresh ahead not
    /// itself in its refresh window. Anything else is a miss: storage errors and unusable
    /// values are logged, never passed on.
    async fn load(&self, purpose: Purpose) -> Option<Arc<CachedToken>> {
        let read = self.client.storage.get(self.key.as_str());
        let stored = self.with_storage(StorageOperation::Read, read).await??;
        if self.was_rejected(&stored) {
            // The storage could not remove it after the 401 (it was down, say): still no good.
            tracing::debug!(key = %self.key, "the storage still holds the rejected token; fetching a new one");
            return None;
        }
        let now = SystemTime::now();
        if stored.expires_at() > now + self.client.settings.max_lifetime + CLOCK_SKEW {
            tracing::warn!(key = %self.key, expires_at = %http_date(stored.expires_at()), "the storage holds a token that expires further ahead than any token lives (max_token_lifetime); ignoring it as damaged");
            return None;
        }
        match CachedToken::new(stored, &self.client.settings.timing) {
            Ok(cached)
                if cached.is_fresh_at(now)
                    && (purpose == Purpose::Replace || !cached.is_due_at(now)) =>
            {
                count(&self.counters.shared_hits);
                tracing::debug!(key = %self.key, "using the token from storage");
                Some(Arc::new(cached))
            }
            Ok(_) => None,
            Err(reason) => {
                tracing::warn!(key = %self.key, %reason, "token storage holds an unusable token; fetching a new one");
                None
            }
        }
    }
}
