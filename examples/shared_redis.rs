//! Two middleware instances, as two processes would have, sharing one token through Redis.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example shared_redis --features redis
//! REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001 cargo run --example shared_redis --features redis
//! REDIS_SENTINELS=127.0.0.1:26379 REDIS_MASTER_NAME=mymaster cargo run --example shared_redis --features redis
//! ```
//!
//! Starts the embedded authorization server and API, then sends requests through instance A,
//! through instance B (its own Redis connection and HTTP client), and through instance C,
//! made after A is dropped. All three use the token A fetched: the authorization server sees
//! one token call. Exits with status 1 if it sees more, and 2 if Redis cannot be reached.

// The demo's servers; this example needs fewer of their controls than the demo does.
#[allow(dead_code)]
mod demo_server;
mod redis_check;

use std::process::ExitCode;
use std::time::Duration;

use demo_server::{DemoServers, RegisteredClient, SCOPE};
use redis_check::RedisTarget;
use reqwest_alf::ClientCredentials;
use reqwest_middleware::ClientBuilder;

const CLIENT: RegisteredClient = RegisteredClient {
    id: "shared-redis-example",
    secret: "shared-redis-example-secret",
    // Short, so the example leaves nothing behind in a shared Redis for long.
    lifetime: Duration::from_secs(120),
};

/// A middleware as a separate process would build it: its own Redis connection.
fn instance(servers: &DemoServers, redis: &RedisTarget) -> ClientCredentials {
    let storage = redis
        .storage()
        .expect("the Redis settings were checked")
        .prefix("alf-example:");
    ClientCredentials::builder(&servers.token_url, CLIENT.id, CLIENT.secret)
        .audience(&servers.api_url)
        .scope(SCOPE)
        .storage(storage)
        .build()
        .expect("the example's settings are valid")
}

/// Sends `requests` requests through `auth` with a client of its own; the statuses seen.
async fn send(auth: &ClientCredentials, servers: &DemoServers, requests: usize) -> Vec<String> {
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .build();
    let mut statuses = Vec::new();
    for _ in 0..requests {
        let status = match client
            .get(format!("{}/fruits", servers.api_url))
            .send()
            .await
        {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) => format!("error: {error}"),
        };
        statuses.push(status);
    }
    statuses
}

#[tokio::main]
async fn main() -> ExitCode {
    let redis = RedisTarget::from_env();
    if let Err(error) = redis.storage() {
        eprintln!("{}: {error}", redis.variable());
        return ExitCode::from(2);
    }
    if let Err(error) = redis.answers().await {
        eprintln!(
            "cannot reach Redis ({error}): start one with `redis-server`, or point REDIS_URL at \
             one (redis://[:password@]host:port[/db], rediss:// for TLS), REDIS_CLUSTER_NODES \
             at a cluster (host:port,host:port), or REDIS_SENTINELS (host:port,host:port) and \
             REDIS_MASTER_NAME at Sentinel"
        );
        return ExitCode::from(2);
    }
    let servers = match DemoServers::start(&[CLIENT]).await {
        Ok(servers) => servers,
        Err(error) => {
            eprintln!("could not start the demo servers: {error}");
            return ExitCode::FAILURE;
        }
    };

    let a = instance(&servers, &redis);
    let a_token = a.token().await.ok();
    let mut rows = vec![("A", send(&a, &servers, 2).await, servers.token_calls())];
    let b = instance(&servers, &redis);
    rows.push(("B", send(&b, &servers, 2).await, servers.token_calls()));
    let b_token = b.token().await.ok();
    drop(a);
    let c = instance(&servers, &redis);
    rows.push((
        "C (after A is dropped)",
        send(&c, &servers, 1).await,
        servers.token_calls(),
    ));
    let c_token = c.token().await.ok();

    println!(
        "{:<24} {:<12} {:>20}",
        "instance", "API answers", "token calls so far"
    );
    println!("{}", "-".repeat(58));
    for (name, statuses, token_calls) in &rows {
        println!("{name:<24} {:<12} {token_calls:>20}", statuses.join(","));
    }
    let same = |other: &Option<reqwest_alf::Token>| matches!((&a_token, other), (Some(a), Some(o)) if a.access_token() == o.access_token());
    println!();
    println!("B used A's token: {}", yes_no(same(&b_token)));
    println!("C used A's token: {}", yes_no(same(&c_token)));
    println!("token calls: {} (expected 1)", servers.token_calls());

    let all_ok = rows
        .iter()
        .all(|(_, statuses, _)| statuses.iter().all(|s| s == "200"));
    if all_ok && servers.token_calls() == 1 && same(&b_token) && same(&c_token) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "NO" }
}
