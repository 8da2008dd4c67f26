//! What a Prometheus scrape of a process using reqwest-alf shows (feature `metrics`).
//!
//! ```text
//! cargo run --example metrics --features metrics
//! ```
//!
//! Installs a Prometheus recorder (`metrics-exporter-prometheus`), sends requests through the
//! middleware to the embedded authorization server and API (a revoked token among them, so
//! that a replay shows), then prints the scrape: a `# TYPE` line per family, the fetch latency
//! as a histogram (`_bucket{` lines). Exits with status 1 if the scrape and `stats()` disagree.

// The demo's servers; their latency and timing controls are for the fleet example.
#[allow(dead_code)]
mod demo_server;

use std::process::ExitCode;
use std::time::Duration;

use demo_server::{DemoServers, RegisteredClient, SCOPE};
use metrics_exporter_prometheus::PrometheusBuilder;
use reqwest_alf::ClientCredentials;
use reqwest_middleware::ClientBuilder;

const CLIENT: RegisteredClient = RegisteredClient {
    id: "metrics-client",
    secret: "metrics-secret",
    lifetime: Duration::from_secs(3600),
};

#[tokio::main]
async fn main() -> ExitCode {
    // What an application does once: install the exporter. An HTTP listener
    // (`with_http_listener`) would serve the same text to Prometheus.
    let prometheus = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .expect("buckets")
        .install_recorder()
        .expect("the only recorder of this process");

    let servers = DemoServers::start(&[CLIENT]).await.expect("local servers");
    let auth = ClientCredentials::builder(&servers.token_url, CLIENT.id, CLIENT.secret)
        .scope(SCOPE)
        .build()
        .expect("a valid configuration");
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .build();
    let fruits = format!("{}/fruits", servers.api_url);
    for n in 0..20 {
        if n == 10 {
            servers.revoke_all();
        }
        match client.get(&fruits).send().await {
            Ok(response) if response.status().is_success() => {}
            other => {
                eprintln!("request {n} failed: {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }

    // Before rendering, so that the scrape shows the counts of this very moment (the
    // middleware publishes them once a second by itself).
    auth.record_metrics();
    let scrape = prometheus.render();
    print!("{scrape}");

    let stats = auth.stats();
    let value = |family: &str| -> f64 {
        scrape
            .lines()
            .filter(|line| line.starts_with(&format!("{family}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let checks = [
        ("alf_token_requests", stats.token_requests),
        ("alf_replays", stats.replays),
        (
            "alf_token_fetches",
            stats.tokens_fetched + stats.failed_fetches,
        ),
    ];
    let mut agree = scrape.contains("# TYPE alf_token_requests counter")
        && scrape.contains("alf_token_fetch_duration_bucket{");
    for (family, expected) in checks {
        let scraped = value(family);
        println!("# {family}: scraped {scraped}, stats() {expected}");
        agree &= scraped == expected as f64;
    }
    if agree {
        ExitCode::SUCCESS
    } else {
        eprintln!("the scrape and stats() disagree");
        ExitCode::FAILURE
    }
}
