//! Where tokens are kept between requests, and between processes.
//!
//! [`TokenStorage`] is the extension point: implement it to keep tokens in any shared store.
//! [`MemoryStorage`] keeps them in this process; `RedisStorage` (feature `redis`) in Redis.
//! The middleware keeps an in-process copy of the current token in front of the storage, so a
//! storage is read only when that copy is missing or stale, not on every request.

mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::token::Token;

#[cfg(feature = "redis")]
pub use self::redis::RedisStorage;
pub(crate) use key::{KeyParts, StorageKey};
pub use memory::MemoryStorage;

/// The error a storage backend reports: any error type will do, so that backends need none of
/// this crate's types.
pub type StorageError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A place to keep tokens by key, shared by every middleware that is given it.
///
/// Keys are opaque strings derived from the token endpoint, client id, audience, scope and extra
/// parameters (never the secret); the same settings give the same key in every process.
///
/// Three methods are required: [`get`](TokenStorage::get), [`set`](TokenStorage::set) and
/// [`remove`](TokenStorage::remove). The others are optional capabilities with defaults:
/// - [`try_lease`](TokenStorage::try_lease) and [`release_lease`](TokenStorage::release_lease):
///   a refresh lease, so that of all the middlewares sharing the storage only one calls the
///   token endpoint at a time while the others wait for its token. The default has no leases:
///   each middleware then fetches for itself when it finds no fresh token.
/// - [`cool_down`](TokenStorage::cool_down): a shared "do not call the token endpoint before
///   T", reported back by `try_lease`, after the endpoint said it is rate limiting the client.
///   The default keeps none; each middleware still keeps its own.
///
/// Failures degrade, never break: an error from [`get`](TokenStorage::get) is treated as a
/// miss, an error from [`set`](TokenStorage::set) or a removal is logged, and the request still
/// gets its token. A value that cannot be read back should be reported as a miss (`Ok(None)`)
/// or an error, never a panic.
///
/// A storage that did not answer in time should say so with an error that has a
/// [`std::io::Error`] of kind [`TimedOut`](std::io::ErrorKind::TimedOut) in its chain of
/// sources (or is one). The middleware then leaves the storage alone, for the rest of that
/// fetch and the fetches after it, until a [`get`](TokenStorage::get) in the background (once a
/// second) gets an answer: a hung storage costs one fetch one timeout, not one per call.
///
/// # Example
/// A storage that keeps tokens in a `Mutex<HashMap>` (what [`MemoryStorage`] does):
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use reqwest_alf::{StorageError, Token, TokenStorage};
///
/// #[derive(Default)]
/// struct MapStorage(Mutex<HashMap<String, Token>>);
///
/// #[async_trait::async_trait]
/// impl TokenStorage for MapStorage {
///     async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
///         self.0.lock().unwrap().insert(key.to_owned(), token.clone());
///         Ok(())
///     }
///     async fn remove(&self, key: &str) -> Result<(), StorageError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let auth = reqwest_alf::ClientCredentials::builder("https://a.example/token", "id", "secret")
///     .storage(MapStorage::default())
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[async_trait]
pub trait TokenStorage: Send + Sync + 'static {
    /// The token kept under `key`, if any. Expired tokens may be returned: the caller judges
    /// freshness.
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError>;

    /// Keeps `token` under `key`, replacing what was there. A backend may drop the token once
    /// it has expired ([`Token::expires_at`]).
    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError>;

    /// Removes whatever is kept under `key`.
    async fn remove(&self, key: &str) -> Result<(), StorageError>;

    /// Removes the token under `key` only if it is still `rejected` (same access token), and
    /// says whether it did. Called after the API answered 401 to `rejected`, so that a token
    /// another instance has just stored in its place survives.
    ///
    /// The default reads, compares and removes in three steps: between the read and the removal
    /// another instance may store a fresh token, which is then removed, and the next request
    /// fetches one more token than needed. Nothing worse follows. Backends that can compare and
    /// delete atomically (a Redis script, a SQL `DELETE … WHERE token = $1`) should override it.
    async fn remove_if_same(&self, key: &str, rejected: &Token) -> Result<bool, StorageError> {
        match self.get(key).await? {
            Some(kept) if kept.access_token() == rejected.access_token() => {
                self.remove(key).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Takes the refresh lease on `key` for `holder` (a random id, new for each fetch) for at
    /// most `ttl`, unless another holder has it or a cool-down is in force. For the holder
    /// that has it already, it renews the lease for `ttl` from now: a holder waiting a short
    /// rate limit out keeps its lease until after the wait.
    ///
    /// The checks come in this order: a lease held by another holder is
    /// [`Lease::HeldElsewhere`] (it may be waiting a rate limit out, and its token is worth
    /// waiting for); with no holder, a cool-down in force is [`Lease::CoolingDown`].
    ///
    /// The middleware calls it after finding no fresh token under `key`, before calling the
    /// token endpoint. On [`Lease::Acquired`] it fetches, [`set`](TokenStorage::set)s the
    /// token, then [`release_lease`](TokenStorage::release_lease)s; on
    /// [`Lease::HeldElsewhere`] it waits for a fresh token to appear under `key`, asking again
    /// now and then, so that a holder that died is replaced once its lease has run out.
    ///
    /// Taking the lease and reading the cool-down should be one atomic step (Redis: a script
    /// that checks the holder and the cool-down, then `SET lease holder PX ttl`). The lease must expire by itself
    /// after `ttl`: nothing else frees the lease of a holder that died.
    ///
    /// The default answers [`Lease::Unsupported`]: no lease, each middleware fetches for itself.
    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StorageError> {
        let _ = (key, holder, ttl);
        Ok(Lease::Unsupported)
    }

    /// Gives up the refresh lease on `key`, if `holder` still holds it (compare and delete: a
    /// lease that ran out and was taken by another holder is left alone). The default does
    /// nothing.
    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StorageError> {
        let _ = (key, holder);
        Ok(())
    }

    /// Records that the token endpoint must not be called for `key` before `until` (it answered
    /// 429, or 503 with `Retry-After`, or an Auth0 token quota is spent: up to a day ahead);
    /// [`try_lease`](TokenStorage::try_lease) reports it as [`Lease::CoolingDown`] until then.
    /// The default keeps nothing.
    async fn cool_down(&self, key: &str, until: SystemTime) -> Result<(), StorageError> {
        let _ = (key, until);
        Ok(())
    }
}

/// The answer of [`TokenStorage::try_lease`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// The caller holds the lease: it calls the token endpoint, stores the token, and releases
    /// the lease.
    Acquired,
    /// Another holder has the lease and is fetching: wait for its token to appear.
    HeldElsewhere,
    /// The token endpoint is not to be called before this time.
    CoolingDown(SystemTime),
    /// The storage keeps no leases: the caller fetches without one.
    Unsupported,
}

#[async_trait]
impl<S: TokenStorage + ?Sized> TokenStorage for Arc<S> {
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
        (**self).get(key).await
    }

    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        (**self).set(key, token).await
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        (**self).remove(key).await
    }

    async fn remove_if_same(&self, key: &str, rejected: &Token) -> Result<bool, StorageError> {
        (**self).remove_if_same(key, rejected).await
    }

    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StorageError> {
        (**self).try_lease(key, holder, ttl).await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StorageError> {
        (**self).release_lease(key, holder).await
    }

    async fn cool_down(&self, key: &str, until: SystemTime) -> Result<(), StorageError> {
        (**self).cool_down(key, until).await
    }
}
