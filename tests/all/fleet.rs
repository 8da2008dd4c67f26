//! A fleet: independent middlewares (own `ClientCredentials`, own Redis connection, own reqwest
//! client, as separate processes would have) on one real `redis-server`, sharing one token
//! through the refresh lease and one rate-limit cool-down.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use httpmock::{HttpMockRequest, MockServer};
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{ClientCredentials, ClientCredentialsBuilder, Error, RedisStorage, Stats};
use tokio::sync::Barrier;

use crate::support::redis_server::RedisServer;
use crate::support::{self, Counter, Seeded, TOKEN_PATH};

const FLEET: usize = 16;

/// A `redis-server` of this test's own, a token endpoint and an API.
async fn servers() -> (RedisServer, MockServer, MockServer) {
    (
        RedisServer::start().await,
        MockServer::start_async().await,
        MockServer::start_async().await,
    )
}

fn storage(redis: &RedisServer) -> RedisStorage {
    RedisStorage::from_url(&redis.url()).unwrap()
}

/// `FLEET` instances made by `builder` with storages of their own on `redis`.
fn fleet(
    redis: &RedisServer,
    builder: impl Fn(RedisStorage) -> ClientCredentialsBuilder,
) -> Vec<ClientCredentials> {
    (0..FLEET)
        .map(|_| builder(storage(redis)).build().unwrap())
        .collect()
}

/// Every instance sends one request at the same moment, each through a reqwest client of its
/// own; the outcomes, as statuses or the crate's error.
async fn all_at_once(fleet: &[ClientCredentials], api: &MockServer) -> Vec<Result<u16, Error>> {
    let start = Arc::new(Barrier::new(fleet.len()));
    let url = api.url("/fruits");
    join_all(fleet.iter().map(|instance| {
        let (client, start, url) = (
            support::client(instance.clone()),
            start.clone(),
            url.clone(),
        );
        async move {
            start.wait().await;
            match client.get(url).send().await {
                Ok(response) => Ok(response.status().as_u16()),
                Err(error) => Err(support::alf_error(&error).clone()),
            }
        }
    }))
    .await
}

fn total(fleet: &[ClientCredentials], field: impl Fn(Stats) -> u64) -> u64 {
    fleet.iter().map(|instance| field(instance.stats())).sum()
}

/// A token endpoint that answers its first `limited` calls with 429 and `Retry-After:
/// {seconds}`, then with a token; and its call count.
async fn rate_limited(auth: &MockServer, limited: usize, seconds: u64) -> Counter {
    let calls = Counter::default();
    let counter = calls.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            if counter.bump() > limited {
                return support::json_response(200, &support::token_json("token", Some(3600)));
            }
            let mut response = support::json_response(429, r#"{"error":"too_many_requests"}"#);
            response
                .headers
                .get_or_insert_with(Vec::new)
                .push(("retry-after".into(), seconds.to_string()));
            response
        });
    })
    .await;
    calls
}

/// Retries capped at a minute, so that a `Retry-After` of seconds is kept, and waited out.
fn patient_retry() -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_secs(60))
        .build_with_max_retries(2)
}

/// Retries capped at ten seconds, so that a `Retry-After` of more is not waited out, and the
/// cool-down ends after those ten seconds: long enough for any test's rounds to fall inside it
/// on a loaded machine.
fn impatient_retry() -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), IMPATIENCE)
        .build_with_max_retries(2)
}

const IMPATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_on_a_cold_cache_make_one_token_call() {
    let (redis, auth, api) = servers().await;
    let (_, calls) =
        support::numbered_tokens_after(&auth, Some(3600), Duration::from_millis(500)).await;
    let accepted = support::api_accepting(&api, "token-1").await;
    let fleet = fleet(&redis, |storage| support::builder(&auth).storage(storage));

    let outcomes = all_at_once(&fleet, &api).await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert_eq!(calls.get(), 1);
    accepted.assert_calls_async(FLEET).await;
    assert_eq!(total(&fleet, |s| s.token_requests), 1);
    assert_eq!(total(&fleet, |s| s.shared_hits), FLEET as u64 - 1);
    assert!(total(&fleet, |s| s.lease_waits) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_expiries_make_five_token_calls_not_eighty() {
    let (redis, auth, api) = servers().await;
    // One-second tokens, counted as expired 100 ms early.
    let (_, calls) =
        support::numbered_tokens_after(&auth, Some(1), Duration::from_millis(20)).await;
    let all = support::api_counting_by_token(&api).await;
    let margin = Duration::from_millis(100);
    let fleet = fleet(&redis, |storage| {
        support::builder(&auth)
            .storage(storage)
            .expiry_margin(margin)
    });

    for round in 1..=5 {
        let outcomes = all_at_once(&fleet, &api).await;
        assert!(
            outcomes.iter().all(|o| matches!(o, Ok(200))),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(calls.get(), round, "round {round}");
        assert_eq!(all.of(&format!("token-{round}")), FLEET, "round {round}");
        // Wait until the token counts as expired: the next round finds every copy stale.
        let token = fleet[0].token().await.unwrap();
        support::sleep_until(token.stale_at(margin)).await;
    }
    assert_eq!(total(&fleet, |s| s.token_requests), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_holder_killed_mid_fetch_is_replaced_after_the_lease_ttl() {
    let (redis, auth, api) = servers().await;
    // The first token request gets no answer while the test runs.
    let unanswered = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.delay(Duration::from_secs(60))
                .body(support::token_json("token-1", Some(3600)));
        })
        .await;
    let accepted = support::api_accepting(&api, "token-2").await;
    let ttl = Duration::from_secs(2);
    let fleet = fleet(&redis, |storage| {
        support::builder(&auth)
            .storage(storage)
            .refresh_lease_ttl(ttl)
    });

    let started = Instant::now();
    // The holder runs on a runtime of its own, on a thread of its own: dropping that runtime
    // drops every task it ran, the fetch among them, as the death of its process would.
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let holder = std::thread::spawn({
        let (client, url) = (support::client(fleet[0].clone()), api.url("/fruits"));
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                tokio::select! {
                    answered = client.get(url).send() => panic!("answered: {answered:?}"),
                    _ = killed => {}
                }
            });
        }
    });
    support::eventually("the holder is fetching", async || {
        unanswered.calls_async().await == 1
    })
    .await;
    kill.send(()).unwrap();
    holder.join().unwrap();
    unanswered.delete_async().await;
    let answered = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.body(support::token_json("token-2", Some(3600)));
        })
        .await;
    let outcomes = all_at_once(&fleet[1..], &api).await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert!(
        started.elapsed() >= ttl,
        "taken over after {:?}",
        started.elapsed()
    );
    answered.assert_calls_async(1).await;
    accepted.assert_calls_async(FLEET - 1).await;
    assert!(total(&fleet, |s| s.lease_waits) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_rate_limit_on_a_cold_cache_is_waited_out_by_one_instance_for_all() {
    let (redis, auth, api) = servers().await;
    let calls = rate_limited(&auth, 1, 1).await;
    let accepted = support::api_accepting(&api, "token").await;
    let fleet = fleet(&redis, |storage| {
        support::builder(&auth)
            .storage(storage)
            .token_retry(patient_retry())
    });

    let started = Instant::now();
    let outcomes = all_at_once(&fleet, &api).await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the second was waited out"
    );
    assert_eq!(calls.get(), 2, "one 429, then one token for all");
    accepted.assert_calls_async(FLEET).await;
    assert_eq!(total(&fleet, |s| s.rate_limited), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_rate_limit_on_a_cold_cache_stops_every_instance_until_its_capped_end() {
    let (redis, auth, api) = servers().await;
    // A minute, where the policy waits ten seconds at the most: not waited out.
    let calls = rate_limited(&auth, 1, 60).await;
    let never = support::api_counting_all(&api).await;
    let fleet = fleet(&redis, |storage| {
        support::builder(&auth)
            .storage(storage)
            .token_retry(impatient_retry())
    });

    for round in ["first", "second"] {
        let outcomes = all_at_once(&fleet, &api).await;
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(Error::RateLimited { .. }))),
            "{round}: {outcomes:?}"
        );
        assert_eq!(calls.get(), 1, "{round}");
    }
    never.assert_calls_async(0).await;
    assert_eq!(total(&fleet, |s| s.rate_limited), 2 * FLEET as u64);

    let retry_at = fleet[0].token().await.unwrap_err().retry_at().unwrap();
    assert!(retry_at <= SystemTime::now() + IMPATIENCE, "capped");
    support::sleep_until(retry_at).await;
    let outcomes = all_at_once(&fleet, &api).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(200))),
        "{outcomes:?}"
    );
    assert_eq!(calls.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_during_refresh_ahead_keeps_the_valid_token_serving_with_one_call() {
    let (redis, auth, api) = servers().await;
    let calls = rate_limited(&auth, usize::MAX, 30).await;
    let uses = support::api_counting_by_token(&api).await;
    let fleet = fleet(&redis, |storage| {
        let seeded = Seeded {
            inner: storage,
            seed: support::token_in_its_refresh_window("old"),
        };
        support::builder(&auth)
            .storage(seeded)
            .token_retry(patient_retry())
    });

    // The first round gives every instance the stored token; from the second on, each finds
    // it in its refresh window and tries to refresh it.
    let round = async || {
        let outcomes = all_at_once(&fleet, &api).await;
        assert!(
            outcomes.iter().all(|o| matches!(o, Ok(200))),
            "{outcomes:?}"
        );
    };
    for _ in 0..10 {
        round().await;
    }
    support::eventually("a refresh reaches the token endpoint", async || {
        calls.get() > 0
    })
    .await;
    // The cool-down is known to all now: more rounds make no more token calls.
    for _ in 0..10 {
        round().await;
    }
    let rounds = 20;

    assert_eq!(uses.of("old"), rounds * FLEET);
    assert_eq!(
        calls.get(),
        1,
        "one token call in the window across all instances"
    );
    assert_eq!(total(&fleet, |s| s.refreshes_ahead), FLEET as u64);
    assert_eq!(total(&fleet, |s| s.rate_limited), 0);
}
