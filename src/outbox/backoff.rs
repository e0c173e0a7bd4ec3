//! How long to wait before the next attempt: exponential, capped, with jitter so that the sends
//! a provider outage failed together do not all come back at the same instant.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt (before jitter).
    pub base: Duration,
    /// The longest wait between attempts.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 2 s, doubling up to 10 min: eight attempts span about four minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts: `base · 2^(attempts-1)`, capped, then a random
    /// point in its upper half ("equal jitter": never less than half, so waits still grow).
    #[must_use]
    pub fn after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1 << doublings).min(self.cap);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_jitter_and_stop_at_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
        };
        for (attempts, full) in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let wait = backoff.after(attempts);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "attempt {attempts}: {wait:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }
}
