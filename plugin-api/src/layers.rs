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
