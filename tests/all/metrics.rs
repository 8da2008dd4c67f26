//! Metrics (feature `metrics`) through a Prometheus recorder: the same figures as `stats()`,
//! per grant, with the fetch latency as a histogram, and no secret in any label.

use std::sync::OnceLock;

use httpmock::MockServer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reqwest_alf::{Grant, Stats};

use crate::support;

/// The process's recorder, installed once for every test of this binary.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.01, 0.1, 1.0, 10.0])
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("no other test sets a recorder");
        handle
    })
}

/// The value of the sample `family{…labels…}` in `scrape` whose labels hold every one of
/// `labels`; `None` when there is none.
fn sample(scrape: &str, family: &str, labels: &[&str]) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| line.starts_with(&format!("{family}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// A token endpoint handing out numbered tokens, an API, and an audience of the test's own
/// (named after `test` and the port): the recorder is the process's, shared by every test.
async fn servers(test: &str) -> (MockServer, MockServer, String) {
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    support::numbered_tokens(&auth, Some(3600)).await;
    support::api_counting_all(&api).await;
    let audience = format!("https://{test}-{}.example/", auth.address().port());
    (auth, api, audience)
}

#[tokio::test]
async fn a_scrape_shows_what_stats_counts_for_each_grant() {
    let handle = prometheus();
    let (auth, api, audience) = servers("metrics").await;
    let acme = Grant::new().audience(&audience).organization("org_acme");
    let middleware = support::builder(&auth)
        .audience(&audience)
        .extra_param("secret_param", support::CLIENT_SECRET)
        .build()
        .unwrap();
    let client = support::client(middleware.clone());
    for _ in 0..5 {
        client.get(api.url("/fruits")).send().await.unwrap();
    }
    client
        .get(api.url("/fruits"))
        .with_extension(acme.clone())
        .send()
        .await
        .unwrap();

    middleware.record_metrics();
    let scrape = handle.render();

    let by_grant = middleware.stats_by_grant();
    for (organization, stats) in [
        ("organization=\"\"", stat_of(&by_grant, "secret_param")),
        ("organization=\"org_acme\"", stat_of(&by_grant, "org_acme")),
    ] {
        let labels = [format!("audience=\"{audience}\""), organization.to_owned()];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let value = |family: &str, more: &[&str]| {
            let all: Vec<&str> = labels.iter().chain(more).copied().collect();
            sample(&scrape, family, &all)
                .unwrap_or_else(|| panic!("no {family} {all:?} in\n{scrape}"))
        };
        assert_eq!(
            value("alf_token_requests", &[]),
            stats.token_requests as f64
        );
        assert_eq!(
            value("alf_tokens_served", &["layer=\"memory\""]),
            stats.memory_hits as f64
        );
        assert_eq!(
            value("alf_tokens_served", &["layer=\"storage\""]),
            stats.shared_hits as f64
        );
        assert_eq!(value("alf_replays", &[]), stats.replays as f64);
        assert_eq!(
            value("alf_token_fetches", &["outcome=\"fetched\""]),
            stats.tokens_fetched as f64
        );
        assert_eq!(value("alf_token_fetch_duration_count", &[]), 1.0);
        let expires_in = value("alf_token_expires_in", &[]);
        assert!((3500.0..=3600.0).contains(&expires_in), "{expires_in}");
    }
    assert_eq!(stat_of(&by_grant, "secret_param").memory_hits, 4);
    assert!(
        scrape.contains("# TYPE alf_token_requests counter"),
        "{scrape}"
    );
    assert!(
        scrape.contains("alf_token_fetch_duration_bucket{"),
        "{scrape}"
    );
    assert!(
        !scrape.contains(support::CLIENT_SECRET),
        "a secret in\n{scrape}"
    );
    assert!(!scrape.contains("token-1"), "a token in\n{scrape}");
}

/// The stats of the grant whose label holds `part`.
fn stat_of(by_grant: &[reqwest_alf::GrantStats], part: &str) -> Stats {
    by_grant
        .iter()
        .find(|grant| grant.grant.contains(part))
        .unwrap_or_else(|| panic!("no grant with {part}"))
        .stats
}

#[tokio::test]
async fn the_counts_reach_the_recorder_by_themselves() {
    let handle = prometheus();
    let (auth, api, audience) = servers("mirrored").await;
    let client = support::client(support::builder(&auth).audience(&audience).build().unwrap());

    for _ in 0..3 {
        client.get(api.url("/fruits")).send().await.unwrap();
    }

    let served = format!("audience=\"{audience}\"");
    support::eventually("the mirror task publishes the counts", async || {
        sample(
            &handle.render(),
            "alf_tokens_served",
            &[&served, "layer=\"memory\""],
        ) == Some(2.0)
    })
    .await;
}

#[tokio::test]
async fn an_organizations_quota_is_a_pair_of_gauges_per_bucket() {
    let handle = prometheus();
    let auth = MockServer::start_async().await;
    let organization = format!("org_{}", auth.address().port());
    auth.mock_async(|when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.status(200)
            .header("content-type", "application/json")
            .header("auth0-client-quota-limit", "b=per_day;q=1000;r=900;t=600")
            .header(
                "auth0-organization-quota-limit",
                "b=per_hour;q=20;r=7;t=600,b=per_day;q=100;r=70;t=6000",
            )
            .body(support::token_json("tok", Some(3600)));
    })
    .await;
    let middleware = support::builder(&auth)
        .organization(&organization)
        .build()
        .unwrap();

    middleware.token().await.unwrap();
    middleware.record_metrics();
    let scrape = handle.render();

    let org = format!("organization=\"{organization}\"");
    let of = |family: &str, bucket: &str| {
        sample(
            &scrape,
            family,
            &[
                &org,
                "scope=\"organization\"",
                &format!("bucket=\"{bucket}\""),
            ],
        )
    };
    assert_eq!(of("alf_token_quota_remaining", "per_hour"), Some(7.0));
    assert_eq!(of("alf_token_quota_limit", "per_hour"), Some(20.0));
    assert_eq!(of("alf_token_quota_remaining", "per_day"), Some(70.0));
    assert_eq!(of("alf_token_quota_limit", "per_day"), Some(100.0));
    assert!(
        scrape.contains("alf_token_quota_remaining{") && scrape.contains("scope=\"client\""),
        "{scrape}"
    );
}
