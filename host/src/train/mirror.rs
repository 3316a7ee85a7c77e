//! Mirror averaging, an inference option (`eval --mirror-average`, `predict --mirror-average`).
//! A clip's left-right mirror image shows another scene of the same spec: the four classes are
//! mirror-symmetric, and every lens here has its principal point at the image centre, so the
//! mirror only negates the camera frame's x. The model answers both the clip and its mirror
//! image and the two answers are averaged, the mirror's x negated back: two readings of the ball
//! whose errors are partly independent, at twice the inference cost. The averaged model is
//! mirror-symmetric by construction, whatever the weights.

use super::model::{Outputs, UnifiedModel};
use anyhow::Result;
use tch::Tensor;

/// The model's answer for `video`, averaged with its answer for the mirror image.
pub fn averaged(model: &mut UnifiedModel, video: &Tensor, lenses: &Tensor) -> Result<Outputs> {
    let direct = model.forward_once(video, lenses, false)?;
    let mirrored = unmirrored(model.forward_once(&mirror_image(video), lenses, false)?);
    Ok(Outputs {
        logits: (direct.logits + mirrored.logits) / 2.0,
        position: (direct.position + mirrored.position) / 2.0,
        track: (direct.track + mirrored.track) / 2.0,
        estimate: None,
    })
}

/// The clip reversed along its width, the last axis in every layout, in the memory layout the
/// clip has (the backbone asked for it).
fn mirror_image(video: &Tensor) -> Tensor {
    let mut image = video.empty_like();
    image.copy_(&video.flip([-1]));
    image
}

/// An answer for a mirror image, in the clip's frame: every position's x negated.
fn unmirrored(outputs: Outputs) -> Outputs {
    let negate_x = |positions: Tensor| {
        let flip = Tensor::from_slice(&[-1.0f32, 1.0, 1.0])
            .to_kind(positions.kind())
            .to_device(positions.device());
        positions * flip
    };
    Outputs {
        logits: outputs.logits,
        position: negate_x(outputs.position),
        track: negate_x(outputs.track),
        estimate: None,
    }
}
