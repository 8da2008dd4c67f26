//! [`RedisStorage`]: tokens kept in Redis, one token for every process that points at it.

mod call;
mod connection;
mod scripts;
mod sentinel;
mod value;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::RedisError;
use redis::cluster::ClusterClient;
use redis::sentinel::SentinelClient;

use crate::error::{ConfigError, Error};
use crate::storage::redis::call::{RedisStorageError, within_timeout};
use crate::storage::redis::connection::{Backend, Connection, redis_url};
use crate::storage::redis::scripts::{
    RELEASE_LEASE_SCRIPT, REMOVE_IF_SAME_SCRIPT, TRY_LEASE_SCRIPT, px, read_lease,
};
use crate::storage::redis::value::{decode, encode};
use crate::storage::{Lease, StorageError, TokenStorage};
use crate::time::unix_millis;
use crate::token::Token;

/// Tokens kept in Redis: one token for every middleware, in every process, that points at the
/// same Redis with the same settings. Needs the cargo feature `redis`.
///
/// Each token is one Redis string under `{prefix}{{key}}` (prefix `alf:` by default; the storage
/// key in braces is a Redis Cluster hash tag, so that the token, its lease and its cool-down sit
/// in one slot) holding the
/// token's JSON form (see [`Token`]: access token, token type, absolute expiry in UNIX
/// seconds), written with a Redis TTL equal to the token's remaining lifetime, so Redis drops
/// dead tokens by itself. Whoever can read that Redis can use the tokens: protect it with a
/// password or ACL user, and TLS (`rediss://`) across a network.
///
/// ## Behavior
/// - **Lazy connection.** Nothing connects until the first call, which happens on the first
///   request that finds no fresh token in the middleware's in-process copy. Building a
///   `RedisStorage` never fails because Redis is down. Warm requests never touch Redis.
/// - **Reconnection.** On one node the connection is a `ConnectionManager`: when Redis goes
///   away, the call that notices fails, and the next call connects again. There is no
///   background retry loop. On a cluster ([`cluster`](Self::cluster)) it is redis-rs' cluster
///   connection, which follows `MOVED` and `ASK` and finds the slots anew after a failover.
///   Behind Sentinel ([`sentinel`](Self::sentinel)), a call that finds the master gone or
///   demoted fails, and the next one asks the sentinels for the new master.
/// - **Timeouts.** Every call, connecting included, gives up after
///   [`timeout`](Self::timeout) (500 ms by default), and never fails a request: the middleware
///   treats the failure as a miss, fetches a token from the token endpoint and keeps it
///   in-process. After one call times out, the middleware leaves Redis alone (no lease, no
///   write) for the rest of that fetch and for the fetches after it, until a read in the
///   background, once a second, gets an answer. So a hung Redis delays one token fetch by the
///   timeout, once, and the others not at all. Failures are logged at most once a minute per
///   middleware.
/// - **Corrupt data.** A value under the key that is not a token written by this crate
///   (another program's data, a truncated write, another Redis type) is reported as an error,
///   which the middleware treats as a miss; the next token it fetches replaces the value.
/// - **Invalidation.** After a 401, the key is deleted by a Lua script only if it still holds
///   the rejected token, atomically, so a fresh token another process has just stored survives.
/// - **Refresh lease.** Before calling the token endpoint, a middleware takes a lease under
///   `{prefix}{{key}}:lease` (`SET … PX`, in a script that first checks the cool-down), and
///   releases it with a compare-and-delete script once the new token is stored. The others
///   wait for that token instead of calling the endpoint too: one token call per refresh for
///   the whole fleet. A holder that dies leaves a lease that runs out after the middleware's
///   [`refresh_lease_ttl`](crate::ClientCredentialsBuilder::refresh_lease_ttl).
/// - **Rate-limit cool-down.** When the token endpoint answers 429 (or 503 with `Retry-After`),
///   the time it gave is kept under `{prefix}{{key}}:cooldown` (UNIX milliseconds, with a
///   matching TTL), and no middleware on this Redis calls the endpoint before then.
///
/// Clones share the connection.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use reqwest_alf::{ClientCredentials, RedisStorage};
///
/// let storage = RedisStorage::from_url("redis://:password@127.0.0.1:6379/0")?
///     .prefix("orders-service:")
///     .timeout(Duration::from_millis(200));
/// let auth = ClientCredentials::builder("https://tenant.eu.auth0.com/oauth/token", "id", "secret")
///     .storage(storage)
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisStorage {
    backend: Arc<Backend>,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisStorage {
    /// The key prefix unless [`prefix`](Self::prefix) says otherwise.
    pub const DEFAULT_PREFIX: &'static str = "alf:";

    /// How long one Redis call may take unless [`timeout`](Self::timeout) says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

    /// A storage on the Redis that `client` points at. Does not connect yet.
    pub fn new(client: redis::Client) -> Self {
        Self::on(Backend::node(client))
    }

    /// A storage on a Redis Cluster, found from any of its nodes (`redis://host:port`, or
    /// `host:port`): tokens, leases and cool-downs are shared by every middleware on the
    /// cluster, whichever node each was given. Does not connect yet.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] when there is no node, or one is not a Redis address.
    /// The message never repeats an address, which may hold a password.
    pub fn cluster<I>(nodes: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Ok(Self::on(Backend::cluster_of(nodes)?))
    }

    /// A storage on the Redis Cluster `client` points at, for full control of its settings
    /// (TLS, credentials, retries, read from replicas). Does not connect yet.
    pub fn from_cluster_client(client: ClusterClient) -> Self {
        Self::on(Backend::cluster(client, Vec::new()))
    }

    /// A storage on the Redis master that the Sentinels at `sentinels` (`host:port`, or
    /// `redis://[user:password@]host:port` when the sentinels need credentials) name
    /// `master_name`. The sentinels are asked on first use, and again after a call finds the
    /// master gone or demoted to a replica (`READONLY`): after a failover, the next call writes
    /// to the new master, without a restart. Does not connect yet.
    ///
    /// For a master that needs a password, TLS or a database other than 0, build the
    /// [`SentinelClient`] yourself and use [`from_sentinel_client`](Self::from_sentinel_client).
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] when there is no sentinel, one is not a Redis address,
    /// or `master_name` is empty. The message never repeats an address.
    ///
    /// # Example
    /// ```
    /// use reqwest_alf::RedisStorage;
    ///
    /// let storage = RedisStorage::sentinel(
    ///     ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"],
    ///     "tokens",
    /// )?;
    /// # Ok::<(), reqwest_alf::Error>(())
    /// ```
    pub fn sentinel<I>(sentinels: I, master_name: &str) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Ok(Self::on(Backend::sentinel_of(sentinels, master_name)?))
    }

    /// A storage on the master that `client` finds through Sentinel, for full control of
    /// the master's credentials, TLS and database (`SentinelNodeConnectionInfo`). `client`
    /// should ask for `SentinelServerType::Master`: tokens are written. Does not connect yet.
    pub fn from_sentinel_client(client: SentinelClient) -> Self {
        Self::on(Backend::sentinel(client, Vec::new(), String::new()))
    }

    fn on(backend: Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            prefix: Self::DEFAULT_PREFIX.into(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// A storage on the Redis at `url`: `redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS (certificates checked against the system's roots). Does not
    /// connect yet.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] when `url` is not a Redis URL. The message never
    /// repeats the URL, which may hold a password.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        redis::Client::open(redis_url(url)?)
            .map(Self::new)
            .map_err(|error| ConfigError::InvalidRedisUrl(error.to_string()).into())
    }

    /// Puts `prefix` in front of every key, to tell this crate's keys apart from others in a
    /// shared Redis (default `alf:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// How long one Redis call may take, connecting included, before it counts as failed
    /// (default 500 ms). A call that times out costs the fetch that made it this long, once:
    /// Redis is then left alone until it answers again, and no request fails for it. A zero
    /// timeout fails every call, which turns sharing off.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    // The storage key in braces is the keys' hash tag: a token, its lease and its cool-down
    // sit in one cluster slot, so that a script may touch more than one of them.
    fn redis_key(&self, key: &str) -> String {
        format!("{}{{{key}}}", self.prefix)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:lease", self.prefix)
    }

    fn cool_down_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:cooldown", self.prefix)
    }

    /// Runs one Redis call on the shared connection, within the timeout.
    async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StorageError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        within_timeout(&self.backend, self.timeout, operation, call).await
    }
}

#[async_trait]
impl TokenStorage for RedisStorage {
    async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> {
        let redis_key = self.redis_key(key);
        let value: Option<Vec<u8>> = self
            .call("GET", |mut connection| async move {
                redis::cmd("GET")
                    .arg(&redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        match value {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some).map_err(|reason| {
                RedisStorageError::CorruptValue {
                    key: self.redis_key(key),
                    reason,
                }
                .into()
            }),
        }
    }

    async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> {
        let Some((value, ttl)) = encode(token, SystemTime::now()) else {
            // Already expired: nothing worth sharing.
            return Ok(());
        };
        let redis_key = self.redis_key(key);
        let ttl_ms = px(ttl);
        self.call("SET", |mut connection| async move {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        let redis_key = self.redis_key(key);
        self.call("DEL", |mut connection| async move {
            redis::cmd("DEL")
                .arg(&redis_key)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    async fn remove_if_same(&self, key: &str, rejected: &Token) -> Result<bool, StorageError> {
        let redis_key = self.redis_key(key);
        let access_token = rejected.access_token().secret().to_owned();
        let removed: i64 = self
            .call("compare-and-delete script", |mut connection| async move {
                REMOVE_IF_SAME_SCRIPT
                    .key(&redis_key)
                    .arg(access_token)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(removed > 0)
    }

    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StorageError> {
        let (lease_key, cool_down_key) = (self.lease_key(key), self.cool_down_key(key));
        let ttl_ms = px(ttl);
        let answer: redis::Value = self
            .call("lease script", |mut connection| async move {
                TRY_LEASE_SCRIPT
                    .key(&lease_key)
                    .key(&cool_down_key)
                    .arg(holder)
                    .arg(ttl_ms)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        read_lease(&answer).ok_or_else(|| {
            RedisStorageError::CorruptValue {
                key: self.cool_down_key(key),
                reason: "not a time in UNIX milliseconds",
            }
            .into()
        })
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StorageError> {
        let lease_key = self.lease_key(key);
        self.call("lease release script", |mut connection| async move {
            RELEASE_LEASE_SCRIPT
                .key(&lease_key)
                .arg(holder)
                .invoke_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    async fn cool_down(&self, key: &str, until: SystemTime) -> Result<(), StorageError> {
        let Ok(remaining) = until.duration_since(SystemTime::now()) else {
            return Ok(());
        };
        let cool_down_key = self.cool_down_key(key);
        let ttl_ms = px(remaining);
        self.call("SET", |mut connection| async move {
            redis::cmd("SET")
                .arg(&cool_down_key)
                .arg(unix_millis(until))
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }
}

impl fmt::Debug for RedisStorage {
    /// Where the Redis is, never who logs in to it or with what password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = f.debug_struct("RedisStorage");
        self.backend.describe(&mut shown);
        shown
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_its_lease_and_its_cool_down_share_one_hash_tag() {
        let storage = RedisStorage::from_url("redis://127.0.0.1")
            .unwrap()
            .prefix("svc:");
        assert_eq!(storage.redis_key("h:1"), "svc:{h:1}");
        assert_eq!(storage.lease_key("h:1"), "svc:{h:1}:lease");
        assert_eq!(storage.cool_down_key("h:1"), "svc:{h:1}:cooldown");
    }

    #[test]
    fn url_errors_never_repeat_the_url() {
        for url in [
            "redis://user:pa55word@[::1:6379",
            "redis://user:pa55word@host:99999",
            "http://user:pa55word@host",
            "pa55word",
            "redis:///pa55word",
        ] {
            let error = RedisStorage::from_url(url).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("Redis URL"), "{shown}");
            assert!(!shown.contains("pa55word"), "{shown}");
        }
    }

    #[test]
    fn urls_with_credentials_db_and_tls_are_accepted_and_debug_hides_the_password() {
        let storage = RedisStorage::from_url("rediss://alf-user:pa55word@redis.example:6380/3")
            .unwrap()
            .prefix("svc:");
        let shown = format!("{storage:?}");
        assert!(shown.contains("redis.example:6380"), "{shown}");
        assert!(shown.contains("db: 3"), "{shown}");
        assert!(shown.contains("tls: true"), "{shown}");
        assert!(shown.contains("svc:"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
        let Backend::Node { client, .. } = &*storage.backend else {
            panic!("one node")
        };
        let settings = client.get_connection_info().redis_settings().clone();
        assert_eq!(settings.username(), Some("alf-user"));
        assert_eq!(settings.password(), Some("pa55word"));
        assert_eq!(storage.redis_key("k"), "svc:{k}");
    }

    #[test]
    fn a_cluster_needs_nodes_that_are_redis_addresses_and_hides_their_passwords() {
        assert!(RedisStorage::cluster(Vec::<String>::new()).is_err());
        for bad in ["http://127.0.0.1:7000", "redis://[::1:7000"] {
            let error = RedisStorage::cluster([bad]).unwrap_err().to_string();
            assert!(error.contains("Redis URL"), "{bad}: {error}");
        }
        let storage =
            RedisStorage::cluster(["127.0.0.1:7000", "redis://:pa55word@10.0.0.2:7001", "h"])
                .unwrap();
        let shown = format!("{storage:?}");
        assert!(shown.contains("127.0.0.1:7000"), "{shown}");
        assert!(shown.contains("10.0.0.2:7001"), "{shown}");
        assert!(shown.contains("h:6379"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
    }

    #[test]
    fn plain_urls_are_not_tls() {
        let storage = RedisStorage::from_url("redis://127.0.0.1:6379").unwrap();
        assert!(format!("{storage:?}").contains("tls: false"));
        assert_eq!(storage.redis_key("k"), "alf:{k}");
    }
}
