//! The no-network pair, side by side in short alternating rounds, shared by 1, 2 and every
//! core's worth of tasks: the middleware's own cost on a shared machine, and whether the cached
//! path stays cheap when every core uses it at once (shared counters, reference counts) or
//! collapses.
//!
//! ```text
//! cargo bench --bench hot_path_threads
//! ```
//!
//! Each round sends a few thousand requests through the plain client and as many through the
//! client with the middleware, one right after the other (which goes first alternates), both
//! ending in a middleware that answers at once. A neighbour's load or a change of clock speed
//! then weighs on both sides of a round alike, where back-to-back criterion benches seconds
//! apart can differ by a fifth on a shared machine. The table gives medians over the rounds:
//! time per request on each side, the middleware's own time (with − plain), and with ÷ plain.
//! Then the same with each request naming its grant (an extension), among 1 and among 1 000.

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest_alf::{Grant, MemoryStorage};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{Answer, answering_pair, credentials, start_server};

/// Requests per side in a round: long enough to dwarf starting the tasks, short enough that
/// the machine does not change under a round.
const PER_ROUND: usize = 2_000;
const ROUNDS: usize = 201;

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = start_server().await;
        let (plain, with, url) = answering_pair(addr).await;
        println!("{cores} cores; {ROUNDS} rounds of {PER_ROUND} requests a side; medians");
        println!();
        println!("The default grant:");
        table(cores, &plain, &with, &url, &Arc::new(Vec::new())).await;

        // Each request names its grant (an extension), cycling through 1 or 1 000 whose tokens
        // are cached; the plain side sends the same requests, extensions and all.
        for count in [1, 1_000] {
            let grants: Vec<Grant> = (0..count)
                .map(|n| Grant::new().audience(format!("https://api-{n}.example/")))
                .collect();
            let auth = credentials(addr, MemoryStorage::new());
            for grant in &grants {
                auth.token_for(grant).await.unwrap();
            }
            let named = ClientBuilder::new(reqwest::Client::new())
                .with(auth)
                .with(Answer)
                .build();
            println!();
            println!("Each request names one of {count} grants:");
            table(cores, &plain, &named, &url, &Arc::new(grants)).await;
        }
    });
}

/// The rounds at 1, 2, every core's worth and twice that of tasks, and their table: each
/// request with the next of `grants` as an extension, when there are any.
async fn table(
    cores: usize,
    plain: &ClientWithMiddleware,
    with: &ClientWithMiddleware,
    url: &str,
    grants: &Arc<Vec<Grant>>,
) {
    println!("| tasks | plain ns/request | with reqwest-alf ns/request | own ns | with ÷ plain |");
    println!("|---:|---:|---:|---:|---:|");
    let mut counts = vec![1, 2, cores, 2 * cores];
    counts.dedup();
    for tasks in counts {
        let mut rounds = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let (plain, with) = if round % 2 == 0 {
                let plain = run(plain, url, tasks, grants).await;
                (plain, run(with, url, tasks, grants).await)
            } else {
                let with = run(with, url, tasks, grants).await;
                (run(plain, url, tasks, grants).await, with)
            };
            let per = |d: Duration| d.as_nanos() as f64 / PER_ROUND as f64;
            rounds.push((per(plain), per(with)));
        }
        let plain = median(rounds.iter().map(|r| r.0));
        let with = median(rounds.iter().map(|r| r.1));
        let own = median(rounds.iter().map(|r| r.1 - r.0));
        let ratio = median(rounds.iter().map(|r| r.1 / r.0));
        println!("| {tasks} | {plain:.0} | {with:.0} | {own:.0} | {ratio:.3} |");
    }
}

/// `PER_ROUND` requests through `client`, split among `tasks` tasks; how long they all took.
async fn run(
    client: &ClientWithMiddleware,
    url: &str,
    tasks: usize,
    grants: &Arc<Vec<Grant>>,
) -> Duration {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (client, url, grants) = (client.clone(), url.to_owned(), Arc::clone(grants));
            tokio::spawn(async move {
                for n in 0..PER_ROUND / tasks {
                    let request = client.get(&url);
                    let request = match grants.get((task * 7919 + n) % grants.len().max(1)) {
                        Some(grant) => request.with_extension(grant.clone()),
                        None => request,
                    };
                    std::hint::black_box(request.send().await.unwrap());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    started.elapsed()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
