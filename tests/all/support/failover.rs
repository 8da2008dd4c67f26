//! Load that runs across a Redis failover: new instances, one after another on several tasks,
//! each sending one request, as a fleet that scales out while its Redis fails over would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest_alf::{ClientCredentials, RedisStorage};
use tokio::task::JoinHandle;

use crate::support::{self, Counter};

/// Tasks sending at once.
const TASKS: usize = 4;

/// Load in the background, until [`stop`](Self::stop).
pub struct Load {
    sent: Counter,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<u16>>>,
}

impl Load {
    /// Starts [`TASKS`] tasks, each making new instances on the token endpoint `token_url`
    /// with a storage from `storage`, and sending one `GET api_url` from each.
    pub fn start(
        token_url: String,
        api_url: String,
        storage: impl Fn() -> RedisStorage + Send + Sync + 'static,
    ) -> Self {
        let (sent, stop, storage) = (
            Counter::default(),
            Arc::new(AtomicBool::new(false)),
            Arc::new(storage),
        );
        let tasks = (0..TASKS)
            .map(|_| {
                let (sent, stop, storage) = (sent.clone(), Arc::clone(&stop), storage.clone());
                let (token_url, api_url) = (token_url.clone(), api_url.clone());
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let instance = ClientCredentials::builder(
                            &token_url,
                            support::CLIENT_ID,
                            support::CLIENT_SECRET,
                        )
                        .token_retry(support::fast_retry(3))
                        .storage(storage())
                        .build()
                        .unwrap();
                        let status = support::client(instance)
                            .get(&api_url)
                            .send()
                            .await
                            .map_or(0, |response| response.status().as_u16());
                        statuses.push(status);
                        sent.bump();
                    }
                    statuses
                })
            })
            .collect();
        Self { sent, stop, tasks }
    }

    /// Waits until `more` requests have been sent since this call.
    pub async fn goes_on_for(&self, more: usize) {
        let target = self.sent.get() + more;
        support::eventually("the load to go on", async || self.sent.get() >= target).await;
    }

    /// Stops the tasks; every request's status (0 for a request that got no answer).
    pub async fn stop(self) -> Vec<u16> {
        self.stop.store(true, Ordering::SeqCst);
        let mut statuses = Vec::new();
        for task in self.tasks {
            statuses.extend(task.await.unwrap());
        }
        statuses
    }
}
