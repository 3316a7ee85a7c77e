//! Before a run trains: its folder taken (cleared for `--overwrite`, refused when it holds a
//! run and nothing says resume), and a resumed run that had already finished noticed.

use super::{TrainOptions, TrainOutcome};
use crate::config::TrainConfig;
use crate::rundir::{folder, metrics};
use crate::train::metrics::baselines;
use crate::train::resume::ResumePoint;
use crate::train::source::TrainingData;
use anyhow::{bail, Result};
use std::path::Path;

/// Clears the folder for `--overwrite`, or refuses a folder that holds a run unless resuming.
pub(super) fn take_folder(options: &TrainOptions) -> Result<()> {
    if options.overwrite {
        if options.resume.is_some() {
            bail!("--overwrite starts the run over; it cannot also --resume");
        }
        folder::clear_run(&options.out)
    } else if options.resume.is_none() {
        folder::refuse_existing_run(&options.out)
    } else {
        Ok(())
    }
}

/// `Some` when the checkpoint's run stopped for good and its final metrics exist.
pub(super) fn already_finished(
    out: &Path,
    config: &TrainConfig,
    point: &ResumePoint,
) -> Result<Option<TrainOutcome>> {
    let Some(reason) = point.stopped else {
        return Ok(None);
    };
    if !matches!(metrics::read_phase(out, &config.phase), Ok(Some(_))) {
        return Ok(None);
    }
    let path = out.join(metrics::final_metrics_file(&config.phase));
    crate::rundir::log::RunLog::open(out)?.line(&format!(
        "resume: the run already finished ({}) after epoch {}; {} exists, nothing to do",
        reason.describe(),
        point.meta.epoch,
        path.display()
    ));
    Ok(Some(TrainOutcome::AlreadyFinished {
        final_metrics: path,
        stop_reason: reason,
        epochs: point.meta.epoch,
    }))
}

/// The log's line about the data the run trains on.
pub(super) fn describe_data(data: &TrainingData) -> String {
    format!(
        "data: {} train{}, {} val, {} test videos of {} frames",
        data.train.len(),
        if data.procedural.is_some() {
            " per epoch, rendered as they are needed"
        } else {
            ""
        },
        data.val.len(),
        data.test.len(),
        data.frames
    )
}

/// For live curves (the dashboard): what the validation MSE should be read against.
pub(super) fn write_val_baselines(
    out: &Path,
    data: &TrainingData,
    predict_future: usize,
) -> Result<()> {
    if data.val.is_empty() {
        return Ok(());
    }
    let reference = if data.train.is_empty() {
        &data.val
    } else {
        &data.train
    };
    let val_baselines = baselines(reference, &data.val, predict_future);
    metrics::write_val_baselines(out, &val_baselines)
}
