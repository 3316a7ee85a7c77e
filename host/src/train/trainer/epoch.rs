//! One epoch of training: its batches, each optimiser step, an interruption's checkpoint, and
//! the end of the epoch (validation, the record to every sink, `best`, the stop decision).

use super::{Position, Run};
use crate::rundir::metrics::{EpochRecord, SplitMetrics, StopReason};
use crate::rundir::progress::RunState;
use crate::stop;
use crate::train::checkpoint;
use crate::train::data::{batches, epoch_order, Batch};
use crate::train::metrics::evaluate;
use crate::train::optim::scheduled_lr;
use crate::train::source::TrainingData;
use crate::train::step::{forward_step, update_step};
use crate::train::stopping::{self, Watch};
use anyhow::Result;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one pass over the training batches did.
pub(super) struct EpochPass {
    pub(super) videos: usize,
    pub(super) seconds: f64,
    lr: f64,
    over_budget: bool,
}

pub(super) enum PassEnd {
    Done(EpochPass),
    Interrupted(PathBuf),
}

impl Run<'_> {
    /// The batches left in `epoch`: rendered for a procedural source, else the stored training
    /// split in the epoch's seeded order, resumed `at.step_in_epoch` batches in.
    fn epoch_batches<'d>(
        &self,
        data: &'d TrainingData,
        at: &Position,
        epoch: usize,
    ) -> Box<dyn Iterator<Item = Batch> + 'd> {
        let config = self.config;
        let (bs, device) = (config.batch_size, self.device);
        let form = self.model.input_form();
        match &data.procedural {
            Some(p) => Box::new(p.batches(
                config.seed,
                epoch,
                at.step_in_epoch..self.steps_per_epoch,
                bs,
                device,
                form,
            )),
            None => {
                let order = epoch_order(data.train.len(), config.seed, epoch);
                let skip = (at.step_in_epoch * bs).min(order.len());
                Box::new(batches(&data.train, &order[skip..], bs, device, form))
            }
        }
    }

    /// One pass over the epoch's remaining batches; on Ctrl-C, a checkpoint instead.
    pub(super) fn train_epoch(
        &mut self,
        data: &TrainingData,
        at: &mut Position,
        last_val: Option<&SplitMetrics>,
    ) -> Result<PassEnd> {
        let config = self.config;
        let epoch = at.epoch + 1;
        let epoch_batches = self.epoch_batches(data, at, epoch);
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

    /// One optimiser step on `batch`; returns the learning rate it used. `epoch_seconds` is the
    /// time spent in this epoch so far, for the time-budget schedule.
    fn train_step(&mut self, batch: &Batch, at: &mut Position, epoch_seconds: f64) -> Result<f64> {
        let config = self.config;
        let weights = config.loss_weights();
        let (outputs, losses) =
            forward_step(&mut self.model, batch, config.seed, at.global_step, weights)?;
        let loss = losses.total.double_value(&[]);
        if !loss.is_finite() {
            return Err(self.non_finite_loss(batch, at, loss));
        }
        let elapsed = at.elapsed_seconds + epoch_seconds;
        let lr = scheduled_lr(config, self.steps_per_epoch, at.global_step, elapsed);
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
    pub(super) fn end_epoch(
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

    /// The error for a loss that is not finite, saying whose numbers went wrong first: the
    /// backbone's features or the heads' loss.
    fn non_finite_loss(&mut self, batch: &Batch, at: &Position, loss: f64) -> anyhow::Error {
        let kept = checkpoint::newest(&self.outputs.dir)
            .map_or("none yet".to_string(), |p| p.display().to_string());
        let step = at.global_step + 1;
        self.outputs
            .log(&format!("stopped: loss is {loss} at step {step}"));
        let features = tch::no_grad(|| self.model.backbone.forward(&batch.videos, true));
        let culprit = match features.map(|f| f.isfinite().all().int64_value(&[]) == 1) {
            Ok(true) => format!("the loss became {loss}"),
            _ => format!(
                "the backbone plugin '{}' returned NaN or Inf features (`trajhost plugin check {}` probes blank and saturated clips)",
                self.plugin.name, self.plugin.name
            ),
        };
        anyhow::anyhow!(
            "training stopped: {culprit} at step {step} (epoch {}, batch {}); last good checkpoint: {kept}",
            at.epoch + 1,
            at.step_in_epoch + 1
        )
    }
}
