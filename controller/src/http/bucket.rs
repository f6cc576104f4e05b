//! The token bucket of `/v1/verify` and `/v1/rotate`: Bitnami's GCRA in effect
//! (`burst + 1` at once, `rate` per second), plus [`TokenBucket::charge`] for work
//! that turns out to cost more than the one token its request paid.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// A token bucket: `burst + 1` tokens at most, refilled at `rate` per second.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<(f64, Option<Instant>)>,
}

impl TokenBucket {
    /// A full bucket for `rate` requests per second with `burst` extra.
    pub fn new(rate: u32, burst: u32) -> Self {
        let capacity = f64::from(burst) + 1.0;
        Self {
            capacity,
            per_second: f64::from(rate),
            state: Mutex::new((capacity, None)),
        }
    }

    /// Takes `tokens` more at time `now`, whether or not they are there: the bucket may
    /// go into debt, which later requests wait out. For work that is already admitted
    /// (one token) and turns out to cost more.
    pub fn charge(&self, tokens: usize, now: Instant) {
        if tokens == 0 {
            return;
        }
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (balance, last) = &mut *guard;
        self.refill(balance, last, now);
        *balance -= tokens as f64;
    }

    /// Takes a token at time `now`; `false` when the bucket is empty.
    pub fn try_acquire(&self, now: Instant) -> bool {
        // The state is two numbers, always consistent: a panic elsewhere cannot
        // leave it half-written, so a poisoned lock is safe to reuse.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *guard;
        self.refill(tokens, last, now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Adds what the rate gave since `last`, up to the capacity, and moves `last`.
    fn refill(&self, tokens: &mut f64, last: &mut Option<Instant>, now: Instant) {
        if let Some(last) = *last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            *tokens = (*tokens + elapsed * self.per_second).min(self.capacity);
        }
        *last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn token_bucket_refills_at_the_rate() {
        let bucket = TokenBucket::new(2, 0);
        let t0 = Instant::now();
        assert!(bucket.try_acquire(t0));
        assert!(!bucket.try_acquire(t0), "capacity is burst + 1 = 1");
        assert!(!bucket.try_acquire(t0 + Duration::from_millis(400)));
        assert!(
            bucket.try_acquire(t0 + Duration::from_millis(600)),
            "2/s refills one token in 0.5 s"
        );
        let b = TokenBucket::new(1, 3);
        let t = Instant::now();
        assert_eq!((0..6).filter(|_| b.try_acquire(t)).count(), 4);
        assert_eq!(
            (0..6)
                .filter(|_| b.try_acquire(t + Duration::from_secs(100)))
                .count(),
            4,
            "never above capacity"
        );
    }

    #[test]
    fn charged_work_is_a_debt_that_later_requests_wait_out() {
        // Only offsets from `t0` matter: the bucket never reads a clock itself.
        let bucket = TokenBucket::new(1, 1);
        let t0 = Instant::now();
        assert!(bucket.try_acquire(t0), "2 tokens, 1 left");
        bucket.charge(3, t0);
        assert!(
            !bucket.try_acquire(t0 + Duration::from_secs(2)),
            "-2 + 2 s at 1/s is 0 tokens"
        );
        assert!(bucket.try_acquire(t0 + Duration::from_secs(3)));
        bucket.charge(0, t0 + Duration::from_secs(3));
        assert!(
            !bucket.try_acquire(t0 + Duration::from_secs(3)),
            "charging nothing changes nothing"
        );
    }
}
