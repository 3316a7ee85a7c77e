//! The JSON the page polls (`/api/runs`, `/api/runs/<name>/metrics`), read from the run folders
//! through `monitor::read` (status, heartbeat, staleness) and `compare::report` (metrics,
//! checklist, gate, robustness, history) — the readers the terminal tools use, not a second
//! parser.
//!
//! Only run folders really inside the results folder are read: one that is a symbolic link to
//! somewhere else is neither listed nor served.
//!
//! Runs are read while they are being written. When a run's files cannot be read (a line of
//! metrics.jsonl half-appended, a JSON file replaced mid-read), its last good read is served
//! with a `problem` saying what failed and when that read was, so the page neither blanks nor
//! hides the failure.

use crate::clock::{unix_now, utc_timestamp};
use crate::compare::report::{self, Checklist, RunReport};
use crate::compare::seeds::{self, SeedGroup};
use crate::monitor::read::read_status;
use crate::rundir::metrics::{Baselines, EpochRecord, FinalMetrics};
use crate::rundir::progress::RunState;
use crate::rundir::{self, run_name};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// `/api/runs`: every run in the results folder.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The results folder, as the server sees it.
    pub root: String,
    /// When this was read, UTC `YYYY-MM-DD HH:MM:SS` and Unix seconds.
    pub generated: String,
    pub generated_unix: u64,
    pub stale_after_seconds: u64,
    /// The class names, in the order of the confusion matrices' rows and columns.
    pub classes: Vec<String>,
    /// The plan's success criteria the `report.checklist` of each run is judged by.
    pub checklist: Checklist,
    pub runs: Vec<RunView>,
    /// Setups run with several seeds, pooled as `compare` pools them.
    pub seed_groups: Vec<SeedGroup>,
    /// `compare`'s reports in the results folder itself (`*.md`, `*_curves.png`), sorted; the
    /// page links them (`/files/<name>`).
    pub reports: Vec<String>,
}

/// One run: where it stands (from PROGRESS.txt, run.log and the sweep's outcome, as `monitor`
/// reads them), its latest epoch, and its comparison report.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub name: String,
    /// The run's folder relative to the results folder (`""` when serving one run folder):
    /// its files are at `/files/<folder>/<file>`.
    pub folder: String,
    pub phase: Option<String>,
    pub state: RunState,
    /// Training, yet run.log silent for longer than `stale_after_seconds`: most likely dead.
    pub stale: bool,
    /// The epoch under way (or the last, once finished) and the phase's epochs.
    pub epoch: Option<usize>,
    pub epochs: Option<usize>,
    /// 0..=1
    pub fraction: Option<f64>,
    pub eta: Option<String>,
    /// Seconds since run.log's last line.
    pub heartbeat_age_seconds: Option<u64>,
    /// Why the sweep's last attempt at this run failed.
    pub failure: Option<String>,
    /// Lines in metrics.jsonl.
    pub epochs_recorded: usize,
    pub latest: Option<Latest>,
    /// `compare`'s report of the run: its latest finished phase's metrics (test and val
    /// splits, baselines with the curve-fit limit), the checklist, the gate, robustness.
    pub report: Option<RunReport>,
    /// The validation split's baselines, written when training starts (None for older runs):
    /// the live curves' reference lines.
    pub val_baselines: Option<Baselines>,
    /// What could not be read this time, if anything; the rest is the last good read.
    pub problem: Option<String>,
}

/// The last line of metrics.jsonl.
#[derive(Debug, Serialize)]
pub struct Latest {
    pub epoch: usize,
    pub phase: String,
    pub val_accuracy: f64,
    pub val_mse: f64,
    pub val_loss: f64,
    pub train_accuracy: f64,
    pub train_mse: f64,
    pub train_loss: f64,
}

/// `/api/runs/<name>/metrics`: every epoch's record, as in metrics.jsonl.
#[derive(Debug, Serialize)]
pub struct History {
    pub name: String,
    pub records: Vec<EpochRecord>,
    pub problem: Option<String>,
}

/// The results folder and each run's last good read.
pub struct Runs {
    root: PathBuf,
    stale_after: Duration,
    checklist: Checklist,
    last_good: Mutex<HashMap<PathBuf, Good>>,
}

#[derive(Clone)]
struct Good {
    report: RunReport,
    history: Vec<EpochRecord>,
    at: u64,
}

/// A run as read now, or as last read well.
struct Read {
    report: Option<RunReport>,
    history: Vec<EpochRecord>,
    problem: Option<String>,
}

impl Runs {
    /// `root` is canonical (`serve::run` made it so): file paths are checked against it.
    pub fn new(root: PathBuf, stale_after: Duration) -> Runs {
        Runs {
            root,
            stale_after,
            checklist: Checklist::default(),
            last_good: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run folders whose real location (links resolved) is inside the results folder: a
    /// run linked in from elsewhere is left out, as `routes` refuses its files.
    fn dirs(&self) -> Vec<PathBuf> {
        rundir::expand_run_dirs(std::slice::from_ref(&self.root))
            .into_iter()
            .filter(|dir| std::fs::canonicalize(dir).is_ok_and(|real| real.starts_with(&self.root)))
            .collect()
    }

    /// The folder of the run called `name`, if there is one now.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs().into_iter().find(|d| run_name(d) == name)
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = unix_now();
        let dirs = self.dirs();
        // Forget runs whose folder is gone.
        self.lock().retain(|dir, _| dirs.contains(dir));
        let runs: Vec<RunView> = dirs.iter().map(|dir| self.view(dir, now)).collect();
        let finished: Vec<(String, &FinalMetrics)> = runs
            .iter()
            .filter_map(|r| Some((r.name.clone(), r.report.as_ref()?.metrics.as_ref()?)))
            .collect();
        let seed_groups = seeds::groups(&finished);
        Snapshot {
            root: self.root.display().to_string(),
            generated: utc_timestamp(now),
            generated_unix: now,
            stale_after_seconds: self.stale_after.as_secs(),
            classes: trajhost_dataset::trajectory::Class::NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            checklist: self.checklist.clone(),
            runs,
            seed_groups,
            reports: self.reports(),
        }
    }

    /// The comparison reports lying in the results folder itself (regular files only).
    fn reports(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".md") || n.ends_with("_curves.png"))
            .collect();
        names.sort();
        names
    }

    pub fn history(&self, dir: &Path) -> History {
        let read = self.read(dir, unix_now());
        History {
            name: run_name(dir),
            records: read.history,
            problem: read.problem,
        }
    }

    fn view(&self, dir: &Path, now: u64) -> RunView {
        let status = read_status(dir, now, self.stale_after);
        let read = self.read(dir, now);
        let latest = read.history.last().map(|r| Latest {
            epoch: r.epoch,
            phase: r.phase.clone(),
            val_accuracy: r.val.accuracy,
            val_mse: r.val.mse,
            val_loss: r.val.loss,
            train_accuracy: r.train.accuracy,
            train_mse: r.train.mse,
            train_loss: r.train.loss,
        });
        let folder = dir.strip_prefix(&self.root).unwrap_or(dir);
        RunView {
            folder: folder.to_string_lossy().into_owned(),
            name: status.name,
            phase: status.phase,
            state: status.state,
            stale: status.stale,
            epoch: status.epoch.map(|e| e.0),
            epochs: status.epoch.map(|e| e.1),
            fraction: status.fraction,
            eta: status.eta,
            heartbeat_age_seconds: status.heartbeat_age,
            failure: status.failure,
            epochs_recorded: read.history.len(),
            latest,
            report: read.report,
            val_baselines: rundir::metrics::read_val_baselines(dir).ok().flatten(),
            problem: read.problem,
        }
    }

    /// The run's report and history, or its last good ones and what failed.
    fn read(&self, dir: &Path, now: u64) -> Read {
        let (mut report, mut histories) = report::build(&[dir.to_path_buf()], &self.checklist);
        if let (Some(run), Some(history)) = (report.runs.pop(), histories.pop()) {
            self.lock().insert(
                dir.to_path_buf(),
                Good {
                    report: run.clone(),
                    history: history.clone(),
                    at: now,
                },
            );
            return Read {
                report: Some(run),
                history,
                problem: None,
            };
        }
        let reason = report
            .unreadable
            .pop()
            .map_or_else(|| "could not be read".to_string(), |u| u.reason);
        // Paths relative to the results folder read better and say no more than needed.
        let reason = reason.replace(&format!("{}/", self.root.display()), "");
        match self.lock().get(dir).cloned() {
            Some(good) => Read {
                report: Some(good.report),
                history: good.history,
                problem: Some(format!(
                    "{reason} (showing what was read at {} UTC)",
                    utc_timestamp(good.at)
                )),
            },
            None => Read {
                report: None,
                history: vec![],
                problem: Some(reason),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Good>> {
        // A worker that panicked mid-insert leaves a usable map: every entry is whole.
        self.last_good.lock().unwrap_or_else(|e| e.into_inner())
    }
}
