//! One training step, in two halves so the caller can check the loss in between; the trainer
//! and the benchmark (`trajhost-bench train`) both run exactly this.

use super::data::Batch;
use super::loss::{compute_loss, LossWeights, Losses};
use super::model::{Outputs, UnifiedModel};
use super::optim::AdamW;
use anyhow::Result;
use tch::Tensor;

/// Seeds libtorch for this step (so a resumed run replays every random draw), runs the model
/// in train mode and computes the weighted loss.
pub fn forward_step(
    model: &mut UnifiedModel,
    batch: &Batch,
    seed: u64,
    global_step: i64,
    weights: LossWeights,
) -> Result<(Outputs, Losses)> {
    tch::manual_seed((seed as i64) ^ global_step.wrapping_mul(0x9E37_79B9));
    let outputs = model.forward(&batch.videos, &batch.lenses, true)?;
    let losses = compute_loss(&outputs, batch, weights);
    Ok((outputs, losses))
}

/// Gradients of `loss`, optional clipping of their global norm, one AdamW update at `lr`.
pub fn update_step(
    optimizer: &mut AdamW,
    loss: &Tensor,
    grad_clip: Option<f64>,
    lr: f64,
) -> Result<()> {
    optimizer.zero_grad();
    loss.backward();
    if let Some(clip) = grad_clip {
        optimizer.clip_grad_norm(clip)?;
    }
    optimizer.step(lr)
}
