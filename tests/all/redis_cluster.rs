//! `RedisStorage` on a real Redis Cluster (three masters, three replicas, started by the test):
//! instances pointed at different nodes share one token, lease and cool-down, whatever slot
//! their keys hash to.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use httpmock::MockServer;
use reqwest_alf::{ClientCredentials, RedisStorage};
use tokio::sync::Barrier;

use crate::support::failover::Load;
use crate::support::redis_cluster::RedisCluster;
use crate::support::topology::{self, Topology};
use crate::support::{self, Counter};

/// An instance whose only seed is node `n` of the cluster, as a process configured with one
/// node's address would be, asking for a token for `audience`.
fn instance(
    auth: &MockServer,
    cluster: &RedisCluster,
    n: usize,
    audience: &str,
) -> ClientCredentials {
    let seeds = cluster.seeds();
    let storage = RedisStorage::cluster([&seeds[n % seeds.len()]]).unwrap();
    support::builder(auth)
        .storage(storage)
        .audience(audience)
        .build()
        .unwrap()
}

/// Every instance sends one request at the same moment; the statuses.
async fn all_at_once(fleet: &[ClientCredentials], api: &MockServer) -> Vec<u16> {
    let start = Arc::new(Barrier::new(fleet.len()));
    join_all(fleet.iter().map(|instance| {
        let (client, start, url) = (
            support::client(instance.clone()),
            start.clone(),
            api.url("/fruits"),
        );
        async move {
            start.wait().await;
            client.get(url).send().await.unwrap().status().as_u16()
        }
    }))
    .await
}

async fn servers() -> (RedisCluster, MockServer, MockServer, Counter) {
    let cluster = RedisCluster::start().await;
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) =
        support::numbered_tokens_after(&auth, Some(3600), Duration::from_millis(300)).await;
    support::api_counting_all(&api).await;
    (cluster, auth, api, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_on_six_nodes_make_one_token_call() {
    let (cluster, auth, api, calls) = servers().await;
    let fleet: Vec<_> = (0..16)
        .map(|n| instance(&auth, &cluster, n, "https://fruits.example"))
        .collect();

    assert_eq!(all_at_once(&fleet, &api).await, vec![200; 16]);

    assert_eq!(calls.get(), 1);
    let errors: u64 = fleet.iter().map(|i| i.stats().storage_errors).sum();
    assert_eq!(errors, 0, "no MOVED or CROSSSLOT left unfollowed");
    assert_eq!(fleet.iter().map(|i| i.stats().shared_hits).sum::<u64>(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_on_many_slots_are_each_shared_and_keep_their_lease_and_cool_down_together() {
    let (cluster, auth, api, calls) = servers().await;
    let audiences: Vec<String> = (0..6).map(|n| format!("https://api-{n}.example")).collect();
    let fleet: Vec<_> = audiences
        .iter()
        .flat_map(|audience| (0..3).map(move |n| (n, audience)))
        .enumerate()
        .map(|(i, (_, audience))| instance(&auth, &cluster, i, audience))
        .collect();

    assert_eq!(all_at_once(&fleet, &api).await, vec![200; 18]);

    assert_eq!(calls.get(), 6, "one token call per audience");
    let errors: u64 = fleet.iter().map(|i| i.stats().storage_errors).sum();
    assert_eq!(errors, 0);
    let tokens: Vec<String> = cluster
        .keys()
        .into_iter()
        .filter(|key| key.ends_with('}'))
        .collect();
    assert_eq!(tokens.len(), 6, "{tokens:?}");
    let mut slots: Vec<u16> = tokens.iter().map(|key| cluster.slot_of(key)).collect();
    slots.sort();
    slots.dedup();
    assert!(slots.len() > 1, "the tokens spread over slots: {slots:?}");
    for token in &tokens {
        let slot = cluster.slot_of(token);
        assert_eq!(cluster.slot_of(&format!("{token}:lease")), slot);
        assert_eq!(cluster.slot_of(&format!("{token}:cooldown")), slot);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_mid_load_fails_no_request_and_sharing_resumes_on_its_replica() {
    let (mut cluster, auth, api, calls) = servers().await;
    // Without an audience, as the load's instances.
    let first = support::builder(&auth)
        .storage(RedisStorage::cluster(cluster.seeds()).unwrap())
        .build()
        .unwrap();
    assert_eq!(all_at_once(&[first], &api).await, vec![200]);
    let [token_key] = <[String; 1]>::try_from(cluster.keys()).unwrap();

    let load = {
        let seeds = cluster.seeds();
        Load::start(
            auth.url(support::TOKEN_PATH),
            api.url("/fruits"),
            move || RedisStorage::cluster(&seeds).unwrap(),
        )
    };
    load.goes_on_for(8).await;
    let killed = cluster.kill_master_of(&token_key).await;
    cluster.wait_for_failover(&token_key).await;
    load.goes_on_for(8).await;
    let statuses = load.stop().await;

    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    // A new instance, given only living nodes, reads the token from the promoted replica.
    let before = calls.get();
    let living = cluster
        .seeds()
        .into_iter()
        .find(|seed| !seed.ends_with(&format!(":{killed}")))
        .unwrap();
    let newcomer = support::builder(&auth)
        .storage(RedisStorage::cluster([living]).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        all_at_once(std::slice::from_ref(&newcomer), &api).await,
        vec![200]
    );
    assert_eq!(calls.get(), before, "no token call: the token was shared");
    assert_eq!(newcomer.stats().shared_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_401_damaged_data_and_a_rate_limit_behave_as_on_one_node() {
    let cluster = RedisCluster::start().await;
    let seeds = cluster.seeds();
    let port = seeds[0].rsplit(':').next().unwrap().to_owned();
    topology::single_node_guarantees_hold(Topology {
        storage: &|| RedisStorage::cluster(&seeds).unwrap(),
        cli: &|_| vec!["-c".into(), "-p".into(), port.clone()],
        keys: &|| cluster.keys(),
    })
    .await;
}
