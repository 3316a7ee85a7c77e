//! SlowFast (Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019) as a
//! trajhost backbone: the SlowFast-R50 design of facebookresearch/SlowFast.
//!
//! Two 3-D ResNet pathways see the same clip. The **Fast** pathway takes every frame with
//! `1/β` times fewer channels; the **Slow** pathway takes every `α`-th frame at full width.
//! Stem: Slow 1×7×7 conv, Fast 5×7×7 conv (both spatial stride 2, BatchNorm, ReLU), then a
//! 1×3×3 max-pool with spatial stride 2 (the Slow stem reads frames 0, α, 2α, … through a
//! temporal stride α; the Fast stem's convolution runs as five `1×k×k` taps summed shifted in
//! time, `layers::conv3d_as_temporal_taps`: the same functions, a quarter of the Fast stem's
//! time on AVX2). Stages `res2`–`res5` are bottleneck blocks
//! (`t×1×1` → `1×3×3` (spatial stride on the 3×3, as in the reference) → `1×1×1`, ×4
//! expansion, BatchNorm after each conv, projection shortcut when shape changes). The Slow
//! pathway's first conv is temporal (`t = 3`) only in `res4`/`res5` ("temporal convolutions
//! only in later stages"); the Fast pathway's is temporal everywhere.
//!
//! **Lateral connections** (Fast → Slow, after the stem and after `res2`–`res4`, as in the
//! reference; `res5`'s output goes straight to the features): a `5×1×1` conv with temporal
//! stride `α` turns Fast's `C_f` channels into `2·C_f` at Slow's frame rate, followed by
//! BatchNorm and ReLU, and is concatenated to the Slow features.
//!
//! **T**: the Fast pathway never strides in time, so it has one step per frame. The Slow
//! pathway's step `i` covers frames `iα … iα+α-1`, so it is brought back to `T` by
//! repetition (frame `t` takes step `t / α`). Features are both pathways' outputs averaged
//! over space and concatenated: `D = 32·width + 32·width/β_inv` (2304 at reference width).
//! BatchNorm's last γ in each block is initialised to 1 (the reference zero-initialises it,
//! which would leave the other convs of a fresh block without a gradient).
//!
//! # Configuration (RON)
//! `(preset: "cpu" | "reference", ...knobs)`; an empty text is the `cpu` preset. Every knob is
//! optional (`width: 4` or `width: Some(4)`) and overrides the preset:
//! * `width`: Slow stem channels; stage `i`'s bottleneck is `width·2^i` wide and outputs 4×
//!   that (reference 64, cpu 8);
//! * `alpha`: frame-rate ratio α (reference 8, cpu 4);
//! * `beta_inv`: channel ratio 1/β, Fast widths are Slow's divided by it (reference 8, cpu 4);
//! * `depths`: bottleneck blocks in `res2`–`res5` (reference `[3, 4, 6, 3]`, cpu
//!   `[1, 1, 1, 1]`);
//! * `fusion_kernel`: temporal kernel of the lateral conv (reference and cpu 5);
//! * `stem_kernel`: spatial kernel of both stem convs (reference 7, cpu 4);
//! * `stem_stride`: spatial stride of the stem convs (reference 2, cpu 4: with the pool,
//!   `res2` works at 8×8 instead of 16×16 on 64×64 frames, what two CPU cores can afford).

use layers::{conv3d, conv3d_as_temporal_taps, pool_space, restore_time, same_padding, ConvBn};
use trajhost_plugin_api::prelude::*;

backbone_config! {
    /// The resolved configuration; see the crate docs for each field.
    pub struct Config {
        pub width: i64,
        pub alpha: i64,
        pub beta_inv: i64,
        pub depths: Vec<i64>,
        pub fusion_kernel: i64,
        pub stem_kernel: i64,
        pub stem_stride: i64,
    }
    presets: [cpu, reference]
    at_least_one: [width, alpha, beta_inv, stem_kernel, stem_stride]
}

impl Config {
    /// SlowFast-R50, 8×8 (α = 8, β = 1/8).
    pub fn reference() -> Self {
        Config {
            width: 64,
            alpha: 8,
            beta_inv: 8,
            depths: vec![3, 4, 6, 3],
            fusion_kernel: 5,
            stem_kernel: 7,
            stem_stride: 2,
        }
    }

    /// Small enough to train on two CPU cores.
    pub fn cpu() -> Self {
        Config {
            width: 8,
            alpha: 4,
            beta_inv: 4,
            depths: vec![1, 1, 1, 1],
            fusion_kernel: 5,
            stem_kernel: 4,
            stem_stride: 4,
        }
    }
}

impl ConfigRules for Config {
    fn resolve(&mut self, _given: &[&str]) -> Result<(), Invalid> {
        if self.width < self.beta_inv {
            return Err(Invalid::new(
                "beta_inv",
                format!(
                    "the Fast stem would have width / beta_inv = {} / {} < 1 channels",
                    self.width, self.beta_inv
                ),
            ));
        }
        if self.depths.len() != 4 || self.depths.iter().any(|&d| d < 1) {
            return Err(Invalid::new(
                "depths",
                format!(
                    "needs four block counts ≥ 1 (res2–res5), got {:?}",
                    self.depths
                ),
            ));
        }
        if self.fusion_kernel < 1 || self.fusion_kernel % 2 == 0 {
            return Err(Invalid::new(
                "fusion_kernel",
                format!("must be odd and ≥ 1, got {}", self.fusion_kernel),
            ));
        }
        Ok(())
    }
}

/// Conv3d → BatchNorm (PyTorch's eps), "same" padded.
fn conv_bn(path: nn::Path, c_in: i64, c_out: i64, kernel: [i64; 3], stride: [i64; 3]) -> ConvBn {
    ConvBn::new(path, "conv", [c_in, c_out], kernel, stride, 1e-5)
}

/// A ResNet bottleneck: `t×1×1` → `1×3×3` (spatial stride) → `1×1×1`, each with BatchNorm.
#[derive(Debug)]
struct Bottleneck {
    a: ConvBn,
    b: ConvBn,
    c: ConvBn,
    shortcut: Option<ConvBn>,
}

impl Bottleneck {
    fn new(path: nn::Path, c_in: i64, inner: i64, c_out: i64, t: i64, stride: i64) -> Self {
        Bottleneck {
            a: conv_bn(&path / "a", c_in, inner, [t, 1, 1], [1, 1, 1]),
            b: conv_bn(&path / "b", inner, inner, [1, 3, 3], [1, stride, stride]),
            c: conv_bn(&path / "c", inner, c_out, [1, 1, 1], [1, 1, 1]),
            shortcut: (c_in != c_out || stride != 1).then(|| {
                conv_bn(
                    &path / "shortcut",
                    c_in,
                    c_out,
                    [1, 1, 1],
                    [1, stride, stride],
                )
            }),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.a.forward(x, train).relu();
        let h = self.b.forward(&h, train).relu();
        let h = self.c.forward(&h, train);
        let skip = match &self.shortcut {
            Some(s) => s.forward(x, train),
            None => x.shallow_clone(),
        };
        (h + skip).relu()
    }
}

/// Fast → Slow lateral connection: time-strided conv to Slow's frame rate.
#[derive(Debug)]
struct Fuse(ConvBn);

impl Fuse {
    fn new(path: nn::Path, fast: i64, kernel: i64, alpha: i64) -> Self {
        // Padding k/2 in time: ⌈T / α⌉ steps, as many as the α-strided Slow input has.
        let conv = conv3d(
            &path / "conv",
            fast,
            2 * fast,
            [kernel, 1, 1],
            [alpha, 1, 1],
            [kernel / 2, 0, 0],
            false,
        );
        let bn = nn::batch_norm3d(&path / "bn", 2 * fast, Default::default());
        Fuse(ConvBn { conv, bn })
    }

    fn forward(&self, slow: &Tensor, fast: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let lateral = self.0.forward(fast, train).relu();
        Ok(Tensor::f_cat(&[slow.shallow_clone(), lateral], 1)?)
    }
}

/// The SlowFast backbone.
pub struct SlowFast {
    alpha: i64,
    /// The stems' spatial stride and padding (the Fast stem's convolution runs as taps).
    stem_stride: i64,
    stem_padding: i64,
    slow_stem: ConvBn,
    fast_stem: ConvBn,
    /// After the stem, res2, res3 and res4.
    fuse: Vec<Fuse>,
    slow_stages: Vec<Vec<Bottleneck>>,
    fast_stages: Vec<Vec<Bottleneck>>,
    feature_dim: i64,
}

impl Network for SlowFast {
    type Config = Config;

    fn new(root: &nn::Path, c: &Config) -> Result<Self, BackboneError> {
        let (k, s) = (c.stem_kernel, c.stem_stride);
        let fast_width = c.width / c.beta_inv;
        // Temporal stride α: the Slow stem reads frames 0, α, 2α, … in place, where slicing them
        // out first copied a quarter of the clip.
        let slow_stem = conv_bn(root / "slow_stem", 3, c.width, [1, k, k], [c.alpha, s, s]);
        let fast_stem = conv_bn(root / "fast_stem", 3, fast_width, [5, k, k], [1, s, s]);
        let mut fuse = vec![Fuse::new(
            root / "fuse" / 0,
            fast_width,
            c.fusion_kernel,
            c.alpha,
        )];
        // Slow's input at each stage includes the 2·C_f lateral channels.
        let (mut slow_in, mut fast_in) = (c.width + 2 * fast_width, fast_width);
        let (mut slow_stages, mut fast_stages) = (vec![], vec![]);
        for (i, &depth) in c.depths.iter().enumerate() {
            let stage = i + 2;
            let inner = c.width << i;
            let fast_inner = (inner / c.beta_inv).max(1);
            let stride = if i == 0 { 1 } else { 2 };
            // Temporal kernels only from res4 in Slow (the paper's "non-degenerate"
            // temporal convs), everywhere in Fast.
            let slow_t = if stage >= 4 { 3 } else { 1 };
            let (mut slow, mut fast) = (vec![], vec![]);
            for j in 0..depth {
                let st = if j == 0 { stride } else { 1 };
                let sp = root / format!("slow_res{stage}") / j;
                slow.push(Bottleneck::new(sp, slow_in, inner, 4 * inner, slow_t, st));
                let fp = root / format!("fast_res{stage}") / j;
                fast.push(Bottleneck::new(
                    fp,
                    fast_in,
                    fast_inner,
                    4 * fast_inner,
                    3,
                    st,
                ));
                slow_in = 4 * inner;
                fast_in = 4 * fast_inner;
            }
            slow_stages.push(slow);
            fast_stages.push(fast);
            if stage < 5 {
                fuse.push(Fuse::new(
                    root / "fuse" / (i + 1),
                    fast_in,
                    c.fusion_kernel,
                    c.alpha,
                ));
                slow_in += 2 * fast_in;
            }
        }
        Ok(SlowFast {
            feature_dim: slow_in + fast_in,
            alpha: c.alpha,
            stem_stride: s,
            stem_padding: same_padding(k, s),
            slow_stem,
            fast_stem,
            fuse,
            slow_stages,
            fast_stages,
        })
    }

    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    const INPUT_LAYOUT: InputLayout = InputLayout::ChannelMajor;

    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        let t = video.size()[1];
        let alpha = self.alpha;
        // (B, T, C, H, W) → (B, C, T, H, W); Slow sees frames 0, α, 2α, … (its stem's stride).
        let video = video.f_permute([0, 2, 1, 3, 4])?;
        let pool = |x: Tensor| x.f_max_pool3d([1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1], false);
        // The Fast stem's 5×k×k convolution as five 1×k×k taps: the same weights and result,
        // a quarter of the time on AVX2 (layers::conv3d_as_temporal_taps).
        let fast = conv3d_as_temporal_taps(
            &video,
            &self.fast_stem.conv.ws,
            self.stem_stride,
            self.stem_padding,
        )?;
        let mut fast = pool(fast.apply_t(&self.fast_stem.bn, train).relu())?;
        let mut slow = pool(self.slow_stem.forward(&video, train).relu())?;
        slow = self.fuse[0].forward(&slow, &fast, train)?;
        for (i, (slow_stage, fast_stage)) in
            self.slow_stages.iter().zip(&self.fast_stages).enumerate()
        {
            for block in slow_stage {
                slow = block.forward(&slow, train);
            }
            for block in fast_stage {
                fast = block.forward(&fast, train);
            }
            if let Some(fuse) = self.fuse.get(i + 1) {
                slow = fuse.forward(&slow, &fast, train)?;
            }
        }
        // Average over H, W → (B, T', C); Slow's steps repeated back to one per frame.
        let slow = restore_time(&pool_space(&slow)?, t, alpha)?;
        Ok(Tensor::f_cat(&[slow, pool_space(&fast)?], 2)?)
    }
}

export_network!(SlowFast);
