//! `trajhost data preview`: an animated GIF grid (rows = classes) and a PNG contact sheet
//! (one row per sample, evenly spaced frames), each tile labelled, upscaled with nearest
//! neighbour so a person sees exactly the pixels the models see.

use std::path::{Path, PathBuf};

use font8x8::UnicodeFonts;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};

use crate::error::{Error, Result};
use crate::loader::Dataset;
use crate::trajectory::Class;

const LABEL_HEIGHT: u32 = 10;
const GAP: u32 = 2;
const SHEET_COLUMNS: usize = 8;

struct Picked {
    class: Class,
    index: u64,
    /// T × 3 × h × w.
    video: Vec<u8>,
}

/// The most samples of a class a preview shows: its grid is already 2,000+ pixels wide.
const MAX_PER_CLASS: usize = 64;

/// Writes the GIF to `gif_path` and the contact sheet next to it (`.png`); returns the PNG path.
/// When `gif_path` is a device or FIFO (`/dev/null`, a pipe) the GIF goes there and no sheet is
/// written: the folder beside it (`/dev`) is not ours.
pub fn write_preview(dir: &Path, gif_path: &Path, per_class: usize) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let special = std::fs::metadata(gif_path)
        .map(|m| m.file_type())
        .is_ok_and(|t| t.is_char_device() || t.is_fifo());
    if per_class > MAX_PER_CLASS {
        return Err(Error::format(
            gif_path,
            format!("--per-class {per_class}: a preview shows at most {MAX_PER_CLASS} samples of each class"),
        ));
    }
    let ds = Dataset::open(dir)?;
    let cfg = ds.manifest.config.clone();
    let picked = pick(&ds, per_class)?;
    let (w, h, t) = (cfg.width as u32, cfg.height as u32, cfg.frames);
    let scale = (128 / w.max(h)).max(1);
    let (tw, th) = (w * scale, h * scale + LABEL_HEIGHT);

    // GIF: classes down, samples across.
    let cols = per_class.max(1) as u32;
    let rows = cfg.classes.len() as u32;
    let size = |n: u32, tile: u32| n * tile + (n + 1) * GAP;
    let delay = Delay::from_numer_denom_ms(1000, cfg.fps.round().max(1.0) as u32);
    // Encoded in memory, then written atomically (a hard link to a dataset file is replaced,
    // never written through).
    let mut encoded = Vec::new();
    let mut gif = GifEncoder::new_with_speed(&mut encoded, 10);
    gif.set_repeat(Repeat::Infinite)
        .map_err(|e| Error::format(gif_path, e.to_string()))?;
    for f in 0..t {
        let mut canvas =
            RgbaImage::from_pixel(size(cols, tw), size(rows, th), Rgba([20, 20, 20, 255]));
        for (row, class) in cfg.classes.iter().enumerate() {
            for (col, p) in picked.iter().filter(|p| p.class == *class).enumerate() {
                let x = GAP + col as u32 * (tw + GAP);
                let y = GAP + row as u32 * (th + GAP);
                draw_tile(
                    &mut canvas,
                    (x, y),
                    p,
                    f,
                    (w, h, scale),
                    &format!("{} #{}", class.name(), p.index),
                );
            }
        }
        gif.encode_frame(Frame::from_parts(canvas, 0, 0, delay))
            .map_err(|e| Error::format(gif_path, e.to_string()))?;
    }
    drop(gif);
    trajhost_fs::write_atomic(gif_path, &encoded)
        .map_err(|e| Error::format(gif_path, format!("{e:#}")))?;

    // Contact sheet: one row per sample, evenly spaced frames.
    let frames: Vec<usize> = (0..SHEET_COLUMNS.min(t))
        .map(|c| c * (t - 1) / (SHEET_COLUMNS.min(t) - 1).max(1))
        .collect();
    let mut sheet = RgbaImage::from_pixel(
        size(frames.len() as u32, tw),
        size(picked.len() as u32, th),
        Rgba([20, 20, 20, 255]),
    );
    for (row, p) in picked.iter().enumerate() {
        for (col, &f) in frames.iter().enumerate() {
            let x = GAP + col as u32 * (tw + GAP);
            let y = GAP + row as u32 * (th + GAP);
            let label = if col == 0 {
                format!("{} #{}", p.class.name(), p.index)
            } else {
                format!("t={f}")
            };
            draw_tile(&mut sheet, (x, y), p, f, (w, h, scale), &label);
        }
    }
    if special {
        return Ok(None);
    }
    let png = gif_path.with_extension("png");
    let mut bytes = std::io::Cursor::new(Vec::new());
    sheet
        .write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| Error::format(&png, e.to_string()))?;
    trajhost_fs::write_atomic(&png, bytes.get_ref())
        .map_err(|e| Error::format(&png, format!("{e:#}")))?;
    Ok(Some(png))
}

/// The first `per_class` samples of each configured class, in index order.
fn pick(ds: &Dataset, per_class: usize) -> Result<Vec<Picked>> {
    let classes = &ds.manifest.config.classes;
    let mut picked: Vec<Picked> = Vec::new();
    for k in 0..ds.num_shards() {
        if picked.len() >= per_class * classes.len() {
            break;
        }
        let shard = ds.load_shard(k)?;
        for i in 0..shard.n {
            let class = Class::from_index(shard.labels[i]).ok_or_else(|| {
                Error::format(
                    &ds.dir,
                    format!("sample {}: bad label {}", shard.indices[i], shard.labels[i]),
                )
            })?;
            if picked.iter().filter(|p| p.class == class).count() < per_class {
                picked.push(Picked {
                    class,
                    index: shard.indices[i],
                    video: shard.video(i).to_vec(),
                });
            }
        }
    }
    // Group by class so the contact sheet reads class by class.
    picked.sort_by_key(|p| (p.class.index(), p.index));
    Ok(picked)
}

fn draw_tile(
    canvas: &mut RgbaImage,
    (x0, y0): (u32, u32),
    p: &Picked,
    frame: usize,
    (w, h, scale): (u32, u32, u32),
    label: &str,
) {
    draw_text(canvas, x0 + 1, y0 + 1, label);
    let plane = (w * h) as usize;
    let data = &p.video[frame * 3 * plane..(frame + 1) * 3 * plane];
    for y in 0..h * scale {
        for x in 0..w * scale {
            let k = ((y / scale) * w + x / scale) as usize;
            let px = Rgba([data[k], data[plane + k], data[2 * plane + k], 255]);
            canvas.put_pixel(x0 + x, y0 + LABEL_HEIGHT + y, px);
        }
    }
}

/// 8×8 bitmap text, clipped to the canvas.
fn draw_text(canvas: &mut RgbaImage, x0: u32, y0: u32, text: &str) {
    for (n, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let (x, y) = (x0 + n as u32 * 8 + col, y0 + row as u32);
                if bits >> col & 1 == 1 && x < canvas.width() && y < canvas.height() {
                    canvas.put_pixel(x, y, Rgba([255, 255, 255, 255]));
                }
            }
        }
    }
}
