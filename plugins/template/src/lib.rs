//! A minimal backbone, meant to be copied (`trajhost plugin new NAME` does): a strided 3-D
//! convolution stem, BatchNorm, one 3×3×3 convolution, spatial average pooling and a linear
//! projection per frame. Time is never strided, so `T` is preserved.

use trajhost_plugin_api::layers::{conv3d, pool_space, pytorch_default_init};
use trajhost_plugin_api::tch::{nn, nn::ModuleT, Device, Tensor};
use trajhost_plugin_api::{preset, Backbone, BackboneError};

trajhost_plugin_api::backbone_config! {
    /// The RON configuration, e.g. `(channels: 16)`; every field is optional.
    pub struct Config {
        /// Width of both convolutions.
        pub channels: i64 = 16,
        /// `D`, the size of each frame's feature vector.
        pub feature_dim: i64 = 64,
    }
}

pub struct Template {
    vs: nn::VarStore,
    feature_dim: i64,
    // TODO: your layers.
    stem: nn::Conv3D,
    stem_bn: nn::BatchNorm,
    conv: nn::Conv3D,
    head: nn::Linear,
}

impl Template {
    pub fn build(config: &str, device: Device) -> Result<Self, BackboneError> {
        let c = Config::from_ron(config)?;
        preset::at_least_one(
            env!("CARGO_PKG_NAME"),
            &[("channels", c.channels), ("feature_dim", c.feature_dim)],
        )?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        // TODO: your layers. Stride 4 in space only: the stem shrinks 64×64 frames to 16×16
        // and keeps T.
        let stem = conv3d(
            &root / "stem",
            3,
            c.channels,
            [1, 4, 4],
            [1, 4, 4],
            [0, 0, 0],
            true,
        );
        let stem_bn = nn::batch_norm3d(&root / "stem_bn", c.channels, Default::default());
        let conv = conv3d(
            &root / "conv",
            c.channels,
            c.channels,
            [3, 3, 3],
            [1, 1, 1],
            [1, 1, 1],
            true,
        );
        let head = nn::linear(
            &root / "head",
            c.channels,
            c.feature_dim,
            Default::default(),
        );
        // PyTorch's default initialisation (tch's own is 2.45× its scale: docs/training.md).
        pytorch_default_init(&vs);
        Ok(Template {
            vs,
            feature_dim: c.feature_dim,
            stem,
            stem_bn,
            conv,
            head,
        })
    }
}

impl Backbone for Template {
    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        // TODO: your forward pass. (B, T, C, H, W) → (B, C, T, H, W), the layout Conv3d expects.
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

trajhost_plugin_api::export_backbone!(Template::build);
