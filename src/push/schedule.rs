//! When to push: the mode decision and the retry backoff, as pure functions.

use std::time::Duration;

use super::config::PushMode;

/// Whether to push now. `since_last_scrape` counts from the agent's start when nothing has
/// scraped yet, so a freshly started agent gives Prometheus `fallback_after` to show up.
pub fn wants_push(mode: PushMode, since_last_scrape: Duration, fallback_after: Duration) -> bool {
    match mode {
        PushMode::Always => true,
        PushMode::Fallback => since_last_scrape >= fallback_after,
    }
}

/// Shortest wait between two attempts, so an unlucky draw never makes a busy loop.
const MIN_RETRY: Duration = Duration::from_millis(50);

/// The wait before retry number `failures` (1 after the first failure): exponential from
/// `base`, capped at `cap`, with full jitter (`unit` uniform in [0, 1)), so many Pis that lost
/// the same gateway do not come back in step.
pub fn retry_delay(failures: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling.mul_f64(unit).max(MIN_RETRY.min(ceiling))
}

/// The retry schedule for a push interval: start at 1 s (or the interval, if shorter), cap at
/// four intervals: a down gateway sees about one attempt per two intervals from each Pi.
pub fn retry_bounds(interval: Duration) -> (Duration, Duration) {
    let base = interval.min(Duration::from_secs(1));
    (base, interval.saturating_mul(4).max(base))
}

/// xorshift64*: jitter needs spread, not secrecy, and no crate for it.
pub struct Jitter(u64);

impl Jitter {
    pub fn from_clock() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn fallback_pushes_only_after_silence() {
        assert!(wants_push(PushMode::Always, S(0), S(60)));
        assert!(!wants_push(PushMode::Fallback, S(59), S(60)));
        assert!(wants_push(PushMode::Fallback, S(60), S(60)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (base, cap) = (S(1), S(60));
        // Just below 1 stands for the top of the jitter range.
        let top = |n| retry_delay(n, base, cap, 0.999_999);
        assert!(top(1) > Duration::from_millis(999) && top(1) <= S(1));
        assert!(top(2) > Duration::from_millis(1999) && top(2) <= S(2));
        assert!(top(4) <= S(8) && top(4) > Duration::from_millis(7999));
        assert!(top(7) <= S(60) && top(7) > Duration::from_millis(59_999));
        assert!(top(u32::MAX) <= S(60));
        assert_eq!(retry_delay(3, base, cap, 0.5), S(2));
    }

    #[test]
    fn jitter_floor_and_bad_draws() {
        let (base, cap) = (S(1), S(60));
        assert_eq!(retry_delay(1, base, cap, 0.0), MIN_RETRY);
        assert_eq!(retry_delay(1, base, cap, f64::NAN), MIN_RETRY);
        assert_eq!(retry_delay(2, base, cap, 7.0), S(2));
        // A tiny interval keeps its own scale.
        let small = Duration::from_millis(10);
        assert_eq!(retry_delay(1, small, small, 0.0), small);
    }

    #[test]
    fn bounds_follow_the_interval() {
        assert_eq!(retry_bounds(S(15)), (S(1), S(60)));
        let half = Duration::from_millis(500);
        assert_eq!(retry_bounds(half), (half, S(2)));
    }

    #[test]
    fn jitter_is_spread_over_the_unit_interval() {
        let mut jitter = Jitter::new(42);
        let draws: Vec<f64> = (0..1000).map(|_| jitter.unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let low = draws.iter().filter(|d| **d < 0.5).count();
        assert!((400..600).contains(&low), "{low}");
    }
}
