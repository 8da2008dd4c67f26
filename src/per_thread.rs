//! A count kept once per thread, so that requests on different cores never write one line.
//!
//! A write to a cache line another core has just written costs that core's copy: with every
//! worker of a runtime counting into one counter, the cached path would grow with the number
//! of cores instead of staying flat.

use std::sync::atomic::{AtomicU64, Ordering};

use thread_local::ThreadLocal;

/// A value alone on its cache lines (two of them: Intel cores fetch lines in pairs).
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// A count that each thread adds to on lines of its own, read as the sum of its threads'.
#[derive(Debug, Default)]
pub(crate) struct SpreadCount(ThreadLocal<Padded<AtomicU64>>);

impl SpreadCount {
    /// Adds one in the calling thread's count. Only this thread writes it, so a plain load and
    /// store lose nothing and need no locked instruction; relaxed, as counts order nothing.
    pub(crate) fn add(&self) {
        let count = &self.0.get_or_default().0;
        count.store(
            count.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The count: the sum of the threads' counts, each read on its own.
    pub(crate) fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|count| count.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_from_many_threads_add_up() {
        const THREADS: u64 = 64;
        let count = Arc::new(SpreadCount::default());
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let count = Arc::clone(&count);
                std::thread::spawn(move || (0..10_000).for_each(|_| count.add()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count.get(), THREADS * 10_000);
    }
}
