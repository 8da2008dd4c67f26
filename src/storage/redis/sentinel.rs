//! Redis behind Sentinel: the master the sentinels name, asked again after a failover.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind,
    Value,
};

/// The sentinels, and the connection to the master they named last.
pub(super) struct SentinelBackend {
    // `SentinelClient` asks through `&mut self`, and one question at a time is plenty: it is
    // asked only when there is no master yet or the last one failed.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The sentinels' addresses, for `Debug` (host and port only, never credentials).
    pub(super) addresses: Vec<String>,
    pub(super) master_name: String,
    master: Arc<Mutex<Master>>,
}

/// The connection to the master, if there is one, and how many have been made: a failure on
/// an older one must not forget a newer.
#[derive(Default)]
struct Master {
    connection: Option<MultiplexedConnection>,
    made: u64,
}

/// A connection to the master that forgets it, so that the next call asks the sentinels
/// again, when an answer says it is gone or no longer the master.
#[derive(Clone)]
pub(super) struct MasterConnection {
    connection: MultiplexedConnection,
    number: u64,
    master: Arc<Mutex<Master>>,
}

impl SentinelBackend {
    pub(super) fn new(client: SentinelClient, addresses: Vec<String>, master_name: String) -> Self {
        Self {
            sentinels: tokio::sync::Mutex::new(client),
            addresses,
            master_name,
            master: Arc::default(),
        }
    }

    /// The connection to the current master, after asking the sentinels which one that is
    /// when there is none yet; connecting and each answer bounded by `timeout`.
    pub(super) async fn connection(
        &self,
        timeout: Duration,
    ) -> Result<MasterConnection, RedisError> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another call may have found the master while this one waited for the sentinels.
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let master = sentinels.async_get_client().await?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let connection = master
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut master = lock(&self.master);
        master.made += 1;
        master.connection = Some(connection.clone());
        Ok(MasterConnection {
            connection,
            number: master.made,
            master: self.master.clone(),
        })
    }

    /// Forgets the master after a call to it got no answer in time, so that the next call
    /// asks the sentinels whether it is still the master.
    pub(super) fn forget(&self) {
        lock(&self.master).connection = None;
    }

    fn current(&self) -> Option<MasterConnection> {
        let master = lock(&self.master);
        master
            .connection
            .clone()
            .map(|connection| MasterConnection {
                connection,
                number: master.made,
                master: self.master.clone(),
            })
    }
}

fn lock(master: &Mutex<Master>) -> std::sync::MutexGuard<'_, Master> {
    // It holds plain values that no panic can leave half-written.
    master.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MasterConnection {
    /// Passes `result` on, forgetting the master first when it says the master is gone.
    fn judge<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(error) = &result
            && master_is_gone(error)
        {
            let mut master = lock(&self.master);
            // A connection made since this one is to the newer master: keep it.
            if master.made == self.number {
                master.connection = None;
            }
        }
        result
    }
}

/// Whether `error` means the connection no longer leads to a writable master: it broke, timed
/// out, or the server was demoted to a replica by a failover (`READONLY`).
fn master_is_gone(error: &RedisError) -> bool {
    error.is_unrecoverable_error()
        || error.is_io_error()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

impl ConnectionLike for MasterConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.connection.req_packed_command(cmd).await;
            self.judge(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .connection
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.judge(result)
        })
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demoted_master_a_broken_connection_and_a_timeout_send_us_back_to_the_sentinels() {
        let read_only = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        let broken = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let timed_out = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        for error in [read_only, broken, timed_out] {
            assert!(master_is_gone(&error), "{error}");
        }
        let no_script = RedisError::from((
            ErrorKind::Server(ServerErrorKind::NoPerm),
            "this user has no permissions to run the 'evalsha' command",
        ));
        assert!(!master_is_gone(&no_script));
    }
}
