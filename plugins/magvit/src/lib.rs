//! The 3-D CNN encoder of MAGVIT (Yu et al., "MAGVIT: Masked Generative Video Transformer",
//! CVPR 2023) as a trajhost backbone: the VQGAN-style encoder with every convolution inflated
//! to 3-D, without the quantiser (the host wants continuous per-frame features).
//!
//! Layout: `conv_in` (3×3×3) → for each level, `res_blocks` ResBlocks at
//! `filters × channel_multipliers[level]` channels, then (except after the last level) a
//! 4×4×4 convolution with spatial stride 2 (and temporal stride 2 where
//! `temporal_downsample[level]`) → `res_blocks` more ResBlocks → GroupNorm → swish →
//! 1×1×1 projection to `embedding_dim`. A ResBlock is GroupNorm → swish → 3×3×3 conv →
//! GroupNorm → swish → 3×3×3 conv, plus a 1×1×1 shortcut when the channel count changes.
//!
//! **T is restored at the end**: temporal strides (the reference downsamples time ×4) are
//! kept, and each output frame `t` takes the latent of the step that covers it
//! (`t / temporal_stride`, nearest-neighbour repetition); with no temporal downsampling (the
//! `cpu` preset) every frame keeps its own latent. Per-frame features are the latent averaged
//! over the remaining spatial grid, so `D = embedding_dim`.
//!
//! # Configuration (RON)
//! `(preset: "cpu" | "reference", ...knobs)`; an empty text is the `cpu` preset. Every knob is
//! optional (`filters: 16` or `filters: Some(16)`) and overrides the preset:
//! * `filters`: base width (reference 64, cpu 12);
//! * `channel_multipliers`: width of each level relative to `filters` (reference
//!   `[1, 2, 2, 4]`, cpu `[1, 2]`); the number of levels is its length;
//! * `res_blocks`: ResBlocks per level and at the end (reference 2, cpu 1);
//! * `temporal_downsample`: for each level but the last, whether its downsampling also
//!   halves time (reference `[false, true, true]`, cpu none);
//! * `embedding_dim`: the latent size `D` (reference 256, cpu 32);
//! * `groups`: GroupNorm groups, must divide every width (reference 32, cpu 4);
//! * `stem_stride`: spatial stride of `conv_in`, whose spatial kernel is `max(3, stride)`
//!   so no pixel is skipped (reference 1, cpu 8: a patchifying 3×8×8 stem, the cheap early
//!   downsampling a 2-core CPU needs; 3×3×3 convs at 16×16 cost several times more);
//! * `causal`: pad time only on the past side (`k_t - 1` zero frames before, none after),
//!   so no convolution looks at later frames (default false, as in MAGVIT v1; MAGVIT-v2
//!   makes it true). GroupNorm statistics still span the whole clip, as in MAGVIT-v2.

use layers::{conv3d, pool_space, restore_time};
use trajhost_plugin_api::prelude::*;

backbone_config! {
    /// The resolved configuration; see the crate docs for each field.
    pub struct Config {
        pub filters: i64,
        pub channel_multipliers: Vec<i64>,
        pub res_blocks: i64,
        pub temporal_downsample: Vec<bool>,
        pub embedding_dim: i64,
        pub groups: i64,
        pub stem_stride: i64,
        pub causal: bool,
    }
    presets: [cpu, reference]
    at_least_one: [filters, res_blocks, embedding_dim, stem_stride]
}

impl Config {
    /// MAGVIT-B's encoder (the paper's base 3-D VQ tokenizer).
    pub fn reference() -> Self {
        Config {
            filters: 64,
            channel_multipliers: vec![1, 2, 2, 4],
            res_blocks: 2,
            temporal_downsample: vec![false, true, true],
            embedding_dim: 256,
            groups: 32,
            stem_stride: 1,
            causal: false,
        }
    }

    /// Small enough to train on two CPU cores: stride-8 stem, two levels, no temporal strides.
    pub fn cpu() -> Self {
        Config {
            filters: 12,
            channel_multipliers: vec![1, 2],
            res_blocks: 1,
            temporal_downsample: vec![false],
            embedding_dim: 32,
            groups: 4,
            stem_stride: 8,
            causal: false,
        }
    }
}

impl ConfigRules for Config {
    fn resolve(&mut self, given: &[&str]) -> Result<(), Invalid> {
        // A new level count without temporal flags: downsample space only.
        if given.contains(&"channel_multipliers") && !given.contains(&"temporal_downsample") {
            self.temporal_downsample =
                vec![false; self.channel_multipliers.len().saturating_sub(1)];
        }
        if self.channel_multipliers.is_empty() || self.channel_multipliers.iter().any(|&m| m < 1) {
            return Err(Invalid::new(
                "channel_multipliers",
                format!(
                    "must be a non-empty list of values ≥ 1, got {:?}",
                    self.channel_multipliers
                ),
            ));
        }
        if self.temporal_downsample.len() + 1 != self.channel_multipliers.len() {
            return Err(Invalid::new(
                "temporal_downsample",
                format!(
                    "needs one entry per level but the last ({}), got {}",
                    self.channel_multipliers.len() - 1,
                    self.temporal_downsample.len()
                ),
            ));
        }
        let widths = self.channel_multipliers.iter().map(|m| m * self.filters);
        if self.groups < 1 || widths.clone().any(|w| w % self.groups != 0) {
            return Err(Invalid::new(
                "groups",
                format!(
                    "must divide every width {:?}, got {}",
                    widths.collect::<Vec<_>>(),
                    self.groups
                ),
            ));
        }
        Ok(())
    }
}

/// A 3-D convolution whose temporal padding is applied in `forward`, so that it can be causal
/// (all `k_t - 1` padding frames in the past) or centred as TF's SAME padding (MAGVIT is a
/// JAX model); either way `T_out = ceil(T / stride_t)` for any `T`. Spatial padding is the
/// conv's own.
#[derive(Debug)]
struct Conv {
    conv: nn::Conv3D,
    kernel_t: i64,
    stride: [i64; 3],
    space_pad: i64,
    causal: bool,
    /// Whether equal padding on both sides of time is left to the convolution itself.
    pad_inside: bool,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: [i64; 3],
        stride: [i64; 3],
        space_pad: i64,
        causal: bool,
        bias: bool,
    ) -> Self {
        let conv = conv3d(
            path,
            c_in,
            c_out,
            kernel,
            stride,
            [0, space_pad, space_pad],
            bias,
        );
        Conv {
            conv,
            kernel_t: kernel[0],
            stride,
            space_pad,
            causal,
            pad_inside: false,
        }
    }

    /// For the stem, which reads the whole video: padding that copies the batch (~20 % of an
    /// inference step); the convolution pads inside instead, the same sums. Deeper convs keep
    /// the explicit pad: their backward pass is slower with the padding inside (measured with
    /// the PyTorch mirror, docs/bench.md).
    fn padding_inside(self) -> Self {
        Conv {
            pad_inside: true,
            ..self
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let (k, s) = (self.kernel_t, self.stride[0]);
        let (before, after) = if self.causal {
            (k - 1, 0)
        } else {
            let t = x.size()[2];
            let out = (t + s - 1) / s;
            let total = ((out - 1) * s + k - t).max(0);
            (total / 2, total - total / 2)
        };
        if self.pad_inside && before == after {
            let pad = [before, self.space_pad, self.space_pad];
            let (weight, bias) = (&self.conv.ws, self.conv.bs.as_ref());
            return Ok(x.f_conv3d(weight, bias, self.stride, pad, [1, 1, 1], 1)?);
        }
        let x = match (before, after) {
            (0, 0) => x.shallow_clone(),
            (a, b) => x.f_constant_pad_nd([0, 0, 0, 0, a, b])?,
        };
        Ok(x.apply(&self.conv))
    }
}

fn group_norm(path: nn::Path, groups: i64, channels: i64) -> nn::GroupNorm {
    // Flax's GroupNorm epsilon (MAGVIT is a JAX model).
    let config = nn::GroupNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    nn::group_norm(path, groups, channels, config)
}

#[derive(Debug)]
struct ResBlock {
    norm1: nn::GroupNorm,
    conv1: Conv,
    norm2: nn::GroupNorm,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl ResBlock {
    fn new(path: nn::Path, c_in: i64, c_out: i64, config: &Config) -> Self {
        let (g, causal) = (config.groups, config.causal);
        // No conv biases: each conv is followed by a GroupNorm (MAGVIT uses use_bias=False).
        let conv =
            |name: &str, a, b| Conv::new(&path / name, a, b, [3; 3], [1; 3], 1, causal, false);
        ResBlock {
            norm1: group_norm(&path / "norm1", g, c_in),
            conv1: conv("conv1", c_in, c_out),
            norm2: group_norm(&path / "norm2", g, c_out),
            conv2: conv("conv2", c_out, c_out),
            shortcut: (c_in != c_out).then(|| {
                Conv::new(
                    &path / "shortcut",
                    c_in,
                    c_out,
                    [1; 3],
                    [1; 3],
                    0,
                    causal,
                    false,
                )
            }),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let h = x.apply_t(&self.norm1, train).silu();
        let h = self.conv1.forward(&h)?;
        let h = h.apply_t(&self.norm2, train).silu();
        let h = self.conv2.forward(&h)?;
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.shallow_clone(),
        };
        Ok(h + skip)
    }
}

#[derive(Debug)]
enum Layer {
    Res(Box<ResBlock>),
    Down(Box<Conv>),
}

/// The MAGVIT encoder.
pub struct Magvit {
    conv_in: Conv,
    layers: Vec<Layer>,
    norm_out: nn::GroupNorm,
    conv_out: Conv,
    /// Product of the temporal strides: how many input frames share one latent step.
    time_stride: i64,
    embedding_dim: i64,
}

impl Network for Magvit {
    type Config = Config;

    fn new(root: &nn::Path, c: &Config) -> Result<Self, BackboneError> {
        let s = c.stem_stride;
        let k = s.max(3);
        // Spatial "same" padding for a 3×3 stride-1 stem, none for a patchifying one.
        let pad = if s == 1 { (k - 1) / 2 } else { 0 };
        let mut width = c.filters;
        let conv_in = Conv::new(
            root / "conv_in",
            3,
            width,
            [3, k, k],
            [1, s, s],
            pad,
            c.causal,
            false,
        )
        .padding_inside();
        let mut layers = vec![];
        let mut time_stride = 1;
        let blocks = root / "blocks";
        let mut index = 0;
        let levels = c.channel_multipliers.len();
        for (level, m) in c.channel_multipliers.iter().enumerate() {
            let out = c.filters * m;
            for _ in 0..c.res_blocks {
                layers.push(Layer::Res(Box::new(ResBlock::new(
                    &blocks / index,
                    width,
                    out,
                    c,
                ))));
                width = out;
                index += 1;
            }
            if level + 1 < levels {
                let t = if c.temporal_downsample[level] { 2 } else { 1 };
                time_stride *= t;
                // 4×4×4 kernel, stride 2 in space: padding 1 halves H and W exactly.
                layers.push(Layer::Down(Box::new(Conv::new(
                    &blocks / index,
                    width,
                    width,
                    [4, 4, 4],
                    [t, 2, 2],
                    1,
                    c.causal,
                    false,
                ))));
                index += 1;
            }
        }
        for _ in 0..c.res_blocks {
            layers.push(Layer::Res(Box::new(ResBlock::new(
                &blocks / index,
                width,
                width,
                c,
            ))));
            index += 1;
        }
        let norm_out = group_norm(root / "norm_out", c.groups, width);
        let conv_out = Conv::new(
            root / "conv_out",
            width,
            c.embedding_dim,
            [1; 3],
            [1; 3],
            0,
            c.causal,
            true,
        );
        Ok(Magvit {
            conv_in,
            layers,
            norm_out,
            conv_out,
            time_stride,
            embedding_dim: c.embedding_dim,
        })
    }

    fn feature_dim(&self) -> i64 {
        self.embedding_dim
    }

    const INPUT_LAYOUT: InputLayout = InputLayout::ChannelMajor;

    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let t = video.size()[1];
        // (B, T, C, H, W) → (B, C, T, H, W), the layout Conv3d expects.
        let mut x = self.conv_in.forward(&video.f_permute([0, 2, 1, 3, 4])?)?;
        for layer in &self.layers {
            x = match layer {
                Layer::Res(block) => block.forward(&x, train)?,
                Layer::Down(conv) => conv.forward(&x)?,
            };
        }
        let x = x.apply_t(&self.norm_out, train).silu();
        let x = self.conv_out.forward(&x)?;
        // Average over H, W: (B, D, T', H', W') → (B, T', D), then one step per frame again.
        Ok(restore_time(&pool_space(&x)?, t, self.time_stride)?)
    }
}

export_network!(Magvit);
