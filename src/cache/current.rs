//! The current token, in one cell every thread reads, and each thread's copy of its header.
//!
//! Which token is current is only ever read from the one `arc-swap` cell, so a thread that has
//! seen a token replaced or rejected can never read the older token again, whichever thread it
//! runs on next (invariant 3). An earlier design kept each thread's view of the token too, with
//! a version beside the cell; a reader could take its view for current while a writer stood
//! between changing the token and moving the version (see the test at the end).
//!
//! What each thread keeps is a copy of a header, named by the token it was made from: cloning
//! the token's own header writes one reference count from every core, a line that then moves
//! between cores on every request (`benches/hot_path_threads.rs` measures it). A copy is used
//! only for the very token it was made from, so it can be old but never wrong.

use std::cell::Cell;
use std::sync::Arc;

use arc_swap::{ArcSwapOption, AsRaw, Guard};
use http::HeaderValue;
use thread_local::ThreadLocal;

use crate::cache::cached_token::{CachedToken, TokenId};

/// The current token, `None` before the first fetch.
pub(crate) struct Current {
    shared: ArcSwapOption<CachedToken>,
    headers: ThreadLocal<ThreadHeader>,
    /// Called once a change is made, before the writer returns: where a test pauses a writer.
    #[cfg(test)]
    after_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Current {
    /// No token yet.
    pub(crate) fn new() -> Self {
        Self {
            shared: ArcSwapOption::empty(),
            headers: ThreadLocal::new(),
            #[cfg(test)]
            after_change: std::sync::OnceLock::new(),
        }
    }

    /// The current token, borrowed: no reference count is written, so readers on many cores do
    /// not contend for one cache line.
    pub(crate) fn load(&self) -> Guard<Option<Arc<CachedToken>>> {
        self.shared.load()
    }

    /// `token`'s `Authorization` header, from the calling thread's copy, made anew when the copy
    /// is of another token.
    pub(crate) fn header_of(&self, token: &CachedToken) -> HeaderValue {
        let copy = &self.headers.get_or_default().0;
        let header = match copy.take() {
            Some((id, header)) if id == token.id => header,
            _ => own_copy(&token.header),
        };
        copy.set(Some((token.id, header.clone())));
        header
    }

    /// The current token, as an `Arc` of its own.
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
        #[cfg(test)]
        if let Some(pause) = self.after_change.get() {
            pause();
        }
    }
}

/// One thread's copy of a token's header, and which token it is of. Alone on its cache lines
/// (two of them: Intel cores fetch lines in pairs), as only its thread writes it.
#[repr(align(128))]
#[derive(Default)]
struct ThreadHeader(Cell<Option<(TokenId, HeaderValue)>>);

/// A header of its own with `header`'s bytes, marked sensitive as `header` is.
fn own_copy(header: &HeaderValue) -> HeaderValue {
    match HeaderValue::from_bytes(header.as_bytes()) {
        Ok(mut copy) => {
            copy.set_sensitive(true);
            copy
        }
        // Bytes a header was made of make a header again; the shared one serves otherwise.
        Err(_) => header.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::cache::cached_token::Timing;
    use crate::time::UnixNanos;
    use crate::token::{AccessToken, Token};
    use std::sync::atomic::Ordering;

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

    /// The current token's secret, as the calling thread reads it, with its header.
    fn secret_read_by(current: &Current) -> Option<String> {
        let token = current.load_full()?;
        let header = current.header_of(&token);
        assert_eq!(
            header, token.header,
            "the thread's copy is of the current token"
        );
        assert!(header.is_sensitive());
        Some(token.token.access_token().secret().to_owned())
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
    fn a_thread_that_saw_a_token_rejected_never_reads_it_as_fresh_while_the_writer_is_paused() {
        use std::sync::mpsc;

        let current = Arc::new(Current::new());
        current.compare_and_swap(&None::<Arc<CachedToken>>, Some(cached("token-1")));
        assert_eq!(secret_read_by(&current).as_deref(), Some("token-1"));
        let (paused, is_paused) = mpsc::channel();
        let (resume, resumed) = mpsc::channel::<()>();
        let resumed = std::sync::Mutex::new(resumed);
        let _ = current.after_change.set(Box::new(move || {
            let _ = paused.send(());
            let _ = resumed.lock().unwrap().recv();
        }));
        let writer = std::thread::spawn({
            let current = Arc::clone(&current);
            move || {
                let seen = current.load_full();
                let marked = Arc::new(seen.as_ref().unwrap().rejected());
                current.compare_and_swap(&seen, Some(marked));
            }
        });
        is_paused.recv().unwrap();

        // This thread sees the rejection, as a task that met its own 401 does in
        // `invalidate_used`, then asks for the current token as its replay does.
        assert!(current.load().as_ref().unwrap().is_rejected());
        let now = UnixNanos::coarse_now();
        let fresh = current.load().as_ref().map(|token| token.is_fresh_at(now));

        resume.send(()).unwrap();
        writer.join().unwrap();
        assert_eq!(fresh, Some(false), "the rejected token was read as fresh");
    }
}
