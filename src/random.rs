//! Random numbers from the system's generator (aws-lc-rs), for values that must differ.
//!
//! Lease holders, JWT ids, where in its window each middleware refreshes. None of them is a secret: they need only be unique, or spread. Should the system's generator
//! fail, the clock, the process id and a counter still make a unique value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 128 random bits.
pub(crate) fn random_u128() -> u128 {
    let mut bytes = [0; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_ok() {
        return u128::from_be_bytes(bytes);
    }
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let unique =
        (u128::from(std::process::id()) << 64) | u128::from(COUNT.fetch_add(1, Ordering::Relaxed));
    nanos.rotate_left(64) ^ unique
}

/// 128 random bits as 32 hexadecimal digits.
pub(crate) fn random_hex() -> String {
    format!("{:032x}", random_u128())
}

/// A random fraction in [0, 1).
pub(crate) fn random_fraction() -> f64 {
    // The top 53 bits: all an f64 holds.
    (random_u128() >> 75) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_and_fractions_stay_below_one() {
        let values: std::collections::HashSet<String> = (0..1_000).map(|_| random_hex()).collect();
        assert_eq!(values.len(), 1_000);
        assert!(values.iter().all(|v| v.len() == 32));
        for _ in 0..1_000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
