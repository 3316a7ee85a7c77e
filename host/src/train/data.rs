//! Training data in memory, and batches assembled from it on the compute thread.
//!
//! Each split's videos are held as one uint8 tensor (10,000 videos of 32×64×64 are 3.9 GB), so
//! no epoch touches the disk. A batch is gathered, converted to float and laid out for the
//! backbone in one pass (`pixels`) between steps, not by a prefetch thread: on a machine whose
//! cores all run libtorch's threads, a third thread converting the next batch slowed three of
//! the four backbones' steps by 10–30 % (docs/bench.md), while preparing a batch of 32 takes
//! ~2 ms on two idle cores (`trajhost-bench batches`), 6–8 ms between training steps.

use super::pinhole::Lens;
use super::{pixels, source};
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};
use trajhost_dataset::sample::generate_sample;
use trajhost_dataset::{DataConfig, Dataset, Split};
use trajhost_plugin_api::InputLayout;

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
    /// The lens every sample was rendered with.
    pub lens: Lens,
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
                let [t, c, h, w] = source::clip(config);
                Tensor::from_slice(&source::render_videos(config, &samples)).view([
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
            lens: self.lens,
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
            lens: self.lens,
        }
    }

    /// The samples at `index` on `device`, videos standardised (`pixels`), on the CPU laid
    /// out as `layout` says.
    fn batch(&self, index: &[i64], device: Device, layout: InputLayout) -> Batch {
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
                pixels::model_input(&rows, clip, device, layout)
            }
            Videos::Rendered(config) => {
                let samples = self.sample_indices(Some(index));
                let clip = source::clip(config);
                pixels::model_input_drawn(samples.len(), clip, device, layout, |i, video| {
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
            lens: self.lens,
        }
    }
}

pub struct TrainingData {
    /// Without videos when `procedural` renders them instead.
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    pub frames: usize,
    /// Set when training batches are rendered on the fly (`source`).
    pub procedural: Option<super::source::Procedural>,
}

/// A split being filled shard by shard, straight into its final uint8 tensor, so loading peaks
/// at the data plus one shard rather than twice the data.
struct SplitBuilder {
    /// `(capacity, T, 3, H, W)`, allocated here and not shared before `finish`; 0 rows when
    /// the videos are not kept.
    videos: Tensor,
    keep_videos: bool,
    video_len: usize,
    labels: Vec<i64>,
    target: Vec<f32>,
    track: Vec<f32>,
    index: Vec<i64>,
    frames: i64,
    lens: Lens,
}

impl SplitBuilder {
    fn with_capacity(
        capacity: usize,
        video_shape: [i64; 4],
        lens: Lens,
        keep_videos: bool,
    ) -> SplitBuilder {
        let [t, c, h, w] = video_shape;
        let rows = if keep_videos { capacity as i64 } else { 0 };
        SplitBuilder {
            videos: Tensor::empty([rows, t, c, h, w], (Kind::Uint8, Device::Cpu)),
            keep_videos,
            video_len: video_shape.iter().product::<i64>() as usize,
            labels: Vec::with_capacity(capacity),
            target: Vec::with_capacity(3 * capacity),
            track: Vec::with_capacity(3 * t as usize * capacity),
            index: Vec::with_capacity(capacity),
            frames: t,
            lens,
        }
    }

    /// Appends one sample: its video's bytes, class, target position and the T positions of its
    /// input frames.
    fn push(&mut self, index: u64, video: &[u8], label: i64, target: &[f32], track: &[f32]) {
        assert_eq!(video.len(), self.video_len, "video size");
        assert_eq!(track.len() as i64, 3 * self.frames, "positions per video");
        self.labels.push(label);
        self.index.push(index as i64);
        self.target.extend_from_slice(target);
        self.track.extend_from_slice(track);
        if !self.keep_videos {
            return;
        }
        let start = (self.labels.len() - 1) * self.video_len;
        // SAFETY: `videos` is a contiguous CPU uint8 tensor of `numel` bytes that this builder
        // allocated and has not shared, so nothing else reads or writes them meanwhile; the
        // slice's bounds check refuses a sample past the capacity.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(self.videos.data_ptr() as *mut u8, self.videos.numel())
        };
        bytes[start..start + self.video_len].copy_from_slice(video);
    }

    fn finish(self) -> SplitData {
        let n = self.labels.len() as i64;
        SplitData {
            videos: Videos::Held(
                self.videos
                    .narrow(0, 0, if self.keep_videos { n } else { 0 }),
            ),
            labels: Tensor::from_slice(&self.labels),
            target: Tensor::from_slice(&self.target).view([n, 3]),
            track: Tensor::from_slice(&self.track).view([n, self.frames, 3]),
            index: Tensor::from_slice(&self.index),
            lens: self.lens,
        }
    }
}

/// The dataset's clips, `[T, H, W]`, read from its manifest alone (`load` checks the rest).
pub fn clip_shape(dir: &std::path::Path) -> Result<[i64; 3]> {
    let manifest = trajhost_dataset::manifest::Manifest::load(dir)
        .with_context(|| format!("opening dataset {}", dir.display()))?;
    let c = &manifest.config;
    Ok([c.frames as i64, c.height as i64, c.width as i64])
}

/// Loads every split, verifying each shard's hash as it is read.
pub fn load(
    dir: &std::path::Path,
    predict_future: usize,
    max_train: Option<usize>,
) -> Result<TrainingData> {
    let [train, val, test] = load_splits(dir, predict_future, max_train, [true; 3])?;
    for (name, split) in [("train", &train), ("val", &val), ("test", &test)] {
        if split.is_empty() {
            bail!("dataset {} has no {name} samples", dir.display());
        }
    }
    let frames = train.track.size()[1] as usize;
    Ok(TrainingData {
        train,
        val,
        test,
        frames,
        procedural: None,
    })
}

/// The train, val and test splits (in `Split::ALL` order), verifying each shard's hash as it
/// is read; a split whose `with_videos` is false keeps its labels and positions but no videos
/// (`videos` has 0 rows), as the baselines need of the training split.
pub fn load_splits(
    dir: &std::path::Path,
    predict_future: usize,
    max_train: Option<usize>,
    with_videos: [bool; 3],
) -> Result<[SplitData; 3]> {
    let dataset =
        Dataset::open(dir).with_context(|| format!("opening dataset {}", dir.display()))?;
    let config = &dataset.manifest.config;
    let (t, horizon) = (config.frames, config.horizon);
    if predict_future > horizon {
        bail!(
            "field `predict_future` is {predict_future}, but dataset {} labels only {horizon} frames past the clip",
            dir.display()
        );
    }
    let video_shape = [t as i64, 3, config.height as i64, config.width as i64];
    let target_frame = t - 1 + predict_future;
    let mut builders = [0, 1, 2].map(|s| {
        let split = Split::ALL[s];
        let capacity = dataset.indices(split).len();
        SplitBuilder::with_capacity(capacity, video_shape, Lens::of(config), with_videos[s])
    });
    for k in 0..dataset.num_shards() {
        dataset.verify_shard(k)?;
        let shard = dataset.load_shard(k)?;
        for i in 0..shard.n {
            let s = Split::ALL
                .iter()
                .position(|&s| s == dataset.split_of(shard.indices[i]))
                .unwrap();
            let positions = shard.positions_of(i);
            builders[s].push(
                shard.indices[i],
                shard.video(i),
                i64::from(shard.labels[i]),
                &positions[3 * target_frame..3 * target_frame + 3],
                &positions[..3 * t],
            );
        }
    }
    let [train, val, test] = builders.map(SplitBuilder::finish);
    let train = match max_train {
        Some(n) => train.first(n),
        None => train,
    };
    Ok([train, val, test])
}

/// A batch ready for the model.
pub struct Batch {
    /// `(B, T, 3, H, W)` float, standardised per channel (`standardise`).
    pub videos: Tensor,
    /// `(B,)` class indices.
    pub labels: Tensor,
    /// `(B, 3)` the position to predict.
    pub target: Tensor,
    /// `(B, T, 3)` the position in every input frame.
    pub track: Tensor,
    /// The lens the videos were rendered with.
    pub lens: Lens,
}

impl Batch {
    /// The same tensors, shared.
    pub fn shallow_clone(&self) -> Batch {
        Batch {
            videos: self.videos.shallow_clone(),
            labels: self.labels.shallow_clone(),
            target: self.target.shallow_clone(),
            track: self.track.shallow_clone(),
            lens: self.lens,
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
/// caller asks for it, in the memory layout the model reads fastest.
pub fn batches<'a>(
    split: &'a SplitData,
    order: &[i64],
    batch_size: usize,
    device: Device,
    layout: InputLayout,
) -> impl Iterator<Item = Batch> + 'a {
    let (order, size) = (order.to_vec(), batch_size.max(1));
    (0..order.len()).step_by(size).map(move |start| {
        split.batch(
            &order[start..(start + size).min(order.len())],
            device,
            layout,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pixels::{PIXEL_MEAN, PIXEL_STD};

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
        let mut builder = SplitBuilder::with_capacity(5, [2, 3, 2, 2], lens, true);
        for i in 0..5u8 {
            let video: Vec<u8> = (0..24u8).map(|b| 10 * i + b).collect();
            let target: Vec<f32> = (0..3).map(|k| f32::from(3 * i + k)).collect();
            builder.push(u64::from(i), &video, i64::from(i % 4), &target, &[0.0; 6]);
        }
        builder.finish()
    }

    #[test]
    fn batches_follow_the_order_and_standardise_the_pixels() {
        let split = five_samples();
        let order = vec![3, 0, 4, 1, 2];
        let got: Vec<Batch> =
            batches(&split, &order, 2, Device::Cpu, InputLayout::TimeMajor).collect();
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
        let got: Vec<Batch> =
            batches(&split, &[1, 0], 8, Device::Cpu, InputLayout::TimeMajor).collect();
        let first = Vec::<f32>::try_from(got[0].videos.get(0).flatten(0, -1)).unwrap();
        let expected = (10.0 / 255.0 - PIXEL_MEAN) / PIXEL_STD;
        assert!((f64::from(first[0]) - expected).abs() < 1e-5);
    }
}
