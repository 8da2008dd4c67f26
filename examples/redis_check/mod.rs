//! Which Redis an example is pointed at, and whether it answers before the example relies on it.
//!
//! `REDIS_CLUSTER_NODES` (comma-separated `host:port`) points at a Redis Cluster;
//! `REDIS_SENTINELS` (comma-separated `host:port`) with `REDIS_MASTER_NAME` at the master a
//! set of Redis Sentinels names; otherwise `REDIS_URL` (default `redis://127.0.0.1:6379`) at one
//! Redis.

use std::time::Duration;

use reqwest_alf::RedisStorage;

/// A Redis, a Redis Cluster, or a master behind Sentinel, from the environment.
pub enum RedisTarget {
    Node(String),
    Cluster(Vec<String>),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

/// The comma-separated list in the environment variable `name`, if it is set and not empty.
fn list(name: &str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    let items: Vec<String> = value
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

impl RedisTarget {
    pub fn from_env() -> Self {
        if let Some(nodes) = list("REDIS_CLUSTER_NODES") {
            return RedisTarget::Cluster(nodes);
        }
        if let Some(sentinels) = list("REDIS_SENTINELS") {
            let master = std::env::var("REDIS_MASTER_NAME").unwrap_or_else(|_| "mymaster".into());
            return RedisTarget::Sentinel { sentinels, master };
        }
        RedisTarget::Node(
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        )
    }

    /// A storage of its own on the target, as a separate process would have.
    pub fn storage(&self) -> Result<RedisStorage, reqwest_alf::Error> {
        match self {
            RedisTarget::Node(url) => RedisStorage::from_url(url),
            RedisTarget::Cluster(nodes) => RedisStorage::cluster(nodes),
            RedisTarget::Sentinel { sentinels, master } => {
                RedisStorage::sentinel(sentinels, master)
            }
        }
    }

    /// The environment variable that named the target, for messages.
    pub fn variable(&self) -> &'static str {
        match self {
            RedisTarget::Node(_) => "REDIS_URL",
            RedisTarget::Cluster(_) => "REDIS_CLUSTER_NODES",
            RedisTarget::Sentinel { .. } => "REDIS_SENTINELS",
        }
    }

    /// Whether the target's (first) node, or sentinel, answers `PING` within two seconds.
    pub async fn answers(&self) -> Result<(), String> {
        let url = match self {
            RedisTarget::Node(url) => url.clone(),
            RedisTarget::Cluster(nodes)
            | RedisTarget::Sentinel {
                sentinels: nodes, ..
            } => match nodes.first() {
                Some(node) if node.contains("://") => node.clone(),
                Some(node) => format!("redis://{node}"),
                None => return Err("no node".to_owned()),
            },
        };
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let ping = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    }
}
