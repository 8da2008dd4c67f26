//! What anyone who can write to the shared Redis can plant there, and what the middleware makes
//! of it: a cool-down an hour ahead, a cool-down read again and again, a token that "expires" in
//! the year 5138. Against a real `redis-server`, with exact counts of failed requests and token
//! calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpmock::MockServer;
use redis::AsyncCommands;
use reqwest_alf::{ClientCredentials, ClientCredentialsBuilder, Error, RedisStorage};

use crate::support::redis_server::RedisServer;
use crate::support::{self, Counter};

/// A Redis, a token endpoint handing out `token-1`, `token-2`, …, an API that takes any token,
/// and the storage key the middleware uses (found by a first fetch, whose token is then
/// deleted: the test starts from a cold, shared storage).
struct Fleet {
    redis: RedisServer,
    auth: MockServer,
    api: MockServer,
    calls: Counter,
    key: String,
}

impl Fleet {
    async fn start() -> Self {
        let redis = RedisServer::start().await;
        let (auth, api) = (
            MockServer::start_async().await,
            MockServer::start_async().await,
        );
        let (_, calls) = support::numbered_tokens(&auth, Some(3600)).await;
        support::api_counting_all(&api).await;
        let fleet = Self {
            redis,
            auth,
            api,
            calls,
            key: String::new(),
        };
        fleet.instance(|b| b).token().await.unwrap();
        let mut connection = fleet.redis.connection().await;
        let keys: Vec<String> = connection.keys("*").await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let _: () = connection.del(&keys[0]).await.unwrap();
        Self {
            key: keys[0].clone(),
            ..fleet
        }
    }

    /// A middleware of its own on the shared Redis, as another process would have.
    fn instance(
        &self,
        settings: impl FnOnce(ClientCredentialsBuilder) -> ClientCredentialsBuilder,
    ) -> ClientCredentials {
        let storage = RedisStorage::from_url(&self.redis.url()).unwrap();
        settings(support::builder(&self.auth).storage(storage))
            .build()
            .unwrap()
    }

    async fn plant(&self, key: &str, value: String, ttl: Duration) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.redis.connection().await)
            .await
            .unwrap();
    }

    /// Sends `n` requests through `middleware`, one after the other; how many failed.
    async fn failed_of(&self, middleware: &ClientCredentials, n: usize) -> usize {
        let client = support::client(middleware.clone());
        let mut failed = 0;
        for _ in 0..n {
            match client.get(self.api.url("/fruits")).send().await {
                Ok(response) => assert_eq!(response.status(), 200),
                Err(_) => failed += 1,
            }
        }
        failed
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_cool_down_planted_further_ahead_than_a_day_is_damage_and_holds_no_one() {
    let fleet = Fleet::start().await;
    let calls_before = fleet.calls.get();
    // A spent Auth0 quota is written up to a day ahead; nothing is written further.
    let until = unix_ms(SystemTime::now() + 26 * HOUR);
    fleet
        .plant(&format!("{}:cooldown", fleet.key), until.to_string(), HOUR)
        .await;

    let mut failed = 0;
    for _ in 0..4 {
        failed += fleet.failed_of(&fleet.instance(|b| b), 5).await;
    }

    assert_eq!(failed, 0, "no request failed");
    assert_eq!(
        fleet.calls.get() - calls_before,
        1,
        "the first instance fetched and stored; the others read its token"
    );
}

#[tokio::test]
async fn a_shared_cool_down_holds_until_its_end_and_no_longer_however_long_its_key_lives() {
    let fleet = Fleet::start().await;
    let calls_before = fleet.calls.get();
    // Longer than the retry policy's longest wait (as a spent quota's reset is), and kept
    // alive far longer by its TTL.
    let until = SystemTime::now() + Duration::from_secs(10);
    fleet
        .plant(
            &format!("{}:cooldown", fleet.key),
            unix_ms(until).to_string(),
            HOUR,
        )
        .await;
    let a = fleet.instance(|b| b.token_retry(support::fast_retry(1)));

    let error = a.token().await.unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error}");
    let held_until = error.retry_at().unwrap();
    assert_eq!(unix_ms(held_until), unix_ms(until), "held until its end");
    assert_eq!(fleet.failed_of(&a, 3).await, 3, "held meanwhile");
    assert_eq!(fleet.calls.get() - calls_before, 0);

    support::sleep_until(held_until).await;
    assert_eq!(fleet.failed_of(&a, 3).await, 0, "asks once, and is served");
    assert_eq!(fleet.calls.get() - calls_before, 1);
}

#[tokio::test]
async fn a_token_planted_to_expire_in_the_year_5138_is_a_miss_and_never_sent() {
    let fleet = Fleet::start().await;
    let calls_before = fleet.calls.get();
    let planted = r#"{"access_token":"planted","token_type":"Bearer","issued_at":1700000000,"expires_at":99999999999}"#;
    fleet.plant(&fleet.key, planted.to_owned(), HOUR).await;

    let token = fleet.instance(|b| b).token().await.unwrap();
    assert_ne!(token.access_token().secret(), "planted");
    assert_eq!(fleet.calls.get() - calls_before, 1);

    // With a bound of its own, a planted token that expires in a year is a miss too, while the
    // honest hour-long tokens are shared as ever.
    let in_a_year = unix_ms(SystemTime::now() + 365 * 24 * HOUR) / 1000;
    let planted = format!(
        r#"{{"access_token":"planted","token_type":"Bearer","issued_at":1700000000,"expires_at":{in_a_year}}}"#
    );
    fleet.plant(&fleet.key, planted, HOUR).await;
    let bounded = |b: ClientCredentialsBuilder| b.max_token_lifetime(2 * HOUR);
    let first = fleet.instance(bounded).token().await.unwrap();
    assert_ne!(first.access_token().secret(), "planted");
    let second = fleet.instance(bounded).token().await.unwrap();
    assert_eq!(second.access_token(), first.access_token(), "shared");
    assert_eq!(fleet.calls.get() - calls_before, 2);
}
