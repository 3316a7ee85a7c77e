//! The end of a run: the test split, the baselines and `final_metrics.json` (or
//! `validation_metrics.json`), and the digest that pools runs differing only in their seed.

use super::{Position, Run, TrainOutcome};
use crate::config::TrainConfig;
use crate::rundir::metrics::{self, DataInfo, FinalMetrics, SplitMetrics, StopReason};
use crate::rundir::progress::RunState;
use crate::train::checkpoint;
use crate::train::metrics::{baselines, evaluate};
use crate::train::source::TrainingData;
use anyhow::Result;
use std::path::Path;

/// Videos and seconds of training in this process, for the final videos/s.
#[derive(Default)]
pub(super) struct Throughput {
    pub(super) videos: usize,
    pub(super) seconds: f64,
}

impl Run<'_> {
    /// The test split, the baselines and `final_metrics.json` (or `validation_metrics.json`).
    pub(super) fn final_evaluation(
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
        let final_metrics = self.final_metrics(data, at, test, val, throughput)?;
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

    /// What `final_metrics.json` records of this run.
    fn final_metrics(
        &self,
        data: &TrainingData,
        at: &Position,
        test: SplitMetrics,
        val: SplitMetrics,
        throughput: Throughput,
    ) -> Result<FinalMetrics> {
        let (config, batch_size) = (self.config, self.config.batch_size);
        Ok(FinalMetrics {
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
