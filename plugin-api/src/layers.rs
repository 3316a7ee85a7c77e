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
