//! Small building blocks every backbone needs that tch leaves awkward.

use tch::{nn, Kind, TchError, Tensor};

/// A 3-D convolution with per-axis kernel, stride and padding in `(T, H, W)` order
/// (tch offers `Default` only for uniform 3-D configs).
pub fn conv3d(
    path: nn::Path,
    in_channels: i64,
    out_channels: i64,
    kernel: [i64; 3],
    stride: [i64; 3],
    padding: [i64; 3],
    bias: bool,
) -> nn::Conv3D {
    let base = nn::ConvConfig::default();
    let config = nn::ConvConfigND {
        stride,
        padding,
        dilation: [1, 1, 1],
        groups: 1,
        bias,
        ws_init: base.ws_init,
        bs_init: base.bs_init,
        padding_mode: base.padding_mode,
    };
    nn::conv(path, in_channels, out_channels, kernel, config)
}

/// The "same" padding of one axis of [`ConvBn`]: `(k - s + 1) / 2`, at least 0.
pub fn same_padding(kernel: i64, stride: i64) -> i64 {
    (kernel - stride + 1).max(0) / 2
}

/// Conv3d without a bias (BatchNorm follows) → BatchNorm3d, "same" padded: `(k - s + 1) / 2`
/// per axis keeps ⌈size / s⌉ for even sizes (7/2 → 3, 3/1 → 1, 4/4 → 0). I3D's Inception units
/// and SlowFast's bottleneck layers are made of it.
#[derive(Debug)]
pub struct ConvBn {
    pub conv: nn::Conv3D,
    pub bn: nn::BatchNorm,
}

impl ConvBn {
    /// The convolution's variables go under `path / conv_name` (checkpoints and the PyTorch
    /// key maps name it), BatchNorm's under `path / "bn"`, with BatchNorm's `eps`.
    pub fn new(
        path: nn::Path,
        conv_name: &str,
        channels: [i64; 2],
        kernel: [i64; 3],
        stride: [i64; 3],
        eps: f64,
    ) -> Self {
        let padding = [0, 1, 2].map(|i| same_padding(kernel[i], stride[i]));
        let [c_in, c_out] = channels;
        let conv = conv3d(
            &path / conv_name,
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            false,
        );
        let config = nn::BatchNormConfig {
            eps,
            ..Default::default()
        };
        let bn = nn::batch_norm3d(&path / "bn", c_out, config);
        ConvBn { conv, bn }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// A `taps×k×k` convolution of `(B, C, T, H, W)` with temporal stride 1 and "same" temporal
/// padding (`taps / 2` each side, `taps` odd), no bias, computed as one `1×k×k` convolution with
/// `taps · C_out` outputs whose taps are then summed, each shifted by its offset in time. The
/// weight is the usual `(C_out, C_in, taps, k, k)` one, so checkpoints do not change; the result
/// is the same up to float rounding.
///
/// Why: on AVX2, oneDNN runs a temporal convolution of few channels on whole frames (SlowFast's
/// Fast stem, 3 → 2 channels, 5×4×4 on 64×64 frames) as im2col and GEMM; forward and backward
/// of a batch of 32 took 62–68 ms that way and 14–15 ms as taps (docs/bench.md). `unbind` and
/// per-tap padding keep the backward to one gradient per tap, where indexing the taps out of
/// one tensor zero-filled a gradient the size of all of them for each.
pub fn conv3d_as_temporal_taps(
    x: &Tensor,
    weight: &Tensor,
    spatial_stride: i64,
    spatial_padding: i64,
) -> Result<Tensor, TchError> {
    let [c_out, c_in, taps, kh, kw] = weight.size()[..] else {
        return Err(TchError::Shape(format!(
            "a 3-D convolution's weight has 5 dimensions, got {:?}",
            weight.size()
        )));
    };
    if taps % 2 == 0 {
        return Err(TchError::Shape(format!(
            "temporal taps need an odd temporal kernel, got {taps}"
        )));
    }
    let per_tap = weight
        .f_permute([2, 0, 1, 3, 4])?
        .f_reshape([taps * c_out, c_in, 1, kh, kw])?;
    let (s, p) = (spatial_stride, spatial_padding);
    let z = x.f_conv3d(&per_tap, None::<Tensor>, [1, s, s], [0, p, p], [1, 1, 1], 1)?;
    let size = z.size();
    let (b, t, h, w) = (size[0], size[2], size[3], size[4]);
    let mut sum: Option<Tensor> = None;
    for (tap, z) in z
        .f_view([b, taps, c_out, t, h, w])?
        .f_unbind(1)?
        .into_iter()
        .enumerate()
    {
        // Output frame i reads input frame i + shift through this tap.
        let shift = tap as i64 - taps / 2;
        let shifted = match shift {
            0 => z,
            _ if shift.abs() >= t => continue,
            _ if shift < 0 => z
                .f_narrow(2, 0, t + shift)?
                .f_constant_pad_nd([0, 0, 0, 0, -shift, 0])?,
            _ => z
                .f_narrow(2, shift, t - shift)?
                .f_constant_pad_nd([0, 0, 0, 0, 0, shift])?,
        };
        sum = Some(match sum {
            None => shifted,
            Some(sum) => sum.f_add(&shifted)?,
        });
    }
    // The centre tap always contributes.
    sum.ok_or_else(|| TchError::Shape("no temporal tap".into()))
}

/// Re-initialises every linear and convolution layer in `vs` as PyTorch does by default:
/// weights, and the biases beside them, uniform in ±1/√fan_in (fan_in = inputs per output).
/// Norm layers, embeddings and buffers are left as they are.
///
/// Why: tch's default for linear and convolution weights is Kaiming-uniform with the ReLU gain,
/// √6 ≈ 2.45× PyTorch's scale, and convolution biases start at 0; so initialised, the
/// Transformer and MAGVIT learned markedly slower (docs/training.md, "Initialisation"). Call it
/// once, at the end of a backbone's constructor (after `tch::manual_seed`, it is deterministic).
pub fn pytorch_default_init(vs: &nn::VarStore) {
    let variables = vs.variables();
    let mut weights: Vec<(&String, &Tensor)> = variables
        .iter()
        .filter(|(name, t)| name.ends_with("weight") && t.dim() >= 2)
        .collect();
    // A fixed order, so the random draws are the same in every run.
    weights.sort_by(|a, b| a.0.cmp(b.0));
    tch::no_grad(|| {
        for (name, weight) in weights {
            let fan_in = (weight.numel() as i64 / weight.size()[0]).max(1);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let _ = weight.shallow_clone().uniform_(-bound, bound);
            let bias = format!("{}bias", &name[..name.len() - "weight".len()]);
            if let Some(bias) = variables.get(&bias) {
                let _ = bias.shallow_clone().uniform_(-bound, bound);
            }
        }
    });
}

/// `(B, C, T, H, W)` → `(B, T, C)`: the mean over space, one feature vector per time step.
pub fn pool_space(x: &Tensor) -> Result<Tensor, TchError> {
    x.f_mean_dim([3, 4].as_slice(), false, Kind::Float)?
        .f_permute([0, 2, 1])
}

/// `(B, T', D)` → `(B, T, D)` after a temporal stride: frame `t` takes step `t / stride`
/// (nearest-neighbour repetition, clamped for a last, partial step).
pub fn restore_time(x: &Tensor, t: i64, stride: i64) -> Result<Tensor, TchError> {
    let steps = x.size()[1];
    if steps == t {
        return Ok(x.shallow_clone());
    }
    let index = Tensor::f_arange(t, (Kind::Int64, x.device()))?
        .f_div_scalar_mode(stride, "floor")?
        .f_clamp_max(steps - 1)?;
    x.f_index_select(1, &index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Module, Device};

    #[test]
    fn per_axis_kernel_stride_and_padding() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = conv3d(
            vs.root() / "c",
            3,
            5,
            [1, 4, 4],
            [1, 4, 4],
            [0, 0, 0],
            false,
        );
        assert!(conv.bs.is_none());
        let out = conv.forward(&Tensor::zeros(
            [2, 3, 7, 64, 64],
            (Kind::Float, Device::Cpu),
        ));
        assert_eq!(out.size(), [2, 5, 7, 16, 16]);
    }

    #[test]
    fn pytorch_init_bounds_weights_and_biases_by_fan_in_and_leaves_norms() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let conv = conv3d(&root / "c", 4, 8, [1, 3, 3], [1, 1, 1], [0, 1, 1], true);
        let linear = nn::linear(&root / "l", 100, 10, Default::default());
        let norm = nn::layer_norm(&root / "n", vec![10], Default::default());
        tch::manual_seed(1);
        pytorch_default_init(&vs);
        let max = |t: &Tensor| t.abs().max().double_value(&[]);
        // fan_in: 4 × 1 × 3 × 3 = 36 for the conv, 100 for the linear.
        assert!(max(&conv.ws) <= 1.0 / 6.0 && max(&conv.ws) > 0.9 / 6.0);
        let conv_bias = conv.bs.as_ref().unwrap();
        assert!(max(conv_bias) <= 1.0 / 6.0 && max(conv_bias) > 0.0);
        assert!(max(&linear.ws) <= 0.1 && max(&linear.ws) > 0.09);
        assert_eq!(max(&(norm.ws.as_ref().unwrap() - 1.0)), 0.0);
        let first = Vec::<f32>::try_from(linear.ws.flatten(0, -1)).unwrap();
        tch::manual_seed(1);
        pytorch_default_init(&vs);
        let again = Vec::<f32>::try_from(linear.ws.flatten(0, -1)).unwrap();
        assert_eq!(first, again, "the same seed gives the same weights");
    }

    #[test]
    fn temporal_taps_compute_the_temporal_convolution_and_its_weight_gradient() {
        tch::manual_seed(3);
        let opts = (Kind::Float, Device::Cpu);
        // (frames, taps, spatial kernel, stride, padding): a stem, a clip shorter than the
        // taps' reach, one tap.
        for (t, taps, k, s, p) in [(9, 5, 4, 4, 0), (2, 5, 3, 2, 1), (4, 1, 2, 2, 0)] {
            let x = Tensor::randn([2, 3, t, 8, 8], opts);
            let weight = Tensor::randn([4, 3, taps, k, k], opts).set_requires_grad(true);
            let direct = x.conv3d(
                &weight,
                None::<Tensor>,
                [1, s, s],
                [taps / 2, p, p],
                [1, 1, 1],
                1,
            );
            let tapped = conv3d_as_temporal_taps(&x, &weight, s, p).unwrap();
            assert_eq!(tapped.size(), direct.size());
            let gap = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
            assert!(gap(&tapped, &direct) < 1e-4, "t {t} taps {taps}");
            let grad = |y: &Tensor| {
                let g =
                    Tensor::run_backward(&[y.square().sum(Kind::Float)], &[&weight], false, false);
                g[0].shallow_clone()
            };
            let (g_tapped, g_direct) = (grad(&tapped), grad(&direct));
            let scale = g_direct.abs().max().double_value(&[]);
            assert!(
                gap(&g_tapped, &g_direct) < 1e-5 * scale,
                "t {t} taps {taps}"
            );
        }
        let even = Tensor::zeros([2, 3, 4, 3, 3], opts);
        assert!(
            conv3d_as_temporal_taps(&Tensor::zeros([1, 3, 4, 8, 8], opts), &even, 1, 1).is_err()
        );
    }

    #[test]
    fn pooling_keeps_one_vector_per_step_and_time_is_restored_by_repetition() {
        let x = Tensor::arange(2 * 3 * 4, (Kind::Float, Device::Cpu)).view([2, 3, 4, 1, 1]);
        let pooled = pool_space(&x.repeat([1, 1, 1, 2, 2])).unwrap();
        assert_eq!(pooled.size(), [2, 4, 3]);
        assert_eq!(
            pooled.double_value(&[0, 1, 2]),
            x.double_value(&[0, 2, 1, 0, 0])
        );
        // 3 steps of stride 2 cover 5 frames: steps 0, 0, 1, 1, 2.
        let steps = Tensor::from_slice(&[10.0f32, 20.0, 30.0]).view([1, 3, 1]);
        let frames: Vec<f32> =
            Vec::try_from(restore_time(&steps, 5, 2).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(frames, [10.0, 10.0, 20.0, 20.0, 30.0]);
        assert_eq!(restore_time(&steps, 3, 1).unwrap().size(), [1, 3, 1]);
    }
}
