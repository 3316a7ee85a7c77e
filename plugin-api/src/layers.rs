//! Small building blocks every backbone needs that tch leaves awkward.

use tch::nn;

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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Module, Device, Kind, Tensor};

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
}
