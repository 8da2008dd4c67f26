//! One operation in flight at a time; callers that arrive meanwhile wait for its result.
//!
//! The operation is a shared future that its callers wait on, and that a task of its own drives
//! to its end where a Tokio runtime runs: a fetch that has started stores its token and gives
//! back its refresh lease even if every caller gave up (a deadline passed, a request was
//! dropped), so the next callers find its token instead of a lease no one holds. Outside a
//! runtime its callers alone drive it, and it is dropped with the last of them. A finished
//! operation is never joined again, so a failure is reported to those who waited for it and
//! the next caller starts afresh.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};

/// At most one operation at a time; callers that come while it runs share its result.
pub(crate) struct SingleFlight<T> {
    running: Mutex<Option<WeakShared<BoxFuture<'static, T>>>>,
}

impl<T> SingleFlight<T>
where
    T: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            running: Mutex::new(None),
        }
    }

    /// Joins the operation in flight, or starts one with `start`, and waits for its result.
    pub(crate) async fn run<F>(&self, start: impl FnOnce() -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.join_or_start(start).await
    }

    /// The operation in flight, to wait for its result, if one runs.
    pub(crate) fn join(&self) -> Option<impl Future<Output = T> + use<T>> {
        in_flight(&self.running.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn join_or_start<F>(&self, start: impl FnOnce() -> F) -> Shared<BoxFuture<'static, T>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = in_flight(&running) {
            return flight;
        }
        let flight = start().boxed().shared();
        *running = flight.downgrade();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flight.clone().map(drop));
        }
        flight
    }
}

/// The flight still running, if any. A flight that nothing drives any more (outside a runtime,
/// its callers all gone) is dropped, and the weak reference no longer upgrades; a finished one
/// is not joined: its result was for those who waited.
fn in_flight<T: Clone>(
    running: &Option<WeakShared<BoxFuture<'static, T>>>,
) -> Option<Shared<BoxFuture<'static, T>>> {
    running
        .as_ref()
        .and_then(WeakShared::upgrade)
        .filter(|flight| flight.peek().is_none())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::{Barrier, oneshot};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<u32>::new());
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
                    .run(move || async move {
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
        let flights = SingleFlight::<Result<u32, String>>::new();
        let runs = AtomicUsize::new(0);
        let failing = flights
            .run(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Err("down".to_string()) }
            })
            .await;
        assert_eq!(failing, Err("down".to_string()));
        let next = flights
            .run(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok(1) }
            })
            .await;
        assert_eq!(next, Ok(1));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_others_carry_on_when_the_first_caller_gives_up() {
        let flights = Arc::new(SingleFlight::<u32>::new());
        let (release, released) = oneshot::channel::<()>();
        let (started, has_started) = oneshot::channel::<()>();

        let first = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .run(move || async move {
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
                    .run(move || async move {
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
    async fn a_flight_whose_callers_all_gave_up_runs_to_its_end() {
        let flights = Arc::new(SingleFlight::<u32>::new());
        let (started, has_started) = oneshot::channel::<()>();
        let (release, released) = oneshot::channel::<()>();
        let (finished, has_finished) = oneshot::channel::<()>();
        let abandoned = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .run(move || async move {
                        let _ = started.send(());
                        let _ = released.await;
                        let _ = finished.send(());
                        5
                    })
                    .await
            }
        });
        has_started.await.unwrap();
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());

        release.send(()).unwrap();
        has_finished
            .await
            .expect("the flight ran on without its caller");
        // Finished, it is not joined again: the next caller starts afresh.
        while flights.join().is_some() {
            tokio::task::yield_now().await;
        }
        assert_eq!(flights.run(|| async { 6 }).await, 6);
    }

    #[test]
    fn outside_a_runtime_a_flight_whose_callers_all_gave_up_is_started_afresh() {
        let flights = SingleFlight::<u32>::new();
        let abandoned = flights.run(std::future::pending::<u32>);
        let waker = futures_util::task::noop_waker();
        let mut context = std::task::Context::from_waker(&waker);
        let mut abandoned = Box::pin(abandoned);
        assert!(abandoned.as_mut().poll(&mut context).is_pending());
        drop(abandoned);
        let next = Box::pin(flights.run(|| async { 5 }))
            .as_mut()
            .poll(&mut context);
        assert_eq!(next, std::task::Poll::Ready(5));
    }
}
