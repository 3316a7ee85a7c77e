//! The pinhole position head's geometry. The spec makes two things about the ball observable in
//! an image (docs/dataset.md): where its centre is and how big it looks (a ball of known radius
//! at depth z is a disc of radius f·R/z). A tracker that reports those two — quantities any
//! renderer, or a real camera, shows the same way — and lifts them through the lens gets depth
//! from size by construction instead of learning one renderer's depth cues, and still works
//! when the lens changes, as long as the focal length is known.

use anyhow::{bail, Result};
use tch::Tensor;
use trajhost_dataset::camera::{NORM_DEPTH, NORM_SCALE};
use trajhost_dataset::trajectory::BALL_RADIUS;

/// The apparent radius, in half image widths, that a size output of 0 stands for: about the
/// ball's size at the labels' mean depth with the default 50° lens (3.2 px of 64), so an
/// untrained head starts near the middle of the data.
const REFERENCE_RADIUS: f64 = 0.1;

/// The size output is clamped to ±this before `exp`: depths 20× nearer or farther than the
/// reference are far outside any data, and an untrained head must not overflow.
const SIZE_LIMIT: f64 = 3.0;

/// The focal lengths in half image sizes, `fx / (W/2)` and `fy / (H/2)`: the part of the
/// intrinsics a clip resized to the model's size keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lens {
    pub focal_x: f64,
    pub focal_y: f64,
}

impl Lens {
    /// Square pixels, principal point at the centre (the generator's camera).
    pub fn from_fov(fov_deg: f64, width: usize, height: usize) -> Lens {
        let focal_x = 1.0 / (fov_deg.to_radians() * 0.5).tan();
        Lens {
            focal_x,
            focal_y: focal_x * width as f64 / height as f64,
        }
    }

    /// From a row-major 3×3 K whose principal point is the image centre (`fx / cx`). A K from
    /// a file is untrusted: focal lengths that are not finite or lie outside fields of view of
    /// 0.1°–179.9° (half sizes 0.009–1100) are refused, before they turn a depth into NaN.
    pub fn from_intrinsics(k: [f32; 9]) -> Result<Lens> {
        let lens = Lens {
            focal_x: f64::from(k[0]) / f64::from(k[2]),
            focal_y: f64::from(k[4]) / f64::from(k[5]),
        };
        let plausible = |f: f64| (0.009..=1100.0).contains(&f);
        if !plausible(lens.focal_x) || !plausible(lens.focal_y) {
            bail!("its intrinsics {k:?} are no pinhole lens: fx / cx and fy / cy must lie within 0.009..=1100");
        }
        Ok(lens)
    }

    /// The row of a lens table that [`lift`] reads: `f·R / r₀`, `fx` and `fy`, each rounded to
    /// f32 once, from f64, as a scalar would be.
    fn row(self) -> [f32; LENS_COLUMNS] {
        let depth_per_size = self.focal_x * BALL_RADIUS / REFERENCE_RADIUS;
        [depth_per_size, self.focal_x, self.focal_y].map(|x| x as f32)
    }

    /// `(N, 3)` float: one row per lens, the table a split and its batches carry.
    pub fn table(lenses: &[Lens]) -> Tensor {
        let rows: Vec<f32> = lenses.iter().flat_map(|lens| lens.row()).collect();
        Tensor::from_slice(&rows).view([lenses.len() as i64, LENS_COLUMNS as i64])
    }
}

const LENS_COLUMNS: usize = 3;

/// The apparent radius, in half widths, that a size output `s` stands for (`lift`'s reading).
pub fn apparent_radius(size: &Tensor) -> Tensor {
    (-size.clamp(-SIZE_LIMIT, SIZE_LIMIT)).exp() * REFERENCE_RADIUS
}

/// The size output that stands for an apparent radius of `radius` half widths.
pub fn size_output(radius: f64) -> f64 {
    (REFERENCE_RADIUS / radius).ln()
}

/// `image` `(B, T, 3)`: per frame `(u, v, s)` with `u = (x_px − cx) / (W/2)`, `v` likewise and
/// `s = ln(REFERENCE_RADIUS / r)`, r the apparent radius in half widths, seen through each
/// sample's lens (`lenses`, a [`Lens::table`] of B rows) → the ball's position in label
/// coordinates `(B, T, 3)`.
pub fn lift(image: &Tensor, lenses: &Tensor) -> Tensor {
    let (u, v) = (image.select(-1, 0), image.select(-1, 1));
    let size = image.select(-1, 2).clamp(-SIZE_LIMIT, SIZE_LIMIT);
    // (B, 1) columns, broadcast over the frames.
    let column = |c: i64| lenses.select(1, c).unsqueeze(1);
    let (depth_per_size, focal_x, focal_y) = (column(0), column(1), column(2));
    // z = f·R / r with f and r both in half widths.
    let depth = size.exp() * depth_per_size;
    let x = &u * &depth / focal_x;
    let y = &v * &depth / focal_y;
    Tensor::stack(
        &[
            x / NORM_SCALE,
            y / NORM_SCALE,
            (depth - NORM_DEPTH) / NORM_SCALE,
        ],
        -1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;
    use trajhost_dataset::sample::generate_sample;
    use trajhost_dataset::DataConfig;

    /// What a perfect tracker reads off the image of a ball at `label`, projected in pixels
    /// with the sample's own K (as the renderer draws it: centre `K·p`, radius `fx·R/z`).
    fn seen(label: &[f32], k: [f32; 9]) -> [f64; 3] {
        let [fx, cx, fy, cy] = [k[0], k[2], k[4], k[5]].map(f64::from);
        let [x, y, z] = [label[0], label[1], label[2]].map(|c| f64::from(c) * NORM_SCALE);
        let z = z + NORM_DEPTH;
        let (u_px, v_px, radius_px) = (fx * x / z + cx, fy * y / z + cy, fx * BALL_RADIUS / z);
        [
            (u_px - cx) / cx,
            (v_px - cy) / cy,
            (REFERENCE_RADIUS / (radius_px / cx)).ln(),
        ]
    }

    /// The drawn centre and size of a rendered sample's ball, lifted with the lens of its data
    /// config, give back its labels: for the default lens and for a wide one on a non-square
    /// image.
    #[test]
    fn lifting_what_a_sample_shows_gives_its_labels() {
        for (fov, width, height) in [(50.0, 64, 64), (80.0, 48, 32)] {
            let mut config = DataConfig::tiny();
            (config.fov_deg, config.width, config.height) = (fov, width, height);
            let mut video = vec![0; config.video_bytes()];
            let labels = generate_sample(&config, 3, &mut video);
            let image: Vec<f64> = labels
                .positions
                .chunks(3)
                .flat_map(|p| seen(p, labels.intrinsics))
                .collect();
            for lens in [
                Lens::from_fov(fov, width, height),
                Lens::from_intrinsics(labels.intrinsics).unwrap(),
            ] {
                let image = Tensor::from_slice(&image).view([1, -1, 3]);
                let lifted = lift(&image, &Lens::table(&[lens]));
                let lifted =
                    Vec::<f64>::try_from(lifted.to_kind(Kind::Double).flatten(0, -1)).unwrap();
                for (got, want) in lifted.iter().zip(&labels.positions) {
                    assert!((got - f64::from(*want)).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }

    /// Each sample of a batch is lifted through its own lens: the same image read through a
    /// lens of half the focal length is a ball at half the depth.
    #[test]
    fn each_sample_is_lifted_through_its_own_lens() {
        let lens = Lens::from_fov(50.0, 64, 64);
        let half = Lens {
            focal_x: lens.focal_x / 2.0,
            focal_y: lens.focal_y / 2.0,
        };
        let image = Tensor::from_slice(&[0.2f32, -0.1, 0.3])
            .view([1, 1, 3])
            .repeat([2, 1, 1]);
        let lifted = lift(&image, &Lens::table(&[lens, half])).to_kind(Kind::Double);
        let camera = |row: i64| {
            let p = Vec::<f64>::try_from(lifted.get(row).flatten(0, -1)).unwrap();
            [
                p[0] * NORM_SCALE,
                p[1] * NORM_SCALE,
                p[2] * NORM_SCALE + NORM_DEPTH,
            ]
        };
        let (a, b) = (camera(0), camera(1));
        assert!((b[2] - a[2] / 2.0).abs() < 1e-5, "{a:?} {b:?}");
        // Same direction from the camera: x/z and y/z are the image's, scaled by the lens.
        assert!(
            (b[0] / b[2] - 2.0 * a[0] / a[2]).abs() < 1e-5,
            "{a:?} {b:?}"
        );
        assert!(
            (b[1] / b[2] - 2.0 * a[1] / a[2]).abs() < 1e-5,
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn intrinsics_that_are_no_lens_are_refused() {
        let k = |fx: f32, cx: f32| [fx, 0.0, cx, 0.0, fx, cx, 0.0, 0.0, 1.0];
        assert!(Lens::from_intrinsics(k(68.6, 32.0)).is_ok());
        for bad in [
            k(68.6, 0.0),
            k(f32::NAN, 32.0),
            k(-68.6, 32.0),
            k(0.0, 32.0),
            k(f32::INFINITY, 32.0),
            k(1e30, 32.0),
        ] {
            let error = Lens::from_intrinsics(bad).unwrap_err().to_string();
            assert!(error.contains("intrinsics"), "{error}");
        }
    }

    #[test]
    fn an_untrained_size_output_is_bounded() {
        let lens = Lens::from_fov(50.0, 64, 64);
        let wild = Tensor::from_slice(&[0.0f32, 0.0, 1e6, 0.0, 0.0, -1e6]).view([1, 2, 3]);
        let lifted = lift(&wild, &Lens::table(&[lens]));
        assert!(bool::try_from(lifted.isfinite().all()).unwrap());
    }
}
