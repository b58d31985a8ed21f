//! Sample statistics for the timings: median and p99 (nearest rank), and the
//! way ratios are printed. Pure functions, unit-tested without a kernel.
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Summary of one method's repeated timings, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: usize,
    pub median_ms: f64,
    /// Nearest-rank 99th percentile: with fewer than 100 samples this is the
    /// maximum, which the report says.
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// `None` for an empty sample set (a skipped method).
    pub fn from_durations(samples: &[Duration]) -> Option<Self> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        Some(Summary {
            samples: ms.len(),
            median_ms: median_sorted(&ms),
            p99_ms: percentile_sorted(&ms, 99.0),
            min_ms: ms[0],
            max_ms: ms[ms.len() - 1],
        })
    }
}

/// Median of sorted, non-empty samples (mean of the middle two for even counts).
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of sorted, non-empty samples: the smallest sample
/// with at least `p` percent of the samples at or below it.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `baseline / ours`, `None` when either side is missing or ours is zero.
pub fn ratio(baseline: Option<f64>, ours: Option<f64>) -> Option<f64> {
    match (baseline, ours) {
        (Some(b), Some(o)) if o > 0.0 && b.is_finite() => Some(b / o),
        _ => None,
    }
}

/// `12.3×` for large ratios, `1.27×` below 10, `n/a` when unknown.
pub fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "n/a".to_owned(),
    }
}

/// Milliseconds with three significant-ish digits: `0.412`, `3.41`, `46.2`, `1234`.
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{ms:.0}")
    } else if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Summary::from_durations(&ms(&[5, 1, 3])).unwrap();
        assert_eq!(odd.median_ms, 3.0);
        let even = Summary::from_durations(&ms(&[4, 1, 3, 2])).unwrap();
        assert_eq!(even.median_ms, 2.5);
        assert_eq!((even.min_ms, even.max_ms, even.samples), (1.0, 4.0, 4));
    }

    #[test]
    fn p99_is_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(Summary::from_durations(&ms(&hundred)).unwrap().p99_ms, 99.0);
        let two_hundred: Vec<u64> = (1..=200).collect();
        assert_eq!(
            Summary::from_durations(&ms(&two_hundred)).unwrap().p99_ms,
            198.0
        );
        // Fewer than 100 samples: p99 is the maximum.
        assert_eq!(
            Summary::from_durations(&ms(&[1, 2, 50])).unwrap().p99_ms,
            50.0
        );
        assert_eq!(Summary::from_durations(&ms(&[7])).unwrap().p99_ms, 7.0);
    }

    #[test]
    fn empty_samples_have_no_summary() {
        assert_eq!(Summary::from_durations(&[]), None);
    }

    #[test]
    fn ratios_and_their_formatting() {
        assert_eq!(ratio(Some(46.0), Some(2.0)), Some(23.0));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(format_ratio(Some(23.04)), "23.0×");
        assert_eq!(format_ratio(Some(1.274)), "1.27×");
        assert_eq!(format_ratio(None), "n/a");
    }

    #[test]
    fn milliseconds_keep_three_digits() {
        assert_eq!(format_ms(0.41234), "0.412");
        assert_eq!(format_ms(46.234), "46.23");
        assert_eq!(format_ms(123.44), "123.4");
        assert_eq!(format_ms(1234.4), "1234");
    }
}
