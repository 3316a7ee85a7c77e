//! The multi-task loss: cross-entropy on the class, MSE on the future position and MSE on the
//! per-frame track, weighted by the config's `LossWeights`.

use super::data::Batch;
use super::model::Outputs;
use tch::{Kind, Tensor};

pub use crate::config::LossWeights;

/// Loss terms; `total` = Σ weight · term over the enabled terms.
pub struct Losses {
    pub total: Tensor,
    pub classification: Tensor,
    pub prediction: Tensor,
    pub tracking: Tensor,
}

/// The multi-task loss against a batch's labels, future position and per-frame positions.
pub fn compute_loss(outputs: &Outputs, batch: &Batch, weights: LossWeights) -> Losses {
    let classification = outputs.logits.cross_entropy_for_logits(&batch.labels);
    let prediction = outputs
        .position
        .mse_loss(&batch.target, tch::Reduction::Mean);
    let tracking = outputs.track.mse_loss(&batch.track, tch::Reduction::Mean);
    let mut total = outputs.logits.zeros_like().sum(Kind::Float);
    // The backbone's own track, where a fovea corrects it, is trained as the track is: the fovea
    // looks where it points.
    if let Some(estimate) = &outputs.estimate {
        if weights.tracking > 0.0 {
            total += estimate.mse_loss(&batch.track, tch::Reduction::Mean) * weights.tracking;
        }
    }
    for (term, weight) in [
        (&classification, weights.classification),
        (&prediction, weights.prediction),
        (&tracking, weights.tracking),
    ] {
        if weight > 0.0 {
            total += term * weight;
        }
    }
    Losses {
        total,
        classification,
        prediction,
        tracking,
    }
}
