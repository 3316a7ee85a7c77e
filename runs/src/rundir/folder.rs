//! Taking a run folder for a `train` process: an exclusive lock held for the process's life,
//! a refusal to start over a run that is already there (unless told to resume or overwrite),
//! and removal of the temp files a killed write left behind.

use super::{
    CHECKPOINTS, EVENTS_PREFIX, FINAL_METRICS, GATE, METRICS, OUTCOME, PROGRESS, RUN_LOG,
    TRAINING_CURVES, TRAIN_OUTPUT, VALIDATION_METRICS, VAL_BASELINES,
};
use crate::atomic::TEMP_PREFIX;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub use trajhost_fs::LOCK_FILE;

/// What a run writes into its folder (and `--overwrite` removes); `events.out.tfevents.*`
/// files count too.
pub const RUN_ENTRIES: [&str; 12] = [
    PROGRESS,
    METRICS,
    VALIDATION_METRICS,
    VAL_BASELINES,
    FINAL_METRICS,
    RUN_LOG,
    TRAINING_CURVES,
    CHECKPOINTS,
    GATE,
    OUTCOME,
    TRAIN_OUTPUT,
    super::robustness::ROBUSTNESS,
];

/// A run folder taken by this process (`trajhost_fs::FolderLock` on `<run>/.lock`).
pub struct RunLock {
    _lock: trajhost_fs::FolderLock,
}

impl RunLock {
    /// Creates `dir` if needed and locks it; refuses, naming the holder's pid, when another
    /// process has it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            bail!(
                "{} is not a folder: --out names the run's folder",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunLock {
            _lock: trajhost_fs::FolderLock::acquire(dir)?,
        })
    }
}

/// Refuses a run folder where a file a run writes is a FIFO, a device, a socket or a link to
/// one: a write would block (or vanish into /dev/zero) instead of landing in the run.
pub fn refuse_special_run_files(dir: &Path) -> Result<()> {
    for name in RUN_ENTRIES.iter().filter(|n| **n != CHECKPOINTS) {
        let path = dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            continue;
        }
        bail!(
            "{} is {}, not a run file: training would block or lose what it writes there; remove it",
            path.display(),
            trajhost_fs::kind_name(meta.file_type())
        );
    }
    Ok(())
}

/// The run files in `dir` (see [`RUN_ENTRIES`]), sorted.
pub fn run_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if RUN_ENTRIES.contains(&name.as_str()) || name.starts_with(EVENTS_PREFIX) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Refuses a folder that holds a run, naming it and the ways on.
pub fn refuse_existing_run(dir: &Path) -> Result<()> {
    let found = run_entries(dir)?;
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    bail!(
        "{} already holds a run ({}); continue it with --resume auto, or start it over with --overwrite (which deletes those files)",
        dir.display(),
        names.join(", ")
    )
}

/// Deletes the run files of `dir` (others, and the lock, stay).
pub fn clear_run(dir: &Path) -> Result<()> {
    for path in run_entries(dir)? {
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
}

/// Whether `name` is a temp file of an interrupted write: `.tmp*` (atomic writes), or the
/// names older versions used (`.<name>.safetensors.tmp`, `<name>.tmp.png`).
fn is_stray_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
        || (name.starts_with('.') && name.ends_with(".tmp"))
        || name.ends_with(".tmp.png")
}

/// Deletes temp files that a killed write left in the run folder and its checkpoints; returns
/// what it deleted. Only safe while holding the folder's lock.
pub fn remove_stray_temps(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for folder in [dir.to_path_buf(), dir.join(CHECKPOINTS)] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && is_stray_temp(&name) {
                let path = entry.path();
                std::fs::remove_file(&path)
                    .with_context(|| format!("deleting {}", path.display()))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_told_from_run_files() {
        for stray in [
            ".tmpX1y2Z3",
            ".tmpA.safetensors",
            ".epoch-0001.safetensors.tmp",
            "training_curves.tmp.png",
        ] {
            assert!(is_stray_temp(stray), "{stray}");
        }
        for kept in [
            ".lock",
            "run.log",
            "epoch-0001.json",
            "best.safetensors",
            "notes.tmp",
        ] {
            assert!(!is_stray_temp(kept), "{kept}");
        }
    }
}
