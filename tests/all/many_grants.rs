//! One middleware, many grants: routes by API, a grant named per request, Auth0 organizations;
//! one token per grant, each API seeing only its own; bounded slots; stacked middlewares said.

use std::sync::Arc;

use httpmock::MockServer;
use reqwest_alf::{ClientCredentials, ConfigError, Error, Grant};
use reqwest_middleware::ClientWithMiddleware;

use crate::support::issuer::{Api, Issuer, api, issuer};
use crate::support::{self, alf_error, logs};

/// The audiences of the three APIs, as the issuer and the APIs name them.
const ORDERS: &str = "orders";
const BILLING: &str = "billing";
const MEMBERS: &str = "members";
const ORGANIZATIONS: [&str; 2] = ["org_acme", "org_globex"];

/// An authorization server and three APIs on their own ports: orders, billing, and members,
/// which wants the organization of its path (`/orgs/{org}/…`).
struct World {
    auth: MockServer,
    issuer: Issuer,
    servers: [MockServer; 3],
    apis: [Api; 3],
}

impl World {
    async fn start() -> Self {
        let auth = MockServer::start_async().await;
        let issuer = issuer(&auth).await;
        let servers = [
            MockServer::start_async().await,
            MockServer::start_async().await,
            MockServer::start_async().await,
        ];
        let apis = [
            api(&servers[0], ORDERS).await,
            api(&servers[1], BILLING).await,
            api(&servers[2], MEMBERS).await,
        ];
        Self {
            auth,
            issuer,
            servers,
            apis,
        }
    }

    /// One middleware for all three: orders and billing by route, members by the grant each
    /// request names.
    fn middleware(&self) -> ClientCredentials {
        support::builder(&self.auth)
            .route(self.servers[0].base_url(), Grant::new().audience(ORDERS))
            .route(self.servers[1].base_url(), Grant::new().audience(BILLING))
            .build()
            .unwrap()
    }

    async fn get(&self, client: &ClientWithMiddleware, api: usize) -> u16 {
        let url = self.servers[api].url("/things");
        client.get(url).send().await.unwrap().status().as_u16()
    }

    async fn get_members(&self, client: &ClientWithMiddleware, org: &str) -> u16 {
        client
            .get(self.servers[2].url(format!("/orgs/{org}/members")))
            .with_extension(Grant::new().audience(MEMBERS).organization(org))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn wrong_tokens(&self) -> usize {
        self.apis.iter().map(|api| api.wrong.get()).sum()
    }
}

#[tokio::test]
async fn three_apis_and_two_organizations_through_one_middleware_get_one_token_per_grant() {
    let world = World::start().await;
    let auth = world.middleware();
    let client = support::client(auth.clone());

    for _ in 0..10 {
        assert_eq!(world.get(&client, 0).await, 200);
        assert_eq!(world.get(&client, 1).await, 200);
        for org in ORGANIZATIONS {
            assert_eq!(world.get_members(&client, org).await, 200);
        }
    }

    assert_eq!(world.wrong_tokens(), 0, "each API saw only its own tokens");
    assert_eq!(world.issuer.calls(ORDERS, None), 1);
    assert_eq!(world.issuer.calls(BILLING, None), 1);
    for org in ORGANIZATIONS {
        assert_eq!(world.issuer.calls(MEMBERS, Some(org)), 1);
    }
    assert_eq!(world.issuer.total(), 4);
    let by_grant = auth.stats_by_grant();
    let labels: Vec<&str> = by_grant.iter().map(|g| g.grant.as_str()).collect();
    assert_eq!(
        labels,
        [
            "audience=billing",
            "audience=members organization=org_acme",
            "audience=members organization=org_globex",
            "audience=orders",
        ]
    );
    assert!(by_grant.iter().all(|g| g.stats.tokens_fetched == 1));
    assert!(by_grant.iter().all(|g| g.stats.memory_hits == 9));
    assert_eq!(auth.stats().tokens_fetched, 4);
    assert_eq!(auth.stats().memory_hits, 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_to_three_grants_make_three_token_calls() {
    let world = Arc::new(World::start().await);
    let client = support::client(world.middleware());

    let mut tasks = Vec::new();
    for n in 0..60 {
        let (world, client) = (Arc::clone(&world), client.clone());
        tasks.push(tokio::spawn(async move {
            match n % 3 {
                api @ (0 | 1) => world.get(&client, api).await,
                _ => world.get_members(&client, ORGANIZATIONS[0]).await,
            }
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }

    assert_eq!(world.issuer.total(), 3);
    assert_eq!(world.wrong_tokens(), 0);
}

#[tokio::test]
async fn a_401_from_one_api_renews_only_that_grants_token() {
    let world = World::start().await;
    let client = support::client(world.middleware());
    assert_eq!(world.get(&client, 0).await, 200);
    assert_eq!(world.get(&client, 1).await, 200);

    world.apis[1].revoke("billing.-.1");
    assert_eq!(
        world.get(&client, 1).await,
        200,
        "replayed with a new token"
    );
    assert_eq!(world.get(&client, 0).await, 200);

    assert_eq!(world.issuer.calls(BILLING, None), 2);
    assert_eq!(world.issuer.calls(ORDERS, None), 1, "orders' token is kept");
}

#[tokio::test]
async fn a_request_no_route_matches_gets_no_token_unless_there_is_a_default_grant() {
    let world = World::start().await;
    let elsewhere = MockServer::start_async().await;
    let unprotected = support::api_counting_all(&elsewhere).await;
    let client = support::client(world.middleware());

    let response = client.get(elsewhere.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(unprotected.calls_async().await, 1);
    assert_eq!(world.issuer.total(), 0, "no token fetched for it");

    let with_default = support::client(
        support::builder(&world.auth)
            .route(world.servers[0].base_url(), Grant::new().audience(ORDERS))
            .default_grant(Grant::new().audience(BILLING))
            .build()
            .unwrap(),
    );
    assert_eq!(world.get(&with_default, 1).await, 200, "billing by default");
    assert_eq!(world.get(&with_default, 0).await, 200, "orders by route");
    assert_eq!(world.wrong_tokens(), 0);
}

#[tokio::test]
async fn token_for_a_grant_is_the_token_its_requests_get() {
    let world = World::start().await;
    let auth = world.middleware();
    let acme = Grant::new()
        .audience(MEMBERS)
        .organization(ORGANIZATIONS[0]);

    let token = auth.token_for(&acme).await.unwrap();
    assert_eq!(token.access_token().secret(), "members.org_acme.1");
    assert_eq!(
        world
            .get_members(&support::client(auth.clone()), ORGANIZATIONS[0])
            .await,
        200
    );
    let routed = auth
        .token_for(&Grant::new().audience(ORDERS))
        .await
        .unwrap();
    assert_eq!(routed.access_token().secret(), "orders.-.1");
    assert_eq!(world.issuer.total(), 2, "the request used the same token");

    assert!(matches!(
        auth.token().await,
        Err(Error::InvalidConfig(ConfigError::NoDefaultGrant))
    ));
}

#[tokio::test]
async fn a_grant_with_a_bad_parameter_is_a_typed_error_and_nothing_is_sent() {
    let world = World::start().await;
    let client = support::client(world.middleware());

    let error = client
        .get(world.servers[2].url("/orgs/x/members"))
        .with_extension(Grant::new().audience(MEMBERS).organization(""))
        .send()
        .await
        .unwrap_err();

    assert!(matches!(
        alf_error(&error),
        Error::InvalidConfig(ConfigError::EmptyValue("organization"))
    ));
    assert_eq!(world.issuer.total(), 0);
    assert_eq!(world.apis[2].served.get() + world.apis[2].wrong.get(), 0);
}

#[tokio::test]
async fn attach_when_sees_the_grant_a_request_names() {
    let world = World::start().await;
    let client = support::client(
        support::builder(&world.auth)
            .attach_when(|request| request.extensions().get::<Grant>().is_some())
            .route(world.servers[0].base_url(), Grant::new().audience(ORDERS))
            .build()
            .unwrap(),
    );

    assert_eq!(world.get(&client, 0).await, 401, "names no grant: no token");
    assert_eq!(world.get_members(&client, ORGANIZATIONS[1]).await, 200);
    assert_eq!(world.issuer.total(), 1);
}

#[tokio::test]
async fn thousands_of_tenants_keep_a_bounded_number_of_grants() {
    let auth = MockServer::start_async().await;
    let issuer = issuer(&auth).await;
    let middleware = support::builder(&auth)
        .audience(MEMBERS)
        .max_grants(50)
        .build()
        .unwrap();

    for tenant in 0..2_000 {
        let grant = Grant::new()
            .audience(MEMBERS)
            .organization(format!("org_{tenant}"));
        middleware.token_for(&grant).await.unwrap();
    }

    let kept = middleware.stats_by_grant();
    assert!(
        kept.len() <= 51,
        "{} grants kept: 50 named ones and the default at most",
        kept.len()
    );
    assert_eq!(issuer.total(), 2_000);
    assert_eq!(
        middleware.stats().tokens_fetched,
        2_000,
        "forgotten grants' counts stay in the total"
    );
    // The tenant named last is kept; the first was forgotten, and is fetched anew.
    let last = Grant::new().audience(MEMBERS).organization("org_1999");
    middleware.token_for(&last).await.unwrap();
    let first = Grant::new().audience(MEMBERS).organization("org_0");
    middleware.token_for(&first).await.unwrap();
    assert_eq!(issuer.calls(MEMBERS, Some("org_1999")), 1);
    assert_eq!(issuer.calls(MEMBERS, Some("org_0")), 2);
}

#[tokio::test]
async fn stacked_middlewares_that_both_give_a_token_are_said_once() {
    let captured = logs::crate_logs();
    let world = World::start().await;
    // The mistake: an outer middleware with no route or origin, in front of one for billing.
    let outer = support::builder(&world.auth)
        .audience(ORDERS)
        .build()
        .unwrap();
    let inner = support::builder(&world.auth)
        .route(world.servers[1].base_url(), Grant::new().audience(BILLING))
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(outer)
        .with(inner)
        .build();
    let before = captured.text().len();

    for _ in 0..3 {
        assert_eq!(
            world.get(&client, 1).await,
            401,
            "billing got orders' token"
        );
    }

    let logged = captured.text()[before..].to_owned();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("two ClientCredentials middlewares are stacked"))
        .filter(|line| line.contains(&world.auth.address().to_string()))
        .collect();
    assert_eq!(warnings.len(), 1, "{logged}");
    assert!(
        warnings[0].contains("outer_grant=audience=orders"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("grant=audience=billing"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn a_callers_own_authorization_is_not_taken_for_a_stacked_middleware() {
    let captured = logs::crate_logs();
    let world = World::start().await;
    let client = support::client(world.middleware());
    let before = captured.text().len();

    let response = client
        .get(world.servers[1].url("/things"))
        .bearer_auth("billing.-.mine")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(world.issuer.total(), 0);
    let logged = captured.text()[before..].to_owned();
    assert!(
        !logged.lines().any(
            |line| line.contains("stacked") && line.contains(&world.auth.address().to_string())
        ),
        "{logged}"
    );
}

/// 16 instances, each with storage of its own on one Redis (a node, or a cluster), send their
/// first requests for three grants all at once, the members API's for one organization or the
/// other: one token call per grant for the fleet, and no organization's token for the other.
#[cfg(feature = "redis")]
async fn sixteen_instances_share_one_token_per_grant(
    storage: impl Fn(usize) -> reqwest_alf::RedisStorage,
) {
    let world = Arc::new(World::start().await);
    let instances: Vec<ClientWithMiddleware> = (0..16)
        .map(|n| {
            support::client(
                support::builder(&world.auth)
                    .storage(storage(n))
                    .route(world.servers[0].base_url(), Grant::new().audience(ORDERS))
                    .route(world.servers[1].base_url(), Grant::new().audience(BILLING))
                    .build()
                    .unwrap(),
            )
        })
        .collect();

    let mut tasks = Vec::new();
    for (n, client) in instances.into_iter().enumerate() {
        for grant in 0..3 {
            let (world, client) = (Arc::clone(&world), client.clone());
            tasks.push(tokio::spawn(async move {
                match grant {
                    api @ (0 | 1) => world.get(&client, api).await,
                    _ => world.get_members(&client, ORGANIZATIONS[n % 2]).await,
                }
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }

    assert_eq!(world.issuer.calls(ORDERS, None), 1);
    assert_eq!(world.issuer.calls(BILLING, None), 1);
    for org in ORGANIZATIONS {
        assert_eq!(world.issuer.calls(MEMBERS, Some(org)), 1);
    }
    assert_eq!(world.wrong_tokens(), 0);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_on_one_redis_server_make_one_token_call_per_grant() {
    let redis = crate::support::redis_server::RedisServer::start().await;
    let url = redis.url();
    sixteen_instances_share_one_token_per_grant(|_| {
        reqwest_alf::RedisStorage::from_url(&url).unwrap()
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_on_a_redis_cluster_make_one_token_call_per_grant() {
    let cluster = crate::support::redis_cluster::RedisCluster::start().await;
    let seeds = cluster.seeds();
    sixteen_instances_share_one_token_per_grant(|n| {
        reqwest_alf::RedisStorage::cluster([&seeds[n % seeds.len()]]).unwrap()
    })
    .await;
}
