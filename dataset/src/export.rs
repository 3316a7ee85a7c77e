//! `trajhost data export`: one sample's video as a file other tools (and `trajhost predict`)
//! read — an animated GIF at the dataset's own resolution, or a NumPy `.npy` array
//! `(T, 3, H, W)` of u8. Both are exact. A rendered frame has ~850 colours and a GIF image at
//! most 256, so each frame is written as a few images of at most 255 colours each, the other
//! pixels transparent, all but the last shown for 0 ms: viewers composite them into the one
//! exact frame, and `trajhost predict` reads only the composited frames.

use std::path::Path;

use crate::error::{Error, Result};
use crate::loader::Dataset;

/// Writes sample `index` of the dataset in `dir` to `out` (`.gif` or `.npy`).
pub fn export(dir: &Path, index: u64, out: &Path) -> Result<()> {
    let ds = Dataset::open(dir)?;
    let (k, entry) = ds
        .manifest
        .shards
        .iter()
        .enumerate()
        .find(|(_, s)| (s.first_index..s.first_index + s.count as u64).contains(&index))
        .ok_or_else(|| {
            Error::format(
                dir,
                format!("no sample {index}: the dataset has {} samples", ds.len()),
            )
        })?;
    let shard = ds.load_shard(k)?;
    let i = (index - entry.first_index) as usize;
    let video = shard.video(i);
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let bytes = match ext.as_deref() {
        Some("gif") => gif(
            video,
            shard.t,
            shard.h,
            shard.w,
            ds.manifest.config.fps,
            out,
        )?,
        Some("npy") => npy(video, [shard.t, 3, shard.h, shard.w]),
        _ => return Err(Error::format(out, "give a .gif or .npy file to export to")),
    };
    trajhost_fs::write_atomic(out, &bytes).map_err(|e| Error::format(out, format!("{e:#}")))
}

fn gif(video: &[u8], t: usize, h: usize, w: usize, fps: f64, out: &Path) -> Result<Vec<u8>> {
    let fail = |e: gif::EncodingError| Error::format(out, e.to_string());
    let (gw, gh) = (w as u16, h as u16);
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut bytes, gw, gh, &[]).map_err(fail)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(fail)?;
        // GIF counts delays in hundredths of a second.
        let centiseconds = (100.0 / fps.max(1.0)).round().max(1.0) as u16;
        let plane = h * w;
        for f in 0..t {
            let frame = &video[f * 3 * plane..(f + 1) * 3 * plane];
            let colour = |p: usize| [frame[p], frame[plane + p], frame[2 * plane + p]];
            let mut colours: Vec<[u8; 3]> = (0..plane).map(colour).collect();
            colours.sort_unstable();
            colours.dedup();
            let tiles: Vec<&[[u8; 3]]> = colours.chunks(255).collect();
            for (k, tile) in tiles.iter().enumerate() {
                let mut rgba: Vec<u8> = (0..plane)
                    .flat_map(|p| {
                        let [r, g, b] = colour(p);
                        let mine = tile.binary_search(&[r, g, b]).is_ok();
                        [r, g, b, if mine { 255 } else { 0 }]
                    })
                    .collect();
                // At most 255 colours and transparency: the palette is exact, not quantised.
                let mut image = gif::Frame::from_rgba_speed(gw, gh, &mut rgba, 10);
                image.dispose = gif::DisposalMethod::Keep;
                image.delay = if k + 1 == tiles.len() {
                    centiseconds
                } else {
                    0
                };
                encoder.write_frame(&image).map_err(fail)?;
            }
        }
    }
    Ok(bytes)
}

/// NumPy format version 1.0, C order.
fn npy(video: &[u8], shape: [usize; 4]) -> Vec<u8> {
    let [t, c, h, w] = shape;
    npy_file(
        &format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({t}, {c}, {h}, {w}), }}"),
        video,
    )
}

/// A `.npy` v1 file: the header `dict` padded as NumPy pads it, then `data` as given (tests
/// build hostile arrays with it too).
pub fn npy_file(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    // The header ends in a newline and pads the preamble to a multiple of 64 bytes.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}
