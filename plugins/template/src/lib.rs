//! A minimal backbone, meant to be copied: a strided 3-D convolution stem, BatchNorm, one
//! 3×3×3 convolution, spatial average pooling and a linear projection per frame.
//! Time is never strided, so `T` is preserved.

use serde::Deserialize;
use tch::{nn, nn::ModuleT, Device, Tensor};
use trajhost_plugin_api::{
    export_backbone,
    layers::{conv3d, pool_space, pytorch_default_init},
    Backbone, BackboneError,
};

/// The RON configuration, e.g. `(preset: "cpu", channels: 16)`; every field is optional.
/// Like every trajhost backbone it accepts `preset`; the template has only one size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// "cpu" (the only preset of this minimal backbone).
    pub preset: String,
    /// Width of both convolutions.
    pub channels: i64,
    /// `D`, the size of each frame's feature vector.
    pub feature_dim: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preset: "cpu".into(),
            channels: 16,
            feature_dim: 64,
        }
    }
}

pub struct Template {
    vs: nn::VarStore,
    stem: nn::Conv3D,
    stem_bn: nn::BatchNorm,
    conv: nn::Conv3D,
    head: nn::Linear,
    feature_dim: i64,
}

impl Template {
    pub fn build(config: &str, device: Device) -> Result<Self, BackboneError> {
        let config: Config = if config.trim().is_empty() {
            Config::default()
        } else {
            ron::from_str(config).map_err(|e| format!("invalid template config: {e}"))?
        };
        if config.preset != "cpu" {
            return Err(format!(
                "invalid template config: unknown preset {:?}, expected \"cpu\"",
                config.preset
            )
            .into());
        }
        if config.channels < 1 || config.feature_dim < 1 {
            return Err("invalid template config: channels and feature_dim must be ≥ 1".into());
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let c = config.channels;
        // Stride 4 in space only: the stem shrinks 64×64 frames to 16×16 and keeps T.
        let stem = conv3d(&root / "stem", 3, c, [1, 4, 4], [1, 4, 4], [0, 0, 0], true);
        let stem_bn = nn::batch_norm3d(&root / "stem_bn", c, Default::default());
        let conv = conv3d(&root / "conv", c, c, [3, 3, 3], [1, 1, 1], [1, 1, 1], true);
        let head = nn::linear(&root / "head", c, config.feature_dim, Default::default());
        pytorch_default_init(&vs);
        Ok(Template {
            vs,
            stem,
            stem_bn,
            conv,
            head,
            feature_dim: config.feature_dim,
        })
    }
}

impl Backbone for Template {
    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        // (B, T, C, H, W) → (B, C, T, H, W), the layout Conv3d expects.
        let x = video.f_permute([0, 2, 1, 3, 4])?;
        let x = self.stem.forward_t(&x, train);
        let x = self.stem_bn.forward_t(&x, train).relu();
        let x = self.conv.forward_t(&x, train).relu();
        // Average over H, W → (B, T, C) → (B, T, D).
        Ok(self.head.forward_t(&pool_space(&x)?, train))
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
}

export_backbone!(Template::build);
