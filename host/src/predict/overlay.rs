//! `predict --overlay`: the clip, enlarged, with the predicted future position drawn on every
//! frame (a red cross) and, for a shard sample, the true one (a green cross), projected with
//! the sample's camera or, for other videos, a camera with the dataset's default field of view
//! looking down the normalised frame's z axis.

use super::Prediction;
use anyhow::{anyhow, Context, Result};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage, Rgba, RgbaImage};
use std::path::Path;
use trajhost_dataset::camera::denormalise;

const SCALE: u32 = 4;
const RED: Rgba<u8> = Rgba([230, 40, 40, 255]);
const GREEN: Rgba<u8> = Rgba([40, 220, 60, 255]);

/// Row-major 3×3 K for the frames' size: the sample's own, else a pinhole with `fov_deg`.
fn camera(intrinsics: Option<[f32; 9]>, width: u32, height: u32, fov_deg: f64) -> [f64; 4] {
    match intrinsics {
        Some(k) => [k[0], k[4], k[2], k[5]].map(f64::from),
        None => {
            let f = f64::from(width) * 0.5 / (fov_deg.to_radians() * 0.5).tan();
            [f, f, f64::from(width) * 0.5, f64::from(height) * 0.5]
        }
    }
}

/// A normalised position → continuous pixel coordinates; None behind the camera.
pub fn project(position: [f64; 3], [fx, fy, cx, cy]: [f64; 4]) -> Option<(f64, f64)> {
    let p = denormalise(glam::DVec3::from_array(position));
    (p.z > 1e-6).then(|| (fx * p.x / p.z + cx, fy * p.y / p.z + cy))
}

/// Refuses an `--overlay` path that does not end in `.gif`: the overlay is an animated GIF,
/// and GIF bytes under another name (`out.png`) mislead whatever opens the file.
pub fn check_path(path: &Path) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"))
    {
        return Ok(());
    }
    Err(anyhow!(
        "--overlay {}: the overlay is an animated GIF; give a path ending in .gif",
        path.display()
    ))
}

pub fn write(
    path: &Path,
    frames: &[RgbImage],
    prediction: &Prediction,
    intrinsics: Option<[f32; 9]>,
    fov_deg: f64,
) -> Result<()> {
    let (w, h) = frames[0].dimensions();
    let k = camera(intrinsics, w, h, fov_deg);
    let marks: Vec<((f64, f64), Rgba<u8>)> = [
        prediction.truth.as_ref().map(|t| (t.position, GREEN)),
        Some((prediction.position, RED)),
    ]
    .into_iter()
    .flatten()
    .filter_map(|(p, colour)| project(p, k).map(|uv| (uv, colour)))
    .collect();
    crate::atomic::write_with(path, 0o666, |temp| {
        let file = std::fs::File::create(temp)?;
        let mut gif = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
        gif.set_repeat(Repeat::Infinite)?;
        for frame in frames {
            let mut big = RgbaImage::new(w * SCALE, h * SCALE);
            for (x, y, p) in frame.enumerate_pixels() {
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        big.put_pixel(
                            x * SCALE + dx,
                            y * SCALE + dy,
                            Rgba([p[0], p[1], p[2], 255]),
                        );
                    }
                }
            }
            for &((u, v), colour) in &marks {
                cross(&mut big, u * f64::from(SCALE), v * f64::from(SCALE), colour);
            }
            gif.encode_frame(Frame::from_parts(
                big,
                0,
                0,
                Delay::from_numer_denom_ms(100, 3),
            ))
            .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    })
    .with_context(|| format!("writing the overlay {}", path.display()))
}

/// An X of 11 pixels across, clipped to the image.
fn cross(image: &mut RgbaImage, u: f64, v: f64, colour: Rgba<u8>) {
    let (cu, cv) = (u.round() as i64, v.round() as i64);
    for d in -5i64..=5 {
        for (x, y) in [(cu + d, cv + d), (cu + d, cv - d)] {
            if (0..image.width() as i64).contains(&x) && (0..image.height() as i64).contains(&y) {
                image.put_pixel(x as u32, y as u32, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_the_normalised_frame_projects_to_the_image_centre() {
        let k = camera(None, 64, 64, 60.0);
        let (u, v) = project([0.0, 0.0, 0.0], k).unwrap();
        assert!((u - 32.0).abs() < 1e-9 && (v - 32.0).abs() < 1e-9);
        // Right of centre in x projects right of the centre; behind the camera, nowhere.
        assert!(project([0.5, 0.0, 0.0], k).unwrap().0 > 32.0);
        assert_eq!(project([0.0, 0.0, -10.0], k), None);
    }
}
