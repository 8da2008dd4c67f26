//! The cost of the middleware where it matters: the cached path, a request through it, and a
//! cold start.
//!
//! ```text
//! cargo bench --bench hot_path
//! ```
//!
//! - `token/warm`: `ClientCredentials::token()` with a fresh token cached (goal: under 1 µs).
//! - `loopback GET/plain` vs `loopback GET/with reqwest-alf`: the same `reqwest_middleware`
//!   client, with and without the middleware, against one local keep-alive server (goal: the
//!   middleware adds under 2%).
//! - `no network/plain` vs `no network/with reqwest-alf`: the same pair, ending in a middleware
//!   that answers at once instead of sending: the middleware's own cost, free of network noise.
//! - `cold start`: building a middleware and getting its first token from a local server.

use std::hint::black_box;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use criterion::{Criterion, criterion_group, criterion_main};
use reqwest_alf::ClientCredentials;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// Answers every request with an empty 200, without sending it anywhere.
struct Answer;

#[async_trait::async_trait]
impl Middleware for Answer {
    async fn handle(
        &self,
        request: reqwest::Request,
        _: &mut http::Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        black_box(request);
        Ok(http::Response::new("").into())
    }
}

/// A token endpoint and an API on one loopback server.
async fn start_server() -> SocketAddr {
    let router = Router::new()
        .route(
            "/oauth/token",
            post(|| async {
                axum::Json(serde_json::json!({
                    "access_token": "bench-token-0123456789abcdef",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                }))
            }),
        )
        .route("/fruits", get(|| async { "apple,banana,cherry" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn credentials(addr: SocketAddr) -> ClientCredentials {
    ClientCredentials::builder(format!("http://{addr}/oauth/token"), "bench", "secret")
        .build()
        .unwrap()
}

async fn get_fruits(client: &ClientWithMiddleware, url: &str) {
    let response = client.get(url).send().await.unwrap();
    assert!(response.status().is_success());
    black_box(response.bytes().await.unwrap());
}

/// `GET url` through `plain` and through `with_alf`, as two benches of one group.
fn compare(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    plain: &ClientWithMiddleware,
    with_alf: &ClientWithMiddleware,
    url: &str,
) {
    let mut group = c.benchmark_group(group);
    for (name, client) in [("plain", plain), ("with reqwest-alf", with_alf)] {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| get_fruits(client, url))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(start_server());
    let url = format!("http://{addr}/fruits");

    let auth = credentials(addr);
    runtime.block_on(auth.token()).unwrap();
    c.bench_function("token/warm", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(auth.token().await.unwrap()) })
    });

    let plain = ClientBuilder::new(reqwest::Client::new()).build();
    let with_alf = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .build();
    runtime.block_on(get_fruits(&plain, &url));
    runtime.block_on(get_fruits(&with_alf, &url));
    compare(c, &runtime, "loopback GET", &plain, &with_alf, &url);

    let plain = ClientBuilder::new(reqwest::Client::new())
        .with(Answer)
        .build();
    let with_alf = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .with(Answer)
        .build();
    compare(c, &runtime, "no network", &plain, &with_alf, &url);

    c.bench_function("cold start", |b| {
        b.to_async(&runtime).iter(|| async {
            let auth = credentials(addr);
            black_box(auth.token().await.unwrap())
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
