//! `RedisStorage` behind a real Redis Sentinel set-up (a master, a replica, three sentinels,
//! started by the test): one token for a fleet, and sharing that survives a failover.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use httpmock::MockServer;
use reqwest_alf::{AccessToken, ClientCredentials, RedisStorage, Token, TokenStorage};
use tokio::sync::Barrier;

use crate::support::failover::Load;
use crate::support::redis_sentinel::{MASTER_NAME, RedisSentinels};
use crate::support::topology::{self, Topology};
use crate::support::{self, Counter};

fn storage(sentinels: &RedisSentinels) -> RedisStorage {
    RedisStorage::sentinel(sentinels.sentinels(), MASTER_NAME).unwrap()
}

fn instance(auth: &MockServer, sentinels: &RedisSentinels) -> ClientCredentials {
    support::builder(auth)
        .storage(storage(sentinels))
        .build()
        .unwrap()
}

async fn servers() -> (RedisSentinels, MockServer, MockServer, Counter) {
    let sentinels = RedisSentinels::start().await;
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) =
        support::numbered_tokens_after(&auth, Some(3600), Duration::from_millis(300)).await;
    support::api_counting_all(&api).await;
    (sentinels, auth, api, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_behind_sentinel_make_one_token_call() {
    let (sentinels, auth, api, calls) = servers().await;
    // Sixteen storages asking the sentinels for the master and connecting to it all at once
    // can take longer than the default timeout on a loaded two-core machine; a storage that
    // times out fetches on its own, as it should. What is tested here is the sharing, so each
    // first call gets the time to connect.
    let fleet: Vec<_> = (0..16)
        .map(|_| {
            support::builder(&auth)
                .storage(storage(&sentinels).timeout(Duration::from_secs(3)))
                .build()
                .unwrap()
        })
        .collect();
    let start = Arc::new(Barrier::new(fleet.len()));

    let statuses = join_all(fleet.iter().map(|instance| {
        let (start, api) = (start.clone(), &api);
        async move {
            start.wait().await;
            support::fruits_status(instance, api).await
        }
    }))
    .await;

    assert_eq!(statuses, vec![200; 16]);
    assert_eq!(calls.get(), 1);
    assert_eq!(
        fleet.iter().map(|i| i.stats().storage_errors).sum::<u64>(),
        0
    );
    assert_eq!(fleet.iter().map(|i| i.stats().shared_hits).sum::<u64>(), 15);
    assert_eq!(topology::scan(&sentinels.master_url()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_mid_load_fails_no_request_and_sharing_resumes_on_the_new_master() {
    let (mut sentinels, auth, api, calls) = servers().await;
    assert_eq!(
        support::fruits_status(&instance(&auth, &sentinels), &api).await,
        200
    );
    let [key] = <[String; 1]>::try_from(topology::scan(&sentinels.master_url())).unwrap();
    sentinels.wait_until_replicated(&key).await;
    // A storage that has talked to the first master, kept across the failover.
    let kept = storage(&sentinels);
    assert!(kept.get(&key_of(&key)).await.unwrap().is_some());

    let load = {
        let addresses = sentinels.sentinels();
        Load::start(
            auth.url(support::TOKEN_PATH),
            api.url("/fruits"),
            move || RedisStorage::sentinel(&addresses, MASTER_NAME).unwrap(),
        )
    };
    load.goes_on_for(8).await;
    sentinels.kill_master();
    sentinels.wait_for_failover().await;
    load.goes_on_for(8).await;
    let statuses = load.stop().await;

    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    // A new instance reads the token from the new master.
    let before = calls.get();
    let newcomer = instance(&auth, &sentinels);
    assert_eq!(support::fruits_status(&newcomer, &api).await, 200);
    assert_eq!(calls.get(), before, "no token call: the token was shared");
    assert_eq!(newcomer.stats().shared_hits, 1);
    // The kept storage writes to the new master without a restart: the call that finds the old
    // master gone fails, and the next one asks the sentinels.
    let now = SystemTime::now();
    let token = Token::new(
        AccessToken::new("after-failover"),
        now,
        now + Duration::from_secs(600),
    );
    let mut failures = 0;
    while kept.set("written-after", &token).await.is_err() {
        failures += 1;
        assert!(failures < 3, "the kept storage never found the new master");
    }
    assert!(topology::scan(&sentinels.replica_url()).contains(&"alf:{written-after}".to_owned()));
}

#[test]
fn a_sentinel_storage_needs_sentinels_and_a_master_name_and_hides_passwords() {
    assert!(RedisStorage::sentinel(Vec::<String>::new(), "tokens").is_err());
    assert!(RedisStorage::sentinel(["127.0.0.1:26379"], " ").is_err());
    assert!(RedisStorage::sentinel(["http://127.0.0.1:26379"], "tokens").is_err());
    let storage = RedisStorage::sentinel(
        ["127.0.0.1:26379", "redis://:pa55word@10.0.0.2:26380"],
        "tokens",
    )
    .unwrap();
    let shown = format!("{storage:?}");
    assert!(shown.contains("10.0.0.2:26380"), "{shown}");
    assert!(shown.contains("master_name: \"tokens\""), "{shown}");
    assert!(!shown.contains("pa55word"), "{shown}");
}

/// The storage key inside a Redis key `alf:{<storage key>}`.
fn key_of(redis_key: &str) -> String {
    redis_key
        .strip_prefix("alf:{")
        .and_then(|key| key.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a token key: {redis_key}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_401_damaged_data_and_a_rate_limit_behave_as_on_one_node() {
    let sentinels = RedisSentinels::start().await;
    let master = sentinels.master_url();
    topology::single_node_guarantees_hold(Topology {
        storage: &|| storage(&sentinels),
        cli: &|_| vec!["-u".into(), master.clone()],
        keys: &|| topology::scan(&master),
    })
    .await;
}
