//! uint8 videos → the model's standardised float input, in one pass.
//!
//! Every batch's pixels are read once and written once, through a 256-entry table, straight
//! into the memory layout the backbone asks for. libtorch's way (gather the bytes, convert to
//! float, multiply, add, and the backbone's own copy into channel-major order) is five passes
//! over a 50 MB batch, a visible share of a CPU training step (docs/bench.md). With
//! `background: subtract_median` the same pass takes each pixel's background out
//! (`background`), found on the video's bytes while they are in cache, and with `colour:
//! hue_free` makes each pixel's colour hue-free (`hue_free`).

mod stream;

use super::{background, hue_free, libtorch_threads};
pub use crate::config::{Background, Colour};
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::InputLayout;

/// What the model reads: the memory layout its backbone asks for, whether each pixel's
/// background is taken out (the run's `background`), and how its colour is carried (`colour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputForm {
    pub layout: InputLayout,
    pub background: Background,
    pub colour: Colour,
}

/// A layout, with the background kept and the colour as rendered.
impl From<InputLayout> for InputForm {
    fn from(layout: InputLayout) -> Self {
        InputForm {
            layout,
            background: Background::Keep,
            colour: Colour::Rgb,
        }
    }
}

impl InputForm {
    /// `video`, standardised float `(B, T, C, H, W)` (`standardise_floats`), in this form's
    /// background and colour: for inputs that did not come through this module's byte paths.
    pub fn finish(self, video: Tensor) -> Tensor {
        let video = match self.background {
            Background::Keep => video,
            Background::SubtractMedian => background::subtract_temporal_median(&video),
        };
        match self.colour {
            Colour::Rgb => video,
            Colour::HueFree => hue_free::hue_free(&video),
        }
    }
}

/// The centre and spread taken out of every pixel value (in [0, 1]): part of the plugin
/// contract (`trajhost_plugin_api::input`), which the conformance kit probes with.
pub use trajhost_plugin_api::input::{PIXEL_MEAN, PIXEL_STD};

/// A byte's standardised value is `byte as f32 * SCALE + SHIFT` in float32 (a multiply, then
/// an add), as `standardise_floats` computes it, so both give the same bits.
const SCALE: f32 = (1.0 / (255.0 * PIXEL_STD)) as f32;
const SHIFT: f32 = (-PIXEL_MEAN / PIXEL_STD) as f32;

/// The standardised value of each byte.
fn table() -> [f32; 256] {
    std::array::from_fn(|p| p as f32 * SCALE + SHIFT)
}

/// `(B, T, 3, H, W)` float pixel values in [0, 255] → standardised input, in place. For inputs
/// that are already float (a GPU batch converted there, a decoded image).
pub fn standardise_floats(mut videos: Tensor) -> Tensor {
    let _ = videos.f_mul_scalar_(1.0 / (255.0 * PIXEL_STD));
    let _ = videos.f_add_scalar_(-PIXEL_MEAN / PIXEL_STD);
    videos
}

/// The model's input on `device` made from `videos` (see [`cpu_from_bytes`]). On a GPU the bytes
/// travel as uint8 (a quarter of the floats) and are converted there.
pub fn from_bytes(videos: &[&[u8]], clip: [i64; 4], device: Device, form: InputForm) -> Tensor {
    if device == Device::Cpu {
        return cpu_from_bytes(videos, clip, form);
    }
    let [t, c, h, w] = clip;
    let bytes = Tensor::from_slice(&videos.concat()).view([videos.len() as i64, t, c, h, w]);
    form.finish(standardise_floats(
        bytes.to_device(device).to_kind(Kind::Float),
    ))
}

/// The model's input on `device` for `n` videos that `draw(i, bytes)` writes (every byte of
/// video `i`, `(T, C, H, W)`): rendered videos. On the CPU each is drawn into its converting
/// thread's own scratch buffer and converted while still in that core's cache, so no batch of
/// bytes is ever allocated, zeroed or read back from memory.
pub fn from_drawn(
    n: usize,
    clip: [i64; 4],
    device: Device,
    form: InputForm,
    draw: impl Fn(usize, &mut [u8]) + Sync,
) -> Tensor {
    let len = clip.iter().product::<i64>() as usize;
    if device == Device::Cpu {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let table = table();
        return fill_batch(n, clip, form.layout, |i, dst| {
            SCRATCH.with_borrow_mut(|video| {
                video.resize(len, 0);
                draw(i, video);
                convert(video, dst, clip, form, &table)
            })
        });
    }
    let bytes = draw_videos(n, len, draw);
    let rows: Vec<&[u8]> = bytes.chunks(len).collect();
    from_bytes(&rows, clip, device, form)
}

/// `n` videos of `len` bytes each that `draw(i, bytes)` writes, back to back, drawn on
/// libtorch's threads (`libtorch_threads`).
pub fn draw_videos(n: usize, len: usize, draw: impl Fn(usize, &mut [u8]) + Sync) -> Vec<u8> {
    let mut bytes = vec![0u8; n * len];
    if len > 0 {
        libtorch_threads::for_each(bytes.chunks_mut(len).enumerate().collect(), |(i, video)| {
            draw(i, video)
        });
    }
    bytes
}

/// The standardised `(B, T, C, H, W)` float input made from `videos`, each one `T·C·H·W` bytes
/// in `(T, C, H, W)` order, in `form`: laid out in memory as its layout says (the shape is the
/// same either way), its background taken out or not. Filled in parallel on libtorch's threads
/// (`libtorch_threads`), between training steps.
pub fn cpu_from_bytes(videos: &[&[u8]], clip: [i64; 4], form: InputForm) -> Tensor {
    let table = table();
    fill_batch(videos.len(), clip, form.layout, |i, dst| {
        convert(videos[i], dst, clip, form, &table)
    })
}

/// A `(n, T, C, H, W)` float tensor laid out as `layout`, whose `i`-th video `fill(i, floats)`
/// writes, in parallel.
fn fill_batch(
    n: usize,
    clip: [i64; 4],
    layout: InputLayout,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Tensor {
    let [t, c, h, w] = clip;
    let memory_shape = match layout {
        InputLayout::TimeMajor => [n as i64, t, c, h, w],
        InputLayout::ChannelMajor => [n as i64, c, t, h, w],
    };
    let out = Tensor::empty(memory_shape, (Kind::Float, Device::Cpu));
    let video_len = (t * c * h * w) as usize;
    if video_len > 0 {
        // SAFETY: a contiguous CPU float tensor of `numel` elements allocated just above and
        // not shared before it is returned; the chunks below split it without overlap.
        let floats =
            unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, out.numel()) };
        let videos = floats.chunks_mut(video_len).enumerate().collect();
        libtorch_threads::for_each(videos, |(i, dst)| fill(i, dst));
    }
    match layout {
        InputLayout::TimeMajor => out,
        InputLayout::ChannelMajor => out.permute([0, 2, 1, 3, 4]),
    }
}

/// One video's bytes, `(T, C, H, W)`, → its standardised floats in `form`'s layout (a video's
/// block is contiguous in either: the batch axis is outermost). The background's median is
/// taken of the bytes: standardising is strictly increasing, so it is the same pixel value,
/// and `table[s] − table[m]` the same float subtraction as the float path's (tested). Hue-free
/// colour is made of those floats, pixel by pixel, as the float path makes it.
fn convert(src: &[u8], dst: &mut [f32], clip: [i64; 4], form: InputForm, table: &[f32; 256]) {
    let [t, c, h, w] = clip.map(|d| d as usize);
    assert_eq!(src.len(), t * c * h * w, "video size");
    let plane = h * w;
    let median = match form.background {
        Background::Keep => None,
        Background::SubtractMedian => Some(background::median_plane(src, t, c * plane)),
    };
    let plane_index = |frame: usize, channel: usize| match form.layout {
        InputLayout::TimeMajor => frame * c + channel,
        InputLayout::ChannelMajor => channel * t + frame,
    };
    for (k, dst) in dst.chunks_exact_mut(plane).enumerate() {
        let (frame, channel) = match form.layout {
            InputLayout::TimeMajor => (k / c, k % c),
            InputLayout::ChannelMajor => (k % t, k / t),
        };
        let start = (frame * c + channel) * plane;
        let src = &src[start..start + plane];
        let median = median
            .as_ref()
            .map(|median| &median[channel * plane..(channel + 1) * plane]);
        stream::standardise(src, median, dst, table);
    }
    if form.colour == Colour::HueFree {
        assert_eq!(c, 3, "hue-free colour is made of three channels");
        // A frame's channel planes lie this many floats apart, in either layout.
        let apart = (plane_index(0, 1) - plane_index(0, 0)) * plane;
        for frame in 0..t {
            let planes = &mut dst[plane_index(frame, 0) * plane..];
            let (red, rest) = planes.split_at_mut(apart);
            let (green, blue) = rest.split_at_mut(apart);
            hue_free::planes(&mut red[..plane], &mut green[..plane], &mut blue[..plane]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 3-frame, 3-channel 9×7 videos with every byte value in them (planes of 63 floats:
    /// most start unaligned, and each has a tail after its 8-float stores).
    fn videos() -> Vec<Vec<u8>> {
        (0..2u32)
            .map(|v| {
                (0..567u32)
                    .map(|i| ((v * 97 + i * 7) % 256) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn both_layouts_equal_libtorchs_conversion_to_the_bit() {
        let videos = videos();
        let rows: Vec<&[u8]> = videos.iter().map(Vec::as_slice).collect();
        let clip = [3, 3, 9, 7];
        let bytes: Vec<u8> = videos.concat();
        let expected = standardise_floats(
            Tensor::from_slice(&bytes)
                .view([2, 3, 3, 9, 7])
                .to_kind(Kind::Float),
        );
        for form in forms() {
            let got = cpu_from_bytes(&rows, clip, form);
            assert_eq!(got.size(), [2, 3, 3, 9, 7], "{form:?}");
            assert!(same(&got, &form.finish(expected.copy()), form), "{form:?}");
            let contiguous = match form.layout {
                InputLayout::TimeMajor => got,
                InputLayout::ChannelMajor => got.permute([0, 2, 1, 3, 4]),
            };
            assert!(contiguous.is_contiguous(), "{form:?}");
        }
    }

    /// The byte path's input against libtorch's: the same bits, but for hue-free colour's square
    /// root, which libtorch's vector code may round a last bit the other way.
    fn same(bytes_path: &Tensor, libtorch_path: &Tensor, form: InputForm) -> bool {
        match form.colour {
            Colour::Rgb => bytes_path.equal(libtorch_path),
            Colour::HueFree => bytes_path.allclose(libtorch_path, 1e-6, 1e-6, false),
        }
    }

    /// Every layout with every background and colour.
    fn forms() -> Vec<InputForm> {
        let mut forms = Vec::new();
        for layout in [InputLayout::TimeMajor, InputLayout::ChannelMajor] {
            for background in [Background::Keep, Background::SubtractMedian] {
                for colour in [Colour::Rgb, Colour::HueFree] {
                    forms.push(InputForm {
                        layout,
                        background,
                        colour,
                    });
                }
            }
        }
        forms
    }

    #[test]
    fn the_background_is_taken_out_of_bytes_as_of_floats() {
        // 32 frames of 3 × 5 × 70 bytes with many repeated values (ties in the medians).
        let videos: Vec<Vec<u8>> = (0..2u32)
            .map(|v| {
                (0..32 * 3 * 5 * 70u32)
                    .map(|i| ((v * 31 + i * 17 + i / 1050 * 3) % 9 * 28) as u8)
                    .collect()
            })
            .collect();
        let rows: Vec<&[u8]> = videos.iter().map(Vec::as_slice).collect();
        let clip = [32, 3, 5, 70];
        let kept = |layout| cpu_from_bytes(&rows, clip, InputForm::from(layout));
        for form in forms() {
            let got = cpu_from_bytes(&rows, clip, form);
            let expected = form.finish(kept(form.layout));
            assert!(same(&got, &expected, form), "{form:?}");
        }
        let subtracted = InputForm {
            background: Background::SubtractMedian,
            ..InputForm::from(InputLayout::TimeMajor)
        };
        let got = cpu_from_bytes(&rows, clip, subtracted);
        assert!(got.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        assert!(!got.equal(&kept(InputLayout::TimeMajor)));
    }

    #[test]
    fn every_byte_maps_to_its_standardised_value() {
        let bytes: Vec<u8> = (0..=255).collect();
        let expected = standardise_floats(Tensor::from_slice(&bytes).to_kind(Kind::Float));
        let table = Tensor::from_slice(&table());
        assert!(table.equal(&expected));
        assert_eq!(table.double_value(&[0]), -2.0);
        assert_eq!(table.double_value(&[255]), 2.0);
    }
}
