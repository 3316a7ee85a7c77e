//! A data config rendered on the fly (`procedural:<data config>`): no dataset is stored and
//! training never sees the same video twice.
//!
//! The validation and test splits are the val/test members of indices `0..samples` of the
//! config (at most the first 10,000), rendered byte for byte as `data generate` writes them
//! whenever they are evaluated, and an epoch has as many steps as the stored training split.
//! The training videos of step `s` of epoch `e` are drawn from the whole training index space
//! (indices below 2^40 whose split is `train`) as a pure function of (seed, epoch, position), so
//! a resumed run replays them exactly; the labels (not the videos) of the stored training split
//! give the same baselines as the stored run.

use super::render::clip;
use super::{check_horizon, labels_from, Batch, SplitData, Videos};
use crate::train::model_input::{self, InputForm};
use crate::train::pinhole::Lens;
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};
use trajhost_dataset::sample::{generate_sample, plan_sample, SampleLabels};
use trajhost_dataset::split::{split_of, splitmix64};
use trajhost_dataset::{DataConfig, Split};

/// Validation, test and the baselines' training labels come from at most this many of the
/// config's first indices: the sets of the 10K dataset (~2,000 videos to render per evaluation).
const SCORED_INDICES: usize = 10_000;

/// Training indices are drawn below this: far more than any run can see.
const INDEX_SPACE: u64 = 1 << 40;

/// Renders the training batches of a procedural source.
pub struct Procedural {
    config: DataConfig,
    predict_future: usize,
    /// Training samples of an epoch (the stored training split's size).
    per_epoch: usize,
}

/// The scored splits of `config` (train without videos, val and test rendered on demand) and
/// the renderer of its training batches.
pub fn load(
    config: &DataConfig,
    predict_future: usize,
    max_train: Option<usize>,
) -> Result<([SplitData; 3], Procedural)> {
    check_horizon(predict_future, config.horizon, "the data config")?;
    // The scored sets stay bounded (and so memory) whatever `samples` says.
    let scored = config.samples.min(SCORED_INDICES) as u64;
    let indices_of = |split: Split| -> Vec<u64> {
        (0..scored)
            .filter(|&i| split_of(config.seed, i, &config.split) == split)
            .collect()
    };
    let mut train_labels = scored_split(config, &indices_of(Split::Train), predict_future, false);
    if let Some(n) = max_train {
        train_labels = train_labels.first(n);
    }
    let val = scored_split(config, &indices_of(Split::Val), predict_future, true);
    let test = scored_split(config, &indices_of(Split::Test), predict_future, true);
    for (name, split) in [("train", &train_labels), ("val", &val), ("test", &test)] {
        if split.is_empty() {
            bail!(
                "the data config has no {name} samples among its first {}",
                config.samples
            );
        }
    }
    let per_epoch = train_labels.len();
    let procedural = Procedural {
        config: config.clone(),
        predict_future,
        per_epoch,
    };
    Ok(([train_labels, val, test], procedural))
}

/// The labels of samples `indices` of `config` (planned in parallel, no pixels drawn); their
/// videos are rendered whenever a batch needs them (`Videos::Rendered`) unless `videos` is
/// false.
fn scored_split(
    config: &DataConfig,
    indices: &[u64],
    predict_future: usize,
    videos: bool,
) -> SplitData {
    let samples = indices
        .par_iter()
        .map(|&i| Rendered::new(config, i, predict_future, plan_sample(config, i).labels()))
        .collect();
    let split = Rendered::into_split(samples, config);
    match videos {
        true => SplitData {
            videos: Videos::Rendered(Arc::new(config.clone())),
            ..split
        },
        false => split,
    }
}

/// One sample's labels, made on any thread, turned into tensors on the training thread.
struct Rendered {
    index: u64,
    label: i64,
    target: [f32; 3],
    track: Vec<f32>,
    lens: Lens,
}

impl Rendered {
    /// Renders sample `index` into `video`; returns its labels.
    fn labels_of(
        config: &DataConfig,
        index: u64,
        predict_future: usize,
        video: &mut [u8],
    ) -> Rendered {
        let labels = generate_sample(config, index, video);
        Rendered::new(config, index, predict_future, &labels)
    }

    /// Sample `index`'s labels as training reads them.
    fn new(
        config: &DataConfig,
        index: u64,
        predict_future: usize,
        labels: &SampleLabels,
    ) -> Rendered {
        let (target, track) = labels_from(&labels.positions, config.frames, predict_future);
        Rendered {
            index,
            label: i64::from(labels.label),
            target,
            track: track.to_vec(),
            lens: Lens::from_intrinsics(labels.intrinsics)
                .expect("the generator's lenses are valid ones (focal_scale is validated)"),
        }
    }

    /// The labels as a split without videos (0 rows).
    fn into_split(samples: Vec<Rendered>, config: &DataConfig) -> SplitData {
        let (t, h, w) = (
            config.frames as i64,
            config.height as i64,
            config.width as i64,
        );
        let n = samples.len() as i64;
        let (mut labels, mut target, mut track, mut index, mut lenses) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for s in samples {
            lenses.push(s.lens);
            labels.push(s.label);
            target.extend_from_slice(&s.target);
            track.extend_from_slice(&s.track);
            index.push(s.index as i64);
        }
        SplitData {
            videos: Videos::Held(Tensor::empty([0, t, 3, h, w], (Kind::Uint8, Device::Cpu))),
            labels: Tensor::from_slice(&labels),
            target: Tensor::from_slice(&target).view([n, 3]),
            track: Tensor::from_slice(&track).view([n, t, 3]),
            index: Tensor::from_slice(&index),
            lenses: Lens::table(&lenses),
        }
    }
}

impl Procedural {
    /// The index of the `position`-th training video of `epoch`: a pure function of the run's
    /// seed, the epoch and the position, among the indices whose split is `train`.
    pub fn train_index(&self, seed: u64, epoch: usize, position: usize) -> u64 {
        let base = splitmix64(seed ^ splitmix64(epoch as u64) ^ splitmix64(!(position as u64)));
        (0u64..)
            .map(|attempt| splitmix64(base.wrapping_add(attempt)) % INDEX_SPACE)
            .find(|&i| split_of(self.config.seed, i, &self.config.split) == Split::Train)
            .expect("a fifth of indices or more are training indices")
    }

    /// Training samples in an epoch.
    pub fn per_epoch(&self) -> usize {
        self.per_epoch
    }

    /// The indices of batch `step` of `epoch`: as many as the stored split's batch at that
    /// step (the last one of an epoch may be smaller).
    fn batch_indices(&self, seed: u64, epoch: usize, step: usize, batch_size: usize) -> Vec<u64> {
        let first = step * batch_size;
        let n = batch_size.min(self.per_epoch.saturating_sub(first));
        (first..first + n)
            .map(|p| self.train_index(seed, epoch, p))
            .collect()
    }

    /// Batches `steps` of `epoch`, each rendered when the trainer asks for it and converted
    /// into the model's input as stored batches are (`model_input`).
    pub fn batches(
        &self,
        seed: u64,
        epoch: usize,
        steps: std::ops::Range<usize>,
        batch_size: usize,
        device: Device,
        form: InputForm,
    ) -> impl Iterator<Item = Batch> + '_ {
        steps.map(move |step| {
            let indices = self.batch_indices(seed, epoch, step, batch_size);
            self.batch(&indices, device, form)
        })
    }

    /// The training batch of samples `indices`, rendered on libtorch's threads straight into
    /// the model's input (`model_input::from_drawn`).
    fn batch(&self, indices: &[u64], device: Device, form: InputForm) -> Batch {
        let config = &self.config;
        let labels: Vec<Mutex<Option<Rendered>>> =
            indices.iter().map(|_| Mutex::new(None)).collect();
        let videos =
            model_input::from_drawn(indices.len(), clip(config), device, form, |i, video| {
                let rendered = Rendered::labels_of(config, indices[i], self.predict_future, video);
                *labels[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(rendered);
            });
        let labels = labels
            .into_iter()
            .map(|slot| {
                let slot = slot.into_inner().unwrap_or_else(|e| e.into_inner());
                slot.expect("every video rendered")
            })
            .collect();
        let labels = Rendered::into_split(labels, config);
        Batch {
            videos,
            labels: labels.labels.to_device(device),
            target: labels.target.to_device(device),
            track: labels.track.to_device(device),
            lenses: labels.lenses.to_device(device),
        }
    }

    /// Videos drawn after `global_step` optimiser steps of `batch_size`.
    pub fn videos_drawn(&self, global_step: i64, batch_size: usize) -> u64 {
        let steps_per_epoch = self.per_epoch.div_ceil(batch_size).max(1) as u64;
        let step = global_step.max(0) as u64;
        let (epochs, rest) = (step / steps_per_epoch, step % steps_per_epoch);
        epochs * self.per_epoch as u64 + (rest * batch_size as u64).min(self.per_epoch as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::model_input::Background;
    use trajhost_plugin_api::InputLayout;

    fn source() -> Procedural {
        Procedural {
            config: DataConfig::tiny(),
            predict_future: 5,
            per_epoch: 40,
        }
    }

    #[test]
    fn training_indices_are_a_function_of_seed_epoch_and_position_and_all_train() {
        let p = source();
        let a: Vec<u64> = (0..200).map(|i| p.train_index(1, 3, i)).collect();
        let b: Vec<u64> = (0..200).map(|i| p.train_index(1, 3, i)).collect();
        assert_eq!(a, b);
        assert_ne!(
            a,
            (0..200).map(|i| p.train_index(1, 4, i)).collect::<Vec<_>>()
        );
        assert_ne!(
            a,
            (0..200).map(|i| p.train_index(2, 3, i)).collect::<Vec<_>>()
        );
        let c = &p.config;
        assert!(a
            .iter()
            .all(|&i| split_of(c.seed, i, &c.split) == Split::Train));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
    }

    #[test]
    fn a_batch_holds_the_planned_videos_in_order() {
        let p = Procedural {
            config: DataConfig::default_config(),
            ..source()
        };
        let indices = [5, 3, 900, 9, 1, 7, 100, 2, 4];
        let mut expected = vec![0u8; indices.len() * p.config.video_bytes()];
        let mut truth = Vec::new();
        for (video, &i) in expected.chunks_mut(p.config.video_bytes()).zip(&indices) {
            truth.push(i64::from(generate_sample(&p.config, i, video).label));
        }
        let rows: Vec<&[u8]> = expected.chunks(p.config.video_bytes()).collect();
        for layout in [InputLayout::TimeMajor, InputLayout::ChannelMajor] {
            for background in [Background::Keep, Background::SubtractMedian] {
                let form = InputForm {
                    background,
                    ..InputForm::from(layout)
                };
                let batch = p.batch(&indices, Device::Cpu, form);
                let want = model_input::cpu_from_bytes(&rows, clip(&p.config), form);
                assert!(batch.videos.equal(&want), "{form:?}");
                assert_eq!(Vec::<i64>::try_from(&batch.labels).unwrap(), truth);
            }
        }
    }

    #[test]
    fn videos_drawn_counts_whole_epochs_and_the_last_smaller_batch() {
        let p = source();
        // 40 per epoch in batches of 16: 16, 16, 8.
        assert_eq!(p.videos_drawn(0, 16), 0);
        assert_eq!(p.videos_drawn(2, 16), 32);
        assert_eq!(p.videos_drawn(3, 16), 40);
        assert_eq!(p.videos_drawn(4, 16), 56);
    }
}
