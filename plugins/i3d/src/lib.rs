//! I3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017) as a trajhost
//! backbone: Inception-v1 with every 2-D filter and pool inflated to 3-D.
//!
//! Layout (names follow pytorch-i3d, lower-cased, so converted checkpoints map one to one):
//! `conv3d_1a` (7×7×7, stride 2) → `max_pool_2a` (1×3×3, spatial stride 2) → `conv3d_2b`
//! (1×1×1) → `conv3d_2c` (3×3×3) → `max_pool_3a` → `mixed_3b`, `mixed_3c` → `max_pool_4a`
//! (3×3×3, stride 2) → `mixed_4b` … `mixed_4f` → `max_pool_5a` (2×2×2, stride 2) →
//! `mixed_5b`, `mixed_5c`. Every conv is a `Unit3D`: Conv3d (no bias: BatchNorm follows) →
//! BatchNorm (eps 1e-3 as in the TF original) → ReLU. A Mixed block concatenates four
//! branches: 1×1×1; 1×1×1 → 3×3×3; 1×1×1 → 3×3×3; 3×3×3 max-pool (stride 1) → 1×1×1.
//! Per-frame features are the output of `mixed_5c` averaged over space (I3D's final average
//! pool without its temporal extent), so `D` = 1024 at reference width.
//!
//! **T**: with `temporal_strides: true` (reference) the three temporal strides of the paper
//! (stem, `max_pool_4a`, `max_pool_5a`; ×8 in all) are kept and T is restored at the end:
//! output frame `t` takes the feature of step `t / 8` (nearest-neighbour repetition). With
//! `false` (the `cpu` preset) those strides are removed (the pools keep their spatial
//! strides), so every frame keeps its own feature.
//!
//! # Configuration (RON)
//! `(preset: "cpu" | "reference", ...knobs)`; an empty text is the `cpu` preset. Every knob is
//! optional (`width: 4` or `width: Some(4)`) and overrides the preset:
//! * `width`: channels of the stem (reference 64, cpu 8); every other layer's channels scale
//!   by `width / 64` (rounded, at least 1), so `D = 1024 · width / 64` when it divides;
//! * `blocks`: Mixed blocks in stages 3, 4 and 5 (reference `[2, 5, 2]`, cpu `[1, 1, 1]`);
//!   a shortened stage keeps its *last* blocks, so the output width is unchanged;
//! * `stem_kernel`: `[t, h, w]` of `conv3d_1a` (reference `[7, 7, 7]`, cpu `[3, 8, 8]`);
//! * `stem_stride`: spatial stride of `conv3d_1a` (reference 2, cpu 8: a patchifying stem,
//!   the cheap early downsampling two CPU cores need — with stride 4 the 16×16 maps make
//!   training about twice as slow). On 64×64 frames the cpu preset's Mixed blocks then run
//!   at 2×2 (stage 3) and 1×1 (stages 4, 5), where the reference ends at 2×2;
//! * `temporal_strides`: keep the paper's temporal strides (reference true, cpu false);
//! * `pretrained`: a local safetensors file holding every parameter and BatchNorm statistic
//!   under this crate's names; names and shapes are checked and any mismatch is an error.

use layers::{pool_space, restore_time, ConvBn};
use trajhost_plugin_api::prelude::*;

backbone_config! {
    /// The resolved configuration; see the crate docs for each field.
    pub struct Config {
        pub width: i64,
        pub blocks: Fixed<usize, 3>,
        pub stem_kernel: Fixed<i64, 3>,
        pub stem_stride: i64,
        pub temporal_strides: bool,
        pub pretrained: Option<String>,
    }
    presets: [cpu, reference]
    at_least_one: [width, stem_stride]
}

impl Config {
    /// The paper's I3D.
    pub fn reference() -> Self {
        Config {
            width: 64,
            blocks: Fixed([2, 5, 2]),
            stem_kernel: Fixed([7, 7, 7]),
            stem_stride: 2,
            temporal_strides: true,
            pretrained: None,
        }
    }

    /// Small enough to train on two CPU cores.
    pub fn cpu() -> Self {
        Config {
            width: 8,
            blocks: Fixed([1, 1, 1]),
            stem_kernel: Fixed([3, 8, 8]),
            stem_stride: 8,
            temporal_strides: false,
            pretrained: None,
        }
    }
}

impl ConfigRules for Config {
    fn resolve(&mut self, _given: &[&str]) -> Result<(), Invalid> {
        for (stage, (&n, specs)) in self.blocks.iter().zip(STAGES).enumerate() {
            if n < 1 || n > specs.len() {
                return Err(Invalid::new(
                    "blocks",
                    format!(
                        "stage {} has 1 to {} Mixed blocks, got {n}",
                        stage + 3,
                        specs.len()
                    ),
                ));
            }
        }
        if self.stem_kernel.iter().any(|&k| k < 1) {
            return Err(Invalid::new(
                "stem_kernel",
                format!("must be ≥ 1, got {:?}", *self.stem_kernel),
            ));
        }
        Ok(())
    }
}

/// A Mixed block's branch widths at reference width:
/// `[b0, b1a, b1b, b2a, b2b, b3b]` (1×1; 1×1 → 3×3; 1×1 → 3×3; pool → 1×1).
type MixedSpec = (&'static str, [i64; 6]);

/// Inception-v1's Mixed blocks, per stage (3, 4, 5).
const STAGES: [&[MixedSpec]; 3] = [
    &[
        ("mixed_3b", [64, 96, 128, 16, 32, 32]),
        ("mixed_3c", [128, 128, 192, 32, 96, 64]),
    ],
    &[
        ("mixed_4b", [192, 96, 208, 16, 48, 64]),
        ("mixed_4c", [160, 112, 224, 24, 64, 64]),
        ("mixed_4d", [128, 128, 256, 24, 64, 64]),
        ("mixed_4e", [112, 144, 288, 32, 64, 64]),
        ("mixed_4f", [256, 160, 320, 32, 128, 128]),
    ],
    &[
        ("mixed_5b", [256, 160, 320, 32, 128, 128]),
        ("mixed_5c", [384, 192, 384, 48, 128, 128]),
    ],
];

/// Conv3d → BatchNorm (eps 1e-3, as in the TF original) → ReLU.
#[derive(Debug)]
struct Unit3D(ConvBn);

impl Unit3D {
    fn new(path: nn::Path, c_in: i64, c_out: i64, kernel: [i64; 3], stride: [i64; 3]) -> Self {
        Unit3D(ConvBn::new(
            path,
            "conv3d",
            [c_in, c_out],
            kernel,
            stride,
            1e-3,
        ))
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.0.forward(x, train).relu()
    }
}

#[derive(Debug)]
struct Mixed {
    b0: Unit3D,
    b1a: Unit3D,
    b1b: Unit3D,
    b2a: Unit3D,
    b2b: Unit3D,
    b3b: Unit3D,
    out_channels: i64,
}

impl Mixed {
    fn new(path: nn::Path, c_in: i64, c: [i64; 6]) -> Self {
        let one = [1, 1, 1];
        let three = [3, 3, 3];
        Mixed {
            b0: Unit3D::new(&path / "b0", c_in, c[0], one, one),
            b1a: Unit3D::new(&path / "b1a", c_in, c[1], one, one),
            b1b: Unit3D::new(&path / "b1b", c[1], c[2], three, one),
            b2a: Unit3D::new(&path / "b2a", c_in, c[3], one, one),
            b2b: Unit3D::new(&path / "b2b", c[3], c[4], three, one),
            b3b: Unit3D::new(&path / "b3b", c_in, c[5], one, one),
            out_channels: c[0] + c[2] + c[4] + c[5],
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let b0 = self.b0.forward(x, train);
        let b1 = self.b1b.forward(&self.b1a.forward(x, train), train);
        let b2 = self.b2b.forward(&self.b2a.forward(x, train), train);
        let pooled = x.f_max_pool3d([3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], false)?;
        let b3 = self.b3b.forward(&pooled, train);
        Ok(Tensor::f_cat(&[b0, b1, b2, b3], 1)?)
    }
}

#[derive(Debug)]
enum Layer {
    Unit(Box<Unit3D>),
    Mixed(Box<Mixed>),
    /// kernel, stride, padding, ceil mode.
    Pool([i64; 3], [i64; 3], [i64; 3], bool),
}

/// The I3D backbone.
pub struct I3d {
    layers: Vec<Layer>,
    feature_dim: i64,
    /// Product of the temporal strides: how many input frames share one output step.
    time_stride: i64,
}

impl Network for I3d {
    type Config = Config;

    fn new(root: &nn::Path, config: &Config) -> Result<Self, BackboneError> {
        let scale = |c: i64| ((c * config.width + 32) / 64).max(1);
        let ts = if config.temporal_strides { 2 } else { 1 };
        let s = config.stem_stride;
        let mut layers = vec![];
        let stem = scale(64);
        layers.push(Layer::Unit(Box::new(Unit3D::new(
            root / "conv3d_1a",
            3,
            stem,
            *config.stem_kernel,
            [ts, s, s],
        ))));
        // Spatial-only 1×3×3 pools, as in the paper (no early temporal pooling).
        let pool_2d = Layer::Pool([1, 3, 3], [1, 2, 2], [0, 1, 1], false);
        layers.push(pool_2d);
        layers.push(Layer::Unit(Box::new(Unit3D::new(
            root / "conv3d_2b",
            stem,
            stem,
            [1, 1, 1],
            [1, 1, 1],
        ))));
        let mut width = scale(192);
        layers.push(Layer::Unit(Box::new(Unit3D::new(
            root / "conv3d_2c",
            stem,
            width,
            [3, 3, 3],
            [1, 1, 1],
        ))));
        for (stage, specs) in STAGES.iter().enumerate() {
            match stage {
                0 => layers.push(Layer::Pool([1, 3, 3], [1, 2, 2], [0, 1, 1], false)),
                1 => layers.push(Layer::Pool([3, 3, 3], [ts, 2, 2], [1, 1, 1], false)),
                _ => layers.push(Layer::Pool([ts, 2, 2], [ts, 2, 2], [0, 0, 0], true)),
            }
            for (name, spec) in &specs[specs.len() - config.blocks[stage]..] {
                let block = Mixed::new(root / *name, width, spec.map(scale));
                width = block.out_channels;
                layers.push(Layer::Mixed(Box::new(block)));
            }
        }
        Ok(I3d {
            layers,
            feature_dim: width,
            time_stride: ts * ts * ts,
        })
    }

    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    const INPUT_LAYOUT: InputLayout = InputLayout::ChannelMajor;

    fn pretrained(config: &Config) -> Option<&str> {
        config.pretrained.as_deref()
    }

    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let t = video.size()[1];
        // (B, T, C, H, W) → (B, C, T, H, W), the layout Conv3d expects.
        let mut x = video.f_permute([0, 2, 1, 3, 4])?;
        for layer in &self.layers {
            x = match layer {
                Layer::Unit(unit) => unit.forward(&x, train),
                Layer::Mixed(block) => block.forward(&x, train)?,
                Layer::Pool(k, s, p, ceil) => x.f_max_pool3d(k, s, p, [1, 1, 1], *ceil)?,
            };
        }
        // Average over H, W: (B, D, T', H', W') → (B, T', D), then one step per frame again.
        Ok(restore_time(&pool_space(&x)?, t, self.time_stride)?)
    }
}

export_network!(I3d);
