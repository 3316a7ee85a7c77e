//! A minimal backbone, meant to be copied (`trajhost plugin new NAME` does): a strided 3-D
//! convolution stem, BatchNorm, one 3×3×3 convolution, spatial average pooling and a linear
//! projection per frame. Time is never strided, so `T` is preserved.

use layers::{conv3d, pool_space};
use nn::ModuleT;
use trajhost_plugin_api::prelude::*;

backbone_config! {
    /// The configuration: RON text such as `(channels: 8)` overrides fields of the preset
    /// (`(preset: "cpu")`, what empty text means).
    pub struct Config {
        /// Width of both convolutions.
        pub channels: i64,
        /// `D`, the size of each frame's feature vector.
        pub feature_dim: i64,
    }
    // TODO: more presets (say a larger `reference`), each a function below.
    presets: [cpu]
    // Fields refused, naming them, when below 1.
    at_least_one: [channels, feature_dim]
}

impl Config {
    /// Small enough to train on two CPU cores.
    pub fn cpu() -> Self {
        Config {
            channels: 16,
            feature_dim: 64,
        }
    }
}

/// Fields that follow from others, and checks across fields, go in `resolve` (see
/// `plugins/magvit`); this config has none.
impl ConfigRules for Config {}

/// TODO: your layers.
pub struct Template {
    stem: nn::Conv3D,
    stem_bn: nn::BatchNorm,
    conv: nn::Conv3D,
    head: nn::Linear,
}

impl Network for Template {
    type Config = Config;

    fn new(root: &nn::Path, c: &Config) -> Result<Self, BackboneError> {
        // TODO: your layers. Stride 4 in space only: the stem shrinks 64×64 frames to 16×16
        // and keeps T. (The host then re-initialises them as PyTorch does by default.)
        let (ch, d) = (c.channels, c.feature_dim);
        let stem = conv3d(root / "stem", 3, ch, [1, 4, 4], [1, 4, 4], [0, 0, 0], true);
        let stem_bn = nn::batch_norm3d(root / "stem_bn", ch, Default::default());
        let conv = conv3d(root / "conv", ch, ch, [3, 3, 3], [1, 1, 1], [1, 1, 1], true);
        let head = nn::linear(root / "head", ch, d, Default::default());
        Ok(Template {
            stem,
            stem_bn,
            conv,
            head,
        })
    }

    fn feature_dim(&self) -> i64 {
        self.head.ws.size()[0]
    }

    // The host lays each batch out as (B, C, T, H, W) in memory, so the permute below is free
    // (a model that reads whole frames, like a ViT, keeps the default `TimeMajor`).
    const INPUT_LAYOUT: InputLayout = InputLayout::ChannelMajor;

    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        // TODO: your forward pass. (B, T, C, H, W) → (B, C, T, H, W), the layout Conv3d expects.
        let x = video.f_permute([0, 2, 1, 3, 4])?;
        let x = self.stem.forward_t(&x, train);
        let x = self.stem_bn.forward_t(&x, train).relu();
        let x = self.conv.forward_t(&x, train).relu();
        // Average over H, W → (B, T, C) → (B, T, D).
        Ok(self.head.forward_t(&pool_space(&x)?, train))
    }
}

export_network!(Template);
