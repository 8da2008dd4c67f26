//! The Lua scripts that make the lease, the cool-down and compare-and-delete one Redis step.
//!
//! Also the arguments and answers they trade.

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use redis::Script;

use crate::storage::Lease;

/// Deletes `KEYS[1]` only if it holds a token whose `access_token` is `ARGV[1]`, in one step on
/// the server. A value that is not JSON is left alone: it is a miss, and the next write replaces
/// it.
const REMOVE_IF_SAME: &str = r#"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ok, stored = pcall(cjson.decode, value)
if ok and type(stored) == 'table' and stored.access_token == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub(super) static REMOVE_IF_SAME_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(REMOVE_IF_SAME));

/// Takes (or, for the holder that has it, renews) the refresh lease `KEYS[1]` for holder
/// `ARGV[1]` for `ARGV[2]` milliseconds: 1 when it did, 0 when another holder has the lease.
/// When nobody has it and the cool-down `KEYS[2]` is set, the cool-down's value (UNIX
/// milliseconds) instead: a holder may be waiting a rate limit out, and the others wait for
/// it, but nobody takes a new lease to ask before the cool-down ends. One step, so no caller
/// slips between the checks and the lease.
const TRY_LEASE: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if not holder then
  local cooling_until = redis.call('GET', KEYS[2])
  if cooling_until then return cooling_until end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

pub(super) static TRY_LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TRY_LEASE));

/// Deletes the lease `KEYS[1]` only if holder `ARGV[1]` still has it.
const RELEASE_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

pub(super) static RELEASE_LEASE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(RELEASE_LEASE));

/// `duration` as the milliseconds of a `PX` argument: at least 1 (Redis refuses 0), at most
/// what a u64 holds.
pub(super) fn px(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The lease script's answer: 1, 0, or the cool-down's end in UNIX milliseconds.
pub(super) fn read_lease(answer: &redis::Value) -> Option<Lease> {
    match answer {
        redis::Value::Int(1) => Some(Lease::Acquired),
        redis::Value::Int(0) => Some(Lease::HeldElsewhere),
        redis::Value::BulkString(bytes) => {
            let millis: u64 = std::str::from_utf8(bytes).ok()?.trim().parse().ok()?;
            UNIX_EPOCH
                .checked_add(Duration::from_millis(millis))
                .map(Lease::CoolingDown)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_answers_are_read_and_damage_is_refused() {
        use redis::Value;
        assert_eq!(read_lease(&Value::Int(1)), Some(Lease::Acquired));
        assert_eq!(read_lease(&Value::Int(0)), Some(Lease::HeldElsewhere));
        assert_eq!(
            read_lease(&Value::BulkString(b"1700000000250".to_vec())),
            Some(Lease::CoolingDown(
                UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
            ))
        );
        for damaged in [
            Value::BulkString(b"soon".to_vec()),
            Value::BulkString(b"-5".to_vec()),
            Value::Int(7),
            Value::Nil,
        ] {
            assert_eq!(read_lease(&damaged), None, "{damaged:?}");
        }
    }
}
