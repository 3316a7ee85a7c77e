//! The run-folder protocol: what a run folder (`results/<run>/`) holds, the types of its files,
//! and the only code that reads or writes them. The trainer writes through it; compare,
//! monitor, sweep, the gate and the pipeline read through it, and so work on a folder synced
//! from another machine. Nothing here knows how training works.
//!
//! | file | written by | type |
//! |---|---|---|
//! | `PROGRESS.txt` | trainer, atomically, every 30 s and each epoch | [`progress::Progress`] |
//! | `run.log` | trainer, appended, with a heartbeat every 30 s | [`log::RunLog`] |
//! | `metrics.jsonl` | trainer, one line per epoch | [`metrics::EpochRecord`] |
//! | `validation_metrics.json`, `final_metrics.json` | trainer, at the end of a phase | [`metrics::FinalMetrics`] |
//! | `training_curves.png`, `events.out.tfevents.*` | trainer, each epoch | pictures, TensorBoard |
//! | `checkpoints/` | trainer (`train::checkpoint`) | safetensors + JSON |
//! | `gate.json` | pipeline | [`gate::GateDecision`] |
//! | `robustness.json` | `eval --shifts` | [`robustness::Robustness`] |
//! | `sweep_outcome.json`, `train.out` | sweep runner | [`outcome::RunOutcome`], child output |
//! | `.lock` | trainer, held while it runs | [`folder::RunLock`] |

pub mod folder;
pub mod gate;
pub mod log;
pub mod metrics;
pub mod outcome;
pub mod progress;
pub mod robustness;
pub mod state;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

pub const PROGRESS: &str = "PROGRESS.txt";
pub const RUN_LOG: &str = "run.log";
pub const METRICS: &str = "metrics.jsonl";
pub const VALIDATION_METRICS: &str = "validation_metrics.json";
pub const FINAL_METRICS: &str = "final_metrics.json";
/// The validation split's baselines, written when training starts, so a live run's curves can
/// be read against them.
pub const VAL_BASELINES: &str = "val_baselines.json";
pub const TRAINING_CURVES: &str = "training_curves.png";
pub const CHECKPOINTS: &str = "checkpoints";
pub const GATE: &str = "gate.json";
pub const OUTCOME: &str = "sweep_outcome.json";
/// A sweep child's stdout and stderr.
pub const TRAIN_OUTPUT: &str = "train.out";
/// TensorBoard event files start with this.
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// Whether `dir` looks like a run folder: it has any of the files a run writes.
pub fn is_run_dir(dir: &Path) -> bool {
    dir.is_dir()
        && [
            PROGRESS,
            METRICS,
            VALIDATION_METRICS,
            FINAL_METRICS,
            RUN_LOG,
            OUTCOME,
        ]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Run folders among `paths`: a run folder is taken as is, another folder is searched one level
/// down (so `results/` and `results/*` both work); files and other entries are skipped.
/// Sorted by path, duplicates removed.
pub fn expand_run_dirs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if is_run_dir(path) {
            found.push(path.clone());
        } else if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                found.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| is_run_dir(p)),
                );
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A run's name: its folder's name.
pub fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}

/// A file in a run's `checkpoints/` folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckpointFile {
    pub name: String,
    pub bytes: u64,
    /// Unix time of its last change.
    pub modified_unix: u64,
}

/// The files in `<dir>/checkpoints/`, by name (none when the folder does not exist). Only
/// listed, not read: which one is newest is `train::checkpoint`'s business.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<CheckpointFile>> {
    let folder = dir.join(CHECKPOINTS);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("listing {}", folder.display())),
    };
    let mut files: Vec<CheckpointFile> = entries
        .filter_map(|e| e.ok())
        // A file renamed or deleted between the listing and its metadata is simply skipped.
        .filter_map(|e| Some((e.file_name(), e.metadata().ok()?)))
        .filter(|(_, m)| m.is_file())
        .map(|(name, m)| CheckpointFile {
            name: name.to_string_lossy().into_owned(),
            bytes: m.len(),
            modified_unix: m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Opens a run-folder file for reading (`Ok(None)` when it does not exist), but only a regular
/// file: it is opened non-blocking and refused otherwise, so a FIFO or device named like a run
/// file cannot hang `monitor`, `compare`, a resume or a dashboard worker.
pub fn open_regular(path: &Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    Ok(Some(file))
}

/// The largest run-folder file read whole (metrics, checkpoints' JSON, PROGRESS.txt...): a
/// run of thousands of epochs writes a few MB; a larger file is refused, not read into memory.
pub const MAX_RUN_FILE_BYTES: u64 = 64 << 20;

/// The bytes of a run-folder file (`Ok(None)` when it does not exist); see [`open_regular`].
/// Refused past [`MAX_RUN_FILE_BYTES`].
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let size = file.metadata()?.len();
    if size > MAX_RUN_FILE_BYTES {
        anyhow::bail!(
            "{} is {size} bytes, more than the {MAX_RUN_FILE_BYTES} a run file may have",
            path.display()
        );
    }
    let mut bytes = Vec::new();
    file.take(MAX_RUN_FILE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(bytes))
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match read_regular(path)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not valid", path.display())),
        None => Ok(None),
    }
}
