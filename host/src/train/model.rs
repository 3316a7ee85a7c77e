//! The unified model: a backbone plugin's per-frame features, pooled over time, feed a
//! 4-way classification head and an (x, y, z) prediction head.

use crate::plugin::PluginBackbone;
use anyhow::Result;
use tch::{nn, nn::Module, Device, Kind, Tensor};

pub const NUM_CLASSES: i64 = 4;
const PREDICTION_HIDDEN: i64 = 128;

pub struct UnifiedModel {
    pub backbone: PluginBackbone,
    /// The heads' parameters, owned by the host.
    pub heads: nn::VarStore,
    classifier: nn::Linear,
    predictor: nn::Sequential,
}

/// What the model predicts for a batch of B videos.
pub struct Outputs {
    /// `(B, 4)` class logits.
    pub logits: Tensor,
    /// `(B, 3)` future position.
    pub position: Tensor,
}

/// Loss terms; `total` = w_c · cross-entropy + w_p · MSE (a disabled task adds 0).
pub struct Losses {
    pub total: Tensor,
    pub classification: Tensor,
    pub prediction: Tensor,
}

impl UnifiedModel {
    pub fn new(backbone: PluginBackbone, device: Device) -> Self {
        let d = backbone.feature_dim();
        let heads = nn::VarStore::new(device);
        let root = heads.root();
        let classifier = nn::linear(&root / "classifier", d, NUM_CLASSES, Default::default());
        // Where the ball goes next depends on where it is at the end of the clip, which the
        // temporal mean blurs: the predictor also sees the last frame's features.
        let predictor = nn::seq()
            .add(nn::linear(
                &root / "predictor_hidden",
                2 * d,
                PREDICTION_HIDDEN,
                Default::default(),
            ))
            .add_fn(|x| x.relu())
            .add(nn::linear(
                &root / "predictor_out",
                PREDICTION_HIDDEN,
                3,
                Default::default(),
            ));
        UnifiedModel {
            backbone,
            heads,
            classifier,
            predictor,
        }
    }

    /// `video`: `(B, T, 3, H, W)` float in [0, 1].
    pub fn forward(&mut self, video: &Tensor, train: bool) -> Result<Outputs> {
        let features = self.backbone.forward(video, train)?;
        let mean = features.mean_dim(1, false, Kind::Float);
        let last = features.select(1, -1);
        let logits = self.classifier.forward(&mean);
        let position = self.predictor.forward(&Tensor::cat(&[&mean, &last], 1));
        Ok(Outputs { logits, position })
    }

    /// Every trainable tensor by a unique name: `backbone.*` then `heads.*`.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .backbone
            .parameters()
            .into_iter()
            .map(|(n, t)| (format!("backbone.{n}"), t))
            .collect();
        named.extend(self.head_tensors());
        named
    }

    /// Parameters and buffers: what a checkpoint holds of the model.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .backbone
            .state()
            .into_iter()
            .map(|(n, t)| (format!("backbone.{n}"), t))
            .collect();
        named.extend(self.head_tensors());
        named
    }

    fn head_tensors(&self) -> Vec<(String, Tensor)> {
        let mut heads: Vec<(String, Tensor)> = self
            .heads
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("heads.{n}"), t))
            .collect();
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        heads
    }

    pub fn parameter_count(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
}

/// The multi-task loss. `labels`: `(B,)` int64; `target`: `(B, 3)`.
pub fn compute_loss(
    outputs: &Outputs,
    labels: &Tensor,
    target: &Tensor,
    w_class: f64,
    w_pred: f64,
) -> Losses {
    let classification = outputs.logits.cross_entropy_for_logits(labels);
    let prediction = outputs.position.mse_loss(target, tch::Reduction::Mean);
    let mut total = outputs.logits.zeros_like().sum(Kind::Float);
    if w_class > 0.0 {
        total += &classification * w_class;
    }
    if w_pred > 0.0 {
        total += &prediction * w_pred;
    }
    Losses {
        total,
        classification,
        prediction,
    }
}
