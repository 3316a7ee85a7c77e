//! What a run leaves in its folder besides checkpoints: `run.log` (with a heartbeat every
//! 30 s while anything runs), `PROGRESS.txt`, `metrics.jsonl`, and the final metrics JSON.

use super::metrics::{Baselines, SplitMetrics};
use crate::atomic::{write_atomic, write_json};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const HEARTBEAT: Duration = Duration::from_secs(30);

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
}

/// The final metrics file a phase writes: `validation_metrics.json` for "validation",
/// `final_metrics.json` for any other.
pub fn final_metrics_file(phase: &str) -> &'static str {
    if phase == "validation" {
        crate::rundir::VALIDATION_METRICS
    } else {
        crate::rundir::FINAL_METRICS
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
}

/// The seed's PROGRESS.txt fields.
pub struct Progress<'a> {
    pub run: &'a str,
    pub phase: &'a str,
    /// Epochs completed, and batches of the epoch under way.
    pub epochs_done: usize,
    pub epochs: usize,
    pub step_in_epoch: usize,
    pub steps_per_epoch: usize,
    pub accuracy: Option<f64>,
    pub mse: Option<f64>,
    pub loss: Option<f64>,
    pub elapsed_seconds: f64,
    /// With a time budget, progress is whichever is further along: epochs or the clock.
    pub time_budget_seconds: Option<f64>,
    pub status: &'a str,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` UTC, without a date crate.
pub fn utc_timestamp(unix: u64) -> String {
    let (days, rest) = (unix / 86_400, unix % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

pub struct RunFiles {
    pub dir: PathBuf,
    log: Arc<Mutex<std::fs::File>>,
    status: Arc<Mutex<String>>,
    stop_heartbeat: Arc<AtomicBool>,
}

impl RunFiles {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("run.log"))
            .with_context(|| format!("opening {}", dir.join("run.log").display()))?;
        let files = RunFiles {
            dir: dir.to_path_buf(),
            log: Arc::new(Mutex::new(log)),
            status: Arc::new(Mutex::new("starting".into())),
            stop_heartbeat: Arc::new(AtomicBool::new(false)),
        };
        // The heartbeat: proof of life for anyone watching a long run (and for keep-alives).
        let (log, status, stop) = (
            files.log.clone(),
            files.status.clone(),
            files.stop_heartbeat.clone(),
        );
        std::thread::spawn(move || {
            let tick = Duration::from_millis(250);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= HEARTBEAT {
                    waited = Duration::ZERO;
                    let status = status.lock().unwrap().clone();
                    append(&log, &format!("heartbeat: {status}"));
                }
            }
        });
        Ok(files)
    }

    pub fn log(&self, line: &str) {
        append(&self.log, line);
    }

    pub fn set_status(&self, status: String) {
        *self.status.lock().unwrap() = status;
    }

    pub fn write_progress(&self, p: &Progress) -> Result<()> {
        let done = p.epochs_done as f64 + p.step_in_epoch as f64 / p.steps_per_epoch.max(1) as f64;
        let by_time = p.time_budget_seconds.map_or(0.0, |b| p.elapsed_seconds / b);
        let finished = p.status == "finished";
        let fraction = if finished {
            1.0
        } else {
            (done / p.epochs.max(1) as f64).max(by_time).min(1.0)
        };
        // The epoch shown is the one under way, or the last one trained once the run is over.
        let epoch = if finished {
            p.epochs_done
        } else {
            (p.epochs_done + 1).min(p.epochs)
        };
        let eta = if fraction > 0.0 && fraction < 1.0 {
            format!(
                "{:.1} min",
                p.elapsed_seconds / fraction * (1.0 - fraction) / 60.0
            )
        } else {
            "-".into()
        };
        let show =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        let text = format!(
            "run: {}\nphase: {}\nstatus: {}\nepoch: {}/{} ({:.1}%)\nstep: {}/{}\nclassification_accuracy: {}\nprediction_mse: {}\ntotal_loss: {}\nelapsed: {:.1} min\neta: {}\nlast_update: {} UTC\n",
            p.run,
            p.phase,
            p.status,
            epoch,
            p.epochs,
            100.0 * fraction,
            p.step_in_epoch,
            p.steps_per_epoch,
            p.accuracy.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a)),
            show(p.mse, 5),
            show(p.loss, 5),
            p.elapsed_seconds / 60.0,
            eta,
            utc_timestamp(unix_now()),
        );
        write_atomic(&self.dir.join("PROGRESS.txt"), text.as_bytes())
    }

    /// Appends one epoch's line.
    pub fn append_metrics(&self, record: &EpochRecord) -> Result<()> {
        let path = self.dir.join("metrics.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        writeln!(file, "{}", serde_json::to_string(record)?)?;
        Ok(())
    }

    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        read_metrics(&self.dir)
    }

    /// Keeps only the records of epochs ≤ `epoch` (after resuming from an older checkpoint);
    /// leaves the file alone when there is nothing to drop.
    pub fn keep_metrics_up_to(&self, epoch: usize) -> Result<()> {
        let records = self.read_metrics()?;
        if records.iter().all(|r| r.epoch <= epoch) {
            return Ok(());
        }
        let kept: Vec<EpochRecord> = records.into_iter().filter(|r| r.epoch <= epoch).collect();
        let mut text = String::new();
        for r in &kept {
            text += &serde_json::to_string(r)?;
            text.push('\n');
        }
        write_atomic(&self.dir.join("metrics.jsonl"), text.as_bytes())
    }

    pub fn write_final(&self, metrics: &FinalMetrics) -> Result<PathBuf> {
        let path = self.dir.join(final_metrics_file(&metrics.phase));
        write_json(&path, metrics)?;
        Ok(path)
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        self.stop_heartbeat.store(true, Ordering::Relaxed);
    }
}

pub fn read_metrics(dir: &Path) -> Result<Vec<EpochRecord>> {
    let path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a metrics record", path.display(), i + 1))
        })
        .collect()
}

fn append(log: &Mutex<std::fs::File>, line: &str) {
    let mut file = log.lock().unwrap();
    let _ = writeln!(file, "[{}] {line}", utc_timestamp(unix_now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_are_civil_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(1_795_700_000), "2026-11-26 13:33:20");
    }
}
