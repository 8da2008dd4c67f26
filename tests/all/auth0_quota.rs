//! Auth0's token quotas: a fake Auth0 that keeps real buckets and reports them in
//! `Auth0-Client-Quota-Limit` and `Auth0-Organization-Quota-Limit`; a spent bucket holds the
//! whole fleet until it resets, and what remains is in the stats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use reqwest_alf::{ClientCredentials, ClientCredentialsBuilder, Error, Grant, QuotaScope};

use crate::support::assertion::fields;
use crate::support::{self, alf_error, logs, token_json};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// One bucket: `limit` tokens a period, `remaining` until `resets_at`, then full again.
#[derive(Clone, Copy)]
struct Bucket {
    name: &'static str,
    period: Duration,
    limit: u64,
    remaining: u64,
    resets_at: SystemTime,
}

impl Bucket {
    fn new(name: &'static str, limit: u64, remaining: u64, resets_in: Duration) -> Self {
        let period = if name == "per_day" { DAY } else { HOUR };
        Self {
            name,
            period,
            limit,
            remaining,
            resets_at: SystemTime::now() + resets_in,
        }
    }

    fn hourly(limit: u64, remaining: u64, resets_in: Duration) -> Self {
        Self::new("per_hour", limit, remaining, resets_in)
    }

    fn daily(limit: u64, remaining: u64, resets_in: Duration) -> Self {
        Self::new("per_day", limit, remaining, resets_in)
    }

    fn refill(&mut self, now: SystemTime) {
        while self.resets_at <= now {
            self.remaining = self.limit;
            self.resets_at += self.period;
        }
    }

    /// As Auth0 writes it: `b=per_hour;q=3;r=0;t=5` (seconds rounded up).
    fn header(&self, now: SystemTime) -> String {
        let left = self.resets_at.duration_since(now).unwrap_or_default();
        let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        format!(
            "b={};q={};r={};t={seconds}",
            self.name, self.limit, self.remaining
        )
    }
}

/// Buckets of the client and of each organization, and what the token endpoint answered.
#[derive(Default)]
struct Quotas {
    client: Vec<Bucket>,
    organizations: HashMap<String, Vec<Bucket>>,
    issued: u64,
    refused: u64,
}

/// A token endpoint that enforces its buckets as Auth0 does: a token spends one of each of the
/// client's buckets and of its organization's; a spent bucket is a 429 (no `Retry-After`).
#[derive(Clone)]
struct FakeAuth0(Arc<Mutex<Quotas>>);

impl FakeAuth0 {
    async fn start(auth: &MockServer, client: Vec<Bucket>) -> Self {
        let fake = Self(Arc::new(Mutex::new(Quotas {
            client,
            ..Quotas::default()
        })));
        let state = fake.clone();
        auth.mock_async(move |when, then| {
            when.method("POST").path(support::TOKEN_PATH);
            then.respond_with(move |request: &HttpMockRequest| state.answer(request));
        })
        .await;
        fake
    }

    fn with_organization(self, organization: &str, buckets: Vec<Bucket>) -> Self {
        self.0
            .lock()
            .unwrap()
            .organizations
            .insert(organization.to_owned(), buckets);
        self
    }

    fn answer(&self, request: &HttpMockRequest) -> HttpMockResponse {
        let body = String::from_utf8(request.body().to_vec()).unwrap();
        let organization = fields(&body)
            .into_iter()
            .find(|(name, _)| name == "organization")
            .map(|(_, value)| value);
        let now = SystemTime::now();
        let mut quotas = self.0.lock().unwrap();
        let quotas = &mut *quotas;
        let mut organization_buckets = organization
            .as_ref()
            .and_then(|org| quotas.organizations.get_mut(org));
        for bucket in quotas.client.iter_mut() {
            bucket.refill(now);
        }
        for bucket in organization_buckets.iter_mut().flat_map(|b| b.iter_mut()) {
            bucket.refill(now);
        }
        let spent = quotas
            .client
            .iter()
            .chain(organization_buckets.iter().flat_map(|b| b.iter()))
            .any(|bucket| bucket.remaining == 0);
        let (status, body) = if spent {
            quotas.refused += 1;
            (
                429,
                r#"{"error":"too_many_requests","error_description":"Quota exceeded"}"#.to_owned(),
            )
        } else {
            quotas.issued += 1;
            for bucket in quotas.client.iter_mut() {
                bucket.remaining -= 1;
            }
            for bucket in organization_buckets.iter_mut().flat_map(|b| b.iter_mut()) {
                bucket.remaining -= 1;
            }
            (
                200,
                token_json(&format!("token-{}", quotas.issued), Some(3600)),
            )
        };
        let header = |buckets: &[Bucket]| {
            buckets
                .iter()
                .map(|bucket| bucket.header(now))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut response = HttpMockResponse::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("auth0-client-quota-limit", header(&quotas.client));
        if let Some(buckets) = organization_buckets {
            response = response.header("auth0-organization-quota-limit", header(buckets));
        }
        response.body(body).build()
    }

    fn issued(&self) -> u64 {
        self.0.lock().unwrap().issued
    }

    fn refused(&self) -> u64 {
        self.0.lock().unwrap().refused
    }
}

fn builder(auth: &MockServer) -> ClientCredentialsBuilder {
    ClientCredentials::builder(
        auth.url(support::TOKEN_PATH),
        support::CLIENT_ID,
        support::CLIENT_SECRET,
    )
    .token_retry(support::fast_retry(3))
}

/// `retry_at` of a rate-limit error, and whose quota it names.
fn rate_limit(error: &Error) -> (SystemTime, Option<QuotaScope>) {
    match error {
        Error::RateLimited {
            retry_at,
            spent_quota,
            ..
        } => (*retry_at, *spent_quota),
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

/// Whether `at` is `expected` give or take two seconds (the header counts whole seconds).
fn about(at: SystemTime, expected: SystemTime) -> bool {
    let gap = at
        .duration_since(expected)
        .or_else(|_| expected.duration_since(at))
        .unwrap();
    gap <= Duration::from_secs(2)
}

#[tokio::test]
async fn a_spent_daily_bucket_is_not_asked_again_before_it_resets() {
    let auth = MockServer::start_async().await;
    let fake = FakeAuth0::start(
        &auth,
        vec![
            Bucket::hourly(10, 7, Duration::from_secs(3540)),
            Bucket::daily(50, 0, Duration::from_secs(43_200)),
        ],
    )
    .await;
    let middleware = builder(&auth).build().unwrap();

    let first = middleware.token().await.unwrap_err();
    let (retry_at, scope) = rate_limit(&first);
    assert!(
        about(retry_at, SystemTime::now() + Duration::from_secs(43_200)),
        "{first}"
    );
    assert_eq!(scope, Some(QuotaScope::Client));
    assert!(
        first
            .to_string()
            .contains("(the client's token quota is spent)"),
        "{first}"
    );
    assert_eq!(fake.refused(), 1, "no retry");

    for _ in 0..5 {
        let again = middleware.token().await.unwrap_err();
        assert_eq!(rate_limit(&again), (retry_at, Some(QuotaScope::Client)));
    }
    assert_eq!(fake.refused(), 1, "not asked again");
    assert_eq!(fake.issued(), 0);

    let quota = middleware.stats().client_quota.expect("the client's quota");
    let day = quota.per_day.unwrap();
    assert_eq!((day.limit, day.remaining), (50, 0));
    assert!(about(day.resets_at, retry_at));
    let hour = quota.per_hour.unwrap();
    assert_eq!((hour.limit, hour.remaining), (10, 7));
}

#[tokio::test]
async fn a_spent_organization_bucket_holds_that_organization_alone() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let fake = FakeAuth0::start(
        &auth,
        vec![Bucket::daily(100, 90, Duration::from_secs(600))],
    )
    .await
    .with_organization(
        "org_spent",
        vec![Bucket::daily(20, 0, Duration::from_secs(7_200))],
    )
    .with_organization(
        "org_fine",
        vec![Bucket::daily(20, 15, Duration::from_secs(7_200))],
    );
    let uses = support::api_counting_by_token(&api).await;
    let middleware = builder(&auth).build().unwrap();
    let client = support::client(middleware.clone());
    let send = |organization: &str| {
        client
            .get(api.url("/fruits"))
            .with_extension(
                Grant::new()
                    .audience("https://api.example/")
                    .organization(organization),
            )
            .send()
    };

    let error = send("org_spent").await.unwrap_err();
    let (retry_at, scope) = rate_limit(alf_error(&error));
    assert_eq!(scope, Some(QuotaScope::Organization));
    assert!(about(
        retry_at,
        SystemTime::now() + Duration::from_secs(7_200)
    ));
    assert_eq!(send("org_fine").await.unwrap().status(), 200);
    assert_eq!(send("org_fine").await.unwrap().status(), 200);
    let again = send("org_spent").await.unwrap_err();
    assert_eq!(
        rate_limit(alf_error(&again)).1,
        Some(QuotaScope::Organization)
    );

    assert_eq!(fake.refused(), 1);
    assert_eq!(fake.issued(), 1);
    assert_eq!(uses.of("token-1"), 2);
    let by_grant = middleware.stats_by_grant();
    let of = |organization: &str| {
        by_grant
            .iter()
            .find(|grant| grant.grant.contains(organization))
            .unwrap()
            .stats
    };
    let spent = of("org_spent").organization_quota.unwrap().per_day.unwrap();
    assert_eq!((spent.limit, spent.remaining), (20, 0));
    let fine = of("org_fine").organization_quota.unwrap().per_day.unwrap();
    assert_eq!((fine.limit, fine.remaining), (20, 14));
    let client_day = of("org_fine").client_quota.unwrap().per_day.unwrap();
    assert_eq!((client_day.limit, client_day.remaining), (100, 89));
}

#[tokio::test]
async fn quota_headers_on_good_answers_change_nothing_but_the_stats() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let fake = FakeAuth0::start(
        &auth,
        vec![Bucket::hourly(10, 10, Duration::from_secs(3000))],
    )
    .await;
    let uses = support::api_counting_by_token(&api).await;
    let middleware = builder(&auth).build().unwrap();
    let client = support::client(middleware.clone());

    for _ in 0..5 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    assert_eq!(fake.issued(), 1);
    assert_eq!(uses.of("token-1"), 5);
    let stats = middleware.stats();
    assert_eq!((stats.token_requests, stats.rate_limited), (1, 0));
    let hour = stats.client_quota.unwrap().per_hour.unwrap();
    assert_eq!((hour.limit, hour.remaining), (10, 9));
    assert_eq!(stats.organization_quota, None);
}

#[tokio::test]
async fn a_bucket_running_low_is_warned_of_once() {
    let captured = logs::crate_logs();
    let auth = MockServer::start_async().await;
    let fake = FakeAuth0::start(
        &auth,
        vec![Bucket::hourly(20, 4, Duration::from_secs(3000))],
    )
    .await;
    let audience = "https://quota-warning.example/";
    let middleware = builder(&auth)
        .audience(audience)
        .quota_warning(0.1)
        .build()
        .unwrap();
    let warnings = || {
        captured
            .text()
            .lines()
            .filter(|line| line.contains("running low") && line.contains(audience))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // 3 left, then 2: not under a tenth of 20; then 1 and 0: under, warned of once.
    for left in [3, 2, 1, 0] {
        let token = middleware.token().await.unwrap();
        middleware.invalidate(&token).await;
        assert_eq!(warnings().len(), usize::from(left < 2), "{left} left");
    }

    assert_eq!(fake.issued(), 4);
    let warning = &warnings()[0];
    assert!(
        warning.contains("remaining=1") && warning.contains("limit=20"),
        "{warning}"
    );
    assert!(!warning.contains("token-"), "{warning}");
}

#[test]
fn the_warning_share_is_checked() {
    for share in [-0.1, 1.5, f64::NAN] {
        let built = ClientCredentials::builder("https://a.example/t", "id", "secret")
            .quota_warning(share)
            .build();
        assert!(built.is_err(), "{share}");
    }
}

/// 16 instances on one redis-server, an hourly quota of 3 spent and resetting in 10 seconds
/// (far longer than 16 requests take, even on a busy machine): one token call while it is
/// spent, every request refused at once with its reset, then one call for the fleet once it
/// has reset.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_on_one_redis_server_wait_for_a_spent_bucket_together() {
    let redis = crate::support::redis_server::RedisServer::start().await;
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let fake = FakeAuth0::start(&auth, vec![Bucket::hourly(3, 0, Duration::from_secs(10))]).await;
    let uses = support::api_counting_by_token(&api).await;
    let instances: Vec<ClientCredentials> = (0..16)
        .map(|_| {
            builder(&auth)
                .storage(reqwest_alf::RedisStorage::from_url(&redis.url()).unwrap())
                .build()
                .unwrap()
        })
        .collect();
    let all_at_once = |instances: &[ClientCredentials]| {
        let tasks: Vec<_> = instances
            .iter()
            .map(|instance| {
                let (client, url) = (support::client(instance.clone()), api.url("/fruits"));
                tokio::spawn(async move { client.get(url).send().await })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        }
    };

    let spent = all_at_once(&instances).await;
    let mut resets = Vec::new();
    for outcome in &spent {
        let error = outcome
            .as_ref()
            .expect_err("no token while the bucket is spent");
        let (retry_at, _) = rate_limit(alf_error(error));
        resets.push(retry_at);
    }
    assert_eq!(
        fake.refused(),
        1,
        "one token call while the bucket is spent"
    );
    assert_eq!(fake.issued(), 0);
    let reset = resets.iter().max().copied().unwrap();
    assert!(
        resets.iter().all(|at| about(*at, reset)),
        "every instance holds until the reset"
    );

    support::sleep_until(reset).await;
    let after = all_at_once(&instances).await;
    for outcome in after {
        assert_eq!(outcome.unwrap().status(), 200);
    }
    assert_eq!(
        fake.issued(),
        1,
        "one token call for the fleet after the reset"
    );
    assert_eq!(fake.refused(), 1);
    assert_eq!(uses.of("token-1"), 16);
}

#[tokio::test]
async fn a_valid_token_keeps_serving_while_the_quota_is_spent() {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let fake = FakeAuth0::start(
        &auth,
        vec![Bucket::daily(50, 0, Duration::from_secs(43_200))],
    )
    .await;
    let uses = support::api_counting_by_token(&api).await;
    // Another instance's token, in its refresh window: this one tries to refresh it ahead.
    let middleware = builder(&auth)
        .storage(support::Seeded {
            inner: reqwest_alf::MemoryStorage::new(),
            seed: support::token_in_its_refresh_window("shared"),
        })
        .build()
        .unwrap();
    let client = support::client(middleware.clone());

    // The first request reads the token from the storage; the second, from memory, finds it
    // in its refresh window and starts the refresh.
    for _ in 0..2 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    support::eventually("the refresh ahead meets the spent quota", async || {
        fake.refused() == 1
    })
    .await;
    for _ in 0..10 {
        let response = client.get(api.url("/fruits")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    assert_eq!(uses.of("shared"), 12);
    assert_eq!(
        fake.refused(),
        1,
        "not asked again while the bucket is spent"
    );
    assert_eq!(fake.issued(), 0);
    assert_eq!(middleware.stats().rate_limited, 0, "no request was refused");
}
