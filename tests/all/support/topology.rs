//! What one Redis node promises, checked again on another topology (a cluster, Sentinel): a
//! 401 deletes only the token it was sent with, damaged data is a miss, a rate limit cools
//! every instance down.

use std::process::Command;
use std::time::Duration;

use httpmock::MockServer;
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{ClientCredentials, Error, RedisStorage};

use crate::support::{self, TOKEN_PATH};

/// How the test reaches the topology behind the crate's back.
pub struct Topology<'a> {
    /// A new storage, with its own connection, as another process would make.
    pub storage: &'a dyn Fn() -> RedisStorage,
    /// `redis-cli` arguments that reach the key given last (`-c -p port` on a cluster).
    pub cli: &'a dyn Fn(&str) -> Vec<String>,
    /// Every key on the topology.
    pub keys: &'a dyn Fn() -> Vec<String>,
}

impl Topology<'_> {
    /// An instance asking for tokens for `audience`: each check has its own, hence its own
    /// keys, as mock servers come back on the ports of earlier ones.
    fn instance(&self, auth: &MockServer, audience: &str) -> ClientCredentials {
        support::builder(auth)
            .storage((self.storage)())
            .audience(audience)
            .build()
            .unwrap()
    }

    /// `SET key value` through `redis-cli`.
    fn set_raw(&self, key: &str, value: &str) {
        let mut args = (self.cli)(key);
        args.extend(["set".into(), key.into(), value.into()]);
        let out = Command::new("redis-cli").args(&args).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "OK",
            "{args:?}"
        );
    }

    /// The token keys (`alf:{…}`) on the topology.
    fn token_keys(&self) -> Vec<String> {
        (self.keys)()
            .into_iter()
            .filter(|key| key.ends_with('}'))
            .collect()
    }
}

/// Checks the three promises in turn, each with instances of their own connection.
pub async fn single_node_guarantees_hold(topology: Topology<'_>) {
    a_late_401_keeps_the_token_another_instance_stored(&topology).await;
    damaged_data_is_a_miss_then_overwritten(&topology).await;
    a_rate_limit_cools_every_instance_down(&topology).await;
}

async fn a_late_401_keeps_the_token_another_instance_stored(topology: &Topology<'_>) {
    const AUDIENCE: &str = "https://late-401.example";
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    support::api_rejecting(&api, "token-1").await;
    support::api_accepting(&api, "token-2").await;
    let (a, b) = (
        topology.instance(&auth, AUDIENCE),
        topology.instance(&auth, AUDIENCE),
    );
    assert_eq!(a.token().await.unwrap().access_token().secret(), "token-1");
    assert_eq!(b.token().await.unwrap().access_token().secret(), "token-1");

    // B meets the revocation first and stores token-2 in token-1's place; A's 401 comes later
    // and must not delete token-2 (the compare-and-delete script), and A picks token-2 up.
    assert_eq!(support::fruits_status(&b, &api).await, 200);
    assert_eq!(support::fruits_status(&a, &api).await, 200);

    assert_eq!(calls.get(), 2);
    let newcomer = topology.instance(&auth, AUDIENCE);
    assert_eq!(
        newcomer.token().await.unwrap().access_token().secret(),
        "token-2"
    );
    assert_eq!(calls.get(), 2, "token-2 is still shared");
    assert_eq!(a.stats().storage_errors + b.stats().storage_errors, 0);
}

async fn damaged_data_is_a_miss_then_overwritten(topology: &Topology<'_>) {
    const AUDIENCE: &str = "https://damaged.example";
    let auth = MockServer::start_async().await;
    let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    let before = topology.token_keys();
    topology.instance(&auth, AUDIENCE).token().await.unwrap();
    let new: Vec<String> = topology
        .token_keys()
        .into_iter()
        .filter(|key| !before.contains(key))
        .collect();
    let [key] = new.as_slice() else {
        panic!("one new token key, not {new:?}");
    };

    topology.set_raw(key, r#"{"access_token":"token-1","token_type":"Bea"#);
    let damaged = topology.instance(&auth, AUDIENCE);
    assert_eq!(
        damaged.token().await.unwrap().access_token().secret(),
        "token-2"
    );

    let after = topology.instance(&auth, AUDIENCE);
    assert_eq!(
        after.token().await.unwrap().access_token().secret(),
        "token-2",
        "the damaged value was overwritten"
    );
    assert_eq!(calls.get(), 2);
}

async fn a_rate_limit_cools_every_instance_down(topology: &Topology<'_>) {
    const AUDIENCE: &str = "https://rate-limited.example";
    let auth = MockServer::start_async().await;
    let limited = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(429)
                .header("content-type", "application/json")
                .header("retry-after", "120")
                .body(r#"{"error":"too_many_requests"}"#);
        })
        .await;
    // Retries capped at 30 s: a `Retry-After` of 120 is not waited out, and the cool-down
    // lasts the 30 s, longer than the test.
    let patient_enough = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_secs(30))
        .build_with_max_retries(2);
    let instance = || {
        support::builder(&auth)
            .storage((topology.storage)())
            .audience(AUDIENCE)
            .token_retry(patient_enough)
            .build()
            .unwrap()
    };
    let first = instance().token().await.unwrap_err();
    assert!(matches!(first, Error::RateLimited { .. }), "{first}");

    // Another process, which never met the 429, learns of it from the storage.
    let other = instance();
    let second = other.token().await.unwrap_err();
    assert!(matches!(second, Error::RateLimited { .. }), "{second}");
    limited.assert_calls_async(1).await;
    assert!(
        (topology.keys)()
            .iter()
            .any(|key| key.ends_with(":cooldown")),
        "the cool-down is kept in the storage"
    );
    assert_eq!(other.stats().storage_errors, 0);
}

/// Every key of the Redis at `url`, through `redis-cli --scan`.
pub fn scan(url: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-u", url, "--scan"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
