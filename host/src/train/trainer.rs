//! The training loop: epochs of shuffled batches, validation, checkpoints, early stopping,
//! exact resume, and a final test evaluation with baselines.

use super::checkpoint::{self, CheckpointMeta, EarlyStoppingState, PluginIdentity};
use super::config::TrainConfig;
use super::curves::draw_training_curves;
use super::data::{self, batches, epoch_order, TrainingData};
use super::folder;
use super::metrics::{baselines, evaluate, Accumulator, SplitMetrics};
use super::model::UnifiedModel;
use super::optim::{learning_rate, AdamW};
use super::outputs::{
    final_metrics_file, unix_now, EpochRecord, FinalMetrics, Progress, RunFiles, StopReason,
};
use super::step::{forward_step, update_step};
use super::stop;
use super::tensorboard::EventWriter;
use crate::plugin::Plugin;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::{Device, Tensor};

pub enum Resume {
    /// The newest complete checkpoint in the run folder, or a fresh start if there is none.
    Auto,
    Path(PathBuf),
}

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
#[derive(Clone)]
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
    name: String,
    model: UnifiedModel,
    optimizer: AdamW,
    plugin: PluginIdentity,
    files: RunFiles,
    device: Device,
    stop_after_steps: Option<i64>,
}

pub fn train(options: TrainOptions) -> Result<TrainOutcome> {
    let config = &options.config;
    // Before anything in the folder changes: one process per run folder, held until we return.
    let _lock = folder::RunLock::acquire(&options.out)?;
    if options.overwrite {
        if options.resume.is_some() {
            bail!("--overwrite starts the run over; it cannot also --resume");
        }
        folder::clear_run(&options.out)?;
    } else if options.resume.is_none() {
        folder::refuse_existing_run(&options.out)?;
    }
    let strays = folder::remove_stray_temps(&options.out)?;
    let mut warnings = Vec::new();
    let resume_from = match &options.resume {
        None => None,
        Some(Resume::Auto) => {
            let (newest, skipped) = checkpoint::for_auto_resume(&options.out)?;
            for warning in skipped {
                eprintln!("warning: {warning}");
                warnings.push(warning);
            }
            newest
        }
        Some(Resume::Path(p)) => Some(p.with_extension("json")),
    };
    let saved = resume_from
        .as_deref()
        .map(checkpoint::read_meta)
        .transpose()?;
    let stopped = saved.as_ref().and_then(|meta| still_stopped(meta, config));
    if let (Some(meta), Some(reason)) = (&saved, stopped) {
        let path = options.out.join(final_metrics_file(&config.phase));
        let written = crate::rundir::read_json::<FinalMetrics>(&path);
        if matches!(written, Ok(Some(m)) if m.phase == config.phase) {
            let files = RunFiles::open(&options.out)?;
            files.log(&format!(
                "resume: the run already finished ({}) after epoch {}; {} exists, nothing to do",
                reason.describe(),
                meta.epoch,
                path.display()
            ));
            return Ok(TrainOutcome::AlreadyFinished {
                final_metrics: path,
                stop_reason: reason,
                epochs: meta.epoch,
            });
        }
    }
    if let (Some(meta), Some(path)) = (&saved, &resume_from) {
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
    }
    stop::install_handler();
    let plugin = Plugin::load(&options.plugin)?;
    let identity = PluginIdentity {
        name: plugin.stamp.name.clone(),
        version: plugin.stamp.plugin_version.clone(),
        fingerprint: plugin.stamp.fingerprint.clone(),
    };
    tch::manual_seed(config.seed as i64);
    let backbone = plugin.build(&config.backbone, options.device)?;
    let model = UnifiedModel::new(backbone, data::clip_frames(&options.data)?, options.device);
    let optimizer = AdamW::new(model.parameters(), config.weight_decay);
    let name = options
        .out
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let files = RunFiles::open(&options.out)?;
    for stray in &strays {
        files.log(&format!(
            "removed {}, left by an interrupted write",
            stray.display()
        ));
    }
    for warning in &warnings {
        files.log(warning);
    }
    let mut run = Run {
        config,
        name,
        model,
        optimizer,
        plugin: identity,
        files,
        device: options.device,
        stop_after_steps: options.stop_after_steps,
    };

    let position = match &resume_from {
        Some(path) => Position {
            stopped,
            ..run.restore(path)?
        },
        None => Position {
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            train_progress: Accumulator::default(),
            early_stopping: EarlyStoppingState::default(),
            elapsed_seconds: 0.0,
            stopped: None,
        },
    };
    run.files.keep_metrics_up_to(position.epoch)?;
    run.files.log(&format!(
        "start: plugin '{}' ({} parameters), data {}, device {:?}, {}",
        run.plugin.name,
        run.model.parameter_count(),
        options.data.display(),
        options.device,
        match &resume_from {
            Some(p) => format!(
                "resuming from {} at epoch {} step {}{}",
                p.display(),
                position.epoch,
                position.step_in_epoch,
                match position.stopped {
                    Some(reason) => format!(
                        "; training had finished ({}), only the final evaluation is missing",
                        reason.describe()
                    ),
                    None => String::new(),
                }
            ),
            None => "fresh start".into(),
        }
    ));
    let data = data::load(
        &options.data,
        config.predict_future,
        config.max_train_samples,
    )?;
    run.files.log(&format!(
        "data: {} train, {} val, {} test videos of {} frames",
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.frames
    ));
    run.fit(&data, position)
}

impl Run<'_> {
    fn model_tensor_shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.model
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect()
    }

    fn restore(&mut self, path: &Path) -> Result<Position> {
        let loaded = checkpoint::load(path)?;
        checkpoint::check_fits(
            &loaded.meta,
            &self.plugin,
            &self.model_tensor_shapes(),
            path,
        )?;
        let backbone: HashMap<String, Tensor> = loaded
            .tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("backbone.")
                    .map(|n| (n.to_string(), t.shallow_clone()))
            })
            .collect();
        self.model
            .backbone
            .load_state(&backbone)
            .with_context(|| format!("restoring checkpoint {}", path.display()))?;
        tch::no_grad(|| -> Result<()> {
            for (name, mut head) in self
                .model
                .state()
                .into_iter()
                .filter(|(n, _)| n.starts_with("heads."))
            {
                let saved = loaded.tensors.get(&name).ok_or_else(|| {
                    anyhow!(
                        "checkpoint {} has no tensor '{name}' (its tensors file is damaged or incomplete)",
                        path.display()
                    )
                })?;
                head.f_copy_(saved)?;
            }
            Ok(())
        })?;
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
            stopped: at.stopped,
        };
        let dir = checkpoint::checkpoint_dir(&self.files.dir);
        let json = checkpoint::save(&dir, name, &mut meta, &tensors)?;
        self.files.log(&format!("checkpoint: {}", json.display()));
        Ok(json)
    }

    fn progress(
        &self,
        at: &Position,
        steps_per_epoch: usize,
        last: Option<&SplitMetrics>,
        status: &str,
    ) -> Result<()> {
        self.files.set_status(format!(
            "epoch {}/{} step {}/{steps_per_epoch}",
            at.epoch + 1,
            self.config.epochs,
            at.step_in_epoch
        ));
        self.files.write_progress(&Progress {
            run: &self.name,
            phase: &self.config.phase,
            epochs_done: at.epoch,
            epochs: self.config.epochs,
            step_in_epoch: at.step_in_epoch,
            steps_per_epoch,
            accuracy: last.map(|m| m.accuracy),
            mse: last.map(|m| m.mse),
            loss: last.map(|m| m.loss),
            elapsed_seconds: at.elapsed_seconds,
            time_budget_seconds: self.config.time_budget_minutes.map(|m| m * 60.0),
            status,
        })
    }

    fn fit(&mut self, data: &TrainingData, mut at: Position) -> Result<TrainOutcome> {
        let config = self.config;
        let steps_per_epoch = data.train.len().div_ceil(config.batch_size);
        let total_steps = steps_per_epoch * config.epochs;
        let budget = config.time_budget_minutes.map(|m| m * 60.0);
        let mut over_budget = false;
        let mut last_val = self.files.read_metrics()?.last().map(|r| r.val.clone());
        let mut train_seconds = 0.0;
        let mut trained_videos = 0usize;
        if at.stopped.is_none() {
            self.progress(&at, steps_per_epoch, last_val.as_ref(), "training")?;
        }
        let mut last_progress = Instant::now();
        let mut events: Option<EventWriter> = None;
        let bar = progress_bar(&self.name);

        while at.stopped.is_none() && at.epoch < config.epochs {
            let epoch = at.epoch + 1;
            let order = epoch_order(data.train.len(), config.seed, epoch);
            let skip = (at.step_in_epoch * config.batch_size).min(order.len());
            let epoch_start = Instant::now();
            let mut epoch_videos = 0usize;
            let mut lr = 0.0;
            bar.set_length(steps_per_epoch as u64);
            bar.set_position(at.step_in_epoch as u64);
            bar.set_prefix(format!("{} epoch {epoch}/{}", self.name, config.epochs));
            for batch in batches(&data.train, &order[skip..], config.batch_size, self.device) {
                let weights = self.config.loss_weights();
                let (outputs, losses) = forward_step(
                    &mut self.model,
                    &batch,
                    config.seed,
                    at.global_step,
                    weights,
                )?;
                let loss = losses.total.double_value(&[]);
                if !loss.is_finite() {
                    let kept = checkpoint::newest(&self.files.dir)
                        .map_or("none yet".to_string(), |p| p.display().to_string());
                    self.files.log(&format!(
                        "stopped: loss is {loss} at step {}",
                        at.global_step + 1
                    ));
                    bail!(
                        "training stopped: the loss became {loss} at step {} (epoch {epoch}, batch {}); last good checkpoint: {kept}",
                        at.global_step + 1,
                        at.step_in_epoch + 1
                    );
                }
                // With a time budget the schedule follows whichever is further along, steps or
                // time, so the learning rate has annealed when the budget runs out.
                let schedule_step = match budget {
                    Some(b) => {
                        let by_time = (at.elapsed_seconds + epoch_start.elapsed().as_secs_f64())
                            / b
                            * total_steps as f64;
                        (at.global_step as usize).max(by_time as usize)
                    }
                    None => at.global_step as usize,
                };
                lr = learning_rate(
                    schedule_step,
                    config.warmup_steps,
                    total_steps,
                    config.lr,
                    config.min_lr,
                    config.cosine,
                );
                update_step(&mut self.optimizer, &losses.total, config.grad_clip, lr)?;
                tch::no_grad(|| at.train_progress.add(&outputs, &batch, &losses));
                at.global_step += 1;
                at.step_in_epoch += 1;
                epoch_videos += batch.labels.size()[0] as usize;
                bar.set_position(at.step_in_epoch as u64);
                bar.set_message(format!("loss {loss:.4}"));

                let now = epoch_start.elapsed().as_secs_f64();
                if stop::requested() || self.stop_after_steps == Some(at.global_step) {
                    at.elapsed_seconds += now;
                    let name = checkpoint::name_for(at.epoch, at.step_in_epoch);
                    let json = self.save(&name, &at)?;
                    self.progress(&at, steps_per_epoch, last_val.as_ref(), "interrupted")?;
                    self.files.log(&format!(
                        "interrupted at epoch {epoch} step {}; resume with --resume auto",
                        at.step_in_epoch
                    ));
                    return Ok(TrainOutcome::Interrupted { checkpoint: json });
                }
                if budget.is_some_and(|b| at.elapsed_seconds + now >= b) {
                    over_budget = true;
                    break;
                }
                if last_progress.elapsed() >= Duration::from_secs(30) {
                    let shown = Position {
                        elapsed_seconds: at.elapsed_seconds + now,
                        ..at.clone()
                    };
                    self.progress(&shown, steps_per_epoch, last_val.as_ref(), "training")?;
                    last_progress = Instant::now();
                }
            }
            let epoch_seconds = epoch_start.elapsed().as_secs_f64();
            train_seconds += epoch_seconds;
            trained_videos += epoch_videos;
            let train_metrics = at.train_progress.finish();
            let weights = self.config.loss_weights();
            let val = evaluate(
                &mut self.model,
                &data.val,
                config.batch_size,
                self.device,
                weights,
            )?;
            at.elapsed_seconds += epoch_start.elapsed().as_secs_f64();
            if over_budget && at.step_in_epoch < steps_per_epoch {
                self.files.log(&format!(
                    "time budget of {:.1} min reached {} steps into epoch {epoch}: it counts as the last epoch",
                    config.time_budget_minutes.unwrap_or_default(),
                    at.step_in_epoch
                ));
            }
            at.epoch = epoch;
            at.step_in_epoch = 0;
            at.train_progress = Accumulator::default();
            let record = EpochRecord {
                epoch,
                phase: config.phase.clone(),
                lr,
                train: train_metrics,
                val: val.clone(),
                elapsed_seconds: at.elapsed_seconds,
                train_videos_per_second: epoch_videos as f64 / epoch_seconds.max(1e-9),
            };
            self.files.append_metrics(&record)?;
            for (tag, value) in [
                ("train/loss", record.train.loss),
                ("train/accuracy", record.train.accuracy),
                ("train/mse", record.train.mse),
                ("val/loss", val.loss),
                ("val/accuracy", val.accuracy),
                ("val/mse", val.mse),
                ("lr", lr),
            ] {
                let events = match &mut events {
                    Some(events) => events,
                    None => events.insert(EventWriter::create(&self.files.dir)?),
                };
                events.scalar(tag, epoch as i64, value)?;
            }
            draw_training_curves(
                &self.files.read_metrics()?,
                &self.files.dir.join("training_curves.png"),
            )?;
            self.files.log(&format!(
                "epoch {epoch}/{}: train loss {:.4} acc {:.3} mse {:.4} | val loss {:.4} acc {:.3} mse {:.4} | {:.0} videos/s",
                config.epochs,
                record.train.loss,
                record.train.accuracy,
                record.train.mse,
                val.loss,
                val.accuracy,
                val.mse,
                record.train_videos_per_second
            ));
            say(&bar, format!(
                "[{}] epoch {epoch}/{} train loss {:.4} | val acc {:.1}% mse {:.4} | {:.0} videos/s",
                self.name,
                config.epochs,
                record.train.loss,
                100.0 * val.accuracy,
                val.mse,
                record.train_videos_per_second
            ));
            let improved = self.update_early_stopping(&mut at.early_stopping, &val, epoch);
            if improved {
                self.save("best", &at)?;
            }
            let patience_over = config
                .early_stopping
                .as_ref()
                .is_some_and(|es| at.early_stopping.epochs_without_improvement >= es.patience);
            // Decided before the checkpoint, which records it: resuming a stopped run must not
            // train on.
            at.stopped = if over_budget {
                Some(StopReason::TimeBudget)
            } else if patience_over {
                Some(StopReason::EarlyStopping)
            } else if epoch >= config.epochs {
                Some(StopReason::Completed)
            } else {
                None
            };
            if epoch.is_multiple_of(config.checkpoint_interval) || at.stopped.is_some() {
                self.save(&checkpoint::name_for(epoch, 0), &at)?;
                checkpoint::prune(&self.files.dir, config.keep_checkpoints)?;
            }
            last_val = Some(val);
            self.progress(&at, steps_per_epoch, last_val.as_ref(), "training")?;
            last_progress = Instant::now();
            if at.stopped == Some(StopReason::EarlyStopping) {
                self.files.log(&format!(
                    "early stopping after epoch {epoch}: no improvement in {} epochs",
                    at.early_stopping.epochs_without_improvement
                ));
            }
        }
        let stop_reason = at.stopped.unwrap_or(StopReason::Completed);

        let weights = self.config.loss_weights();
        bar.finish_and_clear();
        let test = evaluate(
            &mut self.model,
            &data.test,
            config.batch_size,
            self.device,
            weights,
        )?;
        // Resumed only for this evaluation: the validation scores and speed of the epochs
        // already recorded (or, from another folder's checkpoint, a fresh validation).
        let val = match last_val {
            Some(val) => val,
            None => evaluate(
                &mut self.model,
                &data.val,
                config.batch_size,
                self.device,
                weights,
            )?,
        };
        let train_videos_per_second = if train_seconds > 0.0 {
            trained_videos as f64 / train_seconds
        } else {
            let recorded: Vec<f64> = self
                .files
                .read_metrics()?
                .iter()
                .filter(|r| r.phase == config.phase)
                .map(|r| r.train_videos_per_second)
                .collect();
            recorded.iter().sum::<f64>() / recorded.len().max(1) as f64
        };
        let final_metrics = FinalMetrics {
            run: self.name.clone(),
            phase: config.phase.clone(),
            plugin: self.plugin.name.clone(),
            epochs_trained: at.epoch,
            stop_reason,
            test,
            val,
            baselines: baselines(&data.train, &data.test, config.predict_future),
            wall_seconds: at.elapsed_seconds,
            train_videos_per_second,
            parameter_count: self.model.parameter_count(),
            // The size is in the checkpoint's JSON: no need to read its tensors.
            checkpoint_bytes: checkpoint::newest(&self.files.dir)
                .and_then(|p| checkpoint::read_meta(&p).ok())
                .map_or(0, |meta| meta.tensors_bytes),
        };
        let path = self.files.write_final(&final_metrics)?;
        self.progress(&at, steps_per_epoch, Some(&final_metrics.val), "finished")?;
        self.files.log(&format!(
            "finished: test acc {:.3} mse {:.4} (baselines: mean {:.4}, constant velocity {:.4}, curve-fit limit {:.5}); {}",
            final_metrics.test.accuracy,
            final_metrics.test.mse,
            final_metrics.baselines.mean_position_mse,
            final_metrics.baselines.constant_velocity_mse,
            final_metrics.baselines.curve_fit_mse.unwrap_or(f64::NAN),
            path.display()
        ));
        Ok(TrainOutcome::Finished {
            final_metrics: path,
        })
    }

    /// Returns whether `val` is the best so far by the configured metric (val_loss by default).
    fn update_early_stopping(
        &self,
        state: &mut EarlyStoppingState,
        val: &SplitMetrics,
        epoch: usize,
    ) -> bool {
        let (metric, min_delta, maximise) = match &self.config.early_stopping {
            Some(es) => (es.metric.as_str(), es.min_delta, es.maximise()),
            None => ("val_loss", 0.0, false),
        };
        let value = match metric {
            "val_accuracy" => val.accuracy,
            "val_mse" => val.mse,
            _ => val.loss,
        };
        let improved = match state.best {
            None => true,
            Some(best) if maximise => value > best + min_delta,
            Some(best) => value < best - min_delta,
        };
        if improved {
            state.best = Some(value);
            state.best_epoch = epoch;
            state.epochs_without_improvement = 0;
        } else {
            state.epochs_without_improvement += 1;
        }
        improved
    }
}

/// The stop recorded in `meta` if it still holds for a run resumed with `config`; None = train
/// on. Another phase (the pipeline's full phase after validation) trains on, as does a run
/// given more epochs, a longer time budget or more patience than it stopped at.
fn still_stopped(meta: &CheckpointMeta, config: &TrainConfig) -> Option<StopReason> {
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

/// A bar with loss and ETA on a terminal; hidden otherwise (the epoch lines still print).
fn progress_bar(run: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(1).with_prefix(run.to_string());
    let style =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// A line above the bar, or a plain line when there is no bar (hidden bars drop `println`).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
