//! A channel's `rate_limit`: a token bucket holding one second's worth of sends, so a burst up
//! to the limit goes at once and a longer run is paced to the limit.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces sends to `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    /// Tokens left (negative: owed by callers already waiting) and when that was computed.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket for `per_second` sends a second; `None` for 0 (unlimited).
    #[must_use]
    pub fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            state: Mutex::new((f64::from(per_second), Instant::now())),
        })
    }

    /// Waits until the caller may send. Each caller takes its token at once and sleeps off the
    /// debt, so waiters are served in call order and none is starved.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token at `now`; returns how long until it is really there.
    fn reserve(&self, now: Instant) -> Duration {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, since) = *state;
        let refilled = now.saturating_duration_since(since).as_secs_f64() * self.per_second;
        let tokens = (tokens + refilled).min(self.per_second) - 1.0;
        *state = (tokens, now);
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_is_free_then_sends_are_paced() {
        let bucket = TokenBucket::new(10).expect("limited");
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(bucket.reserve(start), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(start), Duration::from_millis(100));
        assert_eq!(bucket.reserve(start), Duration::from_millis(200));
        // A second later the debt is paid and eight tokens are back.
        let later = start + Duration::from_secs(1);
        for _ in 0..8 {
            assert_eq!(bucket.reserve(later), Duration::ZERO);
        }
        assert!(bucket.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn zero_means_unlimited() {
        assert!(TokenBucket::new(0).is_none());
    }
}
