//! The default storage: a map in this process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{StorageError, TokenStorage};
use crate::token::Token;

/// Tokens kept in this process's memory: the default storage.
///
/// Clones share the same map, so middlewares given clones of one `MemoryStorage` share their
/// tokens. Expired tokens are dropped when next read.
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
    tokens: Arc<Mutex<HashMap<String, Token>>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tokens are kept, expired ones included until they are next read.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        // A panic elsewhere while holding the lock cannot leave the map half-written: every
        // critical section is a single insert, remove or lookup.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut tokens = self.lock();
        if tokens
            .get(key)
            .is_some_and(|token| token.is_expired_at(SystemTime::now()))
        {
            tokens.remove(key);
        }
        Ok(tokens.get(key).cloned())
    }

    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        self.lock().insert(key.to_owned(), token.clone());
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn remove_if_same(&self, key: &str, rejected: &Token) -> Result<bool, StorageError> {
        let mut tokens = self.lock();
        let same = tokens
            .get(key)
            .is_some_and(|kept| kept.access_token() == rejected.access_token());
        if same {
            tokens.remove(key);
        }
        Ok(same)
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
