//! The storage's circuit breaker: after a timeout, the storage is left alone until it answers.
//!
//! A storage that does not answer (a hung Redis) would cost every storage call of a fetch its
//! whole timeout: the read, the lease and the write. Once one call times out, the breaker
//! opens: the rest of that fetch, and the fetches after it, go without the storage, and a
//! probe in the background (one read a second) closes it again when the storage answers.
//! Outside a Tokio runtime there is no background: the breaker then lets one call through a
//! second after it opened, and opens again if that one times out too.

use std::error::Error as StdError;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use crate::storage::{StorageError, StorageKey, TokenStorage};
use crate::time::unix_millis;

/// How long the storage is left alone before it is asked again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// `closed_from` while a probe runs: the storage stays alone until the probe says otherwise.
const UNTIL_PROBED: u64 = u64::MAX;

/// Whether the storage may be used; shared by a middleware, its clones and its probe.
#[derive(Debug, Default)]
pub(crate) struct StorageBreaker {
    /// UNIX milliseconds from which the storage may be used again; 0 while it is in use.
    closed_from: AtomicU64,
    probing: AtomicBool,
}

impl StorageBreaker {
    /// Whether a storage call may be made at `now`.
    pub(crate) fn allows(&self, now: SystemTime) -> bool {
        unix_millis(now) >= self.closed_from.load(Ordering::Relaxed)
    }

    /// Opens the breaker after a call timed out, and starts the probe that will close it.
    /// True when the storage was in use until now: the first timeout of an outage.
    pub(crate) fn open(
        self: &Arc<Self>,
        storage: &Arc<dyn TokenStorage>,
        key: &StorageKey,
        now: SystemTime,
    ) -> bool {
        let probed = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.probing.swap(true, Ordering::AcqRel) => {
                let probe = probe(Arc::downgrade(self), Arc::clone(storage), key.clone());
                runtime.spawn(probe);
                true
            }
            // A probe runs already, and will close the breaker.
            Ok(_) => true,
            Err(_) => false,
        };
        let closed_from = if probed {
            UNTIL_PROBED
        } else {
            unix_millis(now + PROBE_INTERVAL)
        };
        self.closed_from.swap(closed_from, Ordering::AcqRel) == 0
    }

    fn close(&self) {
        self.closed_from.store(0, Ordering::Release);
    }
}

/// Reads `key` every [`PROBE_INTERVAL`] until the storage answers (a value, a miss, or an
/// error that is not a timeout), then closes the breaker. Ends early when the middleware is
/// gone.
async fn probe(breaker: Weak<StorageBreaker>, storage: Arc<dyn TokenStorage>, key: StorageKey) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if breaker.strong_count() == 0 {
            return;
        }
        let answered = match storage.get(key.as_str()).await {
            Ok(_) => true,
            Err(error) => !is_timeout(&error),
        };
        let Some(breaker) = breaker.upgrade() else {
            return;
        };
        if answered {
            tracing::debug!(key = %key, "the token storage answers again; using it");
            breaker.probing.store(false, Ordering::Release);
            breaker.close();
            return;
        }
    }
}

/// Whether a storage error says the storage did not answer in time: an [`io::Error`] of kind
/// [`TimedOut`](io::ErrorKind::TimedOut) in its chain of sources. A storage that answered, even
/// with damage or a refusal, is not one to leave alone.
pub(crate) fn is_timeout(error: &StorageError) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error.as_ref());
    while let Some(error) = current {
        if error
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the storage did not answer")]
    struct Wrapped(#[source] io::Error);

    /// A closed breaker, and a storage that answers for its probe.
    fn closed_breaker() -> (Arc<StorageBreaker>, Arc<dyn TokenStorage>, StorageKey) {
        let url = url::Url::parse("https://a.example/t").unwrap();
        (
            Arc::default(),
            Arc::new(crate::MemoryStorage::new()),
            StorageKey::new(
                &url,
                "id",
                &crate::grant::Grant::new(),
                crate::storage::KeyParts::default(),
            ),
        )
    }

    #[test]
    fn timeouts_are_found_anywhere_in_the_chain() {
        let direct: StorageError = Box::new(io::Error::from(io::ErrorKind::TimedOut));
        let wrapped: StorageError = Box::new(Wrapped(io::Error::from(io::ErrorKind::TimedOut)));
        assert!(is_timeout(&direct));
        assert!(is_timeout(&wrapped));
        let refused: StorageError = Box::new(Wrapped(io::ErrorKind::ConnectionRefused.into()));
        let damaged: StorageError = "the value is not a token".into();
        assert!(!is_timeout(&refused));
        assert!(!is_timeout(&damaged));
    }

    #[test]
    fn outside_a_runtime_the_storage_is_tried_again_a_probe_interval_later() {
        let (breaker, storage, key) = closed_breaker();
        let now = SystemTime::now();
        assert!(breaker.allows(now));
        assert!(
            breaker.open(&storage, &key, now),
            "the first timeout of an outage"
        );
        assert!(!breaker.allows(now));
        assert!(!breaker.allows(now + PROBE_INTERVAL - Duration::from_millis(1)));
        assert!(breaker.allows(now + PROBE_INTERVAL));
        assert!(!breaker.open(&storage, &key, now), "the same outage");
    }

    #[tokio::test]
    async fn in_a_runtime_a_probe_closes_it_once_the_storage_answers() {
        let (breaker, storage, key) = closed_breaker();
        let now = SystemTime::now();
        assert!(breaker.open(&storage, &key, now));
        assert!(
            !breaker.allows(now + Duration::from_secs(3600)),
            "open until probed"
        );
        tokio::time::pause();
        for _ in 0..3 {
            tokio::time::advance(PROBE_INTERVAL).await;
            tokio::task::yield_now().await;
        }
        assert!(breaker.allows(SystemTime::now()), "closed by the probe");
        assert!(!breaker.probing.load(Ordering::Acquire));
    }
}
