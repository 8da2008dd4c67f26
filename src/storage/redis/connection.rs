//! The way to Redis: one node, a cluster, or Sentinel's master, behind one type.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::OnceCell;

use crate::error::ConfigError;
use crate::storage::redis::sentinel::{MasterConnection, SentinelBackend};

/// Where the storage's Redis is, and its connection once made.
pub(super) enum Backend {
    /// One Redis (or a proxy in front of several).
    Node {
        client: redis::Client,
        connection: OnceCell<ConnectionManager>,
    },
    /// A Redis Cluster, found from its seed nodes; its connection follows `MOVED` and `ASK`
    /// and reconnects by itself.
    Cluster {
        // Boxed: a cluster client is several times the size of a node's.
        client: Box<ClusterClient>,
        /// The seed nodes, for `Debug` (addresses only, never credentials).
        seeds: Vec<String>,
        connection: OnceCell<ClusterConnection>,
    },
    /// The master that a set of Redis Sentinels name, asked again after a failover.
    Sentinel(Box<SentinelBackend>),
}

/// A connection of either kind, for the commands and scripts the storage sends.
#[derive(Clone)]
pub(super) enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MasterConnection),
}

impl Backend {
    pub(super) fn node(client: redis::Client) -> Self {
        Backend::Node {
            client,
            connection: OnceCell::new(),
        }
    }

    /// A cluster found from `nodes` (`host:port`, or Redis URLs with credentials).
    pub(super) fn cluster_of<I>(nodes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let (urls, seeds) = addresses(nodes, "no cluster node was given")?;
        ClusterClient::new(urls)
            .map(|client| Self::cluster(client, seeds))
            .map_err(|error| ConfigError::InvalidRedisUrl(error.to_string()))
    }

    /// The master named `master_name` by the sentinels at `sentinels` (`host:port`, or Redis
    /// URLs with the sentinels' credentials).
    pub(super) fn sentinel_of<I>(sentinels: I, master_name: &str) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let (urls, addresses) = addresses(sentinels, "no sentinel was given")?;
        if master_name.trim().is_empty() {
            return Err(ConfigError::InvalidRedisUrl(
                "the Sentinel master name is empty".into(),
            ));
        }
        SentinelClient::build(urls, master_name, None, SentinelServerType::Master)
            .map(|client| Self::sentinel(client, addresses, master_name.to_owned()))
            .map_err(|error| ConfigError::InvalidRedisUrl(error.to_string()))
    }

    pub(super) fn sentinel(
        client: SentinelClient,
        addresses: Vec<String>,
        master_name: String,
    ) -> Self {
        Backend::Sentinel(Box::new(SentinelBackend::new(
            client,
            addresses,
            master_name,
        )))
    }

    pub(super) fn cluster(client: ClusterClient, seeds: Vec<String>) -> Self {
        Backend::Cluster {
            client: Box::new(client),
            seeds,
            connection: OnceCell::new(),
        }
    }

    /// The connection, made on first use (it needs a Tokio runtime, which the first call has
    /// and the constructor may not), with `timeout` for connecting and for each answer.
    pub(super) async fn connection(&self, timeout: Duration) -> Result<Connection, RedisError> {
        match self {
            Backend::Node { client, connection } => connection
                .get_or_try_init(|| async {
                    // No retries inside the manager: a call that finds Redis gone fails at
                    // once, and the next call reconnects. The middleware copes with the failure.
                    let config = ConnectionManagerConfig::new()
                        .set_number_of_retries(0)
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout));
                    ConnectionManager::new_lazy_with_config(client.clone(), config)
                })
                .await
                .cloned()
                .map(Connection::Node),
            Backend::Cluster {
                client, connection, ..
            } => connection
                .get_or_try_init(|| client.get_async_connection())
                .await
                .cloned()
                .map(Connection::Cluster),
            Backend::Sentinel(sentinel) => {
                sentinel.connection(timeout).await.map(Connection::Sentinel)
            }
        }
    }

    /// Called when a call got no answer in time: a master behind Sentinel may be gone.
    pub(super) fn no_answer(&self) {
        if let Backend::Sentinel(sentinel) = self {
            sentinel.forget();
        }
    }

    /// Where the Redis is, for `Debug`: never who logs in to it or with what password.
    pub(super) fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Backend::Node { client, .. } => {
                let info = client.get_connection_info();
                let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
                f.field("address", &info.addr().to_string())
                    .field("db", &info.redis_settings().db())
                    .field("tls", &tls);
            }
            Backend::Cluster { seeds, .. } => {
                f.field("cluster_seeds", seeds);
            }
            Backend::Sentinel(sentinel) => {
                f.field("sentinels", &sentinel.addresses)
                    .field("master_name", &sentinel.master_name);
            }
        }
    }
}

/// Redis URLs for `nodes` (`host:port`, or URLs), and their hosts and ports alone for `Debug`,
/// since the URLs may hold passwords. `none` is the error when there are no nodes.
fn addresses<I>(nodes: I, none: &str) -> Result<(Vec<String>, Vec<String>), ConfigError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let urls = nodes
        .into_iter()
        .map(|node| {
            let node = node.as_ref().trim();
            if node.contains("://") {
                redis_url(node)
            } else {
                redis_url(&format!("redis://{node}"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(ConfigError::InvalidRedisUrl(none.into()));
    }
    let shown = urls
        .iter()
        .map(|url| {
            format!(
                "{}:{}",
                url.host_str().unwrap_or("?"),
                url.port().unwrap_or(6379)
            )
        })
        .collect();
    Ok((urls.into_iter().map(String::from).collect(), shown))
}

/// `url`, parsed, when it is a Redis URL (`redis`, `rediss`, `valkey`, `valkeys`). The error
/// never repeats the URL, which may hold a password.
pub(super) fn redis_url(url: &str) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(url).map_err(|error| {
        ConfigError::InvalidRedisUrl(format!(
            "{error}; expected redis://host:port, redis://user:password@host:port/db or \
             rediss://… (TLS)"
        ))
    })?;
    if !matches!(parsed.scheme(), "redis" | "rediss" | "valkey" | "valkeys") {
        return Err(ConfigError::InvalidRedisUrl(format!(
            "the scheme is {:?}; use redis:// or rediss:// (TLS)",
            parsed.scheme()
        )));
    }
    Ok(parsed)
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(connection) => connection.req_packed_command(cmd),
            Connection::Sentinel(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Sentinel(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
            Connection::Sentinel(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_is_not_one_says_what_was_expected_and_never_repeats_itself() {
        for typo in [
            "127.0.0.1:6379",
            "",
            "redis://:s3cret@[::1",
            "redis://:s3cret@host:99999",
        ] {
            let message = redis_url(typo).unwrap_err().to_string();
            assert!(
                message.contains("expected redis://host:port"),
                "{typo:?}: {message}"
            );
            assert!(!message.contains("s3cret"), "{typo:?}: {message}");
        }
        let message = redis_url("localhost:6379").unwrap_err().to_string();
        assert!(message.contains("use redis://"), "{message}");
        assert!(redis_url("rediss://:s3cret@cache.example:6380/2").is_ok());
    }
}
