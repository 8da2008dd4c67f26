//! What a middleware has done, counted: [`Stats`].
//!
//! Read with [`ClientCredentials::stats`](crate::ClientCredentials::stats).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::per_thread::SpreadCount;

/// Counts of what a middleware (and its clones) has done since it was built.
///
/// Each count is read on its own, without stopping the others: a snapshot taken while requests
/// run may be a moment older in one field than in another.
///
/// # Example
/// ```
/// # async fn run(auth: reqwest_alf::ClientCredentials) {
/// let stats = auth.stats();
/// println!(
///     "{} token requests, {} requests served from memory, {} from the shared storage",
///     stats.token_requests, stats.memory_hits, stats.shared_hits
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests sent to the token endpoint, retries included: what counts against a rate limit
    /// or an Auth0 machine-to-machine quota.
    pub token_requests: u64,
    /// Tokens got from the token endpoint.
    pub tokens_fetched: u64,
    /// Fetches that ended without a token (after their retries).
    pub failed_fetches: u64,
    /// Tokens handed out from the in-process copy, with no storage call and no wait: nearly
    /// every request.
    pub memory_hits: u64,
    /// Tokens found in the storage (put there by another middleware or process, or earlier by
    /// this one) instead of fetched.
    pub shared_hits: u64,
    /// Times this middleware found another holding the refresh lease and waited for its token.
    pub lease_waits: u64,
    /// Background refreshes started because the token entered its refresh window.
    pub refreshes_ahead: u64,
    /// Requests sent again with a new token after the API answered 401.
    pub replays: u64,
    /// Requests refused with [`Error::RateLimited`](crate::Error::RateLimited) while the token
    /// endpoint was cooling down.
    pub rate_limited: u64,
    /// Storage calls that failed (each was treated as a miss or logged, never passed on).
    pub storage_errors: u64,
    /// The client's Auth0 token quota as the token endpoint last reported it
    /// (`Auth0-Client-Quota-Limit`), if it did.
    pub client_quota: Option<Quota>,
    /// The organization's Auth0 token quota as the token endpoint last reported it
    /// (`Auth0-Organization-Quota-Limit`), for a grant with an organization. In
    /// [`stats`](crate::ClientCredentials::stats), the one reported last among all grants.
    pub organization_quota: Option<Quota>,
}

/// An Auth0 token quota as the token endpoint reported it: how many tokens the client (or the
/// organization) may still get in each bucket, and when each bucket starts again.
///
/// Auth0 counts every client-credentials token it issues; with fine-grained quotas it answers
/// each token request with the state of the buckets, and a spent, enforced bucket with a 429.
///
/// # Example
/// ```
/// # fn run(auth: reqwest_alf::ClientCredentials) {
/// if let Some(day) = auth.stats().client_quota.and_then(|quota| quota.per_day) {
///     println!("{} of {} tokens left today", day.remaining, day.limit);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quota {
    /// The hourly bucket (`b=per_hour`), if reported.
    pub per_hour: Option<QuotaBucket>,
    /// The daily bucket (`b=per_day`), if reported.
    pub per_day: Option<QuotaBucket>,
}

impl Quota {
    /// The reported buckets, hourly first.
    pub fn buckets(&self) -> impl Iterator<Item = (&'static str, QuotaBucket)> {
        [("per_hour", self.per_hour), ("per_day", self.per_day)]
            .into_iter()
            .filter_map(|(name, bucket)| Some((name, bucket?)))
    }
}

/// One bucket of a [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaBucket {
    /// Tokens allowed in the bucket's period (`q`).
    pub limit: u64,
    /// Tokens left in it (`r`): at 0, the token endpoint refuses until `resets_at`.
    pub remaining: u64,
    /// When the bucket starts again (`t`, seconds from the answer).
    pub resets_at: SystemTime,
}

impl QuotaBucket {
    /// A bucket of `limit` tokens with `remaining` left, starting again at `resets_at`.
    pub(crate) fn new(limit: u64, remaining: u64, resets_at: SystemTime) -> Self {
        Self {
            limit,
            remaining,
            resets_at,
        }
    }
}

impl Stats {
    /// Both counts added, field by field.
    pub(crate) fn plus(self, other: Stats) -> Stats {
        Stats {
            token_requests: self.token_requests + other.token_requests,
            tokens_fetched: self.tokens_fetched + other.tokens_fetched,
            failed_fetches: self.failed_fetches + other.failed_fetches,
            memory_hits: self.memory_hits + other.memory_hits,
            shared_hits: self.shared_hits + other.shared_hits,
            lease_waits: self.lease_waits + other.lease_waits,
            refreshes_ahead: self.refreshes_ahead + other.refreshes_ahead,
            replays: self.replays + other.replays,
            rate_limited: self.rate_limited + other.rate_limited,
            storage_errors: self.storage_errors + other.storage_errors,
            // Quotas are not counts: the totals are given their own (`Slots::total`).
            client_quota: None,
            organization_quota: None,
        }
    }
}

/// What one grant's token has cost and served: its label and its counts. Made by
/// [`ClientCredentials::stats_by_grant`](crate::ClientCredentials::stats_by_grant).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantStats {
    /// The grant, readable: audience, resources, organization, scope (never a secret; the
    /// values of extra parameters are left out).
    pub grant: String,
    /// Its counts since its slot was made.
    pub stats: Stats,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) token_requests: AtomicU64,
    pub(crate) tokens_fetched: AtomicU64,
    pub(crate) failed_fetches: AtomicU64,
    /// Counted on nearly every request, by every thread: in a slot per thread.
    pub(crate) memory_hits: SpreadCount,
    pub(crate) shared_hits: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) refreshes_ahead: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) storage_errors: AtomicU64,
}

/// Adds one to a counter. Relaxed: counts need no ordering with anything else.
pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            token_requests: read(&self.token_requests),
            tokens_fetched: read(&self.tokens_fetched),
            failed_fetches: read(&self.failed_fetches),
            memory_hits: self.memory_hits.get(),
            shared_hits: read(&self.shared_hits),
            lease_waits: read(&self.lease_waits),
            refreshes_ahead: read(&self.refreshes_ahead),
            replays: read(&self.replays),
            rate_limited: read(&self.rate_limited),
            storage_errors: read(&self.storage_errors),
            client_quota: None,
            organization_quota: None,
        }
    }
}
