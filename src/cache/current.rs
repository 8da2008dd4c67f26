//! The in-process token: one copy that every thread shares, and each thread's own view of it.
//!
//! Reading a shared `Arc` costs two locked instructions on a line every thread writes to (an
//! `arc-swap` guard is taken and given back), and so does cloning one shared header. Nearly
//! every request reads the token and nearly none changes it, so each thread keeps the `Arc` it
//! last read and a header of its own, with the version it read, and reads the shared copy again
//! only when the version has moved on: a plain load of a line that stays in every core's cache
//! until a token changes.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwapOption, AsRaw, Guard};
use http::HeaderValue;
use thread_local::ThreadLocal;

use crate::cache::cached_token::CachedToken;

/// The current token, `None` before the first fetch.
pub(crate) struct Current {
    shared: ArcSwapOption<CachedToken>,
    /// Moved on after every change of `shared`, which a thread's view then no longer matches.
    version: AtomicU64,
    views: ThreadLocal<View>,
}

/// One thread's view: the version it read and what `shared` held then. Alone on its cache lines
/// (two of them: Intel cores fetch lines in pairs), as the borrow flag is written by every read.
#[repr(align(128))]
#[derive(Default)]
struct View(RefCell<Option<(u64, Option<Local>)>>);

/// The current token as one thread sees it.
pub(crate) struct Local {
    pub(crate) token: Arc<CachedToken>,
    /// This thread's copy of the token's `Authorization` header: each request clones it, and
    /// its reference count is written by this thread alone.
    pub(crate) header: HeaderValue,
}

impl Local {
    /// `token`, with a copy of its header for the calling thread.
    fn of(token: Arc<CachedToken>) -> Self {
        let header = token.header.as_bytes();
        let header = match HeaderValue::from_bytes(header) {
            Ok(mut copy) => {
                copy.set_sensitive(true);
                copy
            }
            // Bytes a header was made of make a header again; the shared one serves otherwise.
            Err(_) => token.header.clone(),
        };
        Self { token, header }
    }
}

impl Current {
    /// No token yet, and no thread's view of it.
    pub(crate) fn new() -> Self {
        Self {
            shared: ArcSwapOption::empty(),
            version: AtomicU64::new(0),
            views: ThreadLocal::new(),
        }
    }

    /// `read` of the current token, through the calling thread's view: no locked instruction,
    /// and nothing written that another thread reads, unless the token has changed.
    pub(crate) fn read<T>(&self, read: impl FnOnce(Option<&Local>) -> T) -> T {
        // Read before `shared`: a view is never older than the version it carries.
        let version = self.version.load(Ordering::Acquire);
        let Ok(mut view) = self.views.get_or_default().0.try_borrow_mut() else {
            // Only a `read` inside `read` on one thread gets here; the shared copy still serves it.
            return read(self.shared.load_full().map(Local::of).as_ref());
        };
        match &*view {
            Some((seen, _)) if *seen == version => {}
            _ => *view = Some((version, self.shared.load_full().map(Local::of))),
        }
        read(view.as_ref().and_then(|(_, current)| current.as_ref()))
    }

    /// The current token, from the shared copy: for the paths that are about to change it.
    pub(crate) fn load(&self) -> Guard<Option<Arc<CachedToken>>> {
        self.shared.load()
    }

    /// The current token, from the shared copy, as an `Arc` of its own.
    #[cfg(test)]
    pub(crate) fn load_full(&self) -> Option<Arc<CachedToken>> {
        self.shared.load_full()
    }

    /// Makes `new` the current token if the current one is still `seen`.
    pub(crate) fn compare_and_swap<C: AsRaw<CachedToken>>(
        &self,
        seen: C,
        new: Option<Arc<CachedToken>>,
    ) {
        self.shared.compare_and_swap(seen, new);
        // After the change: a thread that reads this version finds the change in `shared`.
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::cache::cached_token::Timing;
    use crate::token::{AccessToken, Token};

    fn cached(secret: &str) -> Arc<CachedToken> {
        let now = SystemTime::now();
        let token = Token::new(AccessToken::new(secret), now, now + Duration::from_secs(60));
        let timing = Timing {
            margin: Duration::from_secs(1),
            window: None,
            spread: 0.0,
        };
        Arc::new(CachedToken::new(token, &timing).unwrap())
    }

    fn secret_read_by(current: &Current) -> Option<String> {
        current.read(|local| {
            let local = local?;
            assert_eq!(local.header, local.token.header);
            assert!(local.header.is_sensitive());
            Some(local.token.token.access_token().secret().to_owned())
        })
    }

    #[test]
    fn every_thread_sees_each_change_once_it_is_made() {
        let current = Arc::new(Current::new());
        assert_eq!(secret_read_by(&current), None);
        for secret in ["first", "second", "third"] {
            let seen = current.load_full();
            current.compare_and_swap(&seen, Some(cached(secret)));
            assert_eq!(secret_read_by(&current).as_deref(), Some(secret));
            let other = Arc::clone(&current);
            let read_elsewhere = std::thread::spawn(move || secret_read_by(&other));
            assert_eq!(read_elsewhere.join().unwrap().as_deref(), Some(secret));
        }
    }

    #[test]
    fn a_thread_that_keeps_reading_sees_the_changes_in_order_and_the_last_one() {
        const CHANGES: usize = 200;
        let current = Arc::new(Current::new());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (current, done) = (Arc::clone(&current), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut last = 0;
                    let mut reads = 0_u64;
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let seen = secret_read_by(&current).map_or(0, |s| s.parse().unwrap());
                        assert!(seen >= last, "read {seen} after {last}");
                        last = seen;
                        reads += 1;
                        if finished {
                            return (last, reads);
                        }
                    }
                })
            })
            .collect();
        for n in 1..=CHANGES {
            let seen = current.load_full();
            current.compare_and_swap(&seen, Some(cached(&n.to_string())));
        }
        done.store(true, Ordering::Release);
        for reader in readers {
            let (last, reads) = reader.join().unwrap();
            assert_eq!(last, CHANGES, "after {reads} reads");
        }
    }

    #[test]
    fn a_swap_from_a_token_no_longer_current_changes_nothing() {
        let current = Current::new();
        current.compare_and_swap(&None::<Arc<CachedToken>>, Some(cached("kept")));
        assert_eq!(secret_read_by(&current).as_deref(), Some("kept"));
        current.compare_and_swap(&None::<Arc<CachedToken>>, Some(cached("late")));
        assert_eq!(secret_read_by(&current).as_deref(), Some("kept"));
    }

    #[test]
    fn a_read_inside_a_read_is_served_too() {
        let current = Current::new();
        current.compare_and_swap(&None::<Arc<CachedToken>>, Some(cached("t")));
        let nested = current.read(|_| secret_read_by(&current));
        assert_eq!(nested.as_deref(), Some("t"));
    }
}
