//! A TimeSformer-style video transformer (Bertasius et al., "Is Space-Time Attention All You
//! Need for Video Understanding?", ICML 2021) as a trajhost backbone, with the paper's
//! best variant, **divided space–time attention**.
//!
//! Each frame is cut into `patch_size`² patches, linearly embedded (a strided conv), and
//! given a learned spatial position embedding (one per patch) plus a learned temporal one
//! (one per frame; `max_frames` rows are learned and the first `T` used, so any `T ≤
//! max_frames` works). Each pre-LayerNorm block then applies, with residuals:
//! 1. temporal attention: every patch position attends over the `T` frames, followed by
//!    TimeSformer's `temporal_fc` linear;
//! 2. spatial attention: every frame's patches attend to each other;
//! 3. an MLP (GELU, `mlp_ratio`× wider).
//!
//! There is no class token: per-frame features are a linear **readout** of that frame's
//! patch tokens after a final LayerNorm, concatenated in patch order (`N·dim → dim`), so
//! `D = dim` and **T is preserved** (attention never strides in time). The readout keeps
//! *which* patch holds the ball; the mean over patches that ViT-style pooling would take
//! blurs it away, and with it the ball's position (the ablation is in docs/training.md).
//! `temporal_fc` is initialised like any linear (TimeSformer zero-initialises it, which would
//! leave the temporal attention without a gradient on the first step).
//!
//! # Configuration (RON)
//! `(preset: "cpu" | "reference", ...knobs)`; an empty text is the `cpu` preset. Every knob is
//! optional (`dim: 64` or `dim: Some(64)`) and overrides the preset:
//! * `dim`: token width `D` (reference 768, cpu 48);
//! * `depth`: number of blocks (reference 12, cpu 2);
//! * `heads`: attention heads, must divide `dim` (reference 12, cpu 2);
//! * `mlp_ratio`: MLP hidden width / `dim` (reference 4, cpu 2);
//! * `patch_size`: patch side in pixels (16 for both, as ViT-B/16: 4×4 patches per 64×64
//!   frame; 8 gives 8×8 but costs about 2.5× more on a CPU);
//! * `image_size`: frame side the spatial position embeddings are learned for (64 for both;
//!   frames of another size are an error);
//! * `max_frames`: rows of the temporal position embedding (64 for both).

use nn::Module;
use trajhost_plugin_api::prelude::*;

backbone_config! {
    /// The resolved configuration; see the crate docs for each field.
    pub struct Config {
        pub dim: i64,
        pub depth: i64,
        pub heads: i64,
        pub mlp_ratio: i64,
        pub patch_size: i64,
        pub image_size: i64,
        pub max_frames: i64,
    }
    presets: [cpu, reference]
    at_least_one: [dim, depth, heads, mlp_ratio, patch_size, image_size, max_frames]
}

impl Config {
    /// TimeSformer (ViT-B/16 blocks, divided space–time attention).
    pub fn reference() -> Self {
        Config {
            dim: 768,
            depth: 12,
            heads: 12,
            mlp_ratio: 4,
            patch_size: 16,
            image_size: 64,
            max_frames: 64,
        }
    }

    /// Small enough to train on two CPU cores.
    pub fn cpu() -> Self {
        Config {
            dim: 48,
            depth: 2,
            heads: 2,
            mlp_ratio: 2,
            patch_size: 16,
            image_size: 64,
            max_frames: 64,
        }
    }
}

impl ConfigRules for Config {
    fn resolve(&mut self, _given: &[&str]) -> Result<(), Invalid> {
        if self.dim % self.heads != 0 {
            return Err(Invalid::new(
                "heads",
                format!("must divide dim = {}, got {}", self.dim, self.heads),
            ));
        }
        if self.image_size % self.patch_size != 0 {
            return Err(Invalid::new(
                "patch_size",
                format!(
                    "must divide image_size = {}, got {}",
                    self.image_size, self.patch_size
                ),
            ));
        }
        Ok(())
    }
}

fn layer_norm(path: nn::Path, dim: i64) -> nn::LayerNorm {
    // ViT's LayerNorm epsilon.
    let config = nn::LayerNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    nn::layer_norm(path, vec![dim], config)
}

/// Multi-head self-attention over the middle axis of `(N, L, D)`.
#[derive(Debug)]
struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
}

impl Attention {
    fn new(path: nn::Path, dim: i64, heads: i64) -> Self {
        Attention {
            qkv: nn::linear(&path / "qkv", dim, 3 * dim, Default::default()),
            proj: nn::linear(&path / "proj", dim, dim, Default::default()),
            heads,
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let qkv = x.apply(&self.qkv); // (N, L, 3D): q, k, v, each heads × D / heads
        let y = if qkv.device().is_cuda() {
            fused_attention(&qkv, self.heads)?
        } else {
            attention_by_head(&qkv, self.heads)?
        };
        Ok(y.apply(&self.proj))
    }
}

/// libtorch's fused attention kernel over `qkv` `(N, L, 3D)` → `(N, L, D)`.
fn fused_attention(qkv: &Tensor, heads: i64) -> Result<Tensor, BackboneError> {
    let (n, l, d3) = qkv.size3()?;
    let d = d3 / 3;
    // → 3 × (N, heads, L, D / heads). `unbind`, not three `get`s: each `get`'s backward
    // zero-fills a gradient the size of all of qkv.
    let [q, k, v]: [Tensor; 3] = qkv
        .f_reshape([n, l, 3, heads, d / heads])?
        .f_permute([2, 0, 3, 1, 4])?
        .f_unbind(0)?
        .try_into()
        .map_err(|_| "transformer: qkv did not split in three")?;
    let y = Tensor::f_scaled_dot_product_attention::<Tensor>(
        &q, &k, &v, None, 0.0, false, None, false,
    )?;
    Ok(y.f_permute([0, 2, 1, 3])?.f_reshape([n, l, d])?)
}

/// The same function written out, one head at a time: softmax(q·kᵀ / √d)·v. On the CPU, at this
/// model's lengths (16 patches, 32 frames), the fused kernel is slower than these plain ones, and
/// a head's q, k and v are `(N, L, D / heads)` views of `qkv` that `bmm` reads in place, where
/// the heads batched together need copies (docs/bench.md).
fn attention_by_head(qkv: &Tensor, heads: i64) -> Result<Tensor, BackboneError> {
    let (n, l, d3) = qkv.size3()?;
    let head_dim = d3 / (3 * heads);
    let scale = (head_dim as f64).powf(-0.5);
    // One unbind (its backward stacks the gradients into one tensor) gives all 3 × heads views.
    let parts = qkv.f_reshape([n, l, 3 * heads, head_dim])?.f_unbind(2)?;
    let h = heads as usize;
    let outputs = (0..h)
        .map(|i| {
            let (q, k, v) = (&parts[i], &parts[h + i], &parts[2 * h + i]);
            let scores = q.f_bmm(&k.f_transpose(1, 2)?)?.f_mul_scalar(scale)?;
            scores.f_softmax(-1, scores.kind())?.f_bmm(v)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_cat(&outputs, -1)?)
}

#[derive(Debug)]
struct Block {
    temporal_norm: nn::LayerNorm,
    temporal_attn: Attention,
    temporal_fc: nn::Linear,
    norm1: nn::LayerNorm,
    attn: Attention,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Block {
    fn new(path: nn::Path, c: &Config) -> Self {
        let d = c.dim;
        Block {
            temporal_norm: layer_norm(&path / "temporal_norm", d),
            temporal_attn: Attention::new(&path / "temporal_attn", d, c.heads),
            temporal_fc: nn::linear(&path / "temporal_fc", d, d, Default::default()),
            norm1: layer_norm(&path / "norm1", d),
            attn: Attention::new(&path / "attn", d, c.heads),
            norm2: layer_norm(&path / "norm2", d),
            fc1: nn::linear(&path / "mlp_fc1", d, d * c.mlp_ratio, Default::default()),
            fc2: nn::linear(&path / "mlp_fc2", d * c.mlp_ratio, d, Default::default()),
        }
    }

    /// `x`: `(B, T, N, D)` tokens.
    fn forward(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let (b, t, n, d) = x.size4()?;
        // Temporal attention: each patch position's T tokens, (B·N, T, D).
        let xt = x.f_permute([0, 2, 1, 3])?.f_reshape([b * n, t, d])?;
        let h = self.temporal_attn.forward(&xt.apply(&self.temporal_norm))?;
        let xt = xt + h.apply(&self.temporal_fc);
        // Spatial attention: each frame's N tokens, (B·T, N, D).
        let xs = xt
            .f_reshape([b, n, t, d])?
            .f_permute([0, 2, 1, 3])?
            .f_reshape([b * t, n, d])?;
        let xs = &xs + self.attn.forward(&xs.apply(&self.norm1))?;
        let h = xs.apply(&self.norm2).apply(&self.fc1).gelu("none");
        let xs = &xs + h.apply(&self.fc2);
        Ok(xs.f_reshape([b, t, n, d])?)
    }
}

/// The divided space–time transformer.
pub struct Transformer {
    config: Config,
    patch_embed: nn::Conv2D,
    pos_space: Tensor,
    pos_time: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    readout: nn::Linear,
}

impl Network for Transformer {
    type Config = Config;

    fn new(root: &nn::Path, c: &Config) -> Result<Self, BackboneError> {
        let p = c.patch_size;
        let grid = c.image_size / p;
        // A p×p conv with stride p is the linear patch embedding.
        let patch_embed = nn::conv2d(
            root / "patch_embed",
            3,
            c.dim,
            p,
            nn::ConvConfig {
                stride: p,
                ..Default::default()
            },
        );
        // ViT's position-embedding init (std 0.02).
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let pos_space = root.var("pos_embed_space", &[grid * grid, c.dim], init);
        let pos_time = root.var("pos_embed_time", &[c.max_frames, c.dim], init);
        let blocks = (0..c.depth)
            .map(|i| Block::new(root / "blocks" / i, c))
            .collect();
        let norm = layer_norm(root / "norm", c.dim);
        let readout = nn::linear(
            root / "readout",
            grid * grid * c.dim,
            c.dim,
            Default::default(),
        );
        Ok(Transformer {
            config: c.clone(),
            patch_embed,
            pos_space,
            pos_time,
            blocks,
            norm,
            readout,
        })
    }

    fn feature_dim(&self) -> i64 {
        self.config.dim
    }

    fn forward(&self, video: &Tensor, _train: bool) -> Result<Tensor, BackboneError> {
        let (b, t, ch, h, w) = video.size5()?;
        let c = &self.config;
        if h != c.image_size || w != c.image_size {
            return Err(format!(
                "transformer: frames are {h}×{w} but the position embeddings are for \
                 image_size {0}×{0}",
                c.image_size
            )
            .into());
        }
        if t > c.max_frames {
            return Err(format!(
                "transformer: {t} frames but temporal position embeddings for max_frames = {}",
                c.max_frames
            )
            .into());
        }
        // Frames are independent for the embedding: (B·T, C, H, W) is a free view.
        let x = video.f_reshape([b * t, ch, h, w])?;
        let x = self.patch_embed.forward(&x); // (B·T, D, h, w)
        let x = x.f_flatten(2, 3)?.f_transpose(1, 2)?; // (B·T, N, D)
        let n = x.size()[1];
        let x = x.f_reshape([b, t, n, c.dim])?;
        let pos_time = self.pos_time.f_narrow(0, 0, t)?.f_unsqueeze(1)?; // (T, 1, D)
        let mut x = x + &self.pos_space + pos_time;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        // Per frame: its patch tokens after the final LayerNorm, in patch order → (B, T, D).
        Ok(x.apply(&self.norm).f_flatten(2, 3)?.apply(&self.readout))
    }
}

export_network!(Transformer);
