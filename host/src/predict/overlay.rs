//! `predict --overlay`: the clip, enlarged 4×, with what the model said drawn on every frame —
//! the ball's tracked path through the clip (yellow), the predicted future position (a red X)
//! and, for a shard sample, the true one (a green +) — and a legend with the predicted class
//! below. Positions are projected with the sample's camera or, for other videos, a pinhole with
//! the given field of view looking down the normalised frame's z axis.
//!
//! The marker and legend colours are palette entries of their own in every frame, so they come
//! out exactly as documented (a GIF holds 256 colours a frame; quantising the whole picture
//! would give the markers whichever scene colour lies nearest).

use super::Prediction;
use anyhow::{anyhow, Context, Result};
use color_quant::NeuQuant;
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use std::path::Path;
use trajhost_dataset::camera::denormalise;

/// How much the clip is enlarged.
pub const SCALE: u32 = 4;
/// The predicted future position.
pub const RED: Rgb<u8> = Rgb([230, 40, 40]);
/// The true future position (shard samples).
pub const GREEN: Rgb<u8> = Rgb([40, 220, 60]);
/// The tracked positions of the clip's frames.
pub const YELLOW: Rgb<u8> = Rgb([255, 215, 0]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
/// Palette entries kept for the colours above; the scene gets the rest.
const RESERVED: [Rgb<u8>; 5] = [RED, GREEN, YELLOW, WHITE, BLACK];

/// Half the arm length and the half width of a marker, in pixels of the enlarged clip.
const ARM: i64 = 7;
const THICK: i64 = 1;
/// Legend lines under the clip: 8-pixel letters on 10-pixel lines.
const LINE: u32 = 10;
const LEGEND_LINES: u32 = 3;

/// `[fx, fy, cx, cy]` for the frames' size: the sample's own, else a pinhole with `fov_deg`.
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

/// Where a position lands in the overlay's enlarged frames (the pixel the marker centres on).
pub fn marker_pixel(
    position: [f64; 3],
    intrinsics: Option<[f32; 9]>,
    clip_size: (u32, u32),
    fov_deg: f64,
) -> Option<(i64, i64)> {
    let k = camera(intrinsics, clip_size.0, clip_size.1, fov_deg);
    project(position, k).map(|(u, v)| enlarged(u, v))
}

fn enlarged(u: f64, v: f64) -> (i64, i64) {
    let scale = f64::from(SCALE);
    ((u * scale).floor() as i64, (v * scale).floor() as i64)
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
    let at = |p: [f64; 3]| marker_pixel(p, intrinsics, (w, h), fov_deg);
    let path_pixels: Vec<(i64, i64)> = prediction.track.iter().filter_map(|&p| at(p)).collect();
    let predicted = at(prediction.position);
    let truth = prediction.truth.as_ref().and_then(|t| at(t.position));
    let (gw, gh) = (w * SCALE, h * SCALE + LEGEND_LINES * LINE + 4);
    // The same on every frame: drawn once.
    let mut marks = draw_marks(&path_pixels, predicted, truth, w * SCALE, h * SCALE);
    marks.extend(draw_legend(&legend_lines(prediction), h * SCALE + 3, gw));
    crate::atomic::write_with(path, 0o666, |temp| {
        let file = std::io::BufWriter::new(std::fs::File::create(temp)?);
        let mut gif = gif::Encoder::new(file, gw as u16, gh as u16, &[])?;
        gif.set_repeat(gif::Repeat::Infinite)?;
        for frame in frames {
            let mut big = RgbImage::from_pixel(gw, gh, BLACK);
            for (x, y, p) in frame.enumerate_pixels() {
                for (dx, dy) in (0..SCALE).flat_map(|dx| (0..SCALE).map(move |dy| (dx, dy))) {
                    big.put_pixel(x * SCALE + dx, y * SCALE + dy, *p);
                }
            }
            gif.write_frame(&indexed_frame(&big, &marks))?;
        }
        Ok(())
    })
    .with_context(|| format!("writing the overlay {}", path.display()))
}

/// A legend entry: a colour swatch (if any) and its words.
type Entry = (Option<Rgb<u8>>, String);

/// The legend, a row of entries a line.
fn legend_lines(prediction: &Prediction) -> Vec<Vec<Entry>> {
    let probability = prediction
        .probabilities
        .iter()
        .find(|(c, _)| *c == prediction.class)
        .map_or(0.0, |(_, p)| *p);
    let mut marks = vec![(Some(YELLOW), "tracked path".to_string())];
    if prediction.truth.is_some() {
        marks.push((Some(GREEN), "true".to_string()));
    }
    vec![
        vec![(
            Some(RED),
            format!("predicted, {} frames on", prediction.frames_ahead),
        )],
        marks,
        vec![(
            None,
            format!("{} {:.1}%", prediction.class, 100.0 * probability),
        )],
    ]
}

/// The reserved-colour pixels of the markers, clipped to the clip's `w × h` area.
fn draw_marks(
    path: &[(i64, i64)],
    predicted: Option<(i64, i64)>,
    truth: Option<(i64, i64)>,
    w: u32,
    h: u32,
) -> Vec<(u32, u32, Rgb<u8>)> {
    let mut out = Vec::new();
    let mut put = |x: i64, y: i64, colour| {
        if (0..i64::from(w)).contains(&x) && (0..i64::from(h)).contains(&y) {
            out.push((x as u32, y as u32, colour));
        }
    };
    // The path: a 2-pixel line between successive tracked positions.
    for pair in path.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            let (x, y) = (x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                put(x + dx, y + dy, YELLOW);
            }
        }
    }
    // The truth as a +, the prediction as an X over it, both 3 pixels thick.
    for (centre, colour, diagonal) in [(truth, GREEN, false), (predicted, RED, true)] {
        let Some((cx, cy)) = centre else { continue };
        for d in -ARM..=ARM {
            for t in -THICK..=THICK {
                match diagonal {
                    true => {
                        put(cx + d + t, cy + d, colour);
                        put(cx + d + t, cy - d, colour);
                    }
                    false => {
                        put(cx + d, cy + t, colour);
                        put(cx + t, cy + d, colour);
                    }
                }
            }
        }
    }
    out
}

/// The legend's pixels in reserved colours: per entry a swatch, then white 8×8 letters, cut at
/// the frame's edge.
fn draw_legend(rows: &[Vec<Entry>], top: u32, width: u32) -> Vec<(u32, u32, Rgb<u8>)> {
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let y = top + r as u32 * LINE;
        let mut x = 2u32;
        for (swatch, text) in row {
            if let Some(colour) = swatch.filter(|_| x + 8 <= width) {
                for (dx, dy) in (0..8).flat_map(|dx| (0..8).map(move |dy| (dx, dy))) {
                    out.push((x + dx, y + dy, colour));
                }
                x += 12;
            }
            for c in text.chars() {
                if x + 8 > width {
                    break;
                }
                let glyph = font8x8::BASIC_FONTS.get(c).unwrap_or([0; 8]);
                for (dy, bits) in glyph.iter().enumerate() {
                    for dx in (0..8).filter(|dx| bits >> dx & 1 == 1) {
                        out.push((x + dx, y + dy as u32, WHITE));
                    }
                }
                x += 8;
            }
            x += 16;
        }
    }
    out
}

/// One GIF frame: the reserved colours first in its palette, the scene quantised into the
/// rest, then the reserved-colour pixels `marks` written over it by index.
fn indexed_frame(scene: &RgbImage, marks: &[(u32, u32, Rgb<u8>)]) -> gif::Frame<'static> {
    let (w, h) = scene.dimensions();
    let rgba: Vec<u8> = scene
        .pixels()
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let quant = NeuQuant::new(10, 256 - RESERVED.len(), &rgba);
    let mut palette: Vec<u8> = RESERVED.iter().flat_map(|c| c.0).collect();
    palette.extend(quant.color_map_rgb());
    let mut indices: Vec<u8> = rgba
        .chunks_exact(4)
        .map(|p| (RESERVED.len() + quant.index_of(p)) as u8)
        .collect();
    for &(x, y, colour) in marks {
        let entry = RESERVED
            .iter()
            .position(|&c| c == colour)
            .expect("a reserved colour");
        indices[(y * w + x) as usize] = entry as u8;
    }
    gif::Frame {
        width: w as u16,
        height: h as u16,
        buffer: indices.into(),
        palette: Some(palette),
        // 30 fps is 3.3 hundredths of a second a frame; GIF counts whole hundredths.
        delay: 3,
        ..gif::Frame::default()
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
