//! A fleet of middlewares on one Redis, under steady load, with short-lived tokens: how many
//! token calls it makes, and whether requests slow down while tokens are refreshed.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --release --example fleet --features redis
//! REDIS_CLUSTER_NODES=127.0.0.1:7000 cargo run --release --example fleet --features redis
//! REDIS_SENTINELS=127.0.0.1:26379 REDIS_MASTER_NAME=mymaster cargo run --release --example fleet --features redis
//! cargo run --release --example fleet --features redis -- --seconds 5 --instances 1,4
//! ```
//!
//! For 1, 4, 16 and 64 instances (each its own `ClientCredentials`, Redis connection and HTTP
//! client, as separate processes would have), every instance sends requests at a steady pace
//! for 20 seconds through the embedded authorization server (2-second tokens, 50 ms per token
//! request) and API. The table is printed twice: with the shared refresh lease and refresh
//! ahead on (the defaults), and with both off, which is how a cache shared without them
//! (alf, djalf) behaves. Each run uses a key prefix of its own, so it starts cold.
//!
//! Columns: requests sent; token calls the authorization server received, all of them; then,
//! leaving out the first second (the cold start): token calls per token lifetime (2 s), and
//! per refresh of a single instance (÷ the 1-instance row: 1.0 when a fleet makes as many
//! calls as one instance); requests that found no usable token in memory and waited for one;
//! request latency p50 and p99; p99 of the requests that started while a token call was in
//! flight (from 20 ms before it reached the server to 20 ms after its answer); p99 in control
//! windows as long, one second (half a lifetime) later, where no token call was in flight, and
//! the ratio of the two (the same time span on both sides, so that a hiccup of a shared machine
//! weighs alike); and p99 of all requests outside the refresh windows.
//!
//! Exits with status 1 if a request failed, and 2 if Redis cannot be reached.

// The demo's servers; this example needs fewer of their controls than the demo does.
#[allow(dead_code)]
mod demo_server;
mod redis_check;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use demo_server::{DemoServers, RegisteredClient, SCOPE};
use redis_check::RedisTarget;
use reqwest_alf::ClientCredentials;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

const CLIENT: RegisteredClient = RegisteredClient {
    id: "fleet-example",
    secret: "fleet-example-secret",
    lifetime: Duration::from_secs(2),
};
/// How long each token request takes: a real authorization server is tens of milliseconds
/// away.
const TOKEN_LATENCY: Duration = Duration::from_millis(50);
/// Expiry margin and refresh window for 2-second tokens: counted as expired 20 ms early,
/// refreshed ahead in the last 8% (160 ms) of their life, which leaves 140 ms for the token
/// request. A token refreshed ahead is replaced before it runs out, so the window sets the
/// floor of token calls per lifetime: 1 / (1 - window) for one instance.
const EXPIRY_MARGIN: Duration = Duration::from_millis(20);
const REFRESH_WINDOW: f64 = 0.08;
/// The first second of each run (the cold start, when every instance needs its first token)
/// is left out of the latency figures and of the token calls per lifetime.
const WARM_UP: Duration = Duration::from_secs(1);
/// Requests that start this close to a token call count as sent during a refresh.
const REFRESH_SLACK: Duration = Duration::from_millis(20);
/// The whole fleet sends at most this many requests a second, spread over its instances, and
/// each instance at most one every 10 ms: a load two cores can carry without queueing.
const FLEET_RATE: u32 = 1_200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Shared refresh lease and refresh ahead, the defaults.
    Fleet,
    /// Neither: every instance replaces an expired token by itself, while its requests wait.
    Plain,
}

struct Settings {
    redis: RedisTarget,
    run_time: Duration,
    fleet_sizes: Vec<usize>,
}

/// One request: when it started (since the run began), how long it took, whether it got 200.
struct Sample {
    started: Duration,
    latency: Duration,
    ok: bool,
}

struct Row {
    instances: usize,
    requests: usize,
    failed: usize,
    token_calls: usize,
    /// Token calls that arrived after the warm-up.
    steady_token_calls: usize,
    /// Requests after the warm-up that found no usable token in memory, and waited for one.
    waited: u64,
    p50: Duration,
    p99: Duration,
    p99_refreshing: Option<Duration>,
    p99_otherwise: Option<Duration>,
    p99_control: Option<Duration>,
    refreshing_requests: usize,
    control_requests: usize,
}

fn instance(
    servers: &DemoServers,
    settings: &Settings,
    prefix: &str,
    mode: Mode,
) -> (ClientCredentials, ClientWithMiddleware) {
    let storage = settings
        .redis
        .storage()
        .expect("the Redis settings were checked")
        .prefix(prefix);
    let auth = ClientCredentials::builder(&servers.token_url, CLIENT.id, CLIENT.secret)
        .audience(&servers.api_url)
        .scope(SCOPE)
        .storage(storage)
        .expiry_margin(EXPIRY_MARGIN)
        .refresh_window(REFRESH_WINDOW)
        .refresh_ahead(mode == Mode::Fleet)
        .shared_refresh_lease(mode == Mode::Fleet)
        .build()
        .expect("the example's settings are valid");
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .build();
    (auth, client)
}

/// `instances` instances sending requests for the run time; what they saw.
async fn run(settings: &Settings, mode: Mode, instances: usize) -> std::io::Result<Row> {
    let servers = DemoServers::start(&[CLIENT]).await?;
    servers.set_token_latency(TOKEN_LATENCY);
    let prefix = format!("alf-fleet:{}:", uuid_like());
    let pace =
        (Duration::from_secs(1) * instances as u32 / FLEET_RATE).max(Duration::from_millis(10));
    let url = format!("{}/fruits", servers.api_url);
    let begun = Instant::now();
    let until = begun + settings.run_time;

    let tasks: Vec<_> = (0..instances)
        .map(|_| {
            let ((auth, client), url) = (instance(&servers, settings, &prefix, mode), url.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(pace);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut samples = Vec::new();
                // Requests sent and tokens served from memory when the warm-up ended.
                let mut at_warm_up = None;
                while Instant::now() < until {
                    ticks.tick().await;
                    let started = Instant::now();
                    if at_warm_up.is_none() && started >= begun + WARM_UP {
                        at_warm_up = Some((samples.len() as u64, auth.stats().memory_hits));
                    }
                    let ok = matches!(client.get(&url).send().await, Ok(r) if r.status() == 200);
                    samples.push(Sample {
                        started: started - begun,
                        latency: started.elapsed(),
                        ok,
                    });
                }
                let (sent_before, hits_before) = at_warm_up.unwrap_or_default();
                let sent = samples.len() as u64 - sent_before;
                let waited = sent.saturating_sub(auth.stats().memory_hits - hits_before);
                (samples, waited)
            })
        })
        .collect();
    let (mut samples, mut waited) = (Vec::new(), 0);
    for task in tasks {
        let (sent, waits) = task.await.expect("a load task panicked");
        samples.extend(sent);
        waited += waits;
    }

    let token_call_times = servers.token_call_times();
    let steady_token_calls = token_call_times
        .iter()
        .filter(|(arrived, _)| *arrived >= begun + WARM_UP)
        .count();
    let refreshes: Vec<(Duration, Duration)> = token_call_times
        .into_iter()
        .map(|(arrived, answered)| {
            (
                arrived
                    .saturating_duration_since(begun)
                    .saturating_sub(REFRESH_SLACK),
                answered.saturating_duration_since(begun) + REFRESH_SLACK,
            )
        })
        .collect();
    let refreshing = |sample: &Sample| {
        refreshes
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&sample.started))
    };
    // Windows as long as the refresh windows, half a token lifetime later: as many requests as
    // in the refresh windows, over as much time, so that a hiccup of the machine weighs as much
    // on either side.
    let control = |sample: &Sample| {
        refreshes.iter().any(|(from, to)| {
            let shift = CLIENT.lifetime / 2;
            (*from + shift..=*to + shift).contains(&sample.started)
        })
    };
    let (during, outside): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .filter(|s| s.started >= WARM_UP)
        .partition(|s| refreshing(s));
    let controls: Vec<&Sample> = outside.iter().copied().filter(|s| control(s)).collect();
    let latencies = |samples: &[&Sample]| samples.iter().map(|s| s.latency).collect::<Vec<_>>();
    let all: Vec<&Sample> = samples.iter().filter(|s| s.started >= WARM_UP).collect();
    Ok(Row {
        instances,
        requests: samples.len(),
        failed: samples.iter().filter(|s| !s.ok).count(),
        token_calls: servers.token_calls(),
        steady_token_calls,
        waited,
        p50: percentile(latencies(&all), 50).unwrap_or_default(),
        p99: percentile(latencies(&all), 99).unwrap_or_default(),
        p99_refreshing: percentile(latencies(&during), 99),
        p99_otherwise: percentile(latencies(&outside), 99),
        p99_control: percentile(latencies(&controls), 99),
        refreshing_requests: during.len(),
        control_requests: controls.len(),
    })
}

fn percentile(mut values: Vec<Duration>, p: usize) -> Option<Duration> {
    values.sort_unstable();
    let last = values.len().checked_sub(1)?;
    values.get((last * p).div_ceil(100)).copied()
}

/// A key prefix no earlier run used.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}")
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn print_table(title: &str, rows: &[Row], run_time: Duration) {
    println!("\n{title}");
    println!(
        "| instances | requests | failed | token calls | per lifetime | per 1-instance refresh | waited for a token | p50 | p99 | p99 refreshing (n) | p99 control (n) | refreshing / control | p99 otherwise |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let lifetimes = run_time.saturating_sub(WARM_UP).as_secs_f64() / CLIENT.lifetime.as_secs_f64();
    let single = rows
        .iter()
        .find(|r| r.instances == 1)
        .map(|r| r.steady_token_calls);
    for row in rows {
        let per_single = single
            .filter(|calls| *calls > 0)
            .map(|calls| format!("{:.2}", row.steady_token_calls as f64 / calls as f64))
            .unwrap_or_else(|| "–".to_owned());
        let (refreshing, control) = (row.p99_refreshing, row.p99_control);
        let ratio = match (refreshing, control) {
            (Some(r), Some(o)) if !o.is_zero() => {
                format!("{:.2}", r.as_secs_f64() / o.as_secs_f64())
            }
            _ => "–".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} ({}) | {} ({}) | {} | {} |",
            row.instances,
            row.requests,
            row.failed,
            row.token_calls,
            row.steady_token_calls as f64 / lifetimes,
            per_single,
            row.waited,
            ms(row.p50),
            ms(row.p99),
            refreshing.map_or("–".to_owned(), ms),
            row.refreshing_requests,
            control.map_or("–".to_owned(), ms),
            row.control_requests,
            ratio,
            row.p99_otherwise.map_or("–".to_owned(), ms),
        );
    }
}

/// `--seconds N` and `--instances 1,4,16,64`, with those defaults.
fn settings() -> Result<Settings, String> {
    let mut settings = Settings {
        redis: RedisTarget::from_env(),
        run_time: Duration::from_secs(20),
        fleet_sizes: vec![1, 4, 16, 64],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--seconds" => {
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("--seconds {value}: not a whole number"))?;
                settings.run_time = Duration::from_secs(seconds.max(1));
            }
            "--instances" => {
                settings.fleet_sizes = value
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=1000).contains(n))
                    })
                    .collect::<Option<_>>()
                    .ok_or(format!(
                        "--instances {value}: a list like 1,4,16,64 (1 to 1000)"
                    ))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}: use --seconds N, --instances 1,4,16"
                ));
            }
        }
    }
    Ok(settings)
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = settings.redis.storage() {
        eprintln!("{}: {error}", settings.redis.variable());
        return ExitCode::from(2);
    }
    if let Err(error) = settings.redis.answers().await {
        eprintln!(
            "cannot reach Redis ({error}): start one with `redis-server`, or point REDIS_URL at \
             one, REDIS_CLUSTER_NODES at a cluster, or REDIS_SENTINELS and REDIS_MASTER_NAME at \
             Sentinel"
        );
        return ExitCode::from(2);
    }
    println!(
        "{} s per row; tokens live {} s, cost {} ms to get, count as expired {} ms early; refresh window {}% of the lifetime",
        settings.run_time.as_secs(),
        CLIENT.lifetime.as_secs(),
        TOKEN_LATENCY.as_millis(),
        EXPIRY_MARGIN.as_millis(),
        REFRESH_WINDOW * 100.0
    );

    let mut failed = 0;
    for (mode, title) in [
        (
            Mode::Fleet,
            "Shared refresh lease and refresh ahead (the defaults)",
        ),
        (
            Mode::Plain,
            "Without them (a shared cache as alf and djalf use it)",
        ),
    ] {
        let mut rows = Vec::new();
        for &instances in &settings.fleet_sizes {
            match run(&settings, mode, instances).await {
                Ok(row) => {
                    failed += row.failed;
                    rows.push(row);
                }
                Err(error) => {
                    eprintln!("could not start the demo servers: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        print_table(title, &rows, settings.run_time);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} requests failed");
        ExitCode::FAILURE
    }
}
