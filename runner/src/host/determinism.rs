//! What a plugin sees of time and chance, made reproducible.
//!
//! - The wall clock is fixed for a whole job: every call of every module of
//!   the job reads the same instant (the job's start, or one the caller
//!   pins, as `graft validate` does), so records stamped in one job agree
//!   and a rerun with the same pinned time writes the same data.
//! - Randomness (`wasi:random`, secure and insecure, and the insecure seed)
//!   comes from a generator seeded by tenant, module release and step: the
//!   same step on the same tenant draws the same numbers, so ids a
//!   migration generates are stable across a retried job, a simulation and
//!   the real run. Migrations have no business making secrets; a plugin that
//!   needs unpredictable numbers gets none here.
//! - The monotonic clock stays real: plugins measure their own progress
//!   with it. Data derived from it is the nondeterminism `graft validate`
//!   catches.

use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::{HostWallClock, WasiCtxBuilder};

/// The clock and the seed one call runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Determinism {
    /// Time since the Unix epoch that the wall clock reads, always.
    pub wall_clock: Duration,
    pub seed: u64,
}

impl Determinism {
    /// The clock fixed at `at`, randomness seeded from `key` (for example
    /// `tenant/module-id/step`).
    pub fn new(at: SystemTime, key: &str) -> Determinism {
        let hash = Sha256::digest(key.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash[..8]);
        Determinism {
            wall_clock: at.duration_since(UNIX_EPOCH).unwrap_or_default(),
            seed: u64::from_le_bytes(seed),
        }
    }

    pub(super) fn apply(&self, wasi: &mut WasiCtxBuilder) {
        wasi.wall_clock(FixedClock(self.wall_clock))
            .secure_random(StdRng::seed_from_u64(self.seed))
            .insecure_random(StdRng::seed_from_u64(self.seed.rotate_left(32)))
            .insecure_random_seed(u128::from(self.seed) << 64 | u128::from(!self.seed));
    }
}

struct FixedClock(Duration);

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_depends_on_the_key_only() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = Determinism::new(at, "diku/mod-users-2.0.0/upgrade");
        assert_eq!(a, Determinism::new(at, "diku/mod-users-2.0.0/upgrade"));
        assert_ne!(
            a.seed,
            Determinism::new(at, "diku/mod-users-2.0.0/load-sample").seed
        );
        assert_eq!(a.wall_clock, Duration::from_secs(1_700_000_000));
    }
}
