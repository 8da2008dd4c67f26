//! `RedisStorage` against `MemoryStorage`, side by side in one run, on a `redis-server` the
//! bench starts itself on a free loopback port.
//!
//! ```text
//! cargo bench --bench redis_storage --features redis
//! ```
//!
//! - `cached request/*`: a request through the middleware with a warm cache, ending in a
//!   middleware that answers at once (no network): the in-process copy makes Redis free here
//!   (goal: memory time / Redis time ≥ 0.97).
//! - `token/warm/*`: `ClientCredentials::token()` with a warm cache.
//! - `storage read/*`: one `TokenStorage::get`, what a request pays only when the in-process
//!   copy has no fresh token (after expiry or a 401), to show what that copy saves.

mod support;

// The tests' launcher; the bench needs only part of it.
#[allow(dead_code)]
#[path = "../tests/all/support/redis_server.rs"]
mod redis_server;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use reqwest_alf::{ClientCredentials, MemoryStorage, RedisStorage, TokenStorage};
use reqwest_middleware::ClientBuilder;
use support::{Answer, compare, credentials, runtime, start_server};

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    let redis = runtime.block_on(redis_server::RedisServer::start());
    let addr = runtime.block_on(start_server());
    let url = format!("http://{addr}/fruits");

    let memory = MemoryStorage::new();
    let in_redis = RedisStorage::from_url(&redis.url()).unwrap();
    let with_memory = credentials(addr, memory.clone());
    let with_redis = credentials(addr, in_redis.clone());
    runtime.block_on(with_memory.token()).unwrap();
    runtime.block_on(with_redis.token()).unwrap();

    let client = |auth: &ClientCredentials| {
        ClientBuilder::new(reqwest::Client::new())
            .with(auth.clone())
            .with(Answer)
            .build()
    };
    let (through_memory, through_redis) = (client(&with_memory), client(&with_redis));
    compare(
        c,
        &runtime,
        "cached request",
        [
            ("MemoryStorage", &through_memory),
            ("RedisStorage", &through_redis),
        ],
        &url,
    );

    let mut group = c.benchmark_group("token/warm");
    for (name, auth) in [
        ("MemoryStorage", &with_memory),
        ("RedisStorage", &with_redis),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(auth.token().await.unwrap()) })
        });
    }
    group.finish();

    // The key the middlewares wrote, read straight from each storage.
    let key = runtime.block_on(the_only_key(&redis));
    let unprefixed = key.strip_prefix(RedisStorage::DEFAULT_PREFIX).unwrap();
    let storages: [(&str, Arc<dyn TokenStorage>); 2] = [
        ("MemoryStorage", Arc::new(memory)),
        ("RedisStorage", Arc::new(in_redis)),
    ];
    let mut group = c.benchmark_group("storage read");
    for (name, storage) in &storages {
        group.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(storage.get(unprefixed).await.unwrap().expect("a token"))
            })
        });
    }
    group.finish();
}

async fn the_only_key(redis: &redis_server::RedisServer) -> String {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis.connection().await)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().unwrap()
}

criterion_group!(redis_storage, benches);
criterion_main!(redis_storage);
