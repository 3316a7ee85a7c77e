//! The unified model: a backbone plugin's per-frame features `(B, T, D)` feed heads that every
//! backbone shares (docs/training.md has the measurements behind each):
//!
//! * a **tracker**, `Linear(D, 3)` on every frame: where the ball is in frame `t` (supervised by
//!   the true positions of the T input frames, 32× more signal than one future point, so every
//!   backbone learns to localise the ball from the first steps);
//! * a **trajectory encoder** over the whole clip: each frame's features projected to
//!   `FRAME_CODE` numbers plus its tracked position, flattened in time order → a two-layer MLP.
//!   It sees the curve's shape across all T frames, not a temporal mean;
//! * a **classifier** on (temporal mean ⊕ trajectory code) and a **predictor** that adds a
//!   displacement read from the trajectory code to the last tracked position.
//!
//! With `position_head: pinhole` the tracker reports the ball's image position and apparent size
//! and `pinhole::lift` turns them into 3-D with the data's lens, and the trajectory encoder reads
//! the track relative to its mean: a curve's shape and its next step do not depend on where it
//! is, so a camera farther away than any in training moves no input of the encoder but depth.
//! With `position_head: fovea` the image position and size are first corrected by `fovea`, which
//! reads each frame at full resolution around them.

use super::fovea::Fovea;
use super::model_input::InputForm;
use super::{mirror, pinhole};
use crate::config::{Background, Colour, PositionHead};
use crate::plugin::PluginBackbone;
use anyhow::{bail, Result};
use tch::{nn, nn::Module, Device, Kind, Tensor};

pub const NUM_CLASSES: i64 = 4;
/// Width of the trajectory encoder's hidden layers.
pub const TRAJECTORY_HIDDEN: i64 = 128;
/// Numbers per frame, besides its tracked position, that the trajectory encoder reads.
pub const FRAME_CODE: i64 = 8;

pub struct UnifiedModel {
    pub backbone: PluginBackbone,
    /// Inference answers averaged with the mirror image's (`TrainConfig::mirror_average`,
    /// `mirror`); training never is.
    pub mirror_average: bool,
    /// How many times the fovea looks in inference (`TrainConfig::fovea_passes`); training
    /// looks once.
    pub fovea_passes: usize,
    /// The heads' parameters, owned by the host.
    pub heads: nn::VarStore,
    /// The clip length the trajectory encoder was built for.
    frames: i64,
    position_head: PositionHead,
    /// Whether the input's background is taken out, and how its colour is carried
    /// (`input_form`).
    background: Background,
    colour: Colour,
    tracker: nn::Linear,
    frame_code: nn::Linear,
    trajectory: nn::Sequential,
    classifier: nn::Linear,
    predictor: nn::Linear,
    /// The full-resolution correction of `position_head: fovea`.
    fovea: Option<Fovea>,
}

/// What the model predicts for a batch of B videos.
pub struct Outputs {
    /// `(B, 4)` class logits.
    pub logits: Tensor,
    /// `(B, 3)` future position.
    pub position: Tensor,
    /// `(B, T, 3)` the ball's position in every input frame.
    pub track: Tensor,
    /// `(B, T, 3)` with `position_head: fovea`, in training: the backbone's own track, before
    /// the fovea's correction (it has a loss of its own: the fovea looks where it points).
    pub estimate: Option<Tensor>,
}

impl UnifiedModel {
    /// Heads for clips of `frames` frames (the trajectory encoder reads each frame in order),
    /// reading positions as `position_head` says, from input in `background`'s and `colour`'s
    /// form.
    pub fn new(
        backbone: PluginBackbone,
        frames: i64,
        position_head: PositionHead,
        (background, colour): (Background, Colour),
        device: Device,
    ) -> Self {
        let d = backbone.feature_dim();
        let heads = nn::VarStore::new(device);
        let root = heads.root();
        let linear =
            |name: &str, i: i64, o: i64| nn::linear(&root / name, i, o, Default::default());
        let tracker = linear("tracker", d, 3);
        let frame_code = linear("frame_code", d, FRAME_CODE);
        let trajectory = nn::seq()
            .add(linear(
                "trajectory_in",
                frames * (FRAME_CODE + 3),
                TRAJECTORY_HIDDEN,
            ))
            .add_fn(|x| x.relu())
            .add(linear(
                "trajectory_hidden",
                TRAJECTORY_HIDDEN,
                TRAJECTORY_HIDDEN,
            ))
            .add_fn(|x| x.relu());
        let classifier = linear("classifier", d + TRAJECTORY_HIDDEN, NUM_CLASSES);
        let predictor = linear("predictor", TRAJECTORY_HIDDEN, 3);
        // As the backbones: tch's default weights are 2.45× PyTorch's and learned slower.
        trajhost_plugin_api::layers::pytorch_default_init(&heads);
        // Built after it, so that its last layer stays zero (an untrained fovea keeps the
        // estimate); its convolutions keep tch's own initialisation, as measured.
        let fovea = (position_head == PositionHead::Fovea).then(|| Fovea::new(&root));
        UnifiedModel {
            backbone,
            mirror_average: false,
            fovea_passes: 1,
            heads,
            frames,
            position_head,
            background,
            colour,
            tracker,
            frame_code,
            trajectory,
            classifier,
            predictor,
            fovea,
        }
    }

    /// The input this model reads: its backbone's memory layout, its run's background and
    /// colour.
    pub fn input_form(&self) -> InputForm {
        InputForm {
            layout: self.backbone.input_layout(),
            background: self.background,
            colour: self.colour,
        }
    }

    /// `video`: `(B, T, 3, H, W)` float in `input_form` (`model_input`), each seen through its row
    /// of `lenses` (a [`pinhole::Lens::table`], which only the pinhole head reads).
    pub fn forward(&mut self, video: &Tensor, lenses: &Tensor, train: bool) -> Result<Outputs> {
        if self.mirror_average && !train {
            return mirror::averaged(self, video, lenses);
        }
        self.forward_once(video, lenses, train)
    }

    /// One pass of the backbone and the heads over `video`.
    pub(super) fn forward_once(
        &mut self,
        video: &Tensor,
        lenses: &Tensor,
        train: bool,
    ) -> Result<Outputs> {
        let t = video.size().get(1).copied().unwrap_or(0);
        if t != self.frames {
            bail!(
                "the model's heads read clips of {} frames, this video has {t}",
                self.frames
            );
        }
        let features = self.backbone.forward(video, train)?;
        let mut estimate = None;
        let (track, shape) = match self.position_head {
            PositionHead::Direct => {
                let track = self.tracker.forward(&features);
                (track.shallow_clone(), track)
            }
            PositionHead::Pinhole | PositionHead::Fovea => {
                let mut image = self.tracker.forward(&features);
                if let Some(fovea) = &self.fovea {
                    let passes = if train { 1 } else { self.fovea_passes };
                    let refined = fovea.refine(video, &image, passes);
                    if train {
                        estimate = Some(pinhole::lift(&image, lenses));
                    }
                    image = refined;
                }
                let track = pinhole::lift(&image, lenses);
                let centred = &track - track.mean_dim(1, true, Kind::Float);
                (track, centred)
            }
        };
        let per_frame = Tensor::cat(&[self.frame_code.forward(&features), shape], 2);
        let code = self.trajectory.forward(&per_frame.flatten(1, 2));
        let mean = features.mean_dim(1, false, Kind::Float);
        let logits = self.classifier.forward(&Tensor::cat(&[&mean, &code], 1));
        let position = track.select(1, -1) + self.predictor.forward(&code);
        Ok(Outputs {
            logits,
            position,
            track,
            estimate,
        })
    }

    /// Every trainable tensor by a unique name: `backbone.*` then `heads.*`.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.with_heads(self.backbone.parameters())
    }

    /// Parameters and buffers: what a checkpoint holds of the model.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.with_heads(self.backbone.state())
    }

    /// The backbone's tensors as `backbone.*`, then the heads' as `heads.*` in name order.
    fn with_heads(&self, backbone: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
        let prefixed = |prefix: &str, tensors: Vec<(String, Tensor)>| {
            tensors
                .into_iter()
                .map(move |(n, t)| (format!("{prefix}.{n}"), t))
                .collect::<Vec<_>>()
        };
        let mut heads = prefixed("heads", self.heads.variables().into_iter().collect());
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        let mut named = prefixed("backbone", backbone);
        named.extend(heads);
        named
    }

    pub fn parameter_count(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
}
