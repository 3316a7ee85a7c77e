//! Training data in memory, and batches assembled by a prefetch thread.
//!
//! The whole split is held as one uint8 tensor (10,000 videos of 32×64×64 are 3.9 GB), so
//! no epoch touches the disk; the prefetch thread gathers the next batch and converts it to
//! float while the model computes on the current one.

use anyhow::{bail, Context, Result};
use std::sync::mpsc;
use tch::{Device, Kind, Tensor};
use trajhost_dataset::{Dataset, Split};

/// One split's samples.
pub struct SplitData {
    /// `(N, T, 3, H, W)` uint8.
    pub videos: Tensor,
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
}

pub struct TrainingData {
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    pub frames: usize,
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
    let (t, h, w, horizon) = (
        config.frames as i64,
        config.height as i64,
        config.width as i64,
        config.horizon,
    );
    if predict_future > horizon {
        bail!(
            "field `predict_future` is {predict_future}, but dataset {} labels only {horizon} frames past the clip",
            dir.display()
        );
    }
    let rows = t + horizon as i64;
    let target_frame = t - 1 + predict_future as i64;
    let mut parts: Vec<[Vec<Tensor>; 4]> = (0..3).map(|_| Default::default()).collect();
    for k in 0..dataset.num_shards() {
        dataset.verify_shard(k)?;
        let shard = dataset.load_shard(k)?;
        let n = shard.n as i64;
        let videos = Tensor::from_slice(&shard.videos).view([n, t, 3, h, w]);
        let labels = Tensor::from_slice(&shard.labels).to_kind(Kind::Int64);
        let positions = Tensor::from_slice(&shard.positions).view([n, rows, 3]);
        for (s, split) in Split::ALL.iter().enumerate() {
            let picked: Vec<i64> = (0..n)
                .filter(|&i| dataset.split_of(shard.indices[i as usize]) == *split)
                .collect();
            let picked = Tensor::from_slice(&picked);
            parts[s][0].push(videos.index_select(0, &picked));
            parts[s][1].push(labels.index_select(0, &picked));
            parts[s][2].push(positions.select(1, target_frame).index_select(0, &picked));
            parts[s][3].push(positions.narrow(1, t - 2, 2).index_select(0, &picked));
        }
    }
    let mut splits = parts.into_iter().map(|[v, l, tg, lt]| SplitData {
        videos: Tensor::cat(&v, 0),
        labels: Tensor::cat(&l, 0),
        target: Tensor::cat(&tg, 0),
        last_two: Tensor::cat(&lt, 0),
    });
    let (mut train, val, test) = (
        splits.next().unwrap(),
        splits.next().unwrap(),
        splits.next().unwrap(),
    );
    if let Some(max) = max_train {
        let keep = (max as i64).min(train.len() as i64);
        train = SplitData {
            videos: train.videos.narrow(0, 0, keep),
            labels: train.labels.narrow(0, 0, keep),
            target: train.target.narrow(0, 0, keep),
            last_two: train.last_two.narrow(0, 0, keep),
        };
    }
    for (name, split) in [("train", &train), ("val", &val), ("test", &test)] {
        if split.is_empty() {
            bail!("dataset {} has no {name} samples", dir.display());
        }
    }
    Ok(TrainingData {
        train,
        val,
        test,
        frames: t as usize,
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
    let (videos, labels, target) = (
        split.videos.shallow_clone(),
        split.labels.shallow_clone(),
        split.target.shallow_clone(),
    );
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        for chunk in order.chunks(batch_size) {
            let index = Tensor::from_slice(chunk);
            let batch = Batch {
                videos: (videos.index_select(0, &index).to_kind(Kind::Float) / 255.0)
                    .to_device(device),
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
