//! [`Slots`]: the bounded map from grants to their slots; idle ones evicted.
//!
//! The grants fixed at build (routes, the default) are pinned: never evicted, and found without
//! this map. Grants chosen per request come and go: a service with one Auth0 organization per
//! tenant may name thousands. Their slots are capped, and a slot nobody has asked for in a
//! while is dropped, with its token when the client's storage is its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::cache::TokenClient;
use crate::cache::slot::Slot;
use crate::error::ConfigError;
use crate::grant::Grant;
use crate::stats::{GrantStats, Stats};
use crate::time::unix_seconds;

/// How often, at most, slots are swept for idle ones when no cap forces it.
const SWEEP_INTERVAL_S: u64 = 60;

/// How many slots of grants chosen per request are kept, and for how long unused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotLimits {
    pub(crate) max: usize,
    pub(crate) idle: Duration,
}

/// Every slot of one client, by grant.
pub(crate) struct Slots {
    client: Arc<TokenClient>,
    limits: SlotLimits,
    /// Slots fixed at build, which the map holds too.
    pinned: Vec<Arc<Slot>>,
    map: RwLock<HashMap<Grant, Arc<Slot>>>,
    last_sweep_s: AtomicU64,
    /// What evicted slots had counted, so that the totals never go back.
    retired: Mutex<Stats>,
}

impl Slots {
    /// No slots yet for `client`'s grants.
    pub(crate) fn new(client: Arc<TokenClient>, limits: SlotLimits) -> Self {
        Self {
            client,
            limits,
            pinned: Vec::new(),
            map: RwLock::default(),
            last_sweep_s: AtomicU64::new(now_s()),
            retired: Mutex::default(),
        }
    }

    /// `grant`'s slot, made if there is none, and never evicted: for the grants fixed at build.
    pub(crate) fn pin(&mut self, grant: &Grant) -> Arc<Slot> {
        let map = self.map.get_mut().unwrap_or_else(PoisonError::into_inner);
        let slot = map
            .entry(grant.clone())
            .or_insert_with(|| Arc::new(Slot::new(Arc::clone(&self.client), grant.clone())));
        if !self.pinned.iter().any(|pinned| Arc::ptr_eq(pinned, slot)) {
            self.pinned.push(Arc::clone(slot));
        }
        Arc::clone(slot)
    }

    pub(crate) fn client(&self) -> &Arc<TokenClient> {
        &self.client
    }

    /// `grant`'s slot, made if there is none (and the grant's parameters are sound).
    ///
    /// # Errors
    /// When the grant has a parameter the token endpoint must not be sent (an empty audience,
    /// a reserved name, …).
    pub(crate) fn get_or_make(&self, grant: &Grant) -> Result<Arc<Slot>, ConfigError> {
        self.get_or_make_at(grant, now_s())
    }

    /// [`get_or_make`](Self::get_or_make) at `now_s` (UNIX seconds).
    fn get_or_make_at(&self, grant: &Grant, now_s: u64) -> Result<Arc<Slot>, ConfigError> {
        if let Some(slot) = self.read().get(grant) {
            slot.touch(now_s);
            return Ok(Arc::clone(slot));
        }
        grant.check()?;
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = map.get(grant) {
            return Ok(Arc::clone(slot));
        }
        self.make_room(&mut map, now_s);
        let slot = Arc::new(Slot::new(Arc::clone(&self.client), grant.clone()));
        slot.touch(now_s);
        map.insert(grant.clone(), Arc::clone(&slot));
        tracing::debug!(grant = %grant, key = %slot.key, slots = map.len(), "a new grant; its token is fetched on first use");
        Ok(slot)
    }

    /// Evicts the slots idle longer than the limit (at most once a sweep interval, or when the
    /// map is full), then, if it is still full, the one idle longest.
    fn make_room(&self, map: &mut HashMap<Grant, Arc<Slot>>, now_s: u64) {
        let unpinned = map.len() - self.pinned.len();
        let full = unpinned >= self.limits.max;
        let last_sweep_s = self.last_sweep_s.load(Ordering::Relaxed);
        if full || now_s >= last_sweep_s + SWEEP_INTERVAL_S {
            self.last_sweep_s.store(now_s, Ordering::Relaxed);
            let idle_s = self.limits.idle.as_secs();
            let idle: Vec<Grant> = map
                .iter()
                .filter(|(_, slot)| !self.is_pinned(slot))
                .filter(|(_, slot)| now_s.saturating_sub(slot.last_used_s()) >= idle_s)
                .map(|(grant, _)| grant.clone())
                .collect();
            for grant in idle {
                self.evict(map, &grant);
            }
        }
        if map.len() - self.pinned.len() >= self.limits.max {
            let oldest = map
                .iter()
                .filter(|(_, slot)| !self.is_pinned(slot))
                .min_by_key(|(_, slot)| slot.last_used_s())
                .map(|(grant, _)| grant.clone());
            if let Some(grant) = oldest {
                self.evict(map, &grant);
            }
        }
    }

    fn evict(&self, map: &mut HashMap<Grant, Arc<Slot>>, grant: &Grant) {
        if let Some(slot) = map.remove(grant) {
            let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
            *retired = retired.plus(slot.counters.snapshot());
            self.client.forget(&slot.key);
            tracing::debug!(grant = %grant, key = %slot.key, "a grant unused for a while is forgotten, with its token");
        }
    }

    fn is_pinned(&self, slot: &Arc<Slot>) -> bool {
        self.pinned.iter().any(|pinned| Arc::ptr_eq(pinned, slot))
    }

    /// Every slot there is now.
    pub(crate) fn all(&self) -> Vec<Arc<Slot>> {
        self.read().values().cloned().collect()
    }

    /// How many slots there are, pinned ones included.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// The counts of every slot there is or was.
    /// The counts of every slot, evicted ones included; the client's quota, and the
    /// organization quota reported last.
    pub(crate) fn total(&self) -> Stats {
        let retired = *self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        let slots = self.read();
        let counts = slots
            .values()
            .fold(retired, |sum, slot| sum.plus(slot.counters.snapshot()));
        Stats {
            client_quota: self.client.quota.last().map(|(quota, _)| quota),
            organization_quota: slots
                .values()
                .filter_map(|slot| slot.organization_quota())
                .max_by_key(|(_, reported_at)| *reported_at)
                .map(|(quota, _)| quota),
            ..counts
        }
    }

    /// The counts of each slot there is now, by grant label.
    pub(crate) fn by_grant(&self) -> Vec<GrantStats> {
        let mut all: Vec<GrantStats> = self
            .read()
            .values()
            .map(|slot| GrantStats {
                grant: slot.grant.to_string(),
                stats: slot.stats(),
            })
            .collect();
        all.sort_by(|a, b| a.grant.cmp(&b.grant));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Grant, Arc<Slot>>> {
        // Every critical section is a lookup, an insert or removals that cannot panic.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now_s() -> u64 {
    unix_seconds(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientCredentials;
    use crate::storage::TokenStorage;
    use crate::token::{AccessToken, Token};

    fn tenant(n: u32) -> Grant {
        Grant::new()
            .audience("members")
            .organization(format!("org_{n}"))
    }

    fn token() -> Token {
        let now = SystemTime::now();
        Token::new(AccessToken::new("t"), now, now + Duration::from_secs(3600))
    }

    async fn kept_in_memory(slots: &Slots, grant: &Grant) -> bool {
        let key = slots.client.key_for(grant);
        let stored = slots.client.storage.get(key.as_str()).await.unwrap();
        stored.is_some()
    }

    #[tokio::test]
    async fn the_grant_idle_longest_makes_room_and_idle_ones_go_at_the_next_sweep() {
        let auth = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .audience("default")
            .max_grants(2)
            .idle_grant_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let slots = auth.slots();
        let t0 = now_s();
        for (n, at) in [(1, t0), (2, t0 + 10)] {
            let slot = slots.get_or_make_at(&tenant(n), at).unwrap();
            slots
                .client
                .storage
                .set(slot.key.as_str(), &token())
                .await
                .unwrap();
        }

        slots.get_or_make_at(&tenant(3), t0 + 20).unwrap();

        let left: Vec<String> = slots.by_grant().into_iter().map(|g| g.grant).collect();
        assert_eq!(
            left,
            [
                "audience=default",
                "audience=members organization=org_2",
                "audience=members organization=org_3",
            ]
        );
        assert!(
            !kept_in_memory(slots, &tenant(1)).await,
            "its token went with it"
        );
        assert!(kept_in_memory(slots, &tenant(2)).await);

        // A sweep interval later, both are idle past the timeout; the default is pinned.
        slots.get_or_make_at(&tenant(4), t0 + 200).unwrap();
        let left: Vec<String> = slots.by_grant().into_iter().map(|g| g.grant).collect();
        assert_eq!(
            left,
            ["audience=default", "audience=members organization=org_4"]
        );
        assert!(!kept_in_memory(slots, &tenant(2)).await);
    }

    #[tokio::test]
    async fn a_shared_storage_keeps_the_tokens_of_forgotten_grants() {
        let storage = crate::MemoryStorage::new();
        let auth = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .storage(storage.clone())
            .max_grants(1)
            .build()
            .unwrap();
        let slots = auth.slots();
        let first = slots.get_or_make(&tenant(1)).unwrap();
        storage.set(first.key.as_str(), &token()).await.unwrap();

        slots.get_or_make(&tenant(2)).unwrap();

        assert_eq!(slots.len(), 2, "the default and the last tenant");
        assert!(
            kept_in_memory(slots, &tenant(1)).await,
            "other middlewares may use it"
        );
    }
}
