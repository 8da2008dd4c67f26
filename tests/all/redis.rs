//! `RedisStorage` against a real `redis-server` that each test starts on its own free port:
//! sharing across instances, TTLs, atomic invalidation, and outages that must not break
//! requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use httpmock::{HttpMockRequest, HttpMockResponse, Mock, MockServer};
use redis::AsyncCommands;
use reqwest_alf::{ClientCredentials, Lease, RedisStorage, TokenStorage};

use crate::support::redis_server::RedisServer;
use crate::support::topology::{self, Topology};
use crate::support::{self, Counter, logs};

/// `redis`, a token endpoint that hands out `token-1`, `token-2`, … (and its call count), and
/// an API: what every test here starts with.
async fn servers(redis: RedisServer) -> (RedisServer, MockServer, MockServer, Counter) {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
    (redis, auth, api, calls)
}

fn storage(redis: &RedisServer) -> RedisStorage {
    RedisStorage::from_url(&redis.url()).unwrap()
}

/// A middleware of its own (own storage connection, own reqwest client), as another process
/// would have, on `redis`.
fn instance(auth: &MockServer, redis: &RedisServer) -> ClientCredentials {
    support::builder(auth)
        .storage(storage(redis))
        .build()
        .unwrap()
}

async fn get_fruits(auth: &ClientCredentials, api: &MockServer) -> reqwest::StatusCode {
    support::client(auth.clone())
        .get(api.url("/fruits"))
        .send()
        .await
        .unwrap()
        .status()
}

/// The one key this test's Redis holds.
async fn only_key(redis: &RedisServer) -> String {
    let keys: Vec<String> = redis.connection().await.keys("*").await.unwrap();
    assert_eq!(keys.len(), 1, "one token key: {keys:?}");
    keys.into_iter().next().unwrap()
}

async fn stored_token(redis: &RedisServer, key: &str) -> Option<serde_json::Value> {
    let value: Option<String> = redis.connection().await.get(key).await.unwrap();
    value.map(|value| serde_json::from_str(&value).unwrap())
}

/// An API that accepts any bearer token for `uses` requests, then answers 401 to it, and
/// counts the requests each token got.
async fn api_with_worn_out_tokens(api: &MockServer, uses: usize) -> Mock<'_> {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    api.mock_async(move |when, then| {
        when.method("GET").path("/fruits");
        then.respond_with(move |request: &HttpMockRequest| {
            let authorization = request
                .headers()
                .get("authorization")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let mut seen = seen.lock().unwrap();
            let count = seen.entry(authorization).or_default();
            *count += 1;
            let status = if *count <= uses { 200 } else { 401 };
            HttpMockResponse::builder().status(status).build()
        });
    })
    .await
}

#[tokio::test]
async fn two_instances_on_one_redis_make_one_token_call() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    let accepted = support::api_accepting(&api, "token-1").await;
    let (a, b) = (instance(&auth, &redis), instance(&auth, &redis));

    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(get_fruits(&b, &api).await, 200);
    assert_eq!(get_fruits(&a, &api).await, 200);

    assert_eq!(calls.get(), 1);
    accepted.assert_calls_async(3).await;
}

#[tokio::test]
async fn a_token_outlives_the_instance_that_stored_it() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    let accepted = support::api_accepting(&api, "token-1").await;

    let a = instance(&auth, &redis);
    assert_eq!(get_fruits(&a, &api).await, 200);
    drop(a);
    let b = instance(&auth, &redis);
    assert_eq!(get_fruits(&b, &api).await, 200);

    assert_eq!(calls.get(), 1);
    accepted.assert_calls_async(2).await;
}

#[tokio::test]
async fn the_value_is_the_token_with_its_absolute_expiry_and_a_matching_ttl() {
    let (redis, auth, _, _) = servers(RedisServer::start().await).await;
    let before = unix_now();

    instance(&auth, &redis).token().await.unwrap();

    let key = only_key(&redis).await;
    assert!(key.starts_with("alf:{127.0.0.1:"), "readable key: {key}");
    let value = stored_token(&redis, &key).await.unwrap();
    assert_eq!(value["access_token"], "token-1");
    assert_eq!(value["token_type"], "Bearer");
    let expires_at = value["expires_at"].as_f64().unwrap();
    assert!((before as f64 + 3600.0..=unix_now() as f64 + 3601.0).contains(&expires_at));

    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    let remaining_ms = (expires_at * 1000.0) as i64 - unix_now_ms() as i64;
    assert!(
        (ttl_ms - remaining_ms).abs() <= 100,
        "TTL {ttl_ms} ms, remaining lifetime {remaining_ms} ms"
    );
}

#[tokio::test]
async fn a_prefix_of_ones_own_names_the_key() {
    let (redis, auth, _, _) = servers(RedisServer::start().await).await;
    support::builder(&auth)
        .storage(storage(&redis).prefix("orders:tokens:"))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert!(
        only_key(&redis)
            .await
            .starts_with("orders:tokens:{127.0.0.1:")
    );
}

#[tokio::test]
async fn a_token_written_by_another_process_is_judged_by_its_expiry() {
    let (redis, auth, _, calls) = servers(RedisServer::start().await).await;
    instance(&auth, &redis).token().await.unwrap();
    let key = only_key(&redis).await;
    let mut connection = redis.connection().await;
    let now = unix_now();

    // Valid for another hour, by another process's hand: used as it is.
    let valid = format!(
        r#"{{"access_token":"from-elsewhere","token_type":"Bearer","issued_at":{now},"expires_at":{}}}"#,
        now + 3600
    );
    let _: () = connection.set(&key, valid).await.unwrap();
    let token = instance(&auth, &redis).token().await.unwrap();
    assert_eq!(token.access_token().secret(), "from-elsewhere");
    assert_eq!(calls.get(), 1);

    // Expired ten seconds ago, though Redis still keeps it: a new one is fetched.
    let expired = format!(
        r#"{{"access_token":"from-elsewhere","token_type":"Bearer","issued_at":{},"expires_at":{}}}"#,
        now - 3600,
        now - 10
    );
    let _: () = connection.set_ex(&key, expired, 3600).await.unwrap();
    let token = instance(&auth, &redis).token().await.unwrap();
    assert_eq!(token.access_token().secret(), "token-2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_stale_401_keeps_the_token_another_instance_stored() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    support::api_rejecting(&api, "token-1").await;
    let accepted = support::api_accepting(&api, "token-2").await;
    let (a, b) = (instance(&auth, &redis), instance(&auth, &redis));
    assert_eq!(a.token().await.unwrap().access_token().secret(), "token-1");
    assert_eq!(b.token().await.unwrap().access_token().secret(), "token-1");

    // B meets the revocation first and stores token-2 in token-1's place.
    assert_eq!(get_fruits(&b, &api).await, 200);
    // A's 401 comes later: it must not delete token-2, and A picks token-2 up from Redis.
    assert_eq!(get_fruits(&a, &api).await, 200);

    assert_eq!(calls.get(), 2);
    accepted.assert_calls_async(2).await;
    let key = only_key(&redis).await;
    assert_eq!(
        stored_token(&redis, &key).await.unwrap()["access_token"],
        "token-2"
    );
}

#[tokio::test]
async fn a_warm_request_does_not_touch_redis() {
    let (redis, auth, api, _) = servers(RedisServer::start().await).await;
    support::api_accepting(&api, "token-1").await;
    let a = instance(&auth, &redis);
    assert_eq!(get_fruits(&a, &api).await, 200);
    let mut connection = redis.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut connection)
        .await
        .unwrap();

    for _ in 0..50 {
        assert_eq!(get_fruits(&a, &api).await, 200);
    }

    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    let token_commands: Vec<&str> = stats
        .lines()
        .filter(|line| {
            ["get", "set", "del", "eval", "evalsha"]
                .iter()
                .any(|c| line.starts_with(&format!("cmdstat_{c}:")))
        })
        .collect();
    assert!(token_commands.is_empty(), "{token_commands:?}");
}

#[tokio::test]
async fn garbage_under_the_key_is_a_miss_then_overwritten() {
    let (redis, auth, _, calls) = servers(RedisServer::start().await).await;
    instance(&auth, &redis).token().await.unwrap();
    let key = only_key(&redis).await;
    let mut connection = redis.connection().await;

    let truncated = r#"{"access_token":"token-1","token_type":"Bea"#;
    let foreign = r#"{"session":"someone else's"}"#;
    for (n, garbage) in [truncated, foreign, "\u{fffd}\u{0}not json"]
        .into_iter()
        .enumerate()
    {
        let _: () = connection.set(&key, garbage).await.unwrap();
        let token = instance(&auth, &redis).token().await.unwrap();
        let expected = format!("token-{}", n + 2);
        assert_eq!(token.access_token().secret(), expected);
        assert_eq!(
            stored_token(&redis, &key).await.unwrap()["access_token"],
            expected.as_str()
        );
    }

    // Another Redis type under the key: the read fails, the write replaces it.
    let _: () = connection.del(&key).await.unwrap();
    let _: () = connection.hset(&key, "field", "value").await.unwrap();
    let token = instance(&auth, &redis).token().await.unwrap();
    assert_eq!(token.access_token().secret(), "token-5");
    assert_eq!(
        stored_token(&redis, &key).await.unwrap()["access_token"],
        "token-5"
    );
    assert_eq!(calls.get(), 5);
}

#[tokio::test]
async fn requests_keep_succeeding_when_redis_dies_mid_run_and_the_outage_is_logged_once() {
    let captured = logs::crate_logs();
    let (mut redis, auth, api, calls) = servers(RedisServer::start().await).await;
    // Tokens wear out after 25 uses, so the cache goes back to the storage every few rounds.
    let api_mock = api_with_worn_out_tokens(&api, 25).await;
    // An audience of its own: no other test's log lines carry this key, even on a reused port.
    let auth_middleware = support::builder(&auth)
        .audience("https://outage-test.example")
        .storage(storage(&redis))
        .build()
        .unwrap();
    let logged_before = captured.text().len();
    let client = support::client(auth_middleware);
    client.get(api.url("/fruits")).send().await.unwrap();
    let key = only_key(&redis).await;
    let readable_key = key
        .strip_prefix("alf:{")
        .and_then(|k| k.strip_suffix('}'))
        .unwrap()
        .to_owned();

    for round in 0..20 {
        if round == 10 {
            redis.stop();
        }
        let requests: Vec<_> = (0..10)
            .map(|_| {
                let (client, url) = (client.clone(), api.url("/fruits"));
                tokio::spawn(async move { client.get(url).send().await })
            })
            .collect();
        for request in requests {
            let response = request.await.expect("no panic").expect("a response");
            assert_eq!(response.status(), 200, "round {round}");
        }
    }

    let sent = api_mock.calls_async().await;
    assert!(sent >= 201, "every request reached the API");
    let tokens_used = calls.get();
    assert!(
        (201 / 26..=201 / 25 + 10).contains(&tokens_used),
        "a token per 25 uses, give or take concurrent 401s: {tokens_used}"
    );
    let all_logs = captured.text();
    let logs = all_logs.get(logged_before..).unwrap_or(&all_logs);
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains(&readable_key)).collect();
    let warnings = ours
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("token storage failed"))
        .count();
    let quieted = ours
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains("token storage failed"))
        .count();
    assert_eq!(warnings, 1, "one warning for the outage: {ours:#?}");
    assert!(quieted >= 2, "later failures quieted: {ours:#?}");
}

#[tokio::test]
async fn sharing_resumes_when_redis_comes_back() {
    let (mut redis, auth, api, calls) = servers(RedisServer::start().await).await;
    let a = instance(&auth, &redis);
    assert_eq!(a.token().await.unwrap().access_token().secret(), "token-1");

    redis.stop();
    support::api_rejecting(&api, "token-1").await;
    let accepted = support::api_accepting(&api, "token-2").await;
    // Redis is gone: the 401 still brings a new token, kept in-process.
    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(calls.get(), 2);

    redis.restart().await;
    accepted.delete_async().await;
    support::api_rejecting(&api, "token-2").await;
    support::api_accepting(&api, "token-3").await;
    // The same instance, no restart: its next token goes to Redis again…
    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(calls.get(), 3);
    // …where a newcomer finds it.
    let b = instance(&auth, &redis);
    assert_eq!(b.token().await.unwrap().access_token().secret(), "token-3");
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn a_hung_redis_costs_a_request_the_timeout_not_its_answer() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    support::api_accepting(&api, "token-1").await;
    let paused = SignalGuard::stop(redis.pid());

    let a = support::builder(&auth)
        .storage(storage(&redis).timeout(Duration::from_millis(100)))
        .build()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), get_fruits(&a, &api))
        .await
        .expect("a hung Redis must not hang the request");

    assert_eq!(status, 200);
    assert_eq!(calls.get(), 1);
    drop(paused);
}

#[tokio::test]
async fn a_hung_redis_costs_one_fetch_one_timeout_and_is_used_again_once_it_answers() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let (redis, auth, _api, calls) = servers(RedisServer::start().await).await;
    let a = support::builder(&auth)
        .storage(storage(&redis).timeout(TIMEOUT))
        .build()
        .unwrap();
    let paused = SignalGuard::stop(redis.pid());

    let started = Instant::now();
    let mut current = a.token().await.unwrap();
    let first = started.elapsed();
    assert!(
        first >= TIMEOUT && first < TIMEOUT * 2,
        "the read waited one timeout, and the lease and write none: {first:?}"
    );
    assert_eq!(a.stats().storage_errors, 1);

    // The next fetches leave the hung Redis alone.
    for n in 2..=4 {
        a.invalidate(&current).await;
        let started = Instant::now();
        current = a.token().await.unwrap();
        let took = started.elapsed();
        assert_eq!(current.access_token().secret(), format!("token-{n}"));
        assert!(took < TIMEOUT / 2, "fetch {n} waited for Redis: {took:?}");
    }
    assert_eq!(
        a.stats().storage_errors,
        1,
        "no call went to the hung Redis"
    );

    // Redis answers again: without a restart, the instance's tokens reach it…
    drop(paused);
    let deadline = Instant::now() + Duration::from_secs(10);
    let key = loop {
        assert!(Instant::now() < deadline, "sharing did not resume");
        let keys: Vec<String> = redis.connection().await.keys("*").await.unwrap();
        if let Some(key) = keys.into_iter().find(|k| !k.ends_with(":lease")) {
            break key;
        }
        // Each round is a new fetch, which goes to Redis once the probe has closed the breaker.
        a.invalidate(&current).await;
        current = a.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        stored_token(&redis, &key).await.unwrap()["access_token"],
        current.access_token().secret()
    );
    // …and a newcomer shares them.
    let calls_before = calls.get();
    let b = instance(&auth, &redis);
    assert_eq!(
        b.token().await.unwrap().access_token(),
        current.access_token()
    );
    assert_eq!(calls.get(), calls_before);
}

#[tokio::test]
async fn a_password_protected_redis_is_reached_with_the_password_in_the_url() {
    const PASSWORD: &str = "s3cr3t-redis-password";
    let (redis, auth, api, calls) = servers(RedisServer::start_with_password(PASSWORD).await).await;
    support::api_accepting(&api, "token-1").await;

    let (a, b) = (instance(&auth, &redis), instance(&auth, &redis));
    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(get_fruits(&b, &api).await, 200);
    assert_eq!(calls.get(), 1, "shared through the protected Redis");
    assert!(!format!("{:?} {a:?}", storage(&redis)).contains(PASSWORD));

    // Without the password Redis refuses every call; requests still get tokens.
    let outsider = support::builder(&auth)
        .storage(RedisStorage::from_url(&redis.url_without_password()).unwrap())
        .audience("https://another-api.example")
        .build()
        .unwrap();
    assert!(outsider.token().await.is_ok());
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_tls_url_to_a_plain_server_fails_over_to_fetching() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    support::api_accepting(&api, "token-1").await;
    let tls_url = redis.url().replacen("redis://", "rediss://", 1);
    let a = support::builder(&auth)
        .storage(RedisStorage::from_url(&tls_url).unwrap())
        .build()
        .unwrap();

    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(calls.get(), 1);
    let keys: Vec<String> = redis.connection().await.keys("*").await.unwrap();
    assert!(keys.is_empty(), "nothing was written in the clear");
}

/// Keeps a process stopped (SIGSTOP) until dropped (SIGCONT): a Redis that accepts
/// connections but never answers.
struct SignalGuard(u32);

impl SignalGuard {
    fn stop(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success(), "kill {signal} {pid}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unix_now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test]
async fn the_lease_is_one_holders_until_released_or_run_out_and_a_cool_down_stops_a_new_one() {
    let redis = RedisServer::start().await;
    let (a, b) = (storage(&redis), storage(&redis));
    let ttl = Duration::from_secs(60);

    assert_eq!(a.try_lease("k", "a", ttl).await.unwrap(), Lease::Acquired);
    assert_eq!(
        b.try_lease("k", "b", ttl).await.unwrap(),
        Lease::HeldElsewhere
    );
    let lease_ttl: i64 = redis::cmd("PTTL")
        .arg("alf:{k}:lease")
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    assert!((59_000..=60_000).contains(&lease_ttl), "{lease_ttl}");
    b.release_lease("k", "b").await.unwrap();
    assert_eq!(
        b.try_lease("k", "b", ttl).await.unwrap(),
        Lease::HeldElsewhere,
        "only the holder releases"
    );
    a.release_lease("k", "a").await.unwrap();
    assert_eq!(
        b.try_lease("k", "b", Duration::from_millis(50))
            .await
            .unwrap(),
        Lease::Acquired
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        a.try_lease("k", "a", ttl).await.unwrap(),
        Lease::Acquired,
        "a lease runs out by itself"
    );

    let until = SystemTime::now() + Duration::from_secs(30);
    b.cool_down("k", until).await.unwrap();
    // The holder may be waiting the rate limit out: the others wait for it, and it renews.
    assert_eq!(
        b.try_lease("k", "b", ttl).await.unwrap(),
        Lease::HeldElsewhere
    );
    let renewal = Duration::from_secs(90);
    assert_eq!(
        a.try_lease("k", "a", renewal).await.unwrap(),
        Lease::Acquired
    );
    let renewed_ttl: i64 = redis::cmd("PTTL")
        .arg("alf:{k}:lease")
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    assert!((89_000..=90_000).contains(&renewed_ttl), "{renewed_ttl}");
    // Nobody holds it: the cool-down keeps a new lease from being taken.
    a.release_lease("k", "a").await.unwrap();
    let cooling = a.try_lease("k", "c", ttl).await.unwrap();
    let until_ms = UNIX_EPOCH
        + Duration::from_millis(until.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64);
    assert_eq!(cooling, Lease::CoolingDown(until_ms));
    let cool_down_ttl: i64 = redis::cmd("PTTL")
        .arg("alf:{k}:cooldown")
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    assert!(
        (29_000..=30_000).contains(&cool_down_ttl),
        "{cool_down_ttl}"
    );

    redis::cmd("SET")
        .arg("alf:{k}:cooldown")
        .arg("soon")
        .query_async::<()>(&mut redis.connection().await)
        .await
        .unwrap();
    let damaged = a.try_lease("k", "c", ttl).await.unwrap_err().to_string();
    assert!(damaged.contains("alf:{k}:cooldown"), "{damaged}");
}

/// The ACL rule the README gives for the crate's keys and commands.
const LEAST_PRIVILEGE: &[&str] = &[
    "~alf:*",
    "resetchannels",
    "-@all",
    "+get",
    "+set",
    "+del",
    "+evalsha",
    "+script|load",
];

/// Makes `user` (password `pw`) on `redis` with `rules`; the URL that logs in as it.
async fn acl_user(redis: &RedisServer, user: &str, rules: &[&str]) -> String {
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(user)
        .arg("on")
        .arg(">pw")
        .arg(rules)
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    redis
        .url()
        .replacen("redis://", &format!("redis://{user}:pw@"), 1)
}

#[tokio::test]
async fn a_user_limited_to_the_crates_keys_and_commands_is_enough() {
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    support::api_rejecting(&api, "token-1").await;
    support::api_accepting(&api, "token-2").await;
    let url = acl_user(&redis, "alf", LEAST_PRIVILEGE).await;
    let instance = || {
        support::builder(&auth)
            .storage(RedisStorage::from_url(&url).unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (instance(), instance());

    // a fetches under the lease and stores; the API refuses token-1, so a forgets it with the
    // compare-and-delete script and stores token-2, which b reads.
    assert_eq!(get_fruits(&a, &api).await, 200);
    assert_eq!(b.token().await.unwrap().access_token().secret(), "token-2");
    assert_eq!(calls.get(), 2);
    assert_eq!(a.stats().storage_errors + b.stats().storage_errors, 0);
}

#[tokio::test]
async fn a_user_who_may_not_run_scripts_gets_logged_errors_and_requests_still_succeed() {
    let captured = logs::crate_logs();
    let (redis, auth, api, calls) = servers(RedisServer::start().await).await;
    support::api_accepting(&api, "token-1").await;
    let url = acl_user(
        &redis,
        "noscripts",
        &["~alf:*", "-@all", "+get", "+set", "+del"],
    )
    .await;
    let a = support::builder(&auth)
        .audience("https://no-scripts.example")
        .storage(RedisStorage::from_url(&url).unwrap())
        .build()
        .unwrap();

    assert_eq!(get_fruits(&a, &api).await, 200);

    assert_eq!(calls.get(), 1);
    assert!(a.stats().storage_errors >= 1, "{:?}", a.stats());
    let logged = captured.text();
    assert!(
        logged.lines().any(|line| line.contains("WARN")
            && line.contains("no permissions to run the 'evalsha' command")),
        "the refusal is logged, naming it: {}",
        logged
            .lines()
            .filter(|l| l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn the_checks_made_on_a_cluster_and_behind_sentinel_hold_on_one_node() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    topology::single_node_guarantees_hold(Topology {
        storage: &|| RedisStorage::from_url(&url).unwrap(),
        cli: &|_| vec!["-u".into(), url.clone()],
        keys: &|| topology::scan(&url),
    })
    .await;
}
