//! A latency histogram cheap enough for hot paths: one relaxed atomic add per bucket hit, plus
//! the sum and the count. Buckets are fixed (Prometheus `le` bounds in milliseconds), so a
//! histogram is a small array of counters and never allocates after creation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds (the `+Inf` bucket is implicit).
pub const LATENCY_BUCKETS_MS: [f64; 16] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

/// The same bounds in microseconds, compared against without floating point.
const BUCKET_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Observations by bucket (not cumulative; [`LatencyHistogram::snapshot`] accumulates).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// `buckets[i]` counts observations in `(bound[i-1], bound[i]]`; the last one those above
    /// every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram read at one moment, in Prometheus's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound of [`LATENCY_BUCKETS_MS`], then `+Inf`.
    pub cumulative: [u64; LATENCY_BUCKETS_MS.len() + 1],
    pub sum_ms: f64,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKET_BOUNDS_US.iter().position(|b| us <= *b).unwrap_or(BUCKET_BOUNDS_US.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Reads the counters. The count is the total of the buckets, so `+Inf` and `_count` always
    /// agree; a concurrent observation may be in the buckets but not yet in the sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0u64; LATENCY_BUCKETS_MS.len() + 1];
        let mut running = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            running += b.load(Ordering::Relaxed);
            cumulative[i] = running;
        }
        HistogramSnapshot {
            cumulative,
            sum_ms: self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0,
            count: running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_micros(101));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[5], 3);
        assert_eq!(s.cumulative[15], 3);
        assert_eq!(s.cumulative[16], 4);
        assert_eq!(s.count, 4);
        assert!((s.sum_ms - 60_003.201).abs() < 1e-6);
    }

    #[test]
    fn bounds_agree() {
        for (ms, us) in LATENCY_BUCKETS_MS.iter().zip(BUCKET_BOUNDS_US) {
            assert_eq!((ms * 1000.0).round() as u64, us);
        }
    }
}
