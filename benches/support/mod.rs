//! What the benches share: a local token endpoint and API, a terminal middleware that answers
//! without a network, and paired benches of two clients.

use std::hint::black_box;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use criterion::Criterion;
use reqwest_alf::{ClientCredentials, TokenStorage};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// The runtime every bench runs on: two workers, like a small service.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A middleware on the token endpoint of [`start_server`] at `addr`, keeping tokens in
/// `storage`.
pub fn credentials(addr: SocketAddr, storage: impl TokenStorage) -> ClientCredentials {
    ClientCredentials::builder(format!("http://{addr}/oauth/token"), "bench", "secret")
        .storage(storage)
        .build()
        .unwrap()
}

/// Answers every request with an empty 200, without sending it anywhere.
pub struct Answer;

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

/// Two clients whose requests end in [`Answer`], without and with a middleware on the server
/// at `addr` whose token is already fetched, and the URL to ask: the no-network pair.
#[allow(dead_code)] // Not every bench asks without a network.
pub async fn answering_pair(
    addr: SocketAddr,
) -> (ClientWithMiddleware, ClientWithMiddleware, String) {
    let auth = credentials(addr, reqwest_alf::MemoryStorage::new());
    auth.token().await.unwrap();
    let plain = ClientBuilder::new(reqwest::Client::new())
        .with(Answer)
        .build();
    let with = ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .with(Answer)
        .build();
    (plain, with, format!("http://{addr}/fruits"))
}

/// A token endpoint (bearer tokens at `/oauth/token`, DPoP ones at `/dpop/token`) and an API on
/// one loopback server.
pub async fn start_server() -> SocketAddr {
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
        .route(
            "/dpop/token",
            post(|| async {
                axum::Json(serde_json::json!({
                    "access_token": "bench-dpop-token-0123456789abcdef",
                    "token_type": "DPoP",
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

pub async fn get_fruits(client: &ClientWithMiddleware, url: &str) {
    let response = client.get(url).send().await.unwrap();
    assert!(response.status().is_success());
    black_box(response.bytes().await.unwrap());
}

/// `GET url` through each of `clients`, as benches of one group, side by side.
pub fn compare<const N: usize>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    clients: [(&str, &ClientWithMiddleware); N],
    url: &str,
) {
    let mut group = c.benchmark_group(group);
    for (name, client) in clients {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| get_fruits(client, url))
        });
    }
    group.finish();
}
