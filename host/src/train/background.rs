//! Background subtraction, a recipe option of the model's input (`background: subtract_median`):
//! every pixel's median over the clip is taken out of each frame. The camera does not move
//! within a clip, so the median is the scene without the ball wherever the ball spends less than
//! half of the clip there; what the backbone sees is the ball (and its shadow) on zero. It cannot
//! read depth from the sky, the ground or the haze, because it no longer sees them
//! (docs/training.md, "Background subtraction").
//!
//! The median is taken over every `stride(T)`-th frame, at most `SAMPLED_FRAMES` of them (a
//! passing ball must cover a pixel in half of them either way, and sorting 8 values is a tenth
//! of the work of 32), and is the lower one for an even count, as `torch.median` takes it. CPU
//! batches get it from `median_plane`, a sorting network that `model_input` runs on each video's
//! bytes while converting them (libtorch's median sorts each pixel's values one at a time: 58 ms
//! a batch of 32 videos on one core); other inputs (a GPU batch) from libtorch's ops,
//! `subtract_temporal_median`. Both give the same bits (tested), and so does the PyTorch
//! package's `video - video[:, ::stride].median(1)`.

use tch::Tensor;

/// Pixels of one plane processed together.
const BLOCK: usize = 64;

/// At most this many frames, evenly strided from the first, give each pixel's background.
pub const SAMPLED_FRAMES: usize = 8;

/// Every how many frames one is sampled for the background of a clip of `frames`.
pub fn stride(frames: usize) -> usize {
    frames.div_ceil(SAMPLED_FRAMES).max(1)
}

/// `video` `(B, T, C, H, W)` minus each pixel's median over its sampled frames, on any device
/// and in any layout.
pub fn subtract_temporal_median(video: &Tensor) -> Tensor {
    let frames = video.size()[1];
    let sampled = video.slice(1, 0, frames, stride(frames as usize) as i64);
    video - sampled.median_dim(1, true).0
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
    use tch::{Device, Kind};

    #[test]
    fn the_network_finds_libtorchs_median_to_the_bit_for_any_clip_length() {
        for frames in [1, 2, 3, 5, 8, 9, 17, 31, 32] {
            // Values with many ties, as standardised bytes have.
            let video = Tensor::randint(7, [1, frames, 3, 5, 70], (Kind::Float, Device::Cpu)) / 3.0;
            let values: Vec<f32> = Vec::try_from(video.flatten(0, -1)).unwrap();
            let plane = 3 * 5 * 70;
            let median = median_plane(&values, frames as usize, plane);
            let sampled = video.slice(1, 0, frames, stride(frames as usize) as i64);
            let expected: Vec<f32> =
                Vec::try_from(sampled.median_dim(1, false).0.flatten(0, -1)).unwrap();
            assert_eq!(median, expected, "{frames} frames");
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
}
