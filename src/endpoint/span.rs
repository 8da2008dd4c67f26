//! The span of one token fetch: OpenTelemetry's HTTP client fields, its attempts and outcome.
//!
//! With an OpenTelemetry subscriber (`tracing-opentelemetry`), the token `POST` is a span of its
//! own in a trace: a child of the span of the request that waited for it, or a root for a
//! background refresh. Its fields follow the semantic conventions for HTTP client spans
//! (`http.request.method`, `url.full`, `server.address`, `server.port`,
//! `http.response.status_code`, `error.type`); `alf.attempts` and `alf.outcome` are this
//! crate's. `url.full` is the token endpoint without its query: never a secret.

use tracing::{Span, field};
use url::Url;

/// A new span for a fetch from the token endpoint at `url` (`endpoint`: without its query).
pub(crate) fn fetch_span(url: &Url, endpoint: &str) -> Span {
    tracing::info_span!(
        "POST",
        otel.kind = "client",
        otel.status_code = field::Empty,
        http.request.method = "POST",
        http.response.status_code = field::Empty,
        url.full = endpoint,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().unwrap_or_default(),
        error.type = field::Empty,
        alf.attempts = field::Empty,
        alf.outcome = field::Empty,
    )
}

/// Records the status of the latest answer, on the fetch's span (the current one).
pub(crate) fn record_status(status: http::StatusCode) {
    Span::current().record("http.response.status_code", status.as_u16());
}

/// Records how the fetch ended: `outcome` (`fetched`, `rate_limited`, …), and for a failure
/// its kind, as `error.type`.
pub(crate) fn record_end(span: &Span, attempts: u32, outcome: &'static str, failed: bool) {
    span.record("alf.attempts", attempts);
    span.record("alf.outcome", outcome);
    if failed {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", outcome);
    } else {
        span.record("otel.status_code", "OK");
    }
}
