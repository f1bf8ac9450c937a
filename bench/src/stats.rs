//! Statistics for benchmark samples: median, a distribution-free 95%
//! confidence interval for the median, and ratios of paired samples.
//!
//! Benchmark timings are skewed and have outliers, so the mean and a normal
//! interval would mislead. The interval used here comes from order
//! statistics: for `n` samples, `[x(k), x(n-k+1)]` covers the true median
//! with probability `1 - 2·P(B ≤ k-1)`, `B ~ Binomial(n, 1/2)`, whatever the
//! distribution. The achieved coverage is reported because with few samples
//! it cannot be exactly 95%.

use serde::{Deserialize, Serialize};

/// The confidence level isolab aims for.
pub const CONFIDENCE: f64 = 0.95;

/// Summary of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Lower end of the confidence interval for the median.
    pub ci_low: f64,
    /// Upper end of the confidence interval for the median.
    pub ci_high: f64,
    /// Coverage the interval actually achieves (≥ 0.95 once `n ≥ 6`; less below).
    pub ci_level: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean (for reference only; the median is the headline).
    pub mean: f64,
}

impl Summary {
    /// Half-width of the interval relative to the median, e.g. 0.03 for ±3%.
    /// `None` when the median is 0.
    pub fn relative_half_width(&self) -> Option<f64> {
        (self.median != 0.0).then(|| (self.ci_high - self.ci_low) / 2.0 / self.median.abs())
    }

    /// Does the interval reach the target 95% coverage?
    pub fn ci_is_full(&self) -> bool {
        self.ci_level + 1e-12 >= CONFIDENCE
    }

    /// True when the two intervals overlap (the difference is not resolved).
    pub fn overlaps(&self, other: &Summary) -> bool {
        self.ci_low <= other.ci_high && other.ci_low <= self.ci_high
    }
}

/// Samples sorted ascending, with non-finite values dropped.
fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Median of the finite samples, `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let v = sorted_finite(samples);
    median_sorted(&v)
}

fn median_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// `P(B ≤ k)` for `B ~ Binomial(n, 1/2)`, computed in log space so large `n`
/// does not underflow.
pub fn binomial_half_cdf(n: usize, k: usize) -> f64 {
    if k >= n {
        return 1.0;
    }
    let ln2 = std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64; // ln C(n, 0)
    let mut total = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        total += (ln_choose - n as f64 * ln2).exp();
    }
    total.min(1.0)
}

/// The order-statistic rank `k` (1-based) and achieved coverage of the
/// interval `[x(k), x(n-k+1)]` for the median at `level`. With too few samples
/// for `level`, returns `k = 1` (min to max) and its lower coverage.
pub fn median_ci_rank(n: usize, level: f64) -> (usize, f64) {
    let alpha_half = (1.0 - level) / 2.0;
    let mut k = 1;
    // Widen inwards while the tail probability stays within alpha/2.
    while k < n.div_ceil(2) && binomial_half_cdf(n, k) <= alpha_half {
        k += 1;
    }
    let coverage = if n == 0 {
        0.0
    } else {
        1.0 - 2.0 * binomial_half_cdf(n, k - 1)
    };
    (k, coverage)
}

/// Median, its confidence interval and spread, or `None` without finite samples.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let v = sorted_finite(samples);
    let n = v.len();
    let median = median_sorted(&v)?;
    let (k, ci_level) = median_ci_rank(n, CONFIDENCE);
    Some(Summary {
        n,
        median,
        ci_low: v[k - 1],
        ci_high: v[n - k],
        ci_level,
        min: v[0],
        max: v[n - 1],
        mean: v.iter().sum::<f64>() / n as f64,
    })
}

/// Ratios `numerator / denominator` of samples taken in the same round
/// (matched by run index), in run-index order. Rounds present on one side only,
/// and zero denominators, are skipped.
pub fn paired_ratios(numerator: &[(u32, f64)], denominator: &[(u32, f64)]) -> Vec<f64> {
    let mut out: Vec<(u32, f64)> = numerator
        .iter()
        .filter_map(|&(run, a)| {
            let &(_, b) = denominator.iter().find(|(r, _)| *r == run)?;
            (b != 0.0 && a.is_finite() && b.is_finite()).then_some((run, a / b))
        })
        .collect();
    out.sort_by_key(|&(run, _)| run);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Median and CI of the paired ratios, `None` when no round has both sides.
pub fn paired_ratio_summary(
    numerator: &[(u32, f64)],
    denominator: &[(u32, f64)],
) -> Option<Summary> {
    summarize(&paired_ratios(numerator, denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_cdf_matches_exact_fractions() {
        // n = 10: P(B ≤ 1) = 11/1024, P(B ≤ 2) = 56/1024.
        assert!((binomial_half_cdf(10, 1) - 11.0 / 1024.0).abs() < 1e-12);
        assert!((binomial_half_cdf(10, 2) - 56.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_half_cdf(10, 10), 1.0);
    }

    #[test]
    fn large_n_does_not_underflow() {
        let (k, cov) = median_ci_rank(2000, 0.95);
        assert!((0.95..0.97).contains(&cov), "coverage {cov}");
        // Normal approximation: k ≈ n/2 - 1.96·sqrt(n)/2 ≈ 956.
        assert!((950..=960).contains(&k), "k = {k}");
    }
}
