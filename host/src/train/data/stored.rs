//! A dataset folder written by `trajhost data generate`, read into memory: every split's videos
//! as one uint8 tensor, verifying each shard's hash as it is read.

use super::{check_horizon, labels_from, SplitData, Videos};
use crate::train::pinhole::Lens;
use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};
use trajhost_dataset::{Dataset, Split};

/// A split being filled shard by shard, straight into its final uint8 tensor, so loading peaks
/// at the data plus one shard rather than twice the data.
pub(super) struct SplitBuilder {
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
    lenses: Vec<Lens>,
}

impl SplitBuilder {
    pub(super) fn with_capacity(
        capacity: usize,
        video_shape: [i64; 4],
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
            lenses: Vec::with_capacity(capacity),
        }
    }

    /// Appends one sample: its video's bytes, class, target position, the T positions of its
    /// input frames and the lens it was rendered with.
    pub(super) fn push(
        &mut self,
        index: u64,
        video: &[u8],
        label: i64,
        target: &[f32],
        track: &[f32],
        lens: Lens,
    ) {
        assert_eq!(video.len(), self.video_len, "video size");
        assert_eq!(track.len() as i64, 3 * self.frames, "positions per video");
        self.labels.push(label);
        self.index.push(index as i64);
        self.target.extend_from_slice(target);
        self.track.extend_from_slice(track);
        self.lenses.push(lens);
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

    pub(super) fn finish(self) -> SplitData {
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
            lenses: Lens::table(&self.lenses),
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

/// Every split, each with its videos and at least one sample, verifying each shard's hash as
/// it is read.
pub fn load(
    dir: &std::path::Path,
    predict_future: usize,
    max_train: Option<usize>,
) -> Result<[SplitData; 3]> {
    let splits = load_splits(dir, predict_future, max_train, [true; 3])?;
    for (name, split) in ["train", "val", "test"].iter().zip(&splits) {
        if split.is_empty() {
            bail!("dataset {} has no {name} samples", dir.display());
        }
    }
    Ok(splits)
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
    let t = config.frames;
    check_horizon(
        predict_future,
        config.horizon,
        &format!("dataset {}", dir.display()),
    )?;
    let video_shape = [t as i64, 3, config.height as i64, config.width as i64];
    let mut builders = [0, 1, 2].map(|s| {
        let split = Split::ALL[s];
        let capacity = dataset.indices(split).len();
        SplitBuilder::with_capacity(capacity, video_shape, with_videos[s])
    });
    for k in 0..dataset.num_shards() {
        dataset.verify_shard(k)?;
        let shard = dataset.load_shard(k)?;
        for i in 0..shard.n {
            let s = Split::ALL
                .iter()
                .position(|&s| s == dataset.split_of(shard.indices[i]))
                .unwrap();
            let (target, track) = labels_from(shard.positions_of(i), t, predict_future);
            builders[s].push(
                shard.indices[i],
                shard.video(i),
                i64::from(shard.labels[i]),
                &target,
                track,
                Lens::from_intrinsics(shard.intrinsics_of(i)).with_context(|| {
                    format!("dataset {}, sample {}", dir.display(), shard.indices[i])
                })?,
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
