//! Values kept once per thread slot, so that requests on different cores never share a line.
//!
//! A count, and the bytes of a header whose reference count each request touches. A write to
//! a cache line another core has just written costs that core's copy: with every worker of a
//! runtime counting into one counter, or cloning one header, the cached path grows with the
//! number of cores instead of staying flat.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use http::HeaderValue;
use http::header::InvalidHeaderValue;

/// The most copies a header has. Past this many cores threads share copies again, a sixteenth
/// as many to a line as with one header, and a token stays a few kilobytes at most.
const MAX_SLOTS: usize = 16;

/// How many copies a new header gets: the cores this process may use, rounded up to a power of
/// two, at most [`MAX_SLOTS`].
fn slot_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .next_power_of_two()
        .min(MAX_SLOTS)
}

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

/// The calling thread's slot among `count` (a power of two).
fn slot_of_this_thread(count: usize) -> usize {
    this_thread_number() & (count - 1)
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

/// One header value, copied once per slot: each copy's bytes, and the reference count a clone
/// adds to, on lines of their own.
#[derive(Clone)]
pub(crate) struct SpreadHeader(Box<[HeaderValue]>);

impl SpreadHeader {
    /// Copies of `value`, marked sensitive.
    ///
    /// # Errors
    /// When `value` is not a valid header value.
    pub(crate) fn new(value: &[u8]) -> Result<Self, InvalidHeaderValue> {
        let copies = (0..slot_count())
            .map(|_| {
                let owned = Padded(Box::<[u8]>::from(value));
                let mut copy = HeaderValue::from_maybe_shared(Bytes::from_owner(owned))?;
                copy.set_sensitive(true);
                Ok(copy)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(copies))
    }

    /// A clone of the calling thread's copy.
    pub(crate) fn get(&self) -> HeaderValue {
        self.0[slot_of_this_thread(self.0.len())].clone()
    }
}

impl AsRef<[u8]> for Padded<Box<[u8]>> {
    fn as_ref(&self) -> &[u8] {
        &self.0
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

    #[test]
    fn every_copy_of_a_header_is_the_value_and_sensitive() {
        let header = SpreadHeader::new(b"Bearer abc").unwrap();
        assert_eq!(header.0.len(), slot_count());
        for copy in header.0.iter() {
            assert_eq!(copy.as_bytes(), b"Bearer abc");
            assert!(copy.is_sensitive());
        }
        let from_another_thread = std::thread::spawn(move || header.get()).join().unwrap();
        assert_eq!(from_another_thread.as_bytes(), b"Bearer abc");
    }

    #[test]
    fn a_header_that_would_break_the_line_is_refused() {
        assert!(SpreadHeader::new(b"Bearer a\r\nb").is_err());
    }

    #[test]
    fn slots_are_a_power_of_two_and_bounded() {
        let count = slot_count();
        assert!(count.is_power_of_two() && count <= MAX_SLOTS);
        assert!(slot_of_this_thread(count) < count);
    }
}
