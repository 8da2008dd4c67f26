//! One operation in flight per key: callers that arrive while it runs wait for its result
//! instead of starting their own.
//!
//! The operation is a shared future polled by its callers, not a spawned task: if every caller
//! gives up (their requests are dropped), it is dropped with them; if only the first caller gives
//! up, the others carry it on. A finished operation is never joined again, so a failure is
//! reported to those who waited for it and the next caller starts afresh.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};

pub(crate) struct SingleFlight<K, T> {
    flights: Mutex<HashMap<K, WeakShared<BoxFuture<'static, T>>>>,
}

impl<K, T> SingleFlight<K, T>
where
    K: Eq + Hash,
    T: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Joins the operation in flight for `key`, or starts one with `start`, and waits for its
    /// result.
    pub(crate) async fn run<F>(&self, key: K, start: impl FnOnce() -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.join_or_start(key, start).await
    }

    fn join_or_start<F>(&self, key: K, start: impl FnOnce() -> F) -> Shared<BoxFuture<'static, T>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = flights
            .get(&key)
            .and_then(WeakShared::upgrade)
            .filter(|flight| flight.peek().is_none())
        {
            return running;
        }
        // Entries whose callers have all finished or gone hold nothing but a dead weak
        // reference; clear them while the lock is held anyway.
        flights.retain(|_, flight| {
            flight
                .upgrade()
                .is_some_and(|flight| flight.peek().is_none())
        });
        let flight = start().boxed().shared();
        if let Some(weak) = flight.downgrade() {
            flights.insert(key, weak);
        }
        flight
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::{Barrier, oneshot};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<&str, u32>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let released = released.shared();
        let barrier = Arc::new(Barrier::new(101));

        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (flights, runs, released, barrier) = (
                flights.clone(),
                runs.clone(),
                released.clone(),
                barrier.clone(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                flights
                    .run("key", move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = released.await;
                        7
                    })
                    .await
            }));
        }
        barrier.wait().await;
        // A caller drops its copy of `runs` once it has joined (its closure is not called), so
        // only this test's and the running flight's remain when all 100 have joined.
        while Arc::strong_count(&runs) > 2 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_finished_run_is_not_joined_again() {
        let flights = SingleFlight::<&str, Result<u32, String>>::new();
        let runs = AtomicUsize::new(0);
        let failing = flights
            .run("key", || {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Err("down".to_string()) }
            })
            .await;
        assert_eq!(failing, Err("down".to_string()));
        let next = flights
            .run("key", || {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok(1) }
            })
            .await;
        assert_eq!(next, Ok(1));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn keys_are_independent() {
        let flights = SingleFlight::<u8, u8>::new();
        let (a, b) = tokio::join!(
            flights.run(1, || async { 1 }),
            flights.run(2, || async { 2 })
        );
        assert_eq!((a, b), (1, 2));
    }

    #[tokio::test]
    async fn the_others_carry_on_when_the_first_caller_gives_up() {
        let flights = Arc::new(SingleFlight::<&str, u32>::new());
        let (release, released) = oneshot::channel::<()>();
        let (started, has_started) = oneshot::channel::<()>();

        let first = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .run("key", move || async move {
                        let _ = started.send(());
                        let _ = released.await;
                        9
                    })
                    .await
            }
        });
        has_started.await.unwrap();
        let joined = Arc::new(());
        let second = tokio::spawn({
            let (flights, joined) = (flights.clone(), joined.clone());
            async move {
                flights
                    .run("key", move || async move {
                        drop(joined);
                        0
                    })
                    .await
            }
        });
        // The second caller drops its closure, unused, once it has joined the first's flight.
        while Arc::strong_count(&joined) > 1 {
            tokio::task::yield_now().await;
        }
        first.abort();
        let _ = first.await;
        release.send(()).unwrap();
        assert_eq!(second.await.unwrap(), 9);
    }

    #[tokio::test]
    async fn abandoned_flights_are_cleared() {
        let flights = SingleFlight::<u32, u32>::new();
        for key in 0..10 {
            flights.run(key, || async { 0 }).await;
        }
        flights.run(99, || async { 0 }).await;
        assert_eq!(flights.len(), 1);
    }
}
