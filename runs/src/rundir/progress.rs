//! `PROGRESS.txt`: a few `key: value` lines a person (or `monitor`) reads to see where a run
//! stands, rewritten atomically every 30 s and after each epoch.

use super::PROGRESS;
use crate::atomic::write_atomic;
use crate::clock::{unix_now, utc_timestamp};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a run stands. The trainer writes `Training`, `Interrupted` and `Finished`; readers add
/// `Waiting` (nothing written yet) and `Failed` (its sweep child died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Waiting,
    Training,
    Interrupted,
    Finished,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Waiting => "waiting",
            RunState::Training => "training",
            RunState::Interrupted => "interrupted",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RunState> {
        [
            RunState::Waiting,
            RunState::Training,
            RunState::Interrupted,
            RunState::Finished,
            RunState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the trainer knows when it writes `PROGRESS.txt`.
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
    pub state: RunState,
}

impl Progress<'_> {
    /// The file's text, stamped with the current time.
    pub fn render(&self) -> String {
        let done = self.epochs_done as f64
            + self.step_in_epoch as f64 / self.steps_per_epoch.max(1) as f64;
        let by_time = self
            .time_budget_seconds
            .map_or(0.0, |b| self.elapsed_seconds / b);
        let finished = self.state == RunState::Finished;
        let fraction = if finished {
            1.0
        } else {
            (done / self.epochs.max(1) as f64).max(by_time).min(1.0)
        };
        // The epoch shown is the one under way, or the last one trained once the run is over.
        let epoch = if finished {
            self.epochs_done
        } else {
            (self.epochs_done + 1).min(self.epochs)
        };
        let eta = if fraction > 0.0 && fraction < 1.0 {
            format!(
                "{:.1} min",
                self.elapsed_seconds / fraction * (1.0 - fraction) / 60.0
            )
        } else {
            "-".into()
        };
        let show =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        format!(
            "run: {}\nphase: {}\nstatus: {}\nepoch: {}/{} ({:.1}%)\nstep: {}/{}\nclassification_accuracy: {}\nprediction_mse: {}\ntotal_loss: {}\nelapsed: {:.1} min\neta: {}\nlast_update: {} UTC\n",
            self.run,
            self.phase,
            self.state,
            epoch,
            self.epochs,
            100.0 * fraction,
            self.step_in_epoch,
            self.steps_per_epoch,
            self.accuracy.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a)),
            show(self.mse, 5),
            show(self.loss, 5),
            self.elapsed_seconds / 60.0,
            eta,
            utc_timestamp(unix_now()),
        )
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(PROGRESS), self.render().as_bytes())
    }
}

/// Marks the run in `dir` as failed in its `PROGRESS.txt` (everything else as last written), so
/// a run that stopped on an error is not shown as still training.
pub fn mark_failed(dir: &Path) -> Result<()> {
    let path = dir.join(PROGRESS);
    let Some(text) = super::read_regular(&path)? else {
        return Ok(());
    };
    let text: String = String::from_utf8_lossy(&text)
        .lines()
        .map(|line| match line.starts_with("status: ") {
            true => format!("status: {}\n", RunState::Failed),
            false => format!("{line}\n"),
        })
        .collect();
    write_atomic(&path, text.as_bytes())
}

/// What a reader gets back from `PROGRESS.txt`; every field is None when missing or unreadable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressFile {
    pub phase: Option<String>,
    pub state: Option<RunState>,
    /// (epoch, of epochs) and the fraction done, 0..=1.
    pub epoch: Option<((usize, usize), f64)>,
    pub eta: Option<String>,
}

pub fn read(dir: &Path) -> ProgressFile {
    let bytes = super::read_regular(&dir.join(PROGRESS)).ok().flatten();
    let fields: BTreeMap<String, String> = String::from_utf8_lossy(&bytes.unwrap_or_default())
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    ProgressFile {
        phase: fields.get("phase").cloned(),
        state: fields.get("status").and_then(|s| RunState::parse(s)),
        epoch: fields.get("epoch").and_then(|e| parse_epoch(e)),
        eta: fields.get("eta").filter(|e| e.as_str() != "-").cloned(),
    }
}

/// Parses `epoch: 3/10 (30.0%)`.
fn parse_epoch(text: &str) -> Option<((usize, usize), f64)> {
    let (counts, rest) = text.split_once(' ').unwrap_or((text, ""));
    let (done, total) = counts.split_once('/')?;
    let epoch: (usize, usize) = (done.trim().parse().ok()?, total.trim().parse().ok()?);
    let percent = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .map_or_else(|| epoch.0 as f64 / epoch.1.max(1) as f64, |p| p / 100.0);
    Some((epoch, percent.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_trainer_writes_the_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        Progress {
            run: "magvit",
            phase: "validation",
            epochs_done: 2,
            epochs: 10,
            step_in_epoch: 5,
            steps_per_epoch: 10,
            accuracy: Some(0.5),
            mse: Some(0.1),
            loss: Some(1.0),
            elapsed_seconds: 150.0,
            time_budget_seconds: None,
            state: RunState::Training,
        }
        .write(dir.path())
        .unwrap();
        let read = read(dir.path());
        assert_eq!(read.phase.as_deref(), Some("validation"));
        assert_eq!(read.state, Some(RunState::Training));
        assert_eq!(read.epoch, Some(((3, 10), 0.25)));
        assert_eq!(read.eta.as_deref(), Some("7.5 min"));
        assert_eq!(
            super::read(&dir.path().join("missing")),
            ProgressFile::default()
        );
    }

    #[test]
    fn epochs_parse_with_or_without_a_percentage() {
        assert_eq!(parse_epoch("3/10 (30.0%)"), Some(((3, 10), 0.3)));
        assert_eq!(parse_epoch("3/10"), Some(((3, 10), 0.3)));
        assert_eq!(parse_epoch("garbage"), None);
        assert_eq!(RunState::parse("finished"), Some(RunState::Finished));
        assert_eq!(RunState::parse("starting"), None);
    }
}
