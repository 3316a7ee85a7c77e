//! The fovea: a second, full-resolution look at the ball for the pinhole head (`position_head:
//! fovea`). The backbones' features are strided (I3D's and MAGVIT's by 8, the Transformer's
//! patches are 16 wide), and reading a 2–5 px ball's radius to the fraction of a pixel that depth
//! needs is what they learn slowest (docs/training.md, "Position head"). A full-resolution
//! detector on every frame costs more than it returned; the fovea looks only where the
//! backbone's tracker says the ball is: a small square cut out of each input frame around that
//! estimate, 2·`CROP_RADII` estimated radii wide and resampled to `CROP_SIDE`² samples, from which
//! a small CNN reads how far the ball's centre and size are off the estimate.
//!
//! The cut-out scales with the estimated size, so a ball nearer or farther than any in training
//! looks, inside it, as the trained ones do: the CNN reads corrections relative to the estimate,
//! which do not depend on the ball's size. The estimate is not differentiated through (the
//! tracker has its own loss); the correction is, and starts at zero.

use super::pinhole;
use tch::{nn, nn::Module, Kind, Tensor};

/// Samples per side of a cut-out.
pub const CROP_SIDE: i64 = 12;
/// A cut-out's half width, in estimated ball radii: the ball's own radius plus room for the
/// estimate's error.
pub const CROP_RADII: f64 = 2.5;
/// Cut-outs are centred within ±this in image coordinates (±1 the frame's edges): one centred
/// farther out sees nothing of the frame either way, and an untrained or damaged tracker's
/// huge output must not reach the sampler as a coordinate.
const CENTRE_LIMIT: f64 = 4.0;

/// The CNN that reads a cut-out.
pub struct Fovea {
    reader: nn::Sequential,
}

impl Fovea {
    /// Three 3×3 convolutions (8, 16, 16 channels; the last two stride 2) and a linear layer to
    /// the three corrections, whose weights start at zero: an untrained fovea keeps the estimate.
    pub fn new(path: &nn::Path) -> Fovea {
        let conv = |name: &str, i: i64, o: i64, stride: i64| {
            let config = nn::ConvConfig {
                stride,
                padding: 1,
                ..Default::default()
            };
            nn::conv2d(path / name, i, o, 3, config)
        };
        let side = CROP_SIDE / 4;
        let out = nn::linear(path / "fovea_out", 16 * side * side, 3, Default::default());
        tch::no_grad(|| {
            let _ = out.ws.shallow_clone().zero_();
            if let Some(bias) = &out.bs {
                let _ = bias.shallow_clone().zero_();
            }
        });
        let reader = nn::seq()
            .add(conv("fovea_conv1", 3, 8, 1))
            .add_fn(|x| x.relu())
            .add(conv("fovea_conv2", 8, 16, 2))
            .add_fn(|x| x.relu())
            .add(conv("fovea_conv3", 16, 16, 2))
            .add_fn(|x| x.relu())
            .add_fn(|x| x.flatten(1, -1))
            .add(out);
        Fovea { reader }
    }

    /// `video` `(B, T, 3, H, W)`, `estimate` `(B, T, 3)` the tracker's image position and size
    /// (`pinhole::lift`'s input) → the same, corrected by what each frame's cut-out shows;
    /// `passes` times, each cut-out centred and sized by the last correction. Looking again
    /// where the ball now seems to be sees it centred and at the cut-out's usual scale, as the
    /// first look sees it only when the tracker is right (docs/training.md, "Looking twice").
    pub fn refine(&self, video: &Tensor, estimate: &Tensor, passes: usize) -> Tensor {
        let mut refined = self.look(video, estimate);
        for _ in 1..passes {
            refined = self.look(video, &refined);
        }
        refined
    }

    /// One look: the correction read from cut-outs around `estimate`, applied to it.
    fn look(&self, video: &Tensor, estimate: &Tensor) -> Tensor {
        let estimate = estimate.detach();
        let (b, t) = (estimate.size()[0], estimate.size()[1]);
        let (cut_outs, half) = crops(video, &estimate);
        let correction = self.reader.forward(&cut_outs).view([b, t, 3]);
        let (half_x, half_y) = (half.select(-1, 0), half.select(-1, 1));
        Tensor::stack(
            &[
                estimate.select(-1, 0) + correction.select(-1, 0) * half_x,
                estimate.select(-1, 1) + correction.select(-1, 1) * half_y,
                estimate.select(-1, 2) + correction.select(-1, 2),
            ],
            -1,
        )
    }
}

/// `(B, T, 2)`: each cut-out's half width and half height in the image's normalised coordinates
/// (−1 and 1 its edges, as `u` and `v` are), `CROP_RADII` estimated radii.
fn half_widths(estimate: &Tensor, video: &Tensor) -> Tensor {
    let size = video.size();
    let (height, width) = (size[3] as f64, size[4] as f64);
    // The radius is in half widths; in half heights it is W/H times that.
    let radius = pinhole::apparent_radius(&estimate.select(-1, 2)) * CROP_RADII;
    Tensor::stack(&[&radius, &(&radius * (width / height))], -1)
}

/// `(B·T, 3, CROP_SIDE, CROP_SIDE)`: each frame of `video` `(B, T, 3, H, W)` resampled
/// (bilinearly, zeros outside the frame) on a square grid centred on its row of `estimate`
/// `(B, T, 3)`, 2·`CROP_RADII` estimated radii wide; and those half widths, `(B, T, 2)`
/// ([`half_widths`]), which the corrections are measured in.
pub fn crops(video: &Tensor, estimate: &Tensor) -> (Tensor, Tensor) {
    let options = (Kind::Float, video.device());
    // Sample centres across [−1, 1], as `align_corners: false` places pixel centres.
    let steps = (Tensor::arange(CROP_SIDE, options) * 2.0 + 1.0) / CROP_SIDE as f64 - 1.0;
    let half = half_widths(estimate, video);
    let centre = estimate
        .reshape([-1, 3])
        .narrow(1, 0, 2)
        .clamp(-CENTRE_LIMIT, CENTRE_LIMIT)
        .reshape([-1, 1, 1, 2]);
    // grid[n, i, j] = (x, y) of row i, column j.
    let offsets = Tensor::stack(
        &[
            steps.view([1, -1]).expand([CROP_SIDE, CROP_SIDE], false),
            steps.view([-1, 1]).expand([CROP_SIDE, CROP_SIDE], false),
        ],
        -1,
    )
    .unsqueeze(0);
    let grid = centre + offsets * half.reshape([-1, 1, 1, 2]);
    (sample_frames(video, &grid), half)
}

/// `video` `(B, T, C, H, W)` float sampled on `grid` `(B·T, S, S, 2)`, one grid per frame, →
/// `(B·T, C, S, S)`; bilinear, zeros outside the frame.
///
/// A channel-major batch is sampled where it lies, as `B·C·T` one-channel images each with its
/// frame's grid: viewing it as `B·T` frames would copy the whole batch first (22–26 ms for 32
/// clips of 32 frames at 64×64, against 5 ms to sample). Each output is the same arithmetic on
/// the same pixels either way.
fn sample_frames(video: &Tensor, grid: &Tensor) -> Tensor {
    // Bilinear (0), zeros outside (0), pixel centres at ±(1 − 1/size) (`align_corners: false`).
    let sample = |images: &Tensor, grid: &Tensor| images.grid_sampler(grid, 0, 0, false);
    let size = video.size();
    let (b, t, c, h, w) = (size[0], size[1], size[2], size[3], size[4]);
    let side = grid.size()[1];
    let channel_major = video.permute([0, 2, 1, 3, 4]);
    if !video.is_contiguous() && channel_major.is_contiguous() {
        let grids = grid
            .view([b, 1, t, side, side, 2])
            .expand([b, c, t, side, side, 2], false)
            .reshape([b * c * t, side, side, 2]);
        sample(&channel_major.view([b * c * t, 1, h, w]), &grids)
            .view([b, c, t, side, side])
            .permute([0, 2, 1, 3, 4])
            .reshape([b * t, c, side, side])
    } else {
        sample(&video.reshape([b * t, c, h, w]), grid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A frame that is zero but for one bright pixel, and the estimate `(u, v, s)` at that pixel's
    /// centre: the pixel comes out at the middle of the cut-out, and a cut-out for a ball half
    /// the size spans half the pixels.
    #[test]
    fn a_cut_out_is_centred_on_the_estimate_and_scales_with_its_size() {
        let (h, w) = (32i64, 48i64);
        let video = Tensor::zeros([1, 1, 3, h, w], (Kind::Float, Device::Cpu));
        let (row, col) = (10i64, 30i64);
        let _ = video.narrow(3, row, 1).narrow(4, col, 1).fill_(1.0);
        let u = (col as f64 + 0.5 - w as f64 / 2.0) / (w as f64 / 2.0);
        let v = (row as f64 + 0.5 - h as f64 / 2.0) / (h as f64 / 2.0);
        // A radius such that the cut-out spans exactly CROP_SIDE pixels: 2·CROP_RADII·r half
        // widths = CROP_SIDE / (W/2).
        let r = CROP_SIDE as f64 / (w as f64 / 2.0) / (2.0 * CROP_RADII);
        let s = pinhole::size_output(r);
        let estimate = Tensor::from_slice(&[u as f32, v as f32, s as f32]).view([1, 1, 3]);
        let crop = crops(&video, &estimate).0.select(0, 0).select(0, 0);
        // One sample per pixel: the bright pixel lands on one of the four middle samples whole.
        let lit: Vec<f32> = Vec::try_from(crop.flatten(0, -1)).unwrap();
        let lit_at: Vec<usize> = (0..lit.len()).filter(|&i| lit[i] > 0.0).collect();
        let middle = CROP_SIDE as usize / 2;
        // The pixel's centre lies between samples middle-1 and middle in each axis (an even
        // side has no middle sample), so bilinear sampling spreads it over those four.
        let expected: Vec<usize> = [middle - 1, middle]
            .iter()
            .flat_map(|&i| [middle - 1, middle].map(|j| i * CROP_SIDE as usize + j))
            .collect();
        assert_eq!(lit_at, expected, "{crop}");
        // Half the size: the cut-out spans half the pixels, two samples per pixel each way, so
        // the bright pixel's samples add up to four times as much.
        let smaller =
            Tensor::from_slice(&[u as f32, v as f32, (s + 2f64.ln()) as f32]).view([1, 1, 3]);
        let crop = crops(&video, &smaller).0.select(0, 0).select(0, 0);
        let total = f64::try_from(crop.sum(Kind::Float)).unwrap();
        assert!((total - 4.0).abs() < 1e-4, "{total}");
    }

    /// A batch laid out channel-major (what I3D, SlowFast and MAGVIT read) is cut out where it
    /// lies, with the same values as the same video laid out time-major.
    #[test]
    fn channel_major_video_gives_the_same_cut_outs() {
        let opts = (Kind::Float, Device::Cpu);
        let time_major = Tensor::randn([2, 3, 3, 16, 20], opts);
        let channel_major = time_major
            .permute([0, 2, 1, 3, 4])
            .contiguous()
            .permute([0, 2, 1, 3, 4]);
        assert!(!channel_major.is_contiguous());
        let estimate = Tensor::randn([2, 3, 3], opts) * 0.5;
        let (a, half_a) = crops(&time_major, &estimate);
        let (b, half_b) = crops(&channel_major, &estimate);
        assert_eq!(a.size(), [6, 3, CROP_SIDE, CROP_SIDE]);
        assert!(a.equal(&b) && half_a.equal(&half_b));
    }

    /// A tracker's wild output (far outside the frame, or huge) cuts out nothing: zeros, not a
    /// sampler fed a coordinate of 1e30.
    #[test]
    fn a_wild_estimate_cuts_out_zeros() {
        let video = Tensor::ones([1, 2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let estimate = Tensor::from_slice(&[1e30f32, 0.0, 0.0, -7.0, 3e9, 0.0]).view([1, 2, 3]);
        let (crop, _) = crops(&video, &estimate);
        assert_eq!(crop.size(), [2, 3, CROP_SIDE, CROP_SIDE]);
        assert_eq!(f64::try_from(crop.abs().sum(Kind::Float)).unwrap(), 0.0);
    }

    /// Each look starts where the last one ended: a fovea that always reads "the ball is 0.25
    /// larger in log size than you think" moves the size by 0.25 per look, and the position not.
    #[test]
    fn each_look_corrects_the_last_ones_answer() {
        let vs = nn::VarStore::new(Device::Cpu);
        let fovea = Fovea::new(&vs.root());
        let mut bias = vs.variables()["fovea_out.bias"].shallow_clone();
        tch::no_grad(|| bias.copy_(&Tensor::from_slice(&[0.0f32, 0.0, 0.25])));
        let video = Tensor::randn([1, 2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let estimate = Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.0, 0.5, -0.4]).view([1, 2, 3]);
        for passes in 1..=3 {
            let refined = fovea.refine(&video, &estimate, passes);
            let moved = &refined - &estimate;
            let step = Tensor::from_slice(&[0.0f32, 0.0, 0.25 * passes as f32]);
            assert!(
                moved.allclose(&step.view([1, 1, 3]), 1e-6, 1e-6, false),
                "{passes}: {moved}"
            );
        }
    }

    /// An untrained fovea keeps the estimate as it is; what it returns has the estimate's shape.
    #[test]
    fn an_untrained_fovea_keeps_the_estimate() {
        let vs = nn::VarStore::new(Device::Cpu);
        let fovea = Fovea::new(&vs.root());
        let video = Tensor::randn([2, 3, 3, 16, 16], (Kind::Float, Device::Cpu));
        let estimate = Tensor::randn([2, 3, 3], (Kind::Float, Device::Cpu)) * 0.2;
        let refined = fovea.refine(&video, &estimate, 1);
        assert!(refined.allclose(&estimate, 1e-6, 1e-6, false), "{refined}");
    }
}
