//! A token bucket per installation on the public fetch endpoint: anyone on the internet can
//! call it, so one installation's callers get a steady rate and a burst, not the server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets beyond which idle (full) ones are forgotten.
const PRUNE_AT: usize = 10_000;

/// The buckets of the installations called recently.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `rate` requests a second with bursts of `burst`; a rate of 0 admits everything.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self { rate, burst: f64::from(burst.max(1)), buckets: Default::default() }
    }

    /// Takes one token of `key`'s bucket, or says how long until one is there.
    pub fn admit(&self, key: &str) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate lock");
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, updated: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_bucket_refuses_that_key_only() {
        let limiter = RateLimiter::new(0.001, 3);
        for _ in 0..3 {
            assert!(limiter.admit("a").is_ok());
        }
        let wait = limiter.admit("a").unwrap_err();
        assert!(wait > Duration::from_secs(1), "{wait:?}");
        assert!(limiter.admit("b").is_ok());
        assert!(RateLimiter::new(0.0, 1).admit("a").is_ok());
    }
}
