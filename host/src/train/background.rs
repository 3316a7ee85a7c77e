//! Background subtraction, a recipe option of the model's input (`background: subtract_median`):
//! every pixel's median over the clip is taken out of each frame. The camera does not move
//! within a clip, so the median is the scene without the ball wherever the ball spends less than
//! half of the clip there; what the backbone sees is the ball (and its shadow) on zero. It cannot
//! read depth from the sky, the ground or the haze, because it no longer sees them
//! (docs/training.md, "Background subtraction").
//!
//! The median is taken over every `stride(T)`-th frame, at most `SAMPLED_FRAMES` of them (a
//! passing ball must cover a pixel in half of them either way, and sorting 8 values is a tenth
//! of the work of 32), and is the lower one for an even count, as `torch.median` takes it; the
//! difference is one float subtraction, so libtorch's `video - video[:, ::stride].median(1)`
//! gives the same bits (tested): the PyTorch package does exactly that. Here it is a sorting
//! network run over blocks of pixels held in cache: libtorch's median sorts each pixel's values
//! one at a time (58 ms for a batch of 32 videos of 32 frames on one core, against the cost of
//! one copy of the batch here; `model_input` runs it on the bytes while converting them, for
//! next to nothing).

use super::libtorch_threads;
use tch::{Device, Kind, Tensor};

/// Pixels of one plane processed together.
const BLOCK: usize = 64;

/// At most this many frames, evenly strided from the first, give each pixel's background.
pub const SAMPLED_FRAMES: usize = 8;

/// Every how many frames one is sampled for the background of a clip of `frames`.
pub fn stride(frames: usize) -> usize {
    frames.div_ceil(SAMPLED_FRAMES).max(1)
}

/// `video` `(B, T, C, H, W)` minus each pixel's median over its sampled frames, in `video`'s
/// memory layout. Pixel values must not be NaN (the model's input is made from bytes).
pub fn subtract_temporal_median(video: &Tensor) -> Tensor {
    match cpu_planes(video) {
        Some(planes) => subtract_on_cpu(video, planes),
        None => libtorch_way(video),
    }
}

/// The same with libtorch's own ops: any device, any layout.
fn libtorch_way(video: &Tensor) -> Tensor {
    let frames = video.size()[1];
    let sampled = video.slice(1, 0, frames, stride(frames as usize) as i64);
    video - sampled.median_dim(1, true).0
}

/// How a CPU float video lies in memory, when this module can read it in place: runs of T
/// frame planes of `plane` floats each, back to back.
#[derive(Debug, Clone, Copy)]
struct Planes {
    frames: usize,
    plane: usize,
}

fn cpu_planes(video: &Tensor) -> Option<Planes> {
    if video.device() != Device::Cpu || video.kind() != Kind::Float || video.dim() != 5 {
        return None;
    }
    let size: Vec<usize> = video.size().iter().map(|&d| d as usize).collect();
    let [_, t, c, h, w] = size[..] else {
        return None;
    };
    if video.is_contiguous() {
        // Time-major: each video's frames are planes of C·H·W.
        Some(Planes {
            frames: t,
            plane: c * h * w,
        })
    } else if video.permute([0, 2, 1, 3, 4]).is_contiguous() {
        // Channel-major: each (video, channel)'s frames are planes of H·W.
        Some(Planes {
            frames: t,
            plane: h * w,
        })
    } else {
        None
    }
}

fn subtract_on_cpu(video: &Tensor, planes: Planes) -> Tensor {
    let out = video.empty_like();
    assert_eq!(
        out.stride(),
        video.stride(),
        "empty_like keeps a dense layout"
    );
    let Planes { frames, plane, .. } = planes;
    if frames * plane == 0 {
        return out;
    }
    // SAFETY: `video` is a dense CPU float tensor of `numel` elements (checked by `cpu_planes`)
    // that this function only reads; `out` was allocated just above with the same layout and is
    // not shared before it is returned. The chunks below split both without overlap.
    let (src, dst) = unsafe {
        (
            std::slice::from_raw_parts(video.data_ptr() as *const f32, video.numel()),
            std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, out.numel()),
        )
    };
    let group = frames * plane;
    let work: Vec<_> = src.chunks(group).zip(dst.chunks_mut(group)).collect();
    libtorch_threads::for_each(work, |(src, dst)| {
        let median = median_plane(src, frames, plane);
        for (dst, src) in dst.chunks_exact_mut(plane).zip(src.chunks_exact(plane)) {
            for ((d, s), m) in dst.iter_mut().zip(src).zip(&median) {
                *d = s - m;
            }
        }
    });
    out
}

/// Each position's lower median over the sampled ones (`stride`) of `frames` planes of `plane`
/// values that lie back to back in `values`. Block by block, the sampled planes' rows are put
/// through a sorting network, whose middle row is then the median of each column.
pub fn median_plane<T: Copy + PartialOrd + Default>(
    values: &[T],
    frames: usize,
    plane: usize,
) -> Vec<T> {
    assert_eq!(values.len(), frames * plane, "frames × plane values");
    let sampled: Vec<usize> = (0..frames).step_by(stride(frames)).collect();
    let network = median_network(sampled.len());
    let mut median = vec![T::default(); plane];
    let mut rows = vec![[T::default(); BLOCK]; sampled.len()];
    for start in (0..plane).step_by(BLOCK) {
        let len = BLOCK.min(plane - start);
        for (&t, row) in sampled.iter().zip(rows.iter_mut()) {
            row[..len].copy_from_slice(&values[t * plane + start..][..len]);
        }
        for &(i, j) in &network.comparators {
            let (low, high) = rows.split_at_mut(j);
            for (x, y) in low[i].iter_mut().zip(high[0].iter_mut()) {
                // Both written, through a plain comparison (not `f32::min`, not a swap in an
                // `if`): that compiles to packed min/max.
                let (low, high) = if *y < *x { (*y, *x) } else { (*x, *y) };
                *x = low;
                *y = high;
            }
        }
        if let Some(middle) = rows.get(network.median) {
            median[start..start + len].copy_from_slice(&middle[..len]);
        }
    }
    median
}

/// The compare-exchanges (`i < j`: the smaller value to `i`) of Batcher's odd–even merge sort
/// for `n` values, keeping only those the lower median's position depends on.
struct Network {
    comparators: Vec<(usize, usize)>,
    median: usize,
}

fn median_network(n: usize) -> Network {
    let mut comparators = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        comparators.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    // Backwards from the output: a comparator matters if it writes a position that matters.
    let median = n.saturating_sub(1) / 2;
    let mut needed = vec![false; n];
    if n > 0 {
        needed[median] = true;
    }
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for &(i, j) in comparators.iter().rev() {
        if needed[i] || needed[j] {
            needed[i] = true;
            needed[j] = true;
            kept.push((i, j));
        }
    }
    kept.reverse();
    Network {
        comparators: kept,
        median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with many ties, as standardised bytes have.
    fn video(shape: [i64; 5]) -> Tensor {
        Tensor::randint(7, shape, (Kind::Float, Device::Cpu)) / 3.0 - 1.0
    }

    #[test]
    fn equals_libtorchs_median_to_the_bit_in_both_layouts_and_any_clip_length() {
        for frames in [1, 2, 3, 5, 8, 9, 17, 31, 32] {
            let time_major = video([2, frames, 3, 5, 70]);
            let channel_major = time_major
                .permute([0, 2, 1, 3, 4])
                .contiguous()
                .permute([0, 2, 1, 3, 4]);
            let expected = libtorch_way(&time_major);
            for input in [&time_major, &channel_major] {
                assert!(cpu_planes(input).is_some(), "read in place");
                let got = subtract_temporal_median(input);
                assert_eq!(got.stride(), input.stride(), "{frames} frames: layout kept");
                assert!(got.equal(&expected), "{frames} frames");
            }
        }
    }

    #[test]
    fn a_static_background_is_gone_and_the_moving_ball_stays() {
        // A 9-frame clip of one row: background values, a "ball" of 5.0 moving one pixel a frame.
        let background = [0.25f32, -1.0, 0.5, 2.0, -0.75, 1.5, 0.0, -2.0, 1.0];
        let frames: Vec<f32> = (0..9)
            .flat_map(|t| {
                let mut row = background;
                row[t] = 5.0;
                row
            })
            .collect();
        let clip = Tensor::from_slice(&frames).view([1, 9, 1, 1, 9]);
        let out = subtract_temporal_median(&clip);
        for t in 0..9i64 {
            for x in 0..9i64 {
                let want = if x == t {
                    5.0 - background[x as usize] as f64
                } else {
                    0.0
                };
                assert_eq!(out.double_value(&[0, t, 0, 0, x]), want, "frame {t}, x {x}");
            }
        }
    }

    #[test]
    fn a_strided_video_takes_libtorchs_way() {
        let input = video([2, 4, 3, 4, 4]).transpose(3, 4);
        assert!(cpu_planes(&input).is_none());
        let expected = libtorch_way(&input);
        assert!(subtract_temporal_median(&input).equal(&expected));
    }
}
