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
//!   The two run seconds apart; where the machine is shared, `hot_path_threads` measures the
//!   same pair in alternating rounds, and its ratio is the one to compare.
//! - `cold start`: building a middleware and getting its first token from a local server.

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reqwest_alf::MemoryStorage;
use reqwest_middleware::ClientBuilder;
use support::{Answer, compare, credentials, get_fruits, runtime, start_server};

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    let addr = runtime.block_on(start_server());
    let url = format!("http://{addr}/fruits");

    let auth = credentials(addr, MemoryStorage::new());
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
    compare(
        c,
        &runtime,
        "loopback GET",
        [("plain", &plain), ("with reqwest-alf", &with_alf)],
        &url,
    );

    let plain = ClientBuilder::new(reqwest::Client::new())
        .with(Answer)
        .build();
    let with_alf = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .with(Answer)
        .build();
    compare(
        c,
        &runtime,
        "no network",
        [("plain", &plain), ("with reqwest-alf", &with_alf)],
        &url,
    );

    c.bench_function("cold start", |b| {
        b.to_async(&runtime).iter(|| async {
            let auth = credentials(addr, MemoryStorage::new());
            black_box(auth.token().await.unwrap())
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
