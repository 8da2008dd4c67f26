//! The warm hot path, many times over, for an instruction counter: run it under callgrind once
//! without the middleware and once with it, and divide the difference by the request count.
//!
//! ```text
//! cargo bench --bench hot_path_instructions --no-run
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* plain 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* with 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* token 100000
//! ```
//!
//! Requests end in a middleware that answers at once (no network), on a current-thread runtime:
//! what is counted is the middleware chain and this crate, not sockets or scheduling. `token`
//! calls `ClientCredentials::token()` with the token cached instead, and no request: the
//! difference between two counts, over the difference between their numbers, is one call.

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use reqwest_alf::MemoryStorage;
use support::{answering_pair, credentials, start_server};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let mode = args.next().unwrap_or_else(|| "with".to_owned());
    let count: u64 = args.next().map_or(100_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = start_server().await;
        if mode == "token" {
            let auth = credentials(addr, MemoryStorage::new());
            for _ in 0..count {
                std::hint::black_box(auth.token().await.unwrap());
            }
            return;
        }
        let (plain, with, url) = answering_pair(addr).await;
        let client = match mode.as_str() {
            "plain" => plain,
            "with" => with,
            other => panic!("mode is plain, with or token, not {other}"),
        };
        for _ in 0..count {
            let response = client.get(&url).send().await.unwrap();
            std::hint::black_box(response);
        }
    });
}
