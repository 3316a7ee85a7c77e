//! Runs that differ only in their seed, pooled: each setup's mean, spread and 95 % interval of
//! the test accuracy and MSE, and which differences between setups the seeds support.
//!
//! One seed says little: the same backbone and config can win by 4 points at one seed and lose
//! by 1 at the next. With n seeds a setup's mean has a Student-t interval, and two setups
//! differ (Welch) only when the interval of their difference leaves out zero.

use crate::rundir::metrics::FinalMetrics;
use serde::{Deserialize, Serialize};

/// A metric over a setup's seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    /// Sample standard deviation over the seeds.
    pub sd: f64,
    /// 95 % interval of the mean (Student t, n − 1 degrees of freedom).
    pub low: f64,
    pub high: f64,
}

/// The runs of one setup (same plugin, data and config but the seed) and phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedGroup {
    pub plugin: String,
    pub phase: String,
    pub setup: String,
    pub runs: Vec<String>,
    pub seeds: Vec<u64>,
    pub accuracy: Spread,
    pub mse: Spread,
}

/// The difference of two setups' means (`first − second`) with its 95 % interval (Welch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub first: String,
    pub second: String,
    pub metric: String,
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// The interval leaves out zero: these seeds say which is better.
    pub supported: bool,
}

/// The setups run with two seeds or more, in the order their first run appears.
pub fn groups(runs: &[(String, &FinalMetrics)]) -> Vec<SeedGroup> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for (_, m) in runs {
        if let Some(setup) = &m.setup {
            let key = (setup.as_str(), m.phase.as_str());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys.into_iter()
        .filter_map(|(setup, phase)| {
            let members: Vec<&(String, &FinalMetrics)> = runs
                .iter()
                .filter(|(_, m)| m.setup.as_deref() == Some(setup) && m.phase == phase)
                .collect();
            if members.len() < 2 {
                return None;
            }
            let pick = |f: fn(&FinalMetrics) -> f64| -> Vec<f64> {
                members.iter().map(|(_, m)| f(m)).collect()
            };
            Some(SeedGroup {
                plugin: members[0].1.plugin.clone(),
                phase: phase.to_string(),
                setup: setup.to_string(),
                runs: members.iter().map(|(name, _)| name.clone()).collect(),
                seeds: members.iter().filter_map(|(_, m)| m.seed).collect(),
                accuracy: spread(&pick(|m| m.test.accuracy)).within(0.0, 1.0),
                mse: spread(&pick(|m| m.test.mse)).within(0.0, f64::INFINITY),
            })
        })
        .collect()
}

/// A metric of a run's test split, by name.
type Metric = (&'static str, fn(&FinalMetrics) -> f64);

const METRICS: [Metric; 2] = [("accuracy", |m| m.test.accuracy), ("MSE", |m| m.test.mse)];

/// Every pair of groups, accuracy and MSE.
pub fn differences(groups: &[SeedGroup], runs: &[(String, &FinalMetrics)]) -> Vec<Difference> {
    let values = |group: &SeedGroup, f: fn(&FinalMetrics) -> f64| -> Vec<f64> {
        runs.iter()
            .filter(|(name, _)| group.runs.contains(name))
            .map(|(_, m)| f(m))
            .collect()
    };
    let mut out = Vec::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            for (metric, f) in METRICS {
                let (difference, half) = welch(&values(a, f), &values(b, f));
                out.push(Difference {
                    first: label(a),
                    second: label(b),
                    metric: metric.into(),
                    difference,
                    low: difference - half,
                    high: difference + half,
                    supported: difference.abs() > half,
                });
            }
        }
    }
    out
}

/// How a group is named in the report: its first run without the `-seed<N>` suffix.
pub fn label(group: &SeedGroup) -> String {
    let first = &group.runs[0];
    match first.rfind("-seed") {
        Some(at) if first[at + 5..].chars().all(|c| c.is_ascii_digit()) => first[..at].into(),
        _ => first.clone(),
    }
}

impl Spread {
    /// The interval cut to the values the metric can take (a t-interval of a few seeds can
    /// reach past 100 % or below 0).
    fn within(self, low: f64, high: f64) -> Spread {
        Spread {
            low: self.low.max(low),
            high: self.high.min(high),
            ..self
        }
    }
}

fn spread(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = variance.sqrt();
    let half = t95(n - 1.0) * sd / n.sqrt();
    Spread {
        mean,
        sd,
        low: mean - half,
        high: mean + half,
    }
}

/// `(mean(a) − mean(b), half-width of its 95 % interval)`, Welch's unequal-variance t.
fn welch(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (sa, sb) = (spread(a), spread(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (sa.sd.powi(2) / na, sb.sd.powi(2) / nb);
    let se = (va + vb).sqrt();
    let df = if se > 0.0 {
        (va + vb).powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0))
    } else {
        na + nb - 2.0
    };
    (sa.mean - sb.mean, t95(df) * se)
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom (rounded down:
/// the wider interval), from the table up to 30, then 1.96 + 2.4 / df (within 0.002).
fn t95(df: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let whole = df.floor().max(1.0);
    if whole <= 30.0 {
        TABLE[whole as usize - 1]
    } else {
        1.96 + 2.4 / whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(plugin: &str, setup: &str, seed: u64, accuracy: f64, mse: f64) -> FinalMetrics {
        let text = format!(
            r#"{{"run": "r", "phase": "validation", "plugin": "{plugin}", "epochs_trained": 5,
            "test": {{"samples": 200, "accuracy": {accuracy}, "per_class_accuracy": [0,0,0,0],
              "confusion": [[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0]], "mse": {mse},
              "mse_per_axis": [0,0,0], "loss": 0, "classification_loss": 0, "prediction_loss": 0, "tracking_loss": 0}},
            "val": {{"samples": 200, "accuracy": 0, "per_class_accuracy": [0,0,0,0],
              "confusion": [[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0]], "mse": 0,
              "mse_per_axis": [0,0,0], "loss": 0, "classification_loss": 0, "prediction_loss": 0, "tracking_loss": 0}},
            "baselines": {{"mean_position_mse": 0.2, "constant_velocity_mse": 0.1, "chance_accuracy": 0.25}},
            "wall_seconds": 1, "train_videos_per_second": 1, "parameter_count": 1, "checkpoint_bytes": 1,
            "seed": {seed}, "setup": "{setup}"}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn seeds_pool_into_intervals_and_only_clear_differences_are_supported() {
        let runs = [
            ("i3d-seed1", metrics("i3d", "a", 1, 0.90, 0.010)),
            ("i3d-seed2", metrics("i3d", "a", 2, 0.92, 0.011)),
            ("i3d-seed3", metrics("i3d", "a", 3, 0.91, 0.012)),
            ("magvit-seed1", metrics("magvit", "b", 1, 0.80, 0.010)),
            ("magvit-seed2", metrics("magvit", "b", 2, 0.81, 0.013)),
            ("magvit-seed3", metrics("magvit", "b", 3, 0.82, 0.011)),
            ("alone", metrics("slowfast", "c", 1, 0.5, 0.1)),
        ];
        let runs: Vec<(String, &FinalMetrics)> =
            runs.iter().map(|(n, m)| (n.to_string(), m)).collect();
        let groups = groups(&runs);
        assert_eq!(groups.len(), 2, "a setup run once is no group");
        let i3d = &groups[0];
        assert_eq!(label(i3d), "i3d");
        assert_eq!(i3d.seeds, [1, 2, 3]);
        assert!((i3d.accuracy.mean - 0.91).abs() < 1e-12);
        assert!((i3d.accuracy.sd - 0.01).abs() < 1e-12);
        // mean ± t(2) · sd / √3 = 0.91 ± 4.303 · 0.01 / 1.732
        assert!((i3d.accuracy.high - (0.91 + 4.303 * 0.01 / 3f64.sqrt())).abs() < 1e-12);
        let differences = differences(&groups, &runs);
        let accuracy = &differences[0];
        assert_eq!(
            (accuracy.first.as_str(), accuracy.second.as_str()),
            ("i3d", "magvit")
        );
        assert!(accuracy.supported, "{accuracy:?}");
        assert!((accuracy.difference - 0.10).abs() < 1e-12);
        let mse = &differences[1];
        assert!(
            !mse.supported,
            "equal MSE within the seeds' spread: {mse:?}"
        );
        assert!(mse.low < 0.0 && mse.high > 0.0);
    }
}
