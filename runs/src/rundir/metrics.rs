//! The numbers a run records: one [`EpochRecord`] per epoch in `metrics.jsonl`, and the
//! [`FinalMetrics`] of a finished phase in `validation_metrics.json` or `final_metrics.json`.

use super::{read_json, FINAL_METRICS, METRICS, VALIDATION_METRICS, VAL_BASELINES};
use crate::atomic::{write_atomic, write_json};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Loss, accuracy and prediction error of the model on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub samples: u64,
    pub loss: f64,
    pub classification_loss: f64,
    pub prediction_loss: f64,
    /// MSE of the tracked positions over every input frame (files from before it read 0).
    #[serde(default)]
    pub tracking_loss: f64,
    pub accuracy: f64,
    pub per_class_accuracy: [f64; 4],
    /// `confusion[true][predicted]`.
    pub confusion: [[u64; 4]; 4],
    pub mse: f64,
    pub mse_per_axis: [f64; 3],
}

/// What a model must beat, and what no model can beat by much: MSE of always predicting the
/// training mean position, of extrapolating the true last two positions at constant velocity,
/// and the curve-fit limit (the true class's curve family fitted to the true positions of the
/// input frames, then extrapolated; see `train::curve_fit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    pub mean_position_mse: f64,
    pub constant_velocity_mse: f64,
    pub chance_accuracy: f64,
    /// Files from before the limit was computed read as None.
    #[serde(default)]
    pub curve_fit_mse: Option<f64>,
    #[serde(default)]
    pub curve_fit_mse_per_class: Option<[f64; 4]>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub phase: String,
    pub lr: f64,
    pub train: SplitMetrics,
    pub val: SplitMetrics,
    pub elapsed_seconds: f64,
    pub train_videos_per_second: f64,
}

/// Why a phase's training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every configured epoch ran.
    #[default]
    Completed,
    /// The early-stopping metric did not improve for `patience` epochs.
    EarlyStopping,
    /// `time_budget_minutes` ran out.
    TimeBudget,
}

impl StopReason {
    /// In words, for logs and messages.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Completed => "every epoch done",
            StopReason::EarlyStopping => "early stopping",
            StopReason::TimeBudget => "time budget reached",
        }
    }

    /// A note after an epoch count in tables: nothing, ` (early stop)`, ` (time budget)`.
    pub fn table_note(self) -> &'static str {
        match self {
            StopReason::Completed => "",
            StopReason::EarlyStopping => " (early stop)",
            StopReason::TimeBudget => " (time budget)",
        }
    }
}

/// `validation_metrics.json` / `final_metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    pub run: String,
    pub phase: String,
    pub plugin: String,
    pub epochs_trained: usize,
    /// Files from before this field read as `Completed`.
    #[serde(default)]
    pub stop_reason: StopReason,
    pub test: SplitMetrics,
    pub val: SplitMetrics,
    pub baselines: Baselines,
    pub wall_seconds: f64,
    pub train_videos_per_second: f64,
    pub parameter_count: i64,
    pub checkpoint_bytes: u64,
    /// Where the training videos came from; None in files from before the field.
    #[serde(default)]
    pub data: Option<DataInfo>,
    /// The seed the run trained with; None in files from before the field.
    #[serde(default)]
    pub seed: Option<u64>,
    /// What makes runs comparable across seeds: a digest of the plugin, the data source and the
    /// training config with its seed left out. `compare` pools the runs that share it; None in
    /// files from before the field.
    #[serde(default)]
    pub setup: Option<String>,
}

/// A run's data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// A dataset folder, or `procedural:<data config>`.
    pub source: String,
    pub procedural: bool,
    /// Distinct training videos the run has trained on: the training split's size for a
    /// stored dataset, every video drawn for a procedural one.
    pub training_videos: u64,
}

/// The phase label of the pipeline's first phase. Its metrics get their own file, so that the
/// full phase, training on in the same folder, does not overwrite what the gate read.
pub const VALIDATION_PHASE: &str = "validation";

/// The final metrics file a phase writes: `validation_metrics.json` for the validation phase,
/// `final_metrics.json` for any other.
pub fn final_metrics_file(phase: &str) -> &'static str {
    if phase == VALIDATION_PHASE {
        VALIDATION_METRICS
    } else {
        FINAL_METRICS
    }
}

pub fn read_validation(dir: &Path) -> Result<Option<FinalMetrics>> {
    read_json(&dir.join(VALIDATION_METRICS))
}

pub fn read_final(dir: &Path) -> Result<Option<FinalMetrics>> {
    read_json(&dir.join(FINAL_METRICS))
}

/// The final metrics of `phase` when that phase has finished in `dir`.
pub fn read_phase(dir: &Path, phase: &str) -> Result<Option<FinalMetrics>> {
    let metrics: Option<FinalMetrics> = read_json(&dir.join(final_metrics_file(phase)))?;
    Ok(metrics.filter(|m| m.phase == phase))
}

/// Writes the file of `metrics.phase`; returns its path.
pub fn write_final(dir: &Path, metrics: &FinalMetrics) -> Result<PathBuf> {
    let path = dir.join(final_metrics_file(&metrics.phase));
    write_json(&path, metrics)?;
    Ok(path)
}

/// The validation split's baselines (`val_baselines.json`), None for runs from before the file.
pub fn read_val_baselines(dir: &Path) -> Result<Option<Baselines>> {
    read_json(&dir.join(VAL_BASELINES))
}

pub fn write_val_baselines(dir: &Path, baselines: &Baselines) -> Result<()> {
    write_json(&dir.join(VAL_BASELINES), baselines)
}

/// Every record of `metrics.jsonl` (none when it does not exist). A last line without its
/// newline that does not parse is an append cut short (by a kill, a full disk, or still being
/// written) and is left out; any other line that does not parse is an error naming the file
/// and line.
pub fn read_history(dir: &Path) -> Result<Vec<EpochRecord>> {
    let path = dir.join(METRICS);
    parse_history(&path, &read_text(&path)?)
}

/// The file's text (empty when it does not exist); bytes that are not UTF-8 (a line cut inside
/// a character) become U+FFFD, so only their line fails to parse.
fn read_text(path: &Path) -> Result<String> {
    let bytes = super::read_regular(path)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The records of `text` (see [`read_history`]).
fn parse_history(path: &Path, text: &str) -> Result<Vec<EpochRecord>> {
    let lines: Vec<&str> = text.lines().collect();
    let unterminated = !text.is_empty() && !text.ends_with('\n');
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) if unterminated && i + 1 == lines.len() => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}:{}: not a metrics record", path.display(), i + 1))
            }
        }
    }
    Ok(records)
}

/// Appends one epoch's line, in one write, so a kill leaves the line whole or cut short at the
/// end of the file, never glued to the next one.
pub fn append_record(dir: &Path, record: &EpochRecord) -> Result<()> {
    let path = dir.join(METRICS);
    let mut file = trajhost_fs::open_append(&path)?;
    let line = serde_json::to_string(record)? + "\n";
    file.write_all(line.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Before a run goes on in its folder: keeps only the records of epochs ≤ `epoch` (after
/// resuming from an older checkpoint) and removes a last line cut short by a kill, so the next
/// append starts on a line of its own; leaves the file alone when there is nothing to drop.
pub fn keep_history_up_to(dir: &Path, epoch: usize) -> Result<()> {
    let path = dir.join(METRICS);
    let text = read_text(&path)?;
    let records = parse_history(&path, &text)?;
    let whole = text.is_empty() || text.ends_with('\n');
    if whole && records.iter().all(|r| r.epoch <= epoch) {
        return Ok(());
    }
    let mut text = String::new();
    for r in records.iter().filter(|r| r.epoch <= epoch) {
        text += &serde_json::to_string(r)?;
        text.push('\n');
    }
    write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> String {
        let split = serde_json::json!({"samples": 1, "loss": 1.0, "classification_loss": 1.0,
            "prediction_loss": 0.1, "tracking_loss": 0.1, "accuracy": 0.5,
            "per_class_accuracy": [0.5, 0.5, 0.5, 0.5], "confusion": [[1, 0, 0, 0], [0, 0, 0, 0],
            [0, 0, 0, 0], [0, 0, 0, 0]], "mse": 0.1, "mse_per_axis": [0.1, 0.1, 0.1]});
        serde_json::json!({"epoch": epoch, "phase": "validation", "lr": 1e-3, "train": split,
            "val": split, "elapsed_seconds": 1.0, "train_videos_per_second": 1.0})
        .to_string()
    }

    fn epochs(text: &str) -> Result<Vec<usize>> {
        let records = parse_history(Path::new("metrics.jsonl"), text)?;
        Ok(records.iter().map(|r| r.epoch).collect())
    }

    #[test]
    fn a_cut_short_last_line_is_left_out_and_any_other_bad_line_is_an_error() {
        let (one, two) = (record(1), record(2));
        assert_eq!(epochs("").unwrap(), Vec::<usize>::new());
        assert_eq!(epochs(&one[..20]).unwrap(), Vec::<usize>::new());
        assert_eq!(epochs(&format!("{one}\n{}", &two[..30])).unwrap(), [1]);
        assert_eq!(epochs(&format!("{one}\r\n{two}\r\n")).unwrap(), [1, 2]);
        // Whole but without its newline: kept.
        assert_eq!(epochs(&format!("{one}\n{two}")).unwrap(), [1, 2]);
        let err = format!(
            "{:#}",
            epochs(&format!("{}\n{two}\n", &one[..30])).unwrap_err()
        );
        assert!(err.contains("metrics.jsonl:1"), "{err}");
        // A last line cut inside a multi-byte character.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = format!("{one}\n").into_bytes();
        bytes.extend_from_slice(&"{\"phase\": \"é".as_bytes()[..12]);
        std::fs::write(dir.path().join(METRICS), bytes).unwrap();
        let read = read_history(dir.path()).unwrap();
        assert_eq!(read.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1]);
    }
}
