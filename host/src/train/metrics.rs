//! Per-split metrics: losses, accuracy (overall, per class, confusion) and prediction MSE
//! (overall and per axis), plus the reference baselines for the report. The types are the
//! run folder's (`rundir::metrics`); this module computes them.

use super::curve_fit;
use super::data::{batches, Batch, SplitData};
use super::loss::{compute_loss, LossWeights, Losses};
use super::model::{Outputs, UnifiedModel, NUM_CLASSES};
use crate::rundir::metrics::{Baselines, SplitMetrics};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// Running sums over batches; serialisable so that a run interrupted mid-epoch resumes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accumulator {
    pub samples: u64,
    pub loss_sum: f64,
    pub classification_loss_sum: f64,
    pub prediction_loss_sum: f64,
    /// Checkpoints from before the tracker read as 0.
    #[serde(default)]
    pub tracking_loss_sum: f64,
    /// Sum of squared errors per axis.
    pub squared_error: [f64; 3],
    /// `confusion[true][predicted]`.
    pub confusion: [[u64; 4]; 4],
}

impl Accumulator {
    pub fn add(&mut self, outputs: &Outputs, batch: &Batch, losses: &Losses) {
        let (labels, target) = (&batch.labels, &batch.target);
        let b = labels.size()[0] as u64;
        self.samples += b;
        self.loss_sum += losses.total.double_value(&[]) * b as f64;
        self.classification_loss_sum += losses.classification.double_value(&[]) * b as f64;
        self.prediction_loss_sum += losses.prediction.double_value(&[]) * b as f64;
        self.tracking_loss_sum += losses.tracking.double_value(&[]) * b as f64;
        let squared: Vec<f64> = Vec::try_from(
            (&outputs.position - target)
                .square()
                .sum_dim_intlist(0, false, Kind::Double),
        )
        .unwrap();
        for (sum, s) in self.squared_error.iter_mut().zip(squared) {
            *sum += s;
        }
        let predicted: Vec<i64> = Vec::try_from(outputs.logits.argmax(1, false)).unwrap();
        let truth: Vec<i64> = Vec::try_from(labels).unwrap();
        for (t, p) in truth.into_iter().zip(predicted) {
            self.confusion[t as usize][p as usize] += 1;
        }
    }

    pub fn finish(&self) -> SplitMetrics {
        let n = self.samples.max(1) as f64;
        let correct: u64 = (0..4).map(|c| self.confusion[c][c]).sum();
        let per_class_accuracy = std::array::from_fn(|c| {
            let total: u64 = self.confusion[c].iter().sum();
            if total == 0 {
                0.0
            } else {
                self.confusion[c][c] as f64 / total as f64
            }
        });
        let mse_per_axis = self.squared_error.map(|s| s / n);
        SplitMetrics {
            samples: self.samples,
            loss: self.loss_sum / n,
            classification_loss: self.classification_loss_sum / n,
            prediction_loss: self.prediction_loss_sum / n,
            tracking_loss: self.tracking_loss_sum / n,
            accuracy: correct as f64 / n,
            per_class_accuracy,
            confusion: self.confusion,
            mse: mse_per_axis.iter().sum::<f64>() / 3.0,
            mse_per_axis,
        }
    }
}

/// Metrics of the model on a whole split, in eval mode.
pub fn evaluate(
    model: &mut UnifiedModel,
    split: &SplitData,
    batch_size: usize,
    device: Device,
    weights: LossWeights,
) -> Result<SplitMetrics> {
    let mut acc = Accumulator::default();
    let order: Vec<i64> = (0..split.len() as i64).collect();
    tch::no_grad(|| -> Result<()> {
        let form = model.input_form();
        for batch in batches(split, &order, batch_size, device, form) {
            let outputs = model.forward(&batch.videos, &batch.lenses, false)?;
            let losses = compute_loss(&outputs, &batch, weights);
            acc.add(&outputs, &batch, &losses);
        }
        Ok(())
    })?;
    Ok(acc.finish())
}

/// The baselines of the test split (see [`Baselines`]).
pub fn baselines(train: &SplitData, test: &SplitData, predict_future: usize) -> Baselines {
    let mean = train.target.mean_dim(0, true, Kind::Float);
    let mean_position_mse = (&test.target - mean)
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    let frames = test.track.size()[1];
    let (previous, last) = (
        test.track.select(1, frames - 2),
        test.track.select(1, frames - 1),
    );
    let extrapolated = &last + (&last - previous) * predict_future as f64;
    let constant_velocity_mse = (&test.target - extrapolated)
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    let limit = curve_fit::limit(test, predict_future);
    Baselines {
        mean_position_mse,
        constant_velocity_mse,
        chance_accuracy: 1.0 / NUM_CLASSES as f64,
        curve_fit_mse: Some(limit.mse),
        curve_fit_mse_per_class: Some(limit.per_class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn accumulator_counts_accuracy_confusion_and_mse() {
        let outputs = Outputs {
            logits: Tensor::from_slice2(&[
                [5.0f32, 0., 0., 0.],
                [0., 5., 0., 0.],
                [5., 0., 0., 0.],
            ]),
            position: Tensor::from_slice2(&[[1.0f32, 0., 0.], [0., 0., 0.], [0., 0., 2.]]),
            track: Tensor::ones([3, 2, 3], (Kind::Float, Device::Cpu)),
            estimate: None,
        };
        let batch = Batch {
            videos: Tensor::zeros([3], (Kind::Float, Device::Cpu)),
            labels: Tensor::from_slice(&[0i64, 1, 2]),
            target: Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)),
            track: Tensor::zeros([3, 2, 3], (Kind::Float, Device::Cpu)),
            lenses: crate::train::pinhole::Lens::table(
                &[crate::train::pinhole::Lens::from_fov(50.0, 64, 64); 3],
            ),
        };
        let losses = compute_loss(&outputs, &batch, LossWeights::ALL_ONE);
        let mut acc = Accumulator::default();
        acc.add(&outputs, &batch, &losses);
        let m = acc.finish();
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.per_class_accuracy, [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(m.confusion[2][0], 1);
        assert!((m.mse_per_axis[0] - 1.0 / 3.0).abs() < 1e-9);
        assert!((m.mse_per_axis[2] - 4.0 / 3.0).abs() < 1e-9);
        assert!((m.mse - 5.0 / 9.0).abs() < 1e-9);
        assert!(
            (m.prediction_loss - m.mse).abs() < 1e-6,
            "MSE loss is the mean over axes"
        );
        assert!((m.tracking_loss - 1.0).abs() < 1e-6);
        assert!((m.loss - (m.classification_loss + m.mse + 1.0)).abs() < 1e-5);
    }
}
