//! Training data in memory, and batches assembled from it on the compute thread.
//!
//! Each split's videos are held as one uint8 tensor (10,000 videos of 32×64×64 are 3.9 GB), so
//! no epoch touches the disk. A batch is gathered, converted to float and laid out for the
//! backbone in one pass (`model_input`) between steps, not by a prefetch thread: on a machine whose
//! cores all run libtorch's threads, a third thread converting the next batch slows the
//! backbones' steps by more than the conversion costs (docs/bench.md; `trajhost-bench batches`
//! times the conversion alone).

pub mod procedural;
pub mod render;
pub mod stored;

use super::model_input::{self, InputForm};
use anyhow::{bail, Result};
use std::sync::Arc;
use tch::{Device, Tensor};
use trajhost_dataset::sample::generate_sample;
use trajhost_dataset::DataConfig;

/// Where a split's videos come from.
pub enum Videos {
    /// `(N, T, 3, H, W)` uint8 in memory; 0 rows when only the labels are kept.
    Held(Tensor),
    /// Rendered from this data config by sample index (`SplitData::index`) whenever a batch
    /// needs them, byte-identical to `data generate`: a procedural source's validation and
    /// test sets cost no memory (~0.8 GB at 10K) and ~0.1 s of rendering per evaluation.
    Rendered(Arc<DataConfig>),
}

impl Videos {
    fn shallow_clone(&self) -> Videos {
        match self {
            Videos::Held(t) => Videos::Held(t.shallow_clone()),
            Videos::Rendered(config) => Videos::Rendered(config.clone()),
        }
    }
}

/// One split's samples.
pub struct SplitData {
    pub videos: Videos,
    /// `(N,)` int64 class indices.
    pub labels: Tensor,
    /// `(N, 3)` position `predict_future` frames after the last input frame.
    pub target: Tensor,
    /// `(N, T, 3)` the ball's position in every input frame (the tracker's target).
    pub track: Tensor,
    /// `(N,)` int64: each sample's index in the dataset.
    pub index: Tensor,
    /// `(N, 3)` float: the lens each sample was rendered with, as a
    /// [`Lens::table`](crate::train::pinhole::Lens::table).
    pub lenses: Tensor,
}

impl SplitData {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset indices of rows `rows` (all rows when None), read in one go.
    fn sample_indices(&self, rows: Option<&[i64]>) -> Vec<u64> {
        let index = match rows {
            Some(rows) => self.index.index_select(0, &Tensor::from_slice(rows)),
            None => self.index.shallow_clone(),
        };
        let index = Vec::<i64>::try_from(&index).expect("an int64 index");
        index.into_iter().map(|i| i as u64).collect()
    }

    /// Every video, `(N, T, 3, H, W)` uint8 (rendered now when the split renders them).
    pub fn all_videos(&self) -> Tensor {
        match &self.videos {
            Videos::Held(t) => t.shallow_clone(),
            Videos::Rendered(config) => {
                let samples = self.sample_indices(None);
                let [t, c, h, w] = render::clip(config);
                Tensor::from_slice(&render::render_videos(config, &samples)).view([
                    samples.len() as i64,
                    t,
                    c,
                    h,
                    w,
                ])
            }
        }
    }

    /// The same tensors, shared.
    pub fn shallow_clone(&self) -> SplitData {
        SplitData {
            videos: self.videos.shallow_clone(),
            labels: self.labels.shallow_clone(),
            target: self.target.shallow_clone(),
            track: self.track.shallow_clone(),
            index: self.index.shallow_clone(),
            lenses: self.lenses.shallow_clone(),
        }
    }

    /// The first `n` samples.
    pub fn first(self, n: usize) -> SplitData {
        let n = n.min(self.len()) as i64;
        // A copy, so that the rest of the videos' memory is freed.
        let keep = |t: &Tensor| t.narrow(0, 0, n.min(t.size()[0])).copy();
        SplitData {
            videos: match &self.videos {
                Videos::Held(t) => Videos::Held(keep(t)),
                rendered => rendered.shallow_clone(),
            },
            labels: keep(&self.labels),
            target: keep(&self.target),
            track: keep(&self.track),
            index: keep(&self.index),
            lenses: keep(&self.lenses),
        }
    }

    /// The samples at `index` on `device`, videos standardised (`model_input`), on the CPU laid
    /// out as `layout` says.
    fn batch(&self, index: &[i64], device: Device, form: InputForm) -> Batch {
        let videos = match &self.videos {
            Videos::Held(held) => {
                assert!(
                    held.is_contiguous(),
                    "a split's videos are one contiguous tensor"
                );
                let clip: [i64; 4] = held.size()[1..].try_into().expect("(N, T, C, H, W)");
                let len = clip.iter().product::<i64>() as usize;
                // SAFETY: a contiguous CPU uint8 tensor of `numel` bytes that nothing writes
                // once the split is loaded.
                let bytes = unsafe {
                    std::slice::from_raw_parts(held.data_ptr() as *const u8, held.numel())
                };
                let rows: Vec<&[u8]> = index
                    .iter()
                    .map(|&r| &bytes[r as usize * len..(r as usize + 1) * len])
                    .collect();
                model_input::from_bytes(&rows, clip, device, form)
            }
            Videos::Rendered(config) => {
                let samples = self.sample_indices(Some(index));
                let clip = render::clip(config);
                model_input::from_drawn(samples.len(), clip, device, form, |i, video| {
                    generate_sample(config, samples[i], video);
                })
            }
        };
        let index_tensor = Tensor::from_slice(index);
        Batch {
            videos,
            labels: self.labels.index_select(0, &index_tensor).to_device(device),
            target: self.target.index_select(0, &index_tensor).to_device(device),
            track: self.track.index_select(0, &index_tensor).to_device(device),
            lenses: self.lenses.index_select(0, &index_tensor).to_device(device),
        }
    }
}

/// A sample's labels as training reads them, from its positions over the clip and the horizon
/// (`(T + H) × 3`): the target, `predict_future` frames after the clip's last, and the track,
/// the positions of the T input frames.
pub fn labels_from(positions: &[f32], frames: usize, predict_future: usize) -> ([f32; 3], &[f32]) {
    let at = 3 * (frames - 1 + predict_future);
    (
        [positions[at], positions[at + 1], positions[at + 2]],
        &positions[..3 * frames],
    )
}

/// Refuses a `predict_future` past what `labelled` (a dataset, a data config) labels.
pub fn check_horizon(predict_future: usize, horizon: usize, labelled: &str) -> Result<()> {
    if predict_future > horizon {
        bail!(
            "field `predict_future` is {predict_future}, but {labelled} labels only {horizon} frames past the clip"
        );
    }
    Ok(())
}

/// A batch ready for the model.
pub struct Batch {
    /// `(B, T, 3, H, W)` float, standardised per channel (`model_input`).
    pub videos: Tensor,
    /// `(B,)` class indices.
    pub labels: Tensor,
    /// `(B, 3)` the position to predict.
    pub target: Tensor,
    /// `(B, T, 3)` the position in every input frame.
    pub track: Tensor,
    /// `(B, 3)` the lens each video was rendered with (a
    /// [`Lens::table`](crate::train::pinhole::Lens::table)).
    pub lenses: Tensor,
}

impl Batch {
    /// The same tensors, shared.
    pub fn shallow_clone(&self) -> Batch {
        Batch {
            videos: self.videos.shallow_clone(),
            labels: self.labels.shallow_clone(),
            target: self.target.shallow_clone(),
            track: self.track.shallow_clone(),
            lenses: self.lenses.shallow_clone(),
        }
    }
}

/// The sample order of `epoch`: a pure function of (seed, epoch), so a resumed run replays it.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<i64> {
    let mut state = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    order
}

/// Batches of the samples at `order` (a last, smaller batch included), each prepared when the
/// caller asks for it, in the model's input form (the memory layout it reads fastest).
pub fn batches<'a>(
    split: &'a SplitData,
    order: &[i64],
    batch_size: usize,
    device: Device,
    form: InputForm,
) -> impl Iterator<Item = Batch> + 'a {
    let (order, size) = (order.to_vec(), batch_size.max(1));
    (0..order.len())
        .step_by(size)
        .map(move |start| split.batch(&order[start..(start + size).min(order.len())], device, form))
}

#[cfg(test)]
mod tests {
    use super::stored::SplitBuilder;
    use super::*;
    use crate::train::model_input::{PIXEL_MEAN, PIXEL_STD};
    use crate::train::pinhole::Lens;
    use tch::Kind;
    use trajhost_plugin_api::InputLayout;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 3);
        assert_eq!(a, epoch_order(100, 7, 3));
        assert_ne!(a, epoch_order(100, 7, 4));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
    }

    /// Five 2-frame 1×2×2 videos whose bytes are `10 × sample + position`.
    fn five_samples() -> SplitData {
        let lens = Lens::from_fov(50.0, 2, 2);
        let mut builder = SplitBuilder::with_capacity(5, [2, 3, 2, 2], true);
        for i in 0..5u8 {
            let video: Vec<u8> = (0..24u8).map(|b| 10 * i + b).collect();
            let target: Vec<f32> = (0..3).map(|k| f32::from(3 * i + k)).collect();
            builder.push(
                u64::from(i),
                &video,
                i64::from(i % 4),
                &target,
                &[0.0; 6],
                lens,
            );
        }
        builder.finish()
    }

    #[test]
    fn batches_follow_the_order_and_standardise_the_pixels() {
        let split = five_samples();
        let order = vec![3, 0, 4, 1, 2];
        let got: Vec<Batch> = batches(
            &split,
            &order,
            2,
            Device::Cpu,
            InputLayout::TimeMajor.into(),
        )
        .collect();
        assert_eq!(got.len(), 3, "two full batches and a last one of 1");
        let flat: Vec<i64> = got
            .iter()
            .flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap())
            .collect();
        assert_eq!(flat, vec![3, 0, 0, 1, 2]);
        let last = &got[2];
        assert_eq!(last.videos.size(), vec![1, 2, 3, 2, 2]);
        assert_eq!(last.videos.kind(), Kind::Float);
        let expected: Vec<f32> = (0..24)
            .map(|b| (((20 + b) as f64 / 255.0 - PIXEL_MEAN) / PIXEL_STD) as f32)
            .collect();
        let values = Vec::<f32>::try_from(last.videos.flatten(0, -1)).unwrap();
        for (v, e) in values.iter().zip(&expected) {
            assert!((v - e).abs() < 1e-5, "{v} vs {e}");
        }
        let target = Vec::<f32>::try_from(got[0].target.flatten(0, -1)).unwrap();
        assert_eq!(target, vec![9.0, 10.0, 11.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn truncation_keeps_the_first_samples() {
        let split = five_samples().first(2);
        assert_eq!(split.len(), 2);
        let got: Vec<Batch> = batches(
            &split,
            &[1, 0],
            8,
            Device::Cpu,
            InputLayout::TimeMajor.into(),
        )
        .collect();
        let first = Vec::<f32>::try_from(got[0].videos.get(0).flatten(0, -1)).unwrap();
        let expected = (10.0 / 255.0 - PIXEL_MEAN) / PIXEL_STD;
        assert!((f64::from(first[0]) - expected).abs() < 1e-5);
    }
}
