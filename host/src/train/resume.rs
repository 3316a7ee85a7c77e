//! Where a run starts: fresh, or from which checkpoint, and whether anything is left to do
//! there (a run that already stopped for good only lacks, at most, its final evaluation).

use super::checkpoint::{self, CheckpointMeta};
use crate::config::TrainConfig;
use crate::rundir::metrics::StopReason;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub enum Resume {
    /// The newest complete checkpoint in the run folder, or a fresh start if there is none.
    Auto,
    Path(PathBuf),
}

/// A checkpoint to resume from: the path of its JSON and what it says.
pub struct ResumePoint {
    pub path: PathBuf,
    pub meta: CheckpointMeta,
    /// The stop it records, if it still holds for the config resumed with.
    pub stopped: Option<StopReason>,
}

/// The checkpoint `resume` names in `out` (None = start fresh), with a warning for each
/// damaged checkpoint that `--resume auto` skipped.
pub fn choose(
    out: &Path,
    resume: Option<&Resume>,
    config: &TrainConfig,
) -> Result<(Option<ResumePoint>, Vec<String>)> {
    let (path, warnings) = match resume {
        None => (None, vec![]),
        Some(Resume::Auto) => checkpoint::for_auto_resume(out)?,
        Some(Resume::Path(p)) => (Some(p.with_extension("json")), vec![]),
    };
    let point = match path {
        Some(path) => {
            let meta = checkpoint::read_meta(&path)?;
            check_batch_size(&meta, &path, config)?;
            let stopped = still_stopped(&meta, config);
            Some(ResumePoint {
                path,
                meta,
                stopped,
            })
        }
        None => None,
    };
    Ok((point, warnings))
}

/// A run stopped mid-epoch resumes only with the batch size it had: another would cut the rest
/// of that epoch differently, skipping or repeating samples.
fn check_batch_size(meta: &CheckpointMeta, path: &Path, config: &TrainConfig) -> Result<()> {
    if meta.step_in_epoch > 0 && meta.config.batch_size != config.batch_size {
        bail!(
            "checkpoint {} stopped {} batches into epoch {} with batch_size {}, but the config has batch_size {}: the rest of that epoch would be cut differently, skipping or repeating samples; resume with batch_size {}, or from a checkpoint at an epoch's end",
            path.display(),
            meta.step_in_epoch,
            meta.epoch + 1,
            meta.config.batch_size,
            config.batch_size,
            meta.config.batch_size
        );
    }
    Ok(())
}

/// The stop recorded in `meta` if it still holds for a run resumed with `config`; None = train
/// on. Another phase (the pipeline's full phase after validation) trains on, as does a run
/// given more epochs, a longer time budget or more patience than it stopped at.
pub fn still_stopped(meta: &CheckpointMeta, config: &TrainConfig) -> Option<StopReason> {
    if meta.config.phase != config.phase || meta.step_in_epoch > 0 {
        return None;
    }
    let all_epochs = meta.epoch >= config.epochs;
    // Checkpoints from before `stopped` existed: only "every epoch done" can be told.
    let reason = meta
        .stopped
        .or(all_epochs.then_some(StopReason::Completed))?;
    let holds = all_epochs
        || match reason {
            StopReason::Completed => false,
            StopReason::EarlyStopping => config
                .early_stopping
                .as_ref()
                .is_some_and(|es| meta.early_stopping.epochs_without_improvement >= es.patience),
            StopReason::TimeBudget => config
                .time_budget_minutes
                .is_some_and(|m| meta.elapsed_seconds >= m * 60.0),
        };
    holds.then_some(reason)
}
