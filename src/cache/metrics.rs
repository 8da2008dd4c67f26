//! Metrics through the `metrics` facade (feature `metrics`), off every request's path.
//!
//! Each grant's counts, fetch latency and outcome, the token's remaining lifetime, the storage
//! breaker, Auth0's token quotas. Nothing is written on the cached path: each slot already counts what it does (per
//! thread, where it is hot), and a task mirrors those counts to the recorder once a second, as absolute
//! values, with the gauges, and [`ClientCredentials::record_metrics`] does it at once. A scrape
//! therefore sees counts at most a second old, the same as `stats()`. The latency and outcome of
//! each fetch are recorded as it ends, off the request path.
//!
//! [`ClientCredentials::record_metrics`]: crate::ClientCredentials::record_metrics

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Label, Unit};

use crate::cache::{Slot, Slots};
use crate::stats::Quota;

/// How often the counts are mirrored to the recorder.
const MIRROR_INTERVAL: Duration = Duration::from_secs(1);

/// The metrics' names, as the recorder sees them (a Prometheus exporter writes `_` for `.`).
pub(crate) mod name {
    pub(crate) const TOKEN_REQUESTS: &str = "alf.token.requests";
    pub(crate) const TOKEN_FETCHES: &str = "alf.token.fetches";
    pub(crate) const TOKEN_FETCH_DURATION: &str = "alf.token.fetch.duration";
    pub(crate) const TOKENS_SERVED: &str = "alf.tokens.served";
    pub(crate) const LEASE_WAITS: &str = "alf.lease.waits";
    pub(crate) const REFRESHES_AHEAD: &str = "alf.refreshes.ahead";
    pub(crate) const REPLAYS: &str = "alf.replays";
    pub(crate) const RATE_LIMITED: &str = "alf.rate_limited";
    pub(crate) const STORAGE_ERRORS: &str = "alf.storage.errors";
    pub(crate) const TOKEN_EXPIRES_IN: &str = "alf.token.expires_in";
    pub(crate) const STORAGE_BREAKER_OPEN: &str = "alf.storage.breaker.open";
    pub(crate) const QUOTA_LIMIT: &str = "alf.token.quota.limit";
    pub(crate) const QUOTA_REMAINING: &str = "alf.token.quota.remaining";
}

/// A slot's handles, registered once with its labels.
pub(crate) struct SlotMetrics {
    labels: Vec<Label>,
    token_requests: Counter,
    served_memory: Counter,
    served_storage: Counter,
    lease_waits: Counter,
    refreshes_ahead: Counter,
    replays: Counter,
    rate_limited: Counter,
    storage_errors: Counter,
    expires_in: Gauge,
}

impl SlotMetrics {
    fn new(slot: &Slot) -> Self {
        let labels = labels_of(slot);
        let counter = |name: &'static str| metrics::counter!(name, labels.iter());
        let served = |layer: &'static str| {
            let mut labels = labels.clone();
            labels.push(Label::new("layer", layer));
            metrics::counter!(name::TOKENS_SERVED, labels.iter())
        };
        Self {
            token_requests: counter(name::TOKEN_REQUESTS),
            served_memory: served("memory"),
            served_storage: served("storage"),
            lease_waits: counter(name::LEASE_WAITS),
            refreshes_ahead: counter(name::REFRESHES_AHEAD),
            replays: counter(name::REPLAYS),
            rate_limited: counter(name::RATE_LIMITED),
            storage_errors: counter(name::STORAGE_ERRORS),
            expires_in: metrics::gauge!(name::TOKEN_EXPIRES_IN, labels.iter()),
            labels,
        }
    }
}

/// A grant's labels: the token endpoint's host, the audience and the organization (empty when
/// there is none). Never a secret: neither the client's, nor a token, nor an extra parameter.
fn labels_of(slot: &Slot) -> Vec<Label> {
    let host = slot.client.endpoint.url.host_str().unwrap_or_default();
    vec![
        Label::new("token_endpoint", host.to_owned()),
        Label::new(
            "audience",
            slot.grant.audience_param().unwrap_or_default().to_owned(),
        ),
        Label::new(
            "organization",
            slot.grant
                .organization_param()
                .unwrap_or_default()
                .to_owned(),
        ),
    ]
}

/// Records a fetch of `slot`'s that ended with `outcome` after `took`.
pub(crate) fn record_fetch(slot: &Slot, outcome: &'static str, took: Duration) {
    let handles = slot.metrics.get_or_init(|| SlotMetrics::new(slot));
    let mut labels = handles.labels.clone();
    labels.push(Label::new("outcome", outcome));
    metrics::counter!(name::TOKEN_FETCHES, labels.iter()).increment(1);
    metrics::histogram!(name::TOKEN_FETCH_DURATION, handles.labels.iter())
        .record(took.as_secs_f64());
}

/// Mirrors every slot's counts, and the gauges, to the recorder.
pub(crate) fn mirror(slots: &Slots) {
    let now = SystemTime::now();
    let client = slots.client();
    let host = client.endpoint.url.host_str().unwrap_or_default();
    for slot in slots.all() {
        let handles = slot.metrics.get_or_init(|| SlotMetrics::new(&slot));
        let stats = slot.counters.snapshot();
        handles.token_requests.absolute(stats.token_requests);
        handles.served_memory.absolute(stats.memory_hits);
        handles.served_storage.absolute(stats.shared_hits);
        handles.lease_waits.absolute(stats.lease_waits);
        handles.refreshes_ahead.absolute(stats.refreshes_ahead);
        handles.replays.absolute(stats.replays);
        handles.rate_limited.absolute(stats.rate_limited);
        handles.storage_errors.absolute(stats.storage_errors);
        handles.expires_in.set(slot.expires_in(now).as_secs_f64());
        if let (Some((quota, _)), Some(organization)) =
            (slot.organization_quota(), slot.grant.organization_param())
        {
            quota_gauges(host, "organization", organization, &quota);
        }
    }
    if let Some((quota, _)) = client.quota.last() {
        quota_gauges(host, "client", "", &quota);
    }
    let open = !client.breaker.allows(now);
    metrics::gauge!(name::STORAGE_BREAKER_OPEN, "token_endpoint" => host.to_owned())
        .set(f64::from(u8::from(open)));
}

/// The limit and the remaining tokens of each of `quota`'s buckets, labelled with the token
/// endpoint's host, whose quota it is, the organization and the bucket.
fn quota_gauges(host: &str, scope: &'static str, organization: &str, quota: &Quota) {
    for (bucket, state) in quota.buckets() {
        let labels = [
            Label::new("token_endpoint", host.to_owned()),
            Label::new("scope", scope),
            Label::new("organization", organization.to_owned()),
            Label::new("bucket", bucket),
        ];
        metrics::gauge!(name::QUOTA_LIMIT, labels.iter()).set(state.limit as f64);
        metrics::gauge!(name::QUOTA_REMAINING, labels.iter()).set(state.remaining as f64);
    }
}

/// The task that mirrors one middleware's counts once a second, started once, in the first
/// Tokio runtime that asks; it ends with the middleware.
#[derive(Debug, Default)]
pub(crate) struct Mirror {
    started: AtomicBool,
}

impl Mirror {
    /// Whether the task runs already: one relaxed load.
    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Starts the task for `slots`, if it is not running and a Tokio runtime is at hand.
    pub(crate) fn start(&self, slots: &Arc<Slots>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        describe();
        let slots = Arc::downgrade(slots);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(MIRROR_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(slots) = slots.upgrade() else { break };
                mirror(&slots);
            }
        });
    }
}

/// The metrics' units and descriptions, told to the recorder once per process.
fn describe() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(name::TOKEN_REQUESTS, Unit::Count, "Requests sent to the token endpoint, retries included: what counts against a rate limit or an Auth0 quota");
        describe_counter!(name::TOKEN_FETCHES, Unit::Count, "Token fetches (each with its retries), by outcome: fetched, refused, server_error, transport_error, rate_limited, invalid_response");
        describe_histogram!(name::TOKEN_FETCH_DURATION, Unit::Seconds, "How long a token fetch took, retries included");
        describe_counter!(name::TOKENS_SERVED, Unit::Count, "Tokens handed to requests without a fetch, by layer: memory (the in-process copy) or storage (shared)");
        describe_counter!(name::LEASE_WAITS, Unit::Count, "Times another instance held the refresh lease and this one waited for its token");
        describe_counter!(name::REFRESHES_AHEAD, Unit::Count, "Background refreshes started in a token's refresh window");
        describe_counter!(name::REPLAYS, Unit::Count, "Requests sent again with a new token after a 401");
        describe_counter!(name::RATE_LIMITED, Unit::Count, "Requests refused while the token endpoint rate limits the client");
        describe_counter!(name::STORAGE_ERRORS, Unit::Count, "Storage calls that failed (each a miss or a logged write, never a failed request)");
        describe_gauge!(name::TOKEN_EXPIRES_IN, Unit::Seconds, "Seconds until the grant's current token expires; 0 without one");
        describe_gauge!(name::STORAGE_BREAKER_OPEN, "1 while the storage is left alone after a timeout, else 0");
        describe_gauge!(name::QUOTA_LIMIT, Unit::Count, "Tokens an Auth0 token quota's bucket allows in its period, by scope (client, organization) and bucket (per_hour, per_day)");
        describe_gauge!(name::QUOTA_REMAINING, Unit::Count, "Tokens left in an Auth0 token quota's bucket, as the token endpoint last reported");
    });
}
