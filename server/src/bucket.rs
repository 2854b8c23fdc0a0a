//! A token bucket that paces instead of dropping: the caller learns how long to wait before it
//! reads more, so a delegate that sends events faster than the configured rate is slowed down by
//! backpressure (its stream is not read, HTTP/2 flow control stops it) and loses nothing.
use std::time::{Duration, Instant};

/// Events per second with a burst; taking more than is available goes into debt, which is the
/// time to wait before reading again.
#[derive(Debug)]
pub struct Bucket {
    /// Tokens added per second.
    rate: f64,
    /// Most tokens held, so an idle delegate may send this many at once.
    burst: f64,
    /// Tokens now; negative while in debt.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// `rate` per second with bursts of `burst`; `None` when `rate` is 0 (no limit).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Option<Bucket> {
        (rate > 0).then(|| Bucket {
            rate: rate as f64,
            burst: burst.max(rate) as f64,
            tokens: burst.max(rate) as f64,
            at: now,
        })
    }

    /// Takes `n` tokens; returns how long the caller must wait before taking more (zero while
    /// the bucket is not in debt).
    pub fn take(&mut self, n: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst) - n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_means_no_limit() {
        assert!(Bucket::new(0, 100, Instant::now()).is_none());
    }

    #[test]
    fn bursts_pass_then_debt_is_paid_in_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 2000, t0).unwrap();
        assert_eq!(b.take(2000, t0), Duration::ZERO, "the burst passes at once");
        // 500 more: half a second of debt.
        assert_eq!(b.take(500, t0), Duration::from_millis(500));
        // After waiting it out, the next batch owes only its own cost.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take(100, t1), Duration::from_millis(100));
        // Idle for long: refilled to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(b.take(2000, t2), Duration::ZERO);
        assert!(b.take(1, t2) > Duration::ZERO);
    }

    #[test]
    fn a_sender_paced_by_the_bucket_keeps_the_rate() {
        // A delegate sending 500-event batches as fast as it is read, for 10 simulated seconds.
        let t0 = Instant::now();
        let (rate, burst) = (20_000, 40_000);
        let mut b = Bucket::new(rate, burst, t0).unwrap();
        let (mut now, mut sent) = (t0, 0u64);
        while now < t0 + Duration::from_secs(10) {
            now += b.take(500, now);
            sent += 500;
        }
        let secs = 10.0;
        let per_sec = (sent - burst as u64) as f64 / secs;
        assert!(
            (per_sec - rate as f64).abs() < rate as f64 * 0.01,
            "{per_sec} events/s beyond the burst"
        );
    }
}
