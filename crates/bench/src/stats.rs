//! Latency summaries: nearest-rank percentiles over microsecond samples.

use serde::Serialize;

/// Percentiles of one set of samples, in microseconds, with the request counts behind them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Samples (successful requests, or gaps between chunks).
    pub count: usize,
    /// Requests that failed (connection error, non-200 status, timeout, bad body).
    pub errors: usize,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
}

impl Summary {
    /// Summarises `samples` (sorted in place) with `errors` failed requests.
    pub fn of(samples: &mut [u32], errors: usize) -> Summary {
        samples.sort_unstable();
        Summary {
            count: samples.len(),
            errors,
            p50_us: nearest_rank(samples, 50.0),
            p90_us: nearest_rank(samples, 90.0),
            p99_us: nearest_rank(samples, 99.0),
            max_us: samples.last().copied().unwrap_or(0),
        }
    }

    /// The `p`th percentile (50, 90 or 99), in microseconds.
    pub fn at(&self, p: u32) -> u32 {
        match p {
            50 => self.p50_us,
            90 => self.p90_us,
            99 => self.p99_us,
            _ => self.max_us,
        }
    }
}

/// The nearest-rank percentile of sorted `samples`: the smallest value with at least `p`% of the
/// samples at or below it; 0 for no samples.
pub fn nearest_rank(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let s = Summary::of(&mut v, 2);
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.max_us), (50, 90, 99, 100));
        assert_eq!((s.count, s.errors), (100, 2));
        assert_eq!(nearest_rank(&[7], 99.0), 7);
        assert_eq!(nearest_rank(&[], 50.0), 0);
        assert_eq!(nearest_rank(&[1, 2, 3], 50.0), 2);
    }
}
