//! Reading one clip for `predict`: an animated GIF, a folder of PNG frames, a `.npy` or
//! `.safetensors` array `(T, 3, H, W)` of u8, or a sample of a trajhost shard (which brings its
//! true labels and camera along).
//!
//! Every input is untrusted. Only regular files are read, and a special file is refused without
//! waiting on it (a FIFO or device named like a video). What a file declares — a GIF's screen, a
//! PNG's size, an array's shape, a safetensors header — is checked against [`Bounds`] with
//! checked arithmetic before anything is decoded or allocated for it. Only the last `T` frames
//! the model reads are kept: a GIF is decoded frame by frame into a window of `T`, a PNG folder
//! decodes its last `T` files, an array has only its last `T` frames read from the file.

use anyhow::{anyhow, bail, Context, Result};
use image::buffer::ConvertBuffer;
use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, RgbImage, RgbaImage};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How many times the model's side a frame's side may be. Frames are resized to the model's
/// size, and past 32× the downscaling leaves a ball tens of pixels wide less than one, so
/// larger frames only cost memory and time.
const SIDE_RATIO: u64 = 32;
/// The side always allowed, whatever the model (a 1024×1024 picture is a modest one)...
const MIN_SIDE: u64 = 1024;
/// ... and never exceeded, whatever the model: 4K video (3840×2160) is within it. A GIF's
/// 65535×65535 screen stops at the side limit, before anything is decoded.
const MAX_SIDE: u64 = 4096;
/// Memory for the frames kept (the model's `T`, as RGB) plus a decoder's working pictures
/// ([`SCRATCH_PER_PIXEL`]): 1 GiB holds 32 frames of 4K video, and fits any machine that trains.
const MEMORY: u64 = 1 << 30;
/// Bytes per pixel of a decoder's working pictures besides the frames kept: the GIF decoder's
/// previous picture, the image being composited and the one it returns, and our own canvas,
/// RGBA each (a PNG needs less: at most 8 bytes a pixel, 16-bit RGBA, then its RGB copy).
const SCRATCH_PER_PIXEL: u64 = 16;
/// Images a GIF, or `.png` files a folder, may hold: nearly an hour of video at 30 frames a
/// second. A GIF's images cost work even when small, so a tiny file of many tiny images stops
/// here (and at [`GIF_WORK`]).
const MAX_IMAGES: usize = 100_000;
/// Pixels a GIF may make us composite (its images × its screen): each image, however small,
/// is laid onto the whole screen, so a 2 KB GIF of 2×2 images on a large screen is seconds of
/// work per hundred images. 2^29 is 2,000 images of 512×512, or 500 of 1024×1024: about five
/// seconds on one core.
const GIF_WORK: u64 = 1 << 29;
/// A `.npy` header's bytes: NumPy itself refuses to read headers over 10,000.
const NPY_HEADER: u64 = 64 << 10;
/// A safetensors header's bytes: a trajhost shard's is under 2 KB, one tensor's less.
const SAFETENSORS_HEADER: u64 = 1 << 20;
/// Labelled frames a shard may have past its clip (its positions are read per sample).
const MAX_HORIZON: u64 = 1 << 16;

/// What [`read`] takes in, for a model that reads clips of `[T, H, W]`.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Frames kept, from the end of the video: the model's `T`.
    pub keep: usize,
    /// The longest side of a frame: [`SIDE_RATIO`] times the model's, within
    /// [`MIN_SIDE`]`..=`[`MAX_SIDE`].
    pub max_side: u32,
    /// Pixels of one frame: `keep` frames and a decoder's working pictures fit [`MEMORY`].
    pub max_pixels: u64,
}

impl Bounds {
    /// The bounds for a model reading clips of `[T, H, W]`.
    pub fn for_clip([t, h, w]: [i64; 3]) -> Result<Bounds> {
        let keep = usize::try_from(t)
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| anyhow!("the model reads clips of {t} frames"))?;
        let per_pixel = (keep as u64)
            .checked_mul(3)
            .and_then(|b| b.checked_add(SCRATCH_PER_PIXEL))
            .ok_or_else(|| anyhow!("the model reads clips of {t} frames"))?;
        let model_side = u64::try_from(h.max(w)).unwrap_or(0);
        let max_side = model_side
            .saturating_mul(SIDE_RATIO)
            .clamp(MIN_SIDE, MAX_SIDE);
        let max_pixels = (MEMORY / per_pixel).min(max_side * max_side);
        Ok(Bounds {
            keep,
            max_side: max_side as u32,
            max_pixels,
        })
    }

    /// Refuses frames of `width × height` (`what` names them) that are empty or too large.
    fn check_frame(&self, path: &Path, what: &str, width: u64, height: u64) -> Result<()> {
        let side = u64::from(self.max_side);
        if width == 0 || height == 0 {
            bail!(
                "{}: {what} is {width}×{height} pixels, empty",
                path.display()
            );
        }
        if width > side || height > side {
            bail!(
                "{}: {what} is {width}×{height} pixels; for this model predict reads frames of at most {side}×{side} (they are resized to the model's size: downscale the video first)",
                path.display()
            );
        }
        if width * height > self.max_pixels {
            bail!(
                "{}: {what} is {width}×{height} pixels; keeping the {} frames the model reads, predict reads frames of at most {} pixels ({} MiB in all)",
                path.display(),
                self.keep,
                self.max_pixels,
                MEMORY >> 20
            );
        }
        Ok(())
    }

    /// The same bounds as the `image` crate's decoder limits.
    fn limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some(self.max_pixels * SCRATCH_PER_PIXEL);
        limits
    }
}

/// A clip: its last frames (at most [`Bounds::keep`], what the model reads) and what a shard
/// knows about it.
pub struct Clip {
    pub frames: Vec<RgbImage>,
    /// Frames in the whole video (`frames` are its last ones).
    pub total: usize,
    /// Set when the clip came from a trajhost shard.
    pub truth: Option<Truth>,
}

/// A shard sample's labels: its class, every labelled position (the clip's frames, then the
/// horizon) and its camera's row-major intrinsics.
pub struct Truth {
    pub class: usize,
    pub positions: Vec<[f32; 3]>,
    pub intrinsics: [f32; 9],
}

/// Reads `path` within `bounds`; `sample` picks the sample of a shard (0 by default).
pub fn read(path: &Path, sample: Option<usize>, bounds: Bounds) -> Result<Clip> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let clip = if path.is_dir() {
        png_folder(path, bounds)?
    } else {
        match ext.as_deref() {
            Some("gif") => gif(path, bounds)?,
            Some("npy") => npy(path, bounds)?,
            Some("safetensors") => safetensors(path, sample, bounds)?,
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

/// Refuses anything but a regular file (following links): a `stat` never blocks, even on a FIFO.
fn check_regular(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file (predict reads videos from files, not from a FIFO, device or socket)",
            path.display()
        );
    }
    Ok(())
}

/// Opens a regular file and gives its length. Checked before opening (opening some devices
/// does something), then opened non-blocking (opening a FIFO would wait for a writer) and
/// checked again on what was opened, should the path have been swapped in between.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    check_regular(path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    Ok((file, meta.len()))
}

/// The last frames of a video, as they come: at most `keep`, and how many came.
struct Window {
    keep: usize,
    frames: VecDeque<RgbImage>,
    total: usize,
}

impl Window {
    fn new(keep: usize) -> Window {
        Window {
            keep,
            frames: VecDeque::with_capacity(keep),
            total: 0,
        }
    }

    fn push(&mut self, frame: RgbImage) {
        if self.frames.len() >= self.keep {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
        self.total += 1;
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.total = 0;
    }

    fn into_clip(self) -> Clip {
        Clip {
            frames: self.frames.into(),
            total: self.total,
            truth: None,
        }
    }
}

fn gif(path: &Path, bounds: Bounds) -> Result<Clip> {
    let (file, _) = open_regular(path)?;
    let mut decoder = GifDecoder::new(BufReader::new(file))
        .with_context(|| format!("{} is not a GIF", path.display()))?;
    // The screen is what every frame is decoded to: checked before the first is.
    let (width, height) = decoder.dimensions();
    bounds.check_frame(
        path,
        "the GIF's screen",
        u64::from(width),
        u64::from(height),
    )?;
    decoder
        .set_limits(bounds.limits())
        .with_context(|| format!("decoding {}", path.display()))?;
    let screen = u64::from(width) * u64::from(height);
    // Images shown for 0 ms are tiles of the next frame (how a GIF carries more than 256
    // colours, as `trajhost data export` writes): each image's opaque pixels are laid over the
    // picture so far, and only the pictures shown count, and the last. A GIF whose every image
    // is 0 ms is taken image by image.
    let mut canvas = RgbaImage::from_pixel(width, height, image::Rgba([0, 0, 0, 255]));
    let mut window = Window::new(bounds.keep);
    let mut any_shown = false;
    let mut last_kept = true;
    let mut images = 0usize;
    for frame in decoder.into_frames() {
        if images == MAX_IMAGES {
            bail!(
                "{}: more than {MAX_IMAGES} images; predict reads GIFs of at most that many (cut it to the part wanted)",
                path.display()
            );
        }
        images += 1;
        if images as u64 * screen > GIF_WORK {
            bail!(
                "{}: {images} images on a {width}×{height} screen are more than predict decodes ({GIF_WORK} pixels in all; cut it to the part wanted)",
                path.display()
            );
        }
        let frame =
            frame.with_context(|| format!("decoding {} (image {images})", path.display()))?;
        let shown = frame.delay().numer_denom_ms().0 > 0;
        let image = frame.into_buffer();
        if image.dimensions() == canvas.dimensions() {
            // The frames come screen-sized: over the raw bytes, without coordinates.
            for (c, p) in canvas.chunks_exact_mut(4).zip(image.chunks_exact(4)) {
                if p[3] > 0 {
                    c.copy_from_slice(p);
                }
            }
        } else {
            for (x, y, p) in image.enumerate_pixels() {
                if p[3] > 0 && x < width && y < height {
                    canvas.put_pixel(x, y, *p);
                }
            }
        }
        if shown && !any_shown {
            // The 0 ms images so far were tiles, not frames.
            any_shown = true;
            window.clear();
        }
        last_kept = shown || !any_shown;
        if last_kept {
            window.push(canvas.convert());
        }
    }
    if !last_kept {
        window.push(canvas.convert());
    }
    Ok(window.into_clip())
}

fn png_folder(dir: &Path, bounds: Bounds) -> Result<Clip> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            if files.len() == MAX_IMAGES {
                bail!(
                    "{} holds more than {MAX_IMAGES} .png frames; predict reads at most that many",
                    dir.display()
                );
            }
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!("{} holds no .png frames", dir.display());
    }
    // Frame order is file-name order: frame_000.png, frame_001.png... Every one counts as a
    // frame, so every one must be a file, read or not.
    files.sort();
    for file in &files {
        check_regular(file)?;
    }
    let kept = &files[files.len() - files.len().min(bounds.keep)..];
    let mut frames: Vec<RgbImage> = Vec::with_capacity(kept.len());
    for file in kept {
        let frame = png_frame(file, bounds)?;
        if let Some(first) = frames.first() {
            if first.dimensions() != frame.dimensions() {
                bail!(
                    "{}: frame {} is {}×{}, frame {} is {}×{}; a video's frames all have one size",
                    dir.display(),
                    file.display(),
                    frame.width(),
                    frame.height(),
                    kept[0].display(),
                    first.width(),
                    first.height()
                );
            }
        }
        frames.push(frame);
    }
    Ok(Clip {
        frames,
        total: files.len(),
        truth: None,
    })
}

fn png_frame(path: &Path, bounds: Bounds) -> Result<RgbImage> {
    let (file, _) = open_regular(path)?;
    let decoder = PngDecoder::with_limits(BufReader::new(file), bounds.limits()).map_err(|e| {
        match e {
            image::ImageError::Limits(_) => anyhow!(
                "frame {}: larger than predict reads for this model (frames of at most {side}×{side} pixels)",
                path.display(),
                side = bounds.max_side
            ),
            e => anyhow!(e).context(format!("reading frame {}", path.display())),
        }
    })?;
    let (width, height) = decoder.dimensions();
    bounds.check_frame(path, "the frame", u64::from(width), u64::from(height))?;
    let image = DynamicImage::from_decoder(decoder)
        .with_context(|| format!("reading frame {}", path.display()))?;
    Ok(image.to_rgb8())
}

/// Reads `buf.len()` bytes at `offset` of `file`.
fn read_at(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.read_exact_at(buf, offset)
        .with_context(|| format!("reading {}", path.display()))
}

/// A `(T, 3, H, W)` u8 array of `shape` whose `len` bytes start at `offset` of `file`: checked,
/// then only its last `bounds.keep` frames read.
fn array_clip(
    path: &Path,
    file: &File,
    offset: u64,
    len: u64,
    shape: &[u64],
    bounds: Bounds,
) -> Result<Clip> {
    let [t, c, h, w] = shape[..] else {
        bail!(
            "{}: the array has shape {shape:?}, expected (T, 3, H, W)",
            path.display()
        );
    };
    if c != 3 || t == 0 || h == 0 || w == 0 {
        bail!(
            "{}: the array has shape {shape:?}, expected (T, 3, H, W) with 3 colour channels",
            path.display()
        );
    }
    bounds.check_frame(path, "each frame of the array", w, h)?;
    let needed = t.checked_mul(3 * h * w);
    if needed != Some(len) {
        bail!(
            "{}: the array's shape {shape:?} needs {} bytes, the file has {len}",
            path.display(),
            needed.map_or("more than 2^64".to_string(), |n| n.to_string())
        );
    }
    last_frames(path, file, offset, t, h, w, bounds.keep)
}

/// The last (at most `keep`) of `t` frames of `3 × h × w` bytes at `offset` of `file`, which
/// the caller checked holds them all (`h × w` within [`Bounds`]).
fn last_frames(
    path: &Path,
    file: &File,
    offset: u64,
    t: u64,
    h: u64,
    w: u64,
    keep: usize,
) -> Result<Clip> {
    let frame_bytes = 3 * h * w;
    let kept = t.min(keep as u64);
    let mut bytes = vec![0u8; usize::try_from(kept * frame_bytes)?];
    read_at(file, path, offset + (t - kept) * frame_bytes, &mut bytes)?;
    Ok(Clip {
        frames: frames_from_chw(&bytes, kept as usize, h as usize, w as usize),
        total: usize::try_from(t).unwrap_or(usize::MAX),
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
fn npy(path: &Path, bounds: Bounds) -> Result<Clip> {
    let (file, len) = open_regular(path)?;
    let bad = |why: &str| anyhow!("{}: not a .npy array trajhost reads: {why}", path.display());
    let mut preamble = [0u8; 12];
    let got = len.min(12) as usize;
    read_at(&file, path, 0, &mut preamble[..got])?;
    if got < 10 || &preamble[..6] != b"\x93NUMPY" {
        return Err(bad("no NumPy magic"));
    }
    let (header_len, start) = match preamble[6] {
        1 => (
            u64::from(u16::from_le_bytes([preamble[8], preamble[9]])),
            10,
        ),
        2 | 3 if got >= 12 => (
            u64::from(u32::from_le_bytes([
                preamble[8],
                preamble[9],
                preamble[10],
                preamble[11],
            ])),
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    if header_len > NPY_HEADER {
        return Err(bad(&format!(
            "its header is {header_len} bytes, more than the {NPY_HEADER} predict reads"
        )));
    }
    let data = start + header_len;
    if data > len {
        return Err(bad("the header is cut short"));
    }
    let mut header = vec![0u8; header_len as usize];
    read_at(&file, path, start, &mut header)?;
    let header = String::from_utf8_lossy(&header);
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
    let shape: Vec<u64> = shape_text
        .trim()
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("the shape is not numbers")))
        .collect::<Result<_>>()?;
    array_clip(path, &file, data, len - data, &shape, bounds)
}

/// A trajhost shard (its `trajhost` metadata says so), else a file of one u8 tensor.
fn safetensors(path: &Path, sample: Option<usize>, bounds: Bounds) -> Result<Clip> {
    let (file, len) = open_regular(path)?;
    let bad = |why: &str| anyhow!("{}: not a safetensors file: {why}", path.display());
    let mut n = [0u8; 8];
    if len < 8 {
        return Err(bad("shorter than its header"));
    }
    read_at(&file, path, 0, &mut n)?;
    let n = u64::from_le_bytes(n);
    if n > SAFETENSORS_HEADER {
        return Err(bad(&format!(
            "its header is {n} bytes, more than the {SAFETENSORS_HEADER} predict reads"
        )));
    }
    let start = 8 + n;
    if start > len {
        return Err(bad("the header is cut short"));
    }
    let mut header = vec![0u8; n as usize];
    read_at(&file, path, 8, &mut header)?;
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(&format!("its header: {e}")))?;
    let tensors = metadata.tensors();
    // As safetensors checks a file it holds whole: every tensor's bytes are its shape's, and
    // together they are the rest of the file.
    let data_len = len - start;
    let mut end = 0u64;
    for (name, info) in &tensors {
        let (s, e) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        let bytes = info
            .shape
            .iter()
            .try_fold(info.dtype.size() as u64, |b, &d| b.checked_mul(d as u64));
        if e < s || e > data_len || bytes != Some(e - s) {
            return Err(bad(&format!(
                "tensor '{name}' of shape {:?} does not fit its bytes {s}..{e} of the {data_len} after the header",
                info.shape
            )));
        }
        end = end.max(e);
    }
    if end != data_len {
        return Err(bad(&format!(
            "its tensors are {end} bytes, the file has {data_len} after the header"
        )));
    }
    let is_shard = metadata
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key(trajhost_dataset::shard::METADATA_KEY));
    if is_shard {
        return shard_sample(path, &file, start, &tensors, sample.unwrap_or(0), bounds);
    }
    let [(name, info)] = tensors.iter().collect::<Vec<_>>()[..] else {
        bail!(
            "{}: holds {} tensors; give a file of one (T, 3, H, W) u8 tensor, or a trajhost shard",
            path.display(),
            tensors.len()
        );
    };
    if info.dtype != Dtype::U8 {
        bail!(
            "{}: tensor '{name}' is {:?}, expected U8",
            path.display(),
            info.dtype
        );
    }
    let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
    let (s, e) = info.data_offsets;
    array_clip(
        path,
        &file,
        start + s as u64,
        (e - s) as u64,
        &shape,
        bounds,
    )
}

/// Sample `i` of a shard whose tensors (checked to fit the file) start at `start`: only that
/// sample's bytes are read.
fn shard_sample(
    path: &Path,
    file: &File,
    start: u64,
    tensors: &HashMap<String, &TensorInfo>,
    i: usize,
    bounds: Bounds,
) -> Result<Clip> {
    let bad = |why: String| anyhow!("{}: not a trajhost shard: {why}", path.display());
    let tensor = |name: &str, dtype: Dtype| -> Result<(u64, Vec<u64>)> {
        let info = tensors
            .get(name)
            .ok_or_else(|| bad(format!("no tensor '{name}'")))?;
        if info.dtype != dtype {
            return Err(bad(format!(
                "tensor '{name}' is {:?}, expected {dtype:?}",
                info.dtype
            )));
        }
        let shape = info.shape.iter().map(|&d| d as u64).collect();
        Ok((start + info.data_offsets.0 as u64, shape))
    };
    let (videos, video_shape) = tensor("videos", Dtype::U8)?;
    let (labels, label_shape) = tensor("labels", Dtype::U8)?;
    let (positions, position_shape) = tensor("positions", Dtype::F32)?;
    let (intrinsics, intrinsic_shape) = tensor("intrinsics", Dtype::F32)?;
    let [n, t, 3, h, w] = video_shape[..] else {
        return Err(bad(format!(
            "videos have shape {video_shape:?}, expected (N, T, 3, H, W)"
        )));
    };
    let [_, labelled, 3] = position_shape[..] else {
        return Err(bad(format!(
            "positions have shape {position_shape:?}, expected (N, T + horizon, 3)"
        )));
    };
    if t == 0
        || label_shape != [n]
        || position_shape[0] != n
        || intrinsic_shape != [n, 3, 3]
        || labelled < t
        || labelled - t > MAX_HORIZON
    {
        return Err(bad(format!(
            "its tensors' shapes do not agree: videos {video_shape:?}, labels {label_shape:?}, positions {position_shape:?}, intrinsics {intrinsic_shape:?}"
        )));
    }
    if i as u64 >= n {
        bail!(
            "--sample {i} is past the end of {} ({n} samples)",
            path.display()
        );
    }
    let i = i as u64;
    bounds.check_frame(path, "each frame of the shard", w, h)?;
    // Within the file (checked by the caller), so no product below overflows.
    let clip_bytes = t * 3 * h * w;
    let mut clip = last_frames(path, file, videos + i * clip_bytes, t, h, w, bounds.keep)?;
    let mut label = [0u8];
    read_at(file, path, labels + i, &mut label)?;
    let mut bytes = vec![0u8; (labelled * 12) as usize];
    read_at(file, path, positions + i * labelled * 12, &mut bytes)?;
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut k = [0u8; 36];
    read_at(file, path, intrinsics + i * 36, &mut k)?;
    let mut camera = [0f32; 9];
    for (c, b) in camera.iter_mut().zip(k.chunks_exact(4)) {
        *c = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    clip.truth = Some(Truth {
        class: usize::from(label[0]),
        positions: floats.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect(),
        intrinsics: camera,
    });
    Ok(clip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(t: i64) -> Bounds {
        Bounds::for_clip([t, 32, 32]).unwrap()
    }

    #[test]
    fn npy_arrays_are_read_and_wrong_ones_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, header: &str, data: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, trajhost_dataset::export::npy_file(header, data)).unwrap();
            path
        };
        let data: Vec<u8> = (0..2 * 3 * 2 * 2).map(|i| i as u8).collect();
        let good = write(
            "a.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2, 2), }",
            &data,
        );
        let clip = read(&good, None, bounds(8)).unwrap();
        assert_eq!((clip.frames.len(), clip.total), (2, 2));
        // Frame 1, pixel (x 1, y 0): red plane byte 12 + 1, green 16 + 1, blue 20 + 1.
        assert_eq!(clip.frames[1].get_pixel(1, 0).0, [13, 17, 21]);
        // A model of 1-frame clips: only the last frame is read, the count is the video's.
        let clip = read(&good, None, bounds(1)).unwrap();
        assert_eq!((clip.frames.len(), clip.total), (1, 2));
        assert_eq!(clip.frames[0].get_pixel(1, 0).0, [13, 17, 21]);
        let floats = write(
            "f.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        let err = format!("{:#}", read(&floats, None, bounds(8)).err().unwrap());
        assert!(err.contains("f.npy") && err.contains("uint8"), "{err}");
        let short = write(
            "s.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2, 2), }",
            &data[..5],
        );
        let err = format!("{:#}", read(&short, None, bounds(8)).err().unwrap());
        assert!(err.contains("needs 24 bytes"), "{err}");
        let wraps = write(
            "w.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (4611686018427387905, 3, 2, 2), }",
            &data[..12],
        );
        let err = format!("{:#}", read(&wraps, None, bounds(8)).err().unwrap());
        assert!(
            err.contains("w.npy") && err.contains("more than 2^64"),
            "{err}"
        );
        let wide = write(
            "wide.npy",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3, 1, 100000), }",
            &[],
        );
        let err = format!("{:#}", read(&wide, None, bounds(8)).err().unwrap());
        assert!(
            err.contains("100000×1") && err.contains("1024×1024"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            read(&dir.path().join("x.mp4"), None, bounds(8))
                .err()
                .unwrap()
        );
        assert!(err.contains("x.mp4"), "{err}");
    }

    #[test]
    fn frames_may_be_32_times_the_models_side_and_fit_the_memory_budget() {
        // 32×32 and 64×64 models: 1024 (the floor) and 2048 a side.
        assert_eq!(bounds(8).max_side, 1024);
        assert_eq!(bounds(8).max_pixels, 1024 * 1024);
        let default = Bounds::for_clip([32, 64, 64]).unwrap();
        assert_eq!((default.max_side, default.max_pixels), (2048, 2048 * 2048));
        // 32 frames of a 256×256 model: 4K video still fits the budget; sides stop at 4096.
        let large = Bounds::for_clip([32, 256, 256]).unwrap();
        assert_eq!(large.max_side, 4096);
        assert!(large.max_pixels >= 3840 * 2160);
        let long = Bounds::for_clip([1024, 1024, 1024]).unwrap();
        assert!(long.max_pixels * (3 * 1024 + SCRATCH_PER_PIXEL) <= MEMORY);
        assert!(Bounds::for_clip([0, 32, 32]).is_err());
        assert!(Bounds::for_clip([-1, 32, 32]).is_err());
    }

    #[test]
    fn a_safetensors_tensor_is_read_keeping_the_last_frames() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * 3 * 2 * 2).map(|i| i as u8).collect();
        let view =
            safetensors::tensor::TensorView::new(Dtype::U8, vec![3, 3, 2, 2], &data).unwrap();
        let path = dir.path().join("v.safetensors");
        safetensors::serialize_to_file([("video", view)], &None, &path).unwrap();
        let clip = read(&path, None, bounds(2)).unwrap();
        assert_eq!((clip.frames.len(), clip.total), (2, 3));
        // Frame 2's first red byte is 24.
        assert_eq!(clip.frames[1].get_pixel(0, 0).0, [24, 28, 32]);
        // One byte more than the header says: refused, naming the file.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, bytes).unwrap();
        let err = format!("{:#}", read(&path, None, bounds(2)).err().unwrap());
        assert!(err.contains("v.safetensors"), "{err}");
    }
}
