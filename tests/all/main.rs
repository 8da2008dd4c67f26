//! Integration tests: one binary, a module per behaviour. HTTP is mocked with httpmock; every
//! test starts its own servers, and counts calls exactly.

mod support;

mod architecture;
mod assertion_file;
mod assertion_source;
mod attach;
#[cfg(feature = "default-tls")]
mod auth0;
mod auth0_quota;
mod caching;
mod concurrency;
#[cfg(feature = "jwt")]
mod dpop;
mod failed_fetch;
#[cfg(feature = "redis")]
mod fleet;
mod hostile_endpoint;
mod jwt_bearer;
mod many_grants;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "default-tls")]
mod mtls;
mod rate_limit;
mod readme;
mod readme_snippets;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "redis")]
mod redis_damage;
#[cfg(feature = "redis")]
mod redis_sentinel;
mod refresh_ahead;
mod replay;
mod retry;
#[cfg(feature = "redis")]
mod revocation;
mod secrets;
mod stats;
mod storage;
mod token_request;
mod token_response;
mod traces;
mod with_reqwest_retry;
