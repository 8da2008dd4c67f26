//! A count kept once per thread slot, so that requests on different cores never share a line.
//!
//! A write to a cache line another core has just written costs that core's copy: with every
//! worker of a runtime counting into one counter, the cached path would grow with the number
//! of cores instead of staying flat.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The calling thread's number. Threads take numbers in turn as they first ask and never give
/// them back, so no two threads ever share one, and a runtime's workers, started together, get
/// numbers next to each other.
fn this_thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|number| *number)
}

/// A value alone on its cache lines (two of them: Intel cores fetch lines in pairs).
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// A count that threads add to on lines of their own, read as the sum of its slots.
///
/// The first threads to count (twice as many as there are cores, 64 at most) each own a slot:
/// only that thread ever writes it, so it adds with a plain load and store, no locked
/// instruction. Threads that come later share one last slot, and add to it atomically.
#[derive(Debug)]
pub(crate) struct SpreadCount(Box<[Padded<AtomicU64>]>);

impl Default for SpreadCount {
    fn default() -> Self {
        let owned = std::thread::available_parallelism()
            .map_or(1, |cores| cores.get())
            .saturating_mul(2)
            .min(64);
        Self((0..=owned).map(|_| Padded::default()).collect())
    }
}

impl SpreadCount {
    /// Adds one in the calling thread's slot. Relaxed: counts need no ordering with anything.
    pub(crate) fn add(&self) {
        let shared = self.0.len() - 1;
        let number = this_thread_number();
        if number < shared {
            // This thread's own slot: no other thread writes it, so no add is lost.
            let slot = &self.0[number].0;
            slot.store(
                slot.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        } else {
            self.0[shared].0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count: the sum of the slots, each read on its own.
    pub(crate) fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|slot| slot.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_from_more_threads_than_slots_add_up() {
        let count = Arc::new(SpreadCount::default());
        let threads: Vec<_> = (0..2 * count.0.len())
            .map(|_| {
                let count = Arc::clone(&count);
                std::thread::spawn(move || (0..10_000).for_each(|_| count.add()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count.get(), 2 * count.0.len() as u64 * 10_000);
    }
}
