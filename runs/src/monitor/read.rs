//! What the monitor knows of each run, read from its folder through `rundir`.

use crate::rundir::progress::{self, RunState};
use crate::rundir::{self, gate, metrics, run_name, state};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub name: String,
    pub phase: Option<String>,
    pub state: RunState,
    pub epoch: Option<(usize, usize)>,
    /// 0..=1
    pub fraction: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_mse: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_loss_curve: Vec<f64>,
    pub val_accuracy_curve: Vec<f64>,
    pub eta: Option<String>,
    /// Seconds since the last line of `run.log`.
    pub heartbeat_age: Option<u64>,
    /// Training, yet silent for longer than the stale limit.
    pub stale: bool,
    pub gate: Option<bool>,
    /// Why the last sweep attempt failed (its last output line).
    pub failure: Option<String>,
}

pub fn read_status(dir: &Path, now: u64, stale_after: Duration) -> RunStatus {
    let progress = progress::read(dir);
    let records = metrics::read_history(dir).unwrap_or_default();
    let last = records.last();
    let observed = state::observe(dir);
    let heartbeat_age = observed.last_log.map(|t| now.saturating_sub(t));
    let stale = observed.state == RunState::Training
        && heartbeat_age.is_some_and(|age| age > stale_after.as_secs());
    RunStatus {
        name: run_name(dir),
        phase: progress.phase.or_else(|| last.map(|r| r.phase.clone())),
        state: observed.state,
        epoch: progress.epoch.map(|e| e.0),
        fraction: progress.epoch.map(|e| e.1),
        val_accuracy: last.map(|r| r.val.accuracy),
        val_mse: last.map(|r| r.val.mse),
        val_loss: last.map(|r| r.val.loss),
        val_loss_curve: records.iter().map(|r| r.val.loss).collect(),
        val_accuracy_curve: records.iter().map(|r| r.val.accuracy).collect(),
        eta: progress.eta,
        heartbeat_age,
        stale,
        gate: gate::read(dir).ok().flatten().map(|g| g.passed),
        failure: observed.failure,
    }
}

/// Every run folder in `root` (or `root` itself when it is one).
pub fn scan(root: &Path, now: u64, stale_after: Duration) -> Vec<RunStatus> {
    rundir::expand_run_dirs(&[root.to_path_buf()])
        .iter()
        .map(|d| read_status(d, now, stale_after))
        .collect()
}
