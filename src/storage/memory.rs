//! The default storage: a map in this process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::storage::{Lease, StorageError, TokenStorage};
use crate::token::Token;

/// Tokens kept in this process's memory: the default storage.
///
/// Clones share the same map, so middlewares given clones of one `MemoryStorage` share their
/// tokens, and with them its refresh lease and rate-limit cool-down: of those middlewares, one
/// at a time calls the token endpoint. Expired tokens are dropped when next read, and all at
/// once when the map has doubled since they last were.
///
/// # Example
/// ```
/// use reqwest_alf::{ClientCredentials, MemoryStorage};
///
/// let storage = MemoryStorage::new();
/// let orders = ClientCredentials::builder("https://a.example/token", "id", "secret")
///     .audience("https://orders.example")
///     .storage(storage.clone())
///     .build()?;
/// let same_token = ClientCredentials::builder("https://a.example/token", "id", "secret")
///     .audience("https://orders.example")
///     .storage(storage)
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStorage {
    kept: Arc<Mutex<Kept>>,
}

/// How many tokens a [`MemoryStorage`] holds before it first drops the expired ones.
const FIRST_SWEEP: usize = 64;

/// Everything a [`MemoryStorage`] keeps, by key.
struct Kept {
    tokens: HashMap<String, Token>,
    /// Expired tokens are dropped when a write finds this many kept.
    sweep_at: usize,
    /// Holder and deadline of each refresh lease.
    leases: HashMap<String, (String, Instant)>,
    cool_downs: HashMap<String, SystemTime>,
}

impl Default for Kept {
    fn default() -> Self {
        Self {
            tokens: HashMap::new(),
            sweep_at: FIRST_SWEEP,
            leases: HashMap::new(),
            cool_downs: HashMap::new(),
        }
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tokens are kept, expired ones included until they are next read.
    pub fn len(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.lock().tokens.is_empty()
    }

    /// Takes `key`'s token out, at once: for the client whose own storage this is, when it no
    /// longer keeps a slot for the key.
    pub(crate) fn forget(&self, key: &str) {
        self.lock().tokens.remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // A panic elsewhere while holding the lock cannot leave the maps half-written: every
        // critical section is a few inserts, removals or lookups that cannot panic.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("tokens", &self.len())
            .finish()
    }
}

#[async_trait]
impl TokenStorage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
        let tokens = &mut self.lock().tokens;
        if tokens
            .get(key)
            .is_some_and(|token| token.is_expired_at(SystemTime::now()))
        {
            tokens.remove(key);
        }
        Ok(tokens.get(key).cloned())
    }

    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        let kept = &mut *self.lock();
        // Tokens nobody reads again would stay forever: once the map has doubled since it was
        // last swept, the expired ones go. Each token is swept over a bounded number of times.
        if kept.tokens.len() >= kept.sweep_at {
            let now = SystemTime::now();
            kept.tokens.retain(|_, token| !token.is_expired_at(now));
            kept.sweep_at = (kept.tokens.len() * 2).max(FIRST_SWEEP);
        }
        kept.tokens.insert(key.to_owned(), token.clone());
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.lock().tokens.remove(key);
        Ok(())
    }

    async fn remove_if_same(&self, key: &str, rejected: &Token) -> Result<bool, StorageError> {
        let tokens = &mut self.lock().tokens;
        let same = tokens
            .get(key)
            .is_some_and(|kept| kept.access_token() == rejected.access_token());
        if same {
            tokens.remove(key);
        }
        Ok(same)
    }

    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StorageError> {
        let mut kept = self.lock();
        let instant = Instant::now();
        kept.leases.retain(|_, (_, deadline)| *deadline > instant);
        match kept.leases.get(key) {
            Some((held_by, _)) if held_by != holder => return Ok(Lease::HeldElsewhere),
            Some(_) => {}
            None => {
                let now = SystemTime::now();
                kept.cool_downs.retain(|_, until| *until > now);
                if let Some(until) = kept.cool_downs.get(key) {
                    return Ok(Lease::CoolingDown(*until));
                }
            }
        }
        kept.leases
            .insert(key.to_owned(), (holder.to_owned(), instant + ttl));
        Ok(Lease::Acquired)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StorageError> {
        let leases = &mut self.lock().leases;
        if leases
            .get(key)
            .is_some_and(|(held_by, _)| held_by == holder)
        {
            leases.remove(key);
        }
        Ok(())
    }

    async fn cool_down(&self, key: &str, until: SystemTime) -> Result<(), StorageError> {
        self.lock().cool_downs.insert(key.to_owned(), until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::token::AccessToken;

    fn token(value: &str, lifetime: Duration) -> Token {
        let now = SystemTime::now();
        Token::new(AccessToken::new(value), now, now + lifetime)
    }

    #[tokio::test]
    async fn clones_share_tokens() {
        let storage = MemoryStorage::new();
        let clone = storage.clone();
        storage
            .set("k", &token("a", Duration::from_secs(60)))
            .await
            .unwrap();
        let got = clone.get("k").await.unwrap().unwrap();
        assert_eq!(got.access_token().secret(), "a");
        assert_eq!(clone.len(), 1);
        clone.remove("k").await.unwrap();
        assert!(storage.is_empty());
    }

    #[tokio::test]
    async fn expired_tokens_are_dropped_on_read() {
        let storage = MemoryStorage::new();
        storage.set("k", &token("a", Duration::ZERO)).await.unwrap();
        assert!(storage.get("k").await.unwrap().is_none());
        assert!(storage.is_empty());
    }

    #[tokio::test]
    async fn expired_tokens_nobody_reads_are_dropped_as_the_map_grows() {
        let storage = MemoryStorage::new();
        let issued = SystemTime::now() - Duration::from_secs(60);
        let expired = Token::new(
            AccessToken::new("old"),
            issued,
            issued + Duration::from_secs(1),
        );
        for n in 0..FIRST_SWEEP {
            storage.set(&format!("old-{n}"), &expired).await.unwrap();
        }
        assert_eq!(storage.len(), FIRST_SWEEP);
        storage
            .set("new", &token("new", Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(storage.len(), 1, "only the live token is left");
    }

    #[tokio::test]
    async fn remove_if_same_spares_a_replacement() {
        let storage = MemoryStorage::new();
        let old = token("old", Duration::from_secs(60));
        let new = token("new", Duration::from_secs(60));
        storage.set("k", &new).await.unwrap();
        assert!(!storage.remove_if_same("k", &old).await.unwrap());
        assert_eq!(storage.get("k").await.unwrap(), Some(new.clone()));
        assert!(storage.remove_if_same("k", &new).await.unwrap());
        assert!(storage.get("k").await.unwrap().is_none());
        assert!(!storage.remove_if_same("missing", &new).await.unwrap());
    }

    #[tokio::test]
    async fn the_default_remove_if_same_compares_before_removing() {
        // Exercise the trait's default through a wrapper that does not override it.
        struct Plain(MemoryStorage);
        #[async_trait]
        impl TokenStorage for Plain {
            async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
                self.0.get(key).await
            }
            async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
                self.0.set(key, token).await
            }
            async fn remove(&self, key: &str) -> Result<(), StorageError> {
                self.0.remove(key).await
            }
        }
        let storage = Plain(MemoryStorage::new());
        let old = token("old", Duration::from_secs(60));
        let new = token("new", Duration::from_secs(60));
        storage.set("k", &new).await.unwrap();
        assert!(!storage.remove_if_same("k", &old).await.unwrap());
        assert!(storage.0.get("k").await.unwrap().is_some());
        assert!(storage.remove_if_same("k", &new).await.unwrap());
        assert!(storage.0.is_empty());
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_released_or_run_out() {
        let storage = MemoryStorage::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            storage.try_lease("k", "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        assert_eq!(
            storage.try_lease("k", "b", ttl).await.unwrap(),
            Lease::HeldElsewhere
        );
        assert_eq!(
            storage.try_lease("other", "b", ttl).await.unwrap(),
            Lease::Acquired
        );

        storage.release_lease("k", "b").await.unwrap();
        assert_eq!(
            storage.try_lease("k", "b", ttl).await.unwrap(),
            Lease::HeldElsewhere,
            "only the holder releases"
        );
        storage.release_lease("k", "a").await.unwrap();
        assert_eq!(
            storage.try_lease("k", "b", Duration::ZERO).await.unwrap(),
            Lease::Acquired
        );
        assert_eq!(
            storage.try_lease("k", "c", ttl).await.unwrap(),
            Lease::Acquired,
            "a lease that ran out is taken over"
        );
    }

    #[tokio::test]
    async fn a_cool_down_is_reported_until_it_ends() {
        let storage = MemoryStorage::new();
        let ttl = Duration::from_secs(60);
        let until = SystemTime::now() + Duration::from_secs(60);
        storage.cool_down("k", until).await.unwrap();
        assert_eq!(
            storage.try_lease("k", "a", ttl).await.unwrap(),
            Lease::CoolingDown(until)
        );
        assert_eq!(
            storage.try_lease("other", "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        storage.cool_down("k", SystemTime::now()).await.unwrap();
        assert_eq!(
            storage.try_lease("k", "a", ttl).await.unwrap(),
            Lease::Acquired
        );
    }

    #[tokio::test]
    async fn a_holder_renews_its_lease_and_outranks_a_cool_down() {
        let storage = MemoryStorage::new();
        let short = Duration::from_millis(1);
        assert_eq!(
            storage.try_lease("k", "a", short).await.unwrap(),
            Lease::Acquired
        );
        storage
            .cool_down("k", SystemTime::now() + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            storage
                .try_lease("k", "a", Duration::from_secs(60))
                .await
                .unwrap(),
            Lease::Acquired,
            "renewed before it ran out"
        );
        std::thread::sleep(short * 2);
        assert_eq!(
            storage.try_lease("k", "b", short).await.unwrap(),
            Lease::HeldElsewhere,
            "still held after the first ttl, and a holder outranks the cool-down"
        );
    }

    #[test]
    fn debug_shows_no_tokens() {
        let storage = MemoryStorage::new();
        let handle = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        handle
            .block_on(storage.set("k", &token("s3cr3t", Duration::from_secs(60))))
            .unwrap();
        let shown = format!("{storage:?}");
        assert_eq!(shown, "MemoryStorage { tokens: 1 }");
    }
}
