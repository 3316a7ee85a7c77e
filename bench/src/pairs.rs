//! Interleaved pairs: what two sides timed block by block, alternately, reduce to. Each pair's
//! two blocks ran seconds apart, so their ratio cancels the machine's slow drift; a row is
//! reported as the median of its pairs' ratios with their min–max, never one lucky block.

use serde_json::{json, Value};

/// The `q`-quantile (0 ≤ q ≤ 1) of `values`, linearly interpolated; NaN if empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The ratios `a[k] / b[k]` of the pairs both sides have, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    pub pairs: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Ratios {
    /// `a` and `b` per pair (e.g. videos/s of trajhost and of a peer); pairs with a
    /// non-positive or missing `b` are left out.
    pub fn of(a: &[f64], b: &[f64]) -> Ratios {
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(_, &b)| b > 0.0)
            .map(|(a, b)| a / b)
            .collect();
        Ratios {
            pairs: ratios.len(),
            median: median(&ratios),
            min: quantile(&ratios, 0.0),
            max: quantile(&ratios, 1.0),
        }
    }

    pub fn to_json(self) -> Value {
        json!({"pairs": self.pairs, "median": self.median, "min": self.min, "max": self.max})
    }

    /// `1.06× (0.98–1.12×, 5 pairs)`.
    pub fn describe(self) -> String {
        if self.pairs == 0 {
            return "—".into();
        }
        format!(
            "{:.2}× ({:.2}–{:.2}×, {} pairs)",
            self.median, self.min, self.max, self.pairs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_and_ignore_order() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&v), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratios_are_per_pair_not_of_the_best_blocks() {
        // Side a is 10 % faster in every pair though the machine slowed down halfway; the
        // best block of a (330) against the best of b (300) would also say 1.1, but a drift
        // that favours one side's best block would not cancel, the pairs' ratios do.
        let a = [330.0, 330.0, 165.0, 165.0, 220.0];
        let b = [300.0, 300.0, 150.0, 150.0, 200.0];
        let r = Ratios::of(&a, &b);
        assert_eq!(r.pairs, 5);
        assert!((r.median - 1.1).abs() < 1e-12);
        assert!((r.min - 1.1).abs() < 1e-12 && (r.max - 1.1).abs() < 1e-12);
        assert_eq!(r.describe(), "1.10× (1.10–1.10×, 5 pairs)");
    }

    #[test]
    fn a_missing_or_failed_block_is_no_pair() {
        let r = Ratios::of(&[2.0, 3.0, 4.0], &[1.0, 0.0]);
        assert_eq!((r.pairs, r.median, r.min, r.max), (1, 2.0, 2.0, 2.0));
        assert_eq!(Ratios::of(&[], &[]).describe(), "—");
    }
}
