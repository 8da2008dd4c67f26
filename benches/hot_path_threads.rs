//! The middleware shared by many tasks on a multi-thread runtime: does the cached path stay
//! cheap when every core uses it at once (shared counters, reference counts), or collapse?
//!
//! ```text
//! cargo bench --bench hot_path_threads
//! ```
//!
//! For 1, 2 and then every core's worth of tasks (and twice that), each task sends its share of
//! the requests through one client, ending in a middleware that answers at once; the table gives
//! the wall-clock time per request with and without the middleware, side by side in one run,
//! best of five rounds.

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use reqwest_middleware::ClientWithMiddleware;
use support::{answering_pair, start_server};

const REQUESTS: usize = 200_000;
const ROUNDS: usize = 5;

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (plain, with, url) = answering_pair(start_server().await).await;

        println!("{cores} cores, {REQUESTS} requests a row, best of {ROUNDS} rounds");
        println!("| tasks | plain ns/request | with reqwest-alf ns/request | with ÷ plain |");
        println!("|---:|---:|---:|---:|");
        let mut counts = vec![1, 2, cores, 2 * cores];
        counts.dedup();
        for tasks in counts {
            let (mut best_plain, mut best_with) = (Duration::MAX, Duration::MAX);
            // Rounds alternate, so that a hiccup of a shared machine weighs on both alike.
            for _ in 0..ROUNDS {
                best_plain = best_plain.min(run(&plain, &url, tasks).await);
                best_with = best_with.min(run(&with, &url, tasks).await);
            }
            let per = |d: Duration| d.as_nanos() as f64 / REQUESTS as f64;
            println!(
                "| {tasks} | {:.0} | {:.0} | {:.2} |",
                per(best_plain),
                per(best_with),
                per(best_with) / per(best_plain)
            );
        }
    });
}

/// `REQUESTS` requests through `client`, split among `tasks` tasks; how long they all took.
async fn run(client: &ClientWithMiddleware, url: &str, tasks: usize) -> Duration {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                for _ in 0..REQUESTS / tasks {
                    std::hint::black_box(client.get(&url).send().await.unwrap());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    started.elapsed()
}
