//! `sweep_outcome.json`: how a sweep's child process for this run ended, written by the sweep
//! runner (the trainer cannot record its own crash).

use super::{read_json, OUTCOME};
use crate::atomic::write_json;
use crate::config::Phase;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained to the end of the phase in this sweep.
    Finished,
    /// Already finished before: its metrics JSON for the phase exists.
    Skipped,
    /// Exited non-zero or was killed; `reason` says why.
    Failed,
    /// Stopped by Ctrl-C / SIGTERM after checkpointing, or never started because of one.
    Interrupted,
    /// Not started: another process was training it (its folder was locked); left alone.
    Busy,
}

impl Status {
    /// In words, for the sweep's summary.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::Skipped => "skipped (already finished)",
            Status::Failed => "FAILED",
            Status::Interrupted => "interrupted (re-run to resume)",
            Status::Busy => "in use by another process (re-run when it has ended)",
        }
    }
}

/// One run's result in a sweep (`<run>/sweep_outcome.json`, and a row of `sweep.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub name: String,
    pub plugin: String,
    pub phase: Phase,
    pub status: Status,
    /// "exit code 1", "killed by signal 9"...
    pub exit: Option<String>,
    pub reason: Option<String>,
    pub threads: usize,
    pub seconds: f64,
    pub output: PathBuf,
    pub finished_unix: u64,
}

pub fn read(dir: &Path) -> Result<Option<RunOutcome>> {
    read_json(&dir.join(OUTCOME))
}

pub fn write(dir: &Path, outcome: &RunOutcome) -> Result<()> {
    write_json(&dir.join(OUTCOME), outcome)
}
