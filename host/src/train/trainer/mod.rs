//! The training loop: epochs of shuffled batches, validation, checkpoints, early stopping,
//! exact resume, and a final test evaluation with baselines. What each epoch produces goes to
//! the run's sinks (`sinks`); when to stop is `stopping`'s decision; where to start, `resume`'s.

mod epoch;
mod finish;
mod start;

use super::checkpoint::{self, CheckpointMeta, PluginIdentity};
use super::metrics::Accumulator;
use super::model::UnifiedModel;
use super::optim::AdamW;
use super::resume::{self, Resume, ResumePoint};
use super::sinks::{self, RunOutputs};
use super::source::{DataSource, TrainingData};
use super::stopping::EarlyStoppingState;
use crate::clock::unix_now;
use crate::config::{Background, TrainConfig};
use crate::plugin::Plugin;
use crate::rundir::folder;
use crate::rundir::metrics::{self, SplitMetrics, StopReason};
use crate::rundir::progress::{Progress, RunState};
use crate::stop;
use anyhow::{bail, Context, Result};
use epoch::PassEnd;
use finish::Throughput;
use start::{already_finished, describe_data, take_folder, write_val_baselines};
use std::path::{Path, PathBuf};
use tch::Device;

pub struct TrainOptions {
    pub plugin: PathBuf,
    pub data: PathBuf,
    pub config: TrainConfig,
    pub out: PathBuf,
    pub resume: Option<Resume>,
    /// Delete the run files already in `out` and start over (without it, and without
    /// `resume`, a folder that holds a run is refused).
    pub overwrite: bool,
    pub device: Device,
    /// Behave as if Ctrl-C arrived after this many optimiser steps in total.
    pub stop_after_steps: Option<i64>,
    /// Resume even when the plugin file differs from the build the checkpoint was made with.
    pub accept_plugin_change: bool,
}

#[derive(Debug, PartialEq)]
pub enum TrainOutcome {
    Finished {
        final_metrics: PathBuf,
    },
    Interrupted {
        checkpoint: PathBuf,
    },
    /// Resumed a run that had already stopped and written its final metrics: nothing done.
    AlreadyFinished {
        final_metrics: PathBuf,
        stop_reason: StopReason,
        epochs: usize,
    },
}

/// Where training stands; exactly what a checkpoint restores.
#[derive(Clone, Default)]
struct Position {
    epoch: usize,
    step_in_epoch: usize,
    global_step: i64,
    train_progress: Accumulator,
    early_stopping: EarlyStoppingState,
    elapsed_seconds: f64,
    /// Set once training has stopped for good; only the final evaluation remains.
    stopped: Option<StopReason>,
}

struct Run<'a> {
    config: &'a TrainConfig,
    model: UnifiedModel,
    optimizer: AdamW,
    plugin: PluginIdentity,
    outputs: RunOutputs,
    device: Device,
    stop_after_steps: Option<i64>,
    accept_plugin_change: bool,
    steps_per_epoch: usize,
    /// Recorded in every checkpoint, for `eval` and `predict`.
    video_shape: [i64; 3],
    data: PathBuf,
    data_digest: String,
    source: DataSource,
}

pub fn train(options: TrainOptions) -> Result<TrainOutcome> {
    let config = &options.config;
    // Before anything in the folder changes: one process per run folder, held until we return.
    let _lock = folder::RunLock::acquire(&options.out)?;
    folder::refuse_special_run_files(&options.out)?;
    take_folder(&options)?;
    let strays = folder::remove_stray_temps(&options.out)?;
    let (saved, warnings) = resume::choose(&options.out, options.resume.as_ref(), config)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(done) = saved
        .as_ref()
        .map(|p| already_finished(&options.out, config, p))
    {
        if let Some(outcome) = done? {
            return Ok(outcome);
        }
    }
    stop::install_handler();
    let mut run = Run::build(&options)?;
    for stray in &strays {
        run.outputs.log(&format!(
            "removed {}, left by an interrupted write",
            stray.display()
        ));
    }
    for warning in &warnings {
        run.outputs.log(warning);
    }
    let position = match &saved {
        Some(point) => Position {
            stopped: point.stopped,
            ..run.restore(&point.path)?
        },
        None => Position::default(),
    };
    metrics::keep_history_up_to(&options.out, position.epoch)?;
    run.log_start(&options, saved.as_ref(), &position);
    run.outputs
        .start(&sinks::settings(config, &run.plugin.name, &run.data))?;
    let data = run
        .source
        .load(config.predict_future, config.max_train_samples)?;
    run.outputs.log(&describe_data(&data));
    write_val_baselines(&options.out, &data, config.predict_future)?;
    let outcome = run.fit(&data, position);
    if let Err(e) = &outcome {
        run.outputs.log(&format!("failed: {e:#}"));
        if let Err(e) = crate::rundir::progress::mark_failed(&options.out) {
            eprintln!("warning: could not mark the run failed in PROGRESS.txt: {e:#}");
        }
    }
    outcome
}

impl<'a> Run<'a> {
    fn build(options: &'a TrainOptions) -> Result<Self> {
        let config = &options.config;
        let plugin = Plugin::load(&options.plugin)?;
        let identity = PluginIdentity::of(&plugin);
        tch::manual_seed(config.seed as i64);
        let backbone = plugin.build(&config.backbone, options.device)?;
        let source = DataSource::parse(&options.data)?;
        let video_shape = source.clip_shape()?;
        // A median of one or two frames is the clip itself: nothing would be left to see.
        if config.background == Background::SubtractMedian && video_shape[0] < 3 {
            bail!(
                "background: subtract_median needs clips of at least 3 frames; {} has {}",
                options.data.display(),
                video_shape[0]
            );
        }
        let mut model = UnifiedModel::new(
            backbone,
            video_shape[0],
            config.position_head,
            (config.background, config.colour),
            options.device,
        );
        model.fovea_passes = config.fovea_passes;
        model.mirror_average = config.mirror_average;
        let optimizer = AdamW::new(model.parameters(), config.weight_decay);
        Ok(Run {
            config,
            model,
            optimizer,
            plugin: identity,
            outputs: RunOutputs::open(&options.out)?,
            device: options.device,
            stop_after_steps: options.stop_after_steps,
            accept_plugin_change: options.accept_plugin_change,
            steps_per_epoch: 0,
            video_shape,
            data: source.spec()?,
            data_digest: source.digest()?,
            source,
        })
    }

    fn log_start(&self, options: &TrainOptions, saved: Option<&ResumePoint>, at: &Position) {
        let from = match saved {
            Some(point) => format!(
                "resuming from {} at epoch {} step {}{}",
                point.path.display(),
                at.epoch,
                at.step_in_epoch,
                match at.stopped {
                    Some(reason) => format!(
                        "; training had finished ({}), only the final evaluation is missing",
                        reason.describe()
                    ),
                    None => String::new(),
                }
            ),
            None => "fresh start".into(),
        };
        self.outputs.log(&format!(
            "start: plugin '{}' ({} parameters), data {}, device {:?}, {from}",
            self.plugin.name,
            self.model.parameter_count(),
            options.data.display(),
            options.device,
        ));
    }

    fn model_tensor_shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.model
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect()
    }

    fn restore(&mut self, path: &Path) -> Result<Position> {
        let loaded = checkpoint::load(path)?;
        // The same tensors mean other things under another head: refused like another model.
        let (saved, now) = (&loaded.meta.config, self.config);
        if saved.position_head != now.position_head {
            bail!(
                "checkpoint {} was trained with position_head {:?}, this config says {:?}: resume with the checkpoint's head",
                path.display(),
                saved.position_head,
                now.position_head
            );
        }
        // The same tensors were trained on other input.
        if saved.background != now.background {
            bail!(
                "checkpoint {} was trained with background {:?}, this config says {:?}: resume with the checkpoint's background",
                path.display(),
                saved.background,
                now.background
            );
        }
        if saved.colour != now.colour {
            bail!(
                "checkpoint {} was trained with colour {}, this config says {}: resume with the checkpoint's colour",
                path.display(),
                saved.colour.name(),
                now.colour.name()
            );
        }
        // The same data path holding other data since (an edited config, a regenerated
        // dataset): the run would go on with other data. Another --data is the user's choice.
        if let Some(recorded) = &loaded.meta.data {
            let digest = loaded.meta.data_digest.as_deref();
            if self.source.is_recorded(recorded) && !self.source.is_as_recorded(recorded, digest)? {
                bail!(
                    "{} has changed since checkpoint {} was written (it recorded other contents): a resumed run would go on with other data; put the data back, or train a new run",
                    self.source.input().display(),
                    path.display()
                );
            }
        }
        checkpoint::check_fits(
            &loaded.meta,
            &self.plugin,
            self.accept_plugin_change,
            &self.model_tensor_shapes(),
            path,
        )?;
        checkpoint::restore_model(&mut self.model, &loaded, path)?;
        self.optimizer
            .load_state(&loaded.tensors, loaded.meta.global_step)
            .with_context(|| format!("restoring checkpoint {}", path.display()))?;
        let m = loaded.meta;
        Ok(Position {
            epoch: m.epoch,
            step_in_epoch: m.step_in_epoch,
            global_step: m.global_step,
            train_progress: m.train_progress,
            early_stopping: m.early_stopping,
            elapsed_seconds: m.elapsed_seconds,
            stopped: None,
        })
    }

    fn save(&self, name: &str, at: &Position) -> Result<PathBuf> {
        let mut tensors = self.model.state();
        tensors.extend(self.optimizer.state());
        let mut meta = CheckpointMeta {
            format: checkpoint::FORMAT,
            epoch: at.epoch,
            step_in_epoch: at.step_in_epoch,
            global_step: at.global_step,
            train_progress: at.train_progress.clone(),
            early_stopping: at.early_stopping.clone(),
            elapsed_seconds: at.elapsed_seconds,
            timestamp_unix: unix_now(),
            config: self.config.clone(),
            plugin: self.plugin.clone(),
            model_tensors: self.model_tensor_shapes(),
            tensors_file: String::new(),
            tensors_bytes: 0,
            tensors_sha256: None,
            stopped: at.stopped,
            data: Some(self.data.clone()),
            data_digest: Some(self.data_digest.clone()),
            video_shape: Some(self.video_shape),
        };
        let dir = checkpoint::checkpoint_dir(&self.outputs.dir);
        let json = checkpoint::save(&dir, name, &mut meta, &tensors)?;
        self.outputs.log(&format!("checkpoint: {}", json.display()));
        Ok(json)
    }

    fn progress(&self, at: &Position, last: Option<&SplitMetrics>, state: RunState) -> Result<()> {
        self.outputs.progress(&Progress {
            run: &self.outputs.name,
            phase: &self.config.phase,
            epochs_done: at.epoch,
            epochs: self.config.epochs,
            step_in_epoch: at.step_in_epoch,
            steps_per_epoch: self.steps_per_epoch,
            accuracy: last.map(|m| m.accuracy),
            mse: last.map(|m| m.mse),
            loss: last.map(|m| m.loss),
            elapsed_seconds: at.elapsed_seconds,
            time_budget_seconds: self.config.time_budget_minutes.map(|m| m * 60.0),
            state,
        })
    }

    fn budget(&self) -> Option<f64> {
        self.config.time_budget_minutes.map(|m| m * 60.0)
    }

    fn fit(&mut self, data: &TrainingData, mut at: Position) -> Result<TrainOutcome> {
        self.steps_per_epoch = data.train.len().div_ceil(self.config.batch_size);
        // Equal is a run stopped after an epoch's last batch, before its validation.
        if at.step_in_epoch > self.steps_per_epoch {
            bail!(
                "the checkpoint resumed from says step_in_epoch {}, but an epoch here has {} batches: the checkpoint does not belong to this data and config",
                at.step_in_epoch,
                self.steps_per_epoch
            );
        }
        let mut last_val = metrics::read_history(&self.outputs.dir)?
            .last()
            .map(|r| r.val.clone());
        let mut throughput = Throughput::default();
        if at.stopped.is_none() {
            self.progress(&at, last_val.as_ref(), RunState::Training)?;
        }
        while at.stopped.is_none() && at.epoch < self.config.epochs {
            let pass = match self.train_epoch(data, &mut at, last_val.as_ref())? {
                PassEnd::Done(pass) => pass,
                PassEnd::Interrupted(checkpoint) => {
                    return Ok(TrainOutcome::Interrupted { checkpoint })
                }
            };
            throughput.videos += pass.videos;
            throughput.seconds += pass.seconds;
            last_val = Some(self.end_epoch(data, &mut at, pass)?);
        }
        self.outputs.bar.finish_and_clear();
        self.final_evaluation(data, &at, last_val, throughput)
    }
}
