//! The warm hot path, many times over, for an instruction counter: run it under callgrind once
//! without the middleware and once with it, and divide the difference by the request count.
//!
//! ```text
//! cargo bench --bench hot_path_instructions --no-run
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* plain 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* with 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* token 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* plain-named 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* named-1 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* named-1000 100000
//! ```
//!
//! Requests end in a middleware that answers at once (no network), on a current-thread runtime:
//! what is counted is the middleware chain and this crate, not sockets or scheduling. `token`
//! calls `ClientCredentials::token()` with the token cached instead, and no request: the
//! difference between two counts, over the difference between their numbers, is one call.
//! `named-N` sends each request with a [`Grant`] of its own (an extension), cycling through N
//! grants whose tokens are cached: the cost of choosing among 1 and among 1 000 grants, over
//! `plain-named`, the same requests and extensions without the middleware.

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use reqwest_alf::{Grant, MemoryStorage};
use reqwest_middleware::ClientBuilder;
use support::{Answer, answering_pair, credentials, start_server};

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
        let grants = match mode.strip_prefix("named-") {
            Some(n) => n.parse().expect("named-N: a number of grants"),
            None => 1,
        };
        let grants: Vec<Grant> = (0..grants)
            .map(|n| Grant::new().audience(format!("https://api-{n}.example/")))
            .collect();
        let client = match mode.as_str() {
            "plain" | "plain-named" => plain,
            "with" => with,
            named if named.starts_with("named-") => {
                let auth = credentials(addr, MemoryStorage::new());
                for grant in &grants {
                    auth.token_for(grant).await.unwrap();
                }
                ClientBuilder::new(reqwest::Client::new())
                    .with(auth)
                    .with(Answer)
                    .build()
            }
            other => panic!("mode is plain, with, token, plain-named or named-N, not {other}"),
        };
        let named = mode.contains("named");
        for n in 0..count as usize {
            let request = client.get(&url);
            let request = if named {
                request.with_extension(grants[n % grants.len()].clone())
            } else {
                request
            };
            let response = request.send().await.unwrap();
            std::hint::black_box(response);
        }
    });
}
