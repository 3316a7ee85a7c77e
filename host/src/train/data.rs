//! Training data in memory, and batches assembled by a prefetch thread.
//!
//! Each split's videos are held as one byte buffer (10,000 videos of 32×64×64 are 3.9 GB), so
//! no epoch touches the disk; the prefetch thread copies the next batch's videos together and
//! converts them to float while the model computes on the current batch.

use anyhow::{bail, Context, Result};
use std::sync::{mpsc, Arc};
use tch::{Device, Kind, Tensor};
use trajhost_dataset::{Dataset, Split};

/// One split's samples.
pub struct SplitData {
    /// `N` videos of `video_shape`, uint8, back to back.
    pub videos: Arc<Vec<u8>>,
    /// `(T, 3, H, W)`.
    pub video_shape: [i64; 4],
    /// `(N,)` int64 class indices.
    pub labels: Tensor,
    /// `(N, 3)` position `predict_future` frames after the last input frame.
    pub target: Tensor,
    /// `(N, 2, 3)` positions at the last two input frames (for the constant-velocity baseline).
    pub last_two: Tensor,
}

impl SplitData {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn video_len(&self) -> usize {
        self.video_shape.iter().product::<i64>() as usize
    }

    /// The first `n` samples.
    fn truncated(self, n: usize) -> SplitData {
        let n = n.min(self.len());
        let videos = Arc::new(self.videos[..n * self.video_len()].to_vec());
        let keep = |t: &Tensor| t.narrow(0, 0, n as i64);
        SplitData {
            labels: keep(&self.labels),
            target: keep(&self.target),
            last_two: keep(&self.last_two),
            videos,
            video_shape: self.video_shape,
        }
    }
}

pub struct TrainingData {
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    pub frames: usize,
}

/// A split being filled shard by shard.
#[derive(Default)]
struct SplitBuilder {
    videos: Vec<u8>,
    labels: Vec<i64>,
    target: Vec<f32>,
    last_two: Vec<f32>,
}

/// Loads every split, verifying each shard's hash as it is read.
pub fn load(
    dir: &std::path::Path,
    predict_future: usize,
    max_train: Option<usize>,
) -> Result<TrainingData> {
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
    let video_len = video_shape.iter().product::<i64>() as usize;
    let target_frame = t - 1 + predict_future;
    let mut builders: [SplitBuilder; 3] = Default::default();
    for (builder, split) in builders.iter_mut().zip(Split::ALL) {
        builder
            .videos
            .reserve_exact(dataset.indices(split).len() * video_len);
    }
    for k in 0..dataset.num_shards() {
        dataset.verify_shard(k)?;
        let shard = dataset.load_shard(k)?;
        for i in 0..shard.n {
            let s = Split::ALL
                .iter()
                .position(|&s| s == dataset.split_of(shard.indices[i]))
                .unwrap();
            let b = &mut builders[s];
            b.videos.extend_from_slice(shard.video(i));
            b.labels.push(i64::from(shard.labels[i]));
            let positions = shard.positions_of(i);
            b.target
                .extend_from_slice(&positions[3 * target_frame..3 * target_frame + 3]);
            b.last_two.extend_from_slice(&positions[3 * (t - 2)..3 * t]);
        }
    }
    let [train, val, test] = builders.map(|b| SplitData {
        labels: Tensor::from_slice(&b.labels),
        target: Tensor::from_slice(&b.target).view([-1, 3]),
        last_two: Tensor::from_slice(&b.last_two).view([-1, 2, 3]),
        videos: Arc::new(b.videos),
        video_shape,
    });
    let train = match max_train {
        Some(n) => train.truncated(n),
        None => train,
    };
    for (name, split) in [("train", &train), ("val", &val), ("test", &test)] {
        if split.is_empty() {
            bail!("dataset {} has no {name} samples", dir.display());
        }
    }
    Ok(TrainingData {
        train,
        val,
        test,
        frames: t,
    })
}

/// A batch ready for the model.
pub struct Batch {
    /// `(B, T, 3, H, W)` float in [0, 1].
    pub videos: Tensor,
    pub labels: Tensor,
    pub target: Tensor,
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

/// Batches of `order` (a last, smaller batch included), prepared one ahead on another thread.
pub fn batches(
    split: &SplitData,
    order: Vec<i64>,
    batch_size: usize,
    device: Device,
) -> impl Iterator<Item = Batch> {
    let (videos, shape, video_len) = (split.videos.clone(), split.video_shape, split.video_len());
    let (labels, target) = (split.labels.shallow_clone(), split.target.shallow_clone());
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut bytes = Vec::with_capacity(batch_size * video_len);
        for chunk in order.chunks(batch_size) {
            bytes.clear();
            for &i in chunk {
                bytes.extend_from_slice(
                    &videos[i as usize * video_len..(i as usize + 1) * video_len],
                );
            }
            let [t, c, h, w] = shape;
            let mut frames = Tensor::from_slice(&bytes)
                .view([chunk.len() as i64, t, c, h, w])
                .to_kind(Kind::Float);
            let _ = frames.f_mul_scalar_(1.0 / 255.0);
            let index = Tensor::from_slice(chunk);
            let batch = Batch {
                videos: frames.to_device(device),
                labels: labels.index_select(0, &index).to_device(device),
                target: target.index_select(0, &index).to_device(device),
            };
            if sender.send(batch).is_err() {
                return; // the consumer stopped early (interrupt)
            }
        }
    });
    receiver.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 3);
        assert_eq!(a, epoch_order(100, 7, 3));
        assert_ne!(a, epoch_order(100, 7, 4));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
    }
}
