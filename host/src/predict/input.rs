//! Reading one clip for `predict`: an animated GIF, a folder of PNG frames, a `.npy` or
//! `.safetensors` array `(T, 3, H, W)` of u8, or a sample of a trajhost shard (which brings its
//! true labels and camera along).

use anyhow::{anyhow, bail, Context, Result};
use image::{AnimationDecoder, RgbImage};
use std::path::{Path, PathBuf};

/// A clip as `T` RGB frames, and what a shard knows about it.
pub struct Clip {
    pub frames: Vec<RgbImage>,
    /// Set when the clip came from a trajhost shard.
    pub truth: Option<Truth>,
}

/// A shard sample's labels: its class, every labelled position (input frames, then the
/// horizon) and its camera's row-major intrinsics.
pub struct Truth {
    pub class: usize,
    pub positions: Vec<[f32; 3]>,
    pub intrinsics: [f32; 9],
}

/// Reads `path`; `sample` picks the sample of a shard (0 by default).
pub fn read(path: &Path, sample: Option<usize>) -> Result<Clip> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let clip = if path.is_dir() {
        png_folder(path)?
    } else {
        match ext.as_deref() {
            Some("gif") => gif(path)?,
            Some("npy") => array_clip(npy(path)?, path)?,
            Some("safetensors") => safetensors(path, sample)?,
            _ => bail!(
                "{}: not a video trajhost reads (an animated .gif, a folder of .png frames, or a .npy / .safetensors array (T, 3, H, W) of u8)",
                path.display()
            ),
        }
    };
    if sample.is_some() && clip.truth.is_none() {
        bail!(
            "--sample is for trajhost shards; {} is not one",
            path.display()
        );
    }
    if clip.frames.is_empty() {
        bail!("{} has no frames", path.display());
    }
    Ok(clip)
}

fn gif(path: &Path) -> Result<Clip> {
    let file = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    );
    let decoder = image::codecs::gif::GifDecoder::new(file)
        .with_context(|| format!("{} is not a GIF", path.display()))?;
    let frames = decoder
        .into_frames()
        .collect_frames()
        .with_context(|| format!("decoding {}", path.display()))?;
    // Images shown for 0 ms are tiles of the next frame (how a GIF carries more than 256
    // colours, as `trajhost data export` writes): each image's opaque pixels are laid over the
    // picture so far, and only the pictures shown count. A GIF whose every image is 0 ms is
    // taken image by image.
    let shown = |f: &image::Frame| f.delay().numer_denom_ms().0 > 0;
    let any_shown = frames.iter().any(shown);
    let last = frames.len().saturating_sub(1);
    let mut picture: Option<image::RgbaImage> = None;
    let mut clip = Vec::new();
    for (i, frame) in frames.into_iter().enumerate() {
        let is_shown = !any_shown || shown(&frame) || i == last;
        let image = frame.into_buffer();
        let canvas = picture.get_or_insert_with(|| {
            image::RgbaImage::from_pixel(image.width(), image.height(), image::Rgba([0, 0, 0, 255]))
        });
        for (x, y, p) in image.enumerate_pixels() {
            if p[3] > 0 && x < canvas.width() && y < canvas.height() {
                canvas.put_pixel(x, y, *p);
            }
        }
        if is_shown {
            clip.push(image::DynamicImage::ImageRgba8(canvas.clone()).to_rgb8());
        }
    }
    Ok(Clip {
        frames: clip,
        truth: None,
    })
}

fn png_folder(dir: &Path) -> Result<Clip> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    if files.is_empty() {
        bail!("{} holds no .png frames", dir.display());
    }
    // Frame order is file-name order: frame_000.png, frame_001.png...
    files.sort();
    let frames = files
        .iter()
        .map(|f| {
            image::open(f)
                .map(|i| i.to_rgb8())
                .with_context(|| format!("reading frame {}", f.display()))
        })
        .collect::<Result<_>>()?;
    Ok(Clip {
        frames,
        truth: None,
    })
}

/// A `(T, 3, H, W)` u8 array: its shape and bytes.
struct Array {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn array_clip(array: Array, path: &Path) -> Result<Clip> {
    let [t, c, h, w] = array.shape[..] else {
        bail!(
            "{}: the array has shape {:?}, expected (T, 3, H, W)",
            path.display(),
            array.shape
        );
    };
    if c != 3 || t == 0 || h == 0 || w == 0 {
        bail!(
            "{}: the array has shape {:?}, expected (T, 3, H, W) with 3 colour channels",
            path.display(),
            array.shape
        );
    }
    Ok(Clip {
        frames: frames_from_chw(&array.bytes, t, h, w),
        truth: None,
    })
}

/// `T × 3 × H × W` bytes → T images.
fn frames_from_chw(bytes: &[u8], t: usize, h: usize, w: usize) -> Vec<RgbImage> {
    let plane = h * w;
    (0..t)
        .map(|f| {
            let frame = &bytes[f * 3 * plane..(f + 1) * 3 * plane];
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                image::Rgb([frame[i], frame[plane + i], frame[2 * plane + i]])
            })
        })
        .collect()
}

/// NumPy's `.npy` format, version 1 to 3, for a C-ordered `|u1` array.
fn npy(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bad = |why: &str| anyhow!("{}: not a .npy array trajhost reads: {why}", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no NumPy magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    let header = bytes
        .get(start..start + header_len)
        .map(String::from_utf8_lossy)
        .ok_or_else(|| bad("the header is cut short"))?;
    if !header.contains("'descr': '|u1'") && !header.contains("'descr': '<u1'") {
        return Err(bad("the dtype is not uint8"));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("the array is in Fortran order"));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_text
        .trim()
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("the shape is not numbers")))
        .collect::<Result<_>>()?;
    let data = &bytes[start + header_len..];
    let expected: usize = shape.iter().product();
    if data.len() != expected {
        return Err(bad(&format!(
            "the shape {shape:?} needs {expected} bytes, the file has {}",
            data.len()
        )));
    }
    Ok(Array {
        shape,
        bytes: data.to_vec(),
    })
}

/// A trajhost shard (its `trajhost` metadata says so), else a file of one u8 tensor.
fn safetensors(path: &Path, sample: Option<usize>) -> Result<Clip> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let is_shard = metadata
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key(trajhost_dataset::shard::METADATA_KEY));
    if is_shard {
        return shard_sample(path, sample.unwrap_or(0));
    }
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let names = tensors.names();
    let [name] = names[..] else {
        bail!(
            "{}: holds {} tensors; give a file of one (T, 3, H, W) u8 tensor, or a trajhost shard",
            path.display(),
            names.len()
        );
    };
    let view = tensors.tensor(name)?;
    if view.dtype() != safetensors::Dtype::U8 {
        bail!(
            "{}: tensor '{name}' is {:?}, expected U8",
            path.display(),
            view.dtype()
        );
    }
    array_clip(
        Array {
            shape: view.shape().to_vec(),
            bytes: view.data().to_vec(),
        },
        path,
    )
}

fn shard_sample(path: &Path, i: usize) -> Result<Clip> {
    let (_, shard) = trajhost_dataset::shard::read_shard(path)?;
    if i >= shard.n {
        bail!(
            "--sample {i} is past the end of {} ({} samples)",
            path.display(),
            shard.n
        );
    }
    let positions = shard
        .positions_of(i)
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut intrinsics = [0f32; 9];
    intrinsics.copy_from_slice(&shard.intrinsics[i * 9..(i + 1) * 9]);
    Ok(Clip {
        frames: frames_from_chw(shard.video(i), shard.t, shard.h, shard.w),
        truth: Some(Truth {
            class: usize::from(shard.labels[i]),
            positions,
            intrinsics,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_arrays_are_read_and_wrong_ones_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, header: &str, data: &[u8]| {
            let mut h = header.to_string();
            while !(10 + h.len() + 1).is_multiple_of(64) {
                h.push(' ');
            }
            h.push('\n');
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend_from_slice(data);
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let data: Vec<u8> = (0..2 * 3 * 2 * 2).map(|i| i as u8).collect();
        let good = write(
            "a.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2, 2), }",
            &data,
        );
        let clip = read(&good, None).unwrap();
        assert_eq!(clip.frames.len(), 2);
        // Frame 1, pixel (x 1, y 0): red plane byte 12 + 1, green 16 + 1, blue 20 + 1.
        assert_eq!(clip.frames[1].get_pixel(1, 0).0, [13, 17, 21]);
        let floats = write(
            "f.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        let err = format!("{:#}", read(&floats, None).err().unwrap());
        assert!(err.contains("f.npy") && err.contains("uint8"), "{err}");
        let short = write(
            "s.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2, 2), }",
            &data[..5],
        );
        let err = format!("{:#}", read(&short, None).err().unwrap());
        assert!(err.contains("needs 24 bytes"), "{err}");
        let err = format!("{:#}", read(&dir.path().join("x.mp4"), None).err().unwrap());
        assert!(err.contains("x.mp4"), "{err}");
    }
}
