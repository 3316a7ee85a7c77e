//! The training loop: epochs of shuffled batches, validation, checkpoints, early stopping,
//! exact resume, and a final test evaluation with baselines. What each epoch produces goes to
//! the run's sinks (`sinks`); when to stop is `stopping`'s decision; where to start, `resume`'s.

use super::checkpoint::{self, CheckpointMeta, PluginIdentity};
use super::data::{batches, epoch_order, Batch};
use super::metrics::{baselines, evaluate, Accumulator};
use super::model::UnifiedModel;
use super::optim::{learning_rate, AdamW};
use super::resume::{self, Resume, ResumePoint};
use super::sinks::{self, RunOutputs};
use super::source::{DataSource, TrainingData};
use super::step::{forward_step, update_step};
use super::stopping::{self, EarlyStoppingState, Watch};
use crate::clock::unix_now;
use crate::config::TrainConfig;
use crate::plugin::Plugin;
use crate::rundir::folder;
use crate::rundir::metrics::{self, DataInfo, EpochRecord, FinalMetrics, SplitMetrics, StopReason};
use crate::rundir::progress::{Progress, RunState};
use crate::stop;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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

/// What one pass over the training batches did.
struct EpochPass {
    videos: usize,
    seconds: f64,
    lr: f64,
    over_budget: bool,
}

enum PassEnd {
    Done(EpochPass),
    Interrupted(PathBuf),
}

/// Videos and seconds of training in this process, for the final videos/s.
#[derive(Default)]
struct Throughput {
    videos: usize,
    seconds: f64,
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
    run.outputs.log(&format!(
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
    ));
    if !data.val.is_empty() {
        // For live curves (the dashboard): what the validation MSE should be read against.
        let reference = if data.train.is_empty() {
            &data.val
        } else {
            &data.train
        };
        let val_baselines = baselines(reference, &data.val, config.predict_future);
        crate::rundir::metrics::write_val_baselines(&options.out, &val_baselines)?;
    }
    let outcome = run.fit(&data, position);
    if let Err(e) = &outcome {
        run.outputs.log(&format!("failed: {e:#}"));
        if let Err(e) = crate::rundir::progress::mark_failed(&options.out) {
            eprintln!("warning: could not mark the run failed in PROGRESS.txt: {e:#}");
        }
    }
    outcome
}

/// Clears the folder for `--overwrite`, or refuses a folder that holds a run unless resuming.
fn take_folder(options: &TrainOptions) -> Result<()> {
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
fn already_finished(
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

impl<'a> Run<'a> {
    fn build(options: &'a TrainOptions) -> Result<Self> {
        let config = &options.config;
        let plugin = Plugin::load(&options.plugin)?;
        let identity = PluginIdentity::of(&plugin);
        tch::manual_seed(config.seed as i64);
        let backbone = plugin.build(&config.backbone, options.device)?;
        let source = DataSource::parse(&options.data)?;
        let video_shape = source.clip_shape()?;
        let model = UnifiedModel::new(
            backbone,
            video_shape[0],
            config.position_head,
            options.device,
        );
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
        let (saved, now) = (loaded.meta.config.position_head, self.config.position_head);
        if saved != now {
            bail!(
                "checkpoint {} was trained with position_head {saved:?}, this config says {now:?}: resume with the checkpoint's head",
                path.display()
            );
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

    /// One pass over the epoch's remaining batches; on Ctrl-C, a checkpoint instead.
    fn train_epoch(
        &mut self,
        data: &TrainingData,
        at: &mut Position,
        last_val: Option<&SplitMetrics>,
    ) -> Result<PassEnd> {
        let config = self.config;
        let epoch = at.epoch + 1;
        let (bs, device) = (config.batch_size, self.device);
        let layout = self.model.backbone.input_layout();
        let epoch_batches: Box<dyn Iterator<Item = Batch>> = match &data.procedural {
            Some(p) => Box::new(p.batches(
                config.seed,
                epoch,
                at.step_in_epoch..self.steps_per_epoch,
                bs,
                device,
                layout,
            )),
            None => {
                let order = epoch_order(data.train.len(), config.seed, epoch);
                let skip = (at.step_in_epoch * bs).min(order.len());
                Box::new(batches(&data.train, &order[skip..], bs, device, layout))
            }
        };
        let start = Instant::now();
        let mut pass = EpochPass {
            videos: 0,
            seconds: 0.0,
            lr: 0.0,
            over_budget: false,
        };
        let bar = &self.outputs.bar;
        bar.set_length(self.steps_per_epoch as u64);
        bar.set_position(at.step_in_epoch as u64);
        bar.set_prefix(format!(
            "{} epoch {epoch}/{}",
            self.outputs.name, config.epochs
        ));
        let mut last_progress = Instant::now();
        for batch in epoch_batches {
            pass.lr = self.train_step(&batch, at, start.elapsed().as_secs_f64())?;
            self.outputs.step(at.global_step, pass.lr)?;
            pass.videos += batch.labels.size()[0] as usize;
            let now = start.elapsed().as_secs_f64();
            if stop::requested() || self.stop_after_steps == Some(at.global_step) {
                at.elapsed_seconds += now;
                return self.interrupt(at, last_val).map(PassEnd::Interrupted);
            }
            if self.budget().is_some_and(|b| at.elapsed_seconds + now >= b) {
                pass.over_budget = true;
                break;
            }
            if last_progress.elapsed() >= Duration::from_secs(30) {
                let shown = Position {
                    elapsed_seconds: at.elapsed_seconds + now,
                    ..at.clone()
                };
                self.progress(&shown, last_val, RunState::Training)?;
                last_progress = Instant::now();
            }
        }
        pass.seconds = start.elapsed().as_secs_f64();
        Ok(PassEnd::Done(pass))
    }

    fn budget(&self) -> Option<f64> {
        self.config.time_budget_minutes.map(|m| m * 60.0)
    }

    /// One optimiser step on `batch`; returns the learning rate it used. `epoch_seconds` is the
    /// time spent in this epoch so far, for the time-budget schedule.
    fn train_step(&mut self, batch: &Batch, at: &mut Position, epoch_seconds: f64) -> Result<f64> {
        let config = self.config;
        let weights = config.loss_weights();
        let (outputs, losses) =
            forward_step(&mut self.model, batch, config.seed, at.global_step, weights)?;
        let loss = losses.total.double_value(&[]);
        if !loss.is_finite() {
            let kept = checkpoint::newest(&self.outputs.dir)
                .map_or("none yet".to_string(), |p| p.display().to_string());
            let step = at.global_step + 1;
            self.outputs
                .log(&format!("stopped: loss is {loss} at step {step}"));
            // Whose numbers went wrong first: the backbone's features or the heads' loss.
            let features = tch::no_grad(|| self.model.backbone.forward(&batch.videos, true))?;
            let culprit = match features.isfinite().all().int64_value(&[]) == 1 {
                true => format!("the loss became {loss}"),
                false => format!(
                    "the backbone plugin '{}' returned NaN or Inf features (`trajhost plugin check {}` probes blank and saturated clips)",
                    self.plugin.name, self.plugin.name
                ),
            };
            bail!(
                "training stopped: {culprit} at step {step} (epoch {}, batch {}); last good checkpoint: {kept}",
                at.epoch + 1,
                at.step_in_epoch + 1
            );
        }
        let total_steps = self.steps_per_epoch * config.epochs;
        // With a time budget the schedule follows whichever is further along, steps or time,
        // so the learning rate has annealed when the budget runs out.
        let schedule_step = match self.budget() {
            Some(b) => {
                let by_time = (at.elapsed_seconds + epoch_seconds) / b * total_steps as f64;
                (at.global_step as usize).max(by_time as usize)
            }
            None => at.global_step as usize,
        };
        let lr = learning_rate(
            schedule_step,
            config.warmup_steps,
            total_steps,
            config.lr,
            config.min_lr,
            config.cosine,
        );
        update_step(&mut self.optimizer, &losses.total, config.grad_clip, lr)?;
        tch::no_grad(|| at.train_progress.add(&outputs, batch, &losses));
        at.global_step += 1;
        at.step_in_epoch += 1;
        self.outputs.bar.set_position(at.step_in_epoch as u64);
        self.outputs.bar.set_message(format!("loss {loss:.4}"));
        Ok(lr)
    }

    /// Ctrl-C or SIGTERM mid-epoch: a checkpoint of exactly where the run is.
    fn interrupt(&self, at: &Position, last_val: Option<&SplitMetrics>) -> Result<PathBuf> {
        let json = self.save(&checkpoint::name_for(at.epoch, at.step_in_epoch), at)?;
        self.progress(at, last_val, RunState::Interrupted)?;
        // The checkpoint counts whole epochs done; the log says the same, then where it was.
        let name = json.file_name().unwrap_or_default().to_string_lossy();
        self.outputs.log(&format!(
            "interrupted after {} epochs and {} steps of epoch {} (checkpoint {name}); resume with --resume auto",
            at.epoch,
            at.step_in_epoch,
            at.epoch + 1,
        ));
        Ok(json)
    }

    /// Validation, the epoch's record to every sink, `best`, the stop decision and the
    /// periodic checkpoint; returns the validation scores.
    fn end_epoch(
        &mut self,
        data: &TrainingData,
        at: &mut Position,
        pass: EpochPass,
    ) -> Result<SplitMetrics> {
        let config = self.config;
        let epoch = at.epoch + 1;
        let start = Instant::now();
        let val = evaluate(
            &mut self.model,
            &data.val,
            config.batch_size,
            self.device,
            config.loss_weights(),
        )?;
        at.elapsed_seconds += pass.seconds + start.elapsed().as_secs_f64();
        if pass.over_budget && at.step_in_epoch < self.steps_per_epoch {
            self.outputs.log(&format!(
                "time budget of {:.1} min reached {} steps into epoch {epoch}: it counts as the last epoch",
                config.time_budget_minutes.unwrap_or_default(),
                at.step_in_epoch
            ));
        }
        let record = EpochRecord {
            epoch,
            phase: config.phase.clone(),
            lr: pass.lr,
            train: std::mem::take(&mut at.train_progress).finish(),
            val: val.clone(),
            elapsed_seconds: at.elapsed_seconds,
            train_videos_per_second: pass.videos as f64 / pass.seconds.max(1e-9),
        };
        at.epoch = epoch;
        at.step_in_epoch = 0;
        self.outputs.epoch(&record, config.epochs)?;
        if Watch::of(config).update(&mut at.early_stopping, &val, epoch) {
            self.save("best", at)?;
        }
        // Decided before the checkpoint, which records it: resuming a stopped run must not
        // train on.
        at.stopped = stopping::after_epoch(config, &at.early_stopping, epoch, pass.over_budget);
        if epoch.is_multiple_of(config.checkpoint_interval) || at.stopped.is_some() {
            self.save(&checkpoint::name_for(epoch, 0), at)?;
            checkpoint::prune(&self.outputs.dir, config.keep_checkpoints)?;
        }
        self.progress(at, Some(&val), RunState::Training)?;
        if at.stopped == Some(StopReason::EarlyStopping) {
            self.outputs.log(&format!(
                "early stopping after epoch {epoch}: no improvement in {} epochs",
                at.early_stopping.epochs_without_improvement
            ));
        }
        Ok(val)
    }

    /// The test split, the baselines and `final_metrics.json` (or `validation_metrics.json`).
    fn final_evaluation(
        &mut self,
        data: &TrainingData,
        at: &Position,
        last_val: Option<SplitMetrics>,
        throughput: Throughput,
    ) -> Result<TrainOutcome> {
        let config = self.config;
        let weights = config.loss_weights();
        let (batch_size, device) = (config.batch_size, self.device);
        let test = evaluate(&mut self.model, &data.test, batch_size, device, weights)?;
        // Resumed only for this evaluation: the validation scores and speed of the epochs
        // already recorded (or, from another folder's checkpoint, a fresh validation).
        let val = match last_val {
            Some(val) => val,
            None => evaluate(&mut self.model, &data.val, batch_size, device, weights)?,
        };
        let final_metrics = FinalMetrics {
            run: self.outputs.name.clone(),
            phase: config.phase.clone(),
            plugin: self.plugin.name.clone(),
            epochs_trained: at.epoch,
            stop_reason: at.stopped.unwrap_or(StopReason::Completed),
            test,
            val,
            baselines: baselines(&data.train, &data.test, config.predict_future),
            wall_seconds: at.elapsed_seconds,
            train_videos_per_second: self.videos_per_second(throughput)?,
            parameter_count: self.model.parameter_count(),
            // The size is in the checkpoint's JSON: no need to read its tensors.
            checkpoint_bytes: checkpoint::newest(&self.outputs.dir)
                .and_then(|p| checkpoint::read_meta(&p).ok())
                .map_or(0, |meta| meta.tensors_bytes),
            data: Some(DataInfo {
                source: self.data.display().to_string(),
                procedural: data.procedural.is_some(),
                training_videos: match &data.procedural {
                    Some(p) => p.videos_drawn(at.global_step, batch_size),
                    None => data.train.len() as u64,
                },
            }),
            seed: Some(config.seed),
            setup: Some(setup_digest(&self.plugin.name, &self.data, config)),
        };
        let path = metrics::write_final(&self.outputs.dir, &final_metrics)?;
        self.outputs.finish(&final_metrics)?;
        self.progress(at, Some(&final_metrics.val), RunState::Finished)?;
        let (test, baselines) = (&final_metrics.test, &final_metrics.baselines);
        self.outputs.log(&format!(
            "finished: test acc {:.3} mse {:.4} (baselines: mean {:.4}, constant velocity {:.4}, curve-fit limit {:.5}); {}",
            test.accuracy,
            test.mse,
            baselines.mean_position_mse,
            baselines.constant_velocity_mse,
            baselines.curve_fit_mse.unwrap_or(f64::NAN),
            path.display()
        ));
        Ok(TrainOutcome::Finished {
            final_metrics: path,
        })
    }

    /// This process's training speed, or (resumed only to evaluate) the recorded epochs'.
    fn videos_per_second(&self, throughput: Throughput) -> Result<f64> {
        if throughput.seconds > 0.0 {
            return Ok(throughput.videos as f64 / throughput.seconds);
        }
        let recorded: Vec<f64> = metrics::read_history(&self.outputs.dir)?
            .iter()
            .filter(|r| r.phase == self.config.phase)
            .map(|r| r.train_videos_per_second)
            .collect();
        Ok(recorded.iter().sum::<f64>() / recorded.len().max(1) as f64)
    }
}

/// Runs that differ only in their seed share this: the first 16 hex digits of the SHA-256 of
/// the plugin's name, the data source and the config with the seed set to 0.
fn setup_digest(plugin: &str, data: &Path, config: &TrainConfig) -> String {
    let unseeded = TrainConfig {
        seed: 0,
        ..config.clone()
    };
    let text =
        serde_json::to_string(&(plugin, data.display().to_string(), unseeded)).unwrap_or_default();
    trajhost_dataset::shard::sha256_hex(text.as_bytes())[..16].to_string()
}
