//! One Redis call, bounded by the storage's timeout, and what can go wrong with it.

use std::future::Future;
use std::io;
use std::time::Duration;

use redis::RedisError;

use crate::storage::StorageError;
use crate::storage::redis::connection::{Backend, Connection};

/// Runs `call` on `backend`'s connection, connecting first if need be, all within `timeout`.
pub(super) async fn within_timeout<T, F, Fut>(
    backend: &Backend,
    timeout: Duration,
    operation: &'static str,
    call: F,
) -> Result<T, StorageError>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<T, RedisError>>,
{
    let within_timeout = async {
        let connection = backend.connection(timeout).await?;
        call(connection).await
    };
    let timed_out = || {
        backend.no_answer();
        RedisStorageError::Timeout {
            operation,
            timeout,
            source: io::ErrorKind::TimedOut.into(),
        }
    };
    match tokio::time::timeout(timeout, within_timeout).await {
        Ok(Ok(value)) => Ok(value),
        // redis-rs' own response timeout: the same as ours.
        Ok(Err(source)) if source.is_timeout() => Err(timed_out().into()),
        Ok(Err(source)) => Err(RedisStorageError::Redis { operation, source }.into()),
        Err(_) => Err(timed_out().into()),
    }
}

/// What went wrong with one Redis call. Never holds a token or a password.
#[derive(Debug, thiserror::Error)]
pub(super) enum RedisStorageError {
    #[error("redis {operation} failed: {source}")]
    Redis {
        operation: &'static str,
        source: RedisError,
    },
    /// An `io::Error` of kind `TimedOut` as its source tells the middleware that Redis did not
    /// answer, rather than answered with an error.
    #[error("redis {operation} did not answer within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
        source: io::Error,
    },
    #[error(
        "the value under {key} is not a token stored by reqwest-alf ({reason}); it is taken as a \
         miss and will be replaced"
    )]
    CorruptValue { key: String, reason: &'static str },
}
