//! The comparison's model: every run folder read into a [`RunReport`] (its latest finished
//! phase's metrics, the plan's checklist, the gate's decision) — no rendering here.

use super::recipe::{self, Recipe};
use super::seeds::{self, Difference, SeedGroup};
use crate::format::percent_bound;
use crate::rundir::gate::{self, GateDecision};
use crate::rundir::metrics::{self, EpochRecord, FinalMetrics};
use crate::rundir::progress::RunState;
use crate::rundir::robustness::{self, Robustness};
use crate::rundir::{run_name, state};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use trajhost_dataset::trajectory::Class;

/// The original plan's success criteria, on each run's test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub validation_min_accuracy: f64,
    pub validation_max_mse: f64,
    pub final_min_accuracy: f64,
    pub final_max_mse: f64,
}

impl Default for Checklist {
    fn default() -> Self {
        Checklist {
            validation_min_accuracy: 0.70,
            validation_max_mse: 0.1,
            final_min_accuracy: 0.90,
            final_max_mse: 0.05,
        }
    }
}

/// Which number a criterion checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checked {
    /// Test classification accuracy, above a bound.
    Accuracy,
    /// Test prediction MSE, below a bound.
    Mse,
}

/// One criterion for one run; `passed` is None while its phase has not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub checked: Checked,
    pub measured: Option<f64>,
    pub passed: Option<bool>,
}

impl Checklist {
    /// Accuracy and MSE after the validation phase, then after the full run.
    pub fn judge(
        &self,
        validation: Option<&FinalMetrics>,
        full: Option<&FinalMetrics>,
    ) -> Vec<Criterion> {
        [
            (
                "validation",
                validation,
                self.validation_min_accuracy,
                self.validation_max_mse,
            ),
            ("final", full, self.final_min_accuracy, self.final_max_mse),
        ]
        .into_iter()
        .flat_map(|(phase, metrics, min_accuracy, max_mse)| {
            let accuracy = metrics.map(|m| m.test.accuracy);
            let mse = metrics.map(|m| m.test.mse);
            [
                Criterion {
                    name: format!("{phase} accuracy > {}", percent_bound(min_accuracy)),
                    checked: Checked::Accuracy,
                    measured: accuracy,
                    passed: accuracy.map(|a| a > min_accuracy),
                },
                Criterion {
                    name: format!("{phase} MSE < {max_mse}"),
                    checked: Checked::Mse,
                    measured: mse,
                    passed: mse.map(|m| m < max_mse),
                },
            ]
        })
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub name: String,
    /// Where the run stands (waiting, training, interrupted, finished, failed).
    pub state: RunState,
    /// The run's latest finished phase (`final_metrics.json` over `validation_metrics.json`),
    /// as written.
    pub metrics: Option<FinalMetrics>,
    pub checklist: Vec<Criterion>,
    pub gate: Option<GateDecision>,
    /// `eval --shifts`'s results, when it ran.
    #[serde(default)]
    pub robustness: Option<Robustness>,
    /// Epochs recorded in metrics.jsonl.
    pub epochs_recorded: usize,
    /// The training config its newest checkpoint records; None without a readable one.
    #[serde(default)]
    pub recipe: Option<Recipe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub classes: Vec<String>,
    pub checklist: Checklist,
    pub runs: Vec<RunReport>,
    /// Run folders that could not be read (a damaged metrics file), left out of `runs`.
    #[serde(default)]
    pub unreadable: Vec<Unreadable>,
    /// The combined training-curves PNG, relative to the report's folder.
    pub curves_png: Option<String>,
    /// Setups run with several seeds: mean, spread and interval of each.
    #[serde(default)]
    pub seed_groups: Vec<SeedGroup>,
    /// Every pair of those setups: the difference and whether the seeds support it.
    #[serde(default)]
    pub seed_differences: Vec<Difference>,
}

/// A run folder left out of the report, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    pub name: String,
    pub path: PathBuf,
    pub reason: String,
}

/// Reads the runs' folders into a report (no curves yet) and their histories. A folder that
/// cannot be read is listed in `unreadable` with the reason, and the others are reported.
pub fn build(runs: &[PathBuf], checklist: &Checklist) -> (Report, Vec<Vec<EpochRecord>>) {
    let mut reports = Vec::new();
    let mut histories = Vec::new();
    let mut unreadable = Vec::new();
    for dir in runs {
        match read_run(dir, checklist) {
            Ok((report, history)) => {
                reports.push(report);
                histories.push(history);
            }
            Err(e) => unreadable.push(Unreadable {
                name: run_name(dir),
                path: dir.clone(),
                reason: format!("{e:#}"),
            }),
        }
    }
    let finished: Vec<(String, &FinalMetrics)> = reports
        .iter()
        .filter_map(|r| r.metrics.as_ref().map(|m| (r.name.clone(), m)))
        .collect();
    let seed_groups = seeds::groups(&finished);
    let seed_differences = seeds::differences(&seed_groups, &finished);
    let report = Report {
        classes: Class::NAMES.iter().map(|s| s.to_string()).collect(),
        checklist: checklist.clone(),
        runs: reports,
        unreadable,
        curves_png: None,
        seed_groups,
        seed_differences,
    };
    (report, histories)
}

/// One run folder's report and history.
fn read_run(dir: &Path, checklist: &Checklist) -> Result<(RunReport, Vec<EpochRecord>)> {
    let validation = metrics::read_validation(dir)?;
    let full = metrics::read_final(dir)?;
    let history = metrics::read_history(dir)?;
    let report = RunReport {
        name: run_name(dir),
        state: state::observe(dir).state,
        checklist: checklist.judge(validation.as_ref(), full.as_ref()),
        metrics: full.or(validation),
        gate: gate::read(dir)?,
        robustness: robustness::read(dir)?,
        epochs_recorded: history.len(),
        // Where no checkpoint's config reads, the recipe is unknown here; `eval` and `--resume` name
        // the damaged files.
        recipe: recipe::read(dir).ok().flatten(),
    };
    Ok((report, history))
}
