//! The warm hot path, many times over, for an instruction counter: run it under callgrind once
//! without the middleware and once with it, and divide the difference by the request count.
//!
//! ```text
//! cargo bench --bench hot_path_instructions --no-run
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* plain 100000
//! valgrind --tool=callgrind target/release/deps/hot_path_instructions-* with 100000
//! ```
//!
//! Requests end in a middleware that answers at once (no network), on a current-thread runtime:
//! what is counted is the middleware chain and this crate, not sockets or scheduling.

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use support::{answering_pair, start_server};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let mode = args.next().unwrap_or_else(|| "with".to_owned());
    let requests: u64 = args.next().map_or(100_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (plain, with, url) = answering_pair(start_server().await).await;
        let client = match mode.as_str() {
            "plain" => plain,
            "with" => with,
            other => panic!("mode is plain or with, not {other}"),
        };
        for _ in 0..requests {
            let response = client.get(&url).send().await.unwrap();
            std::hint::black_box(response);
        }
    });
}
