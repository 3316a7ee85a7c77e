//! `manifest.json`: the config, seed, split rule and counts, per-class counts, and one entry per
//! complete shard (sample range, size, SHA-256). Always replaced atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::camera::{NORM_DEPTH, NORM_SCALE};
use crate::config::{DataConfig, SplitFractions};
use crate::error::{Error, Result};
use crate::shard::shard_file_name;
use crate::split::{split_of, Split, SPLIT_RULE};
use crate::trajectory::{Class, PARAM_FIELDS};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub generator: String,
    /// The generating config (its `workers` is only the default; output never depends on it).
    pub config: DataConfig,
    pub seed: u64,
    pub samples: usize,
    /// Label order: `labels[i]` indexes this list.
    pub classes: Vec<String>,
    pub class_counts: BTreeMap<String, usize>,
    pub params_fields: Vec<String>,
    pub normalisation: Normalisation,
    pub split: SplitInfo,
    /// Complete shards, in order; a shard is listed only after its file was renamed into place.
    pub shards: Vec<ShardEntry>,
    /// True once every shard is listed.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub rule: String,
    pub depth: f64,
    pub scale: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub rule: String,
    pub fractions: SplitFractions,
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub first_index: u64,
    pub count: usize,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// A manifest with no shards yet; counts follow from the config alone.
    pub fn new(cfg: &DataConfig) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            generator: concat!("trajhost-dataset ", env!("CARGO_PKG_VERSION")).into(),
            config: cfg.clone(),
            seed: cfg.seed,
            samples: cfg.samples,
            classes: Class::NAMES.iter().map(|s| s.to_string()).collect(),
            class_counts: class_counts(cfg),
            params_fields: PARAM_FIELDS.iter().map(|s| s.to_string()).collect(),
            normalisation: Normalisation {
                rule: "p = (p_cam - (0, 0, depth)) / scale; p_cam in OpenCV camera axes \
                       (x right, y down, z forward), world units"
                    .into(),
                depth: NORM_DEPTH,
                scale: NORM_SCALE,
            },
            split: SplitInfo {
                rule: SPLIT_RULE.into(),
                fractions: cfg.split.clone(),
                counts: split_counts(cfg),
            },
            shards: Vec::new(),
            complete: false,
        }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        // A manifest lists shards, not samples: 64 MiB is ~300,000 shards.
        let text =
            trajhost_config::read_bounded(&path, 64 << 20).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("invalid manifest: {e}")))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::format(
                &path,
                format!(
                    "format_version {} is not {FORMAT_VERSION}",
                    manifest.format_version
                ),
            ));
        }
        Ok(manifest)
    }

    /// Writes `dir/manifest.json` via a temp file in `dir` and a rename.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let json = serde_json::to_string_pretty(self).expect("manifest serialises") + "\n";
        trajhost_fs::write_atomic(&path, json.as_bytes())
            .map_err(|e| Error::format(&path, format!("{e:#}")))
    }

    pub fn split_of(&self, index: u64) -> Split {
        split_of(self.seed, index, &self.split.fractions)
    }

    /// Everything wrong with this manifest of the dataset in `dir` that can be seen without
    /// reading the shards: the config is valid and agrees with `samples`, `seed`, `classes`,
    /// the counts and the split; the dataset is complete; shard `k` is `shard-k` covering
    /// samples `[k · checkpoint_interval, +count)`, so the entries cover `0..samples` exactly;
    /// each shard file exists with the recorded `bytes`. The one check of both `data check` and
    /// [`crate::Dataset::open`] (what `train` loads through); hashes are checked as the shards
    /// are read.
    pub fn problems(&self, dir: &Path) -> Vec<String> {
        let cfg = &self.config;
        let mut problems = Vec::new();
        if let Err(e) = cfg.validate() {
            problems.push(format!("config: {e}"));
            return problems;
        }
        if self.format_version != FORMAT_VERSION {
            problems.push(format!(
                "format_version {} is not {FORMAT_VERSION}",
                self.format_version
            ));
        }
        let differs = |field: &str, found: String, expected: String| {
            format!("{field} is {found}, but {expected}")
        };
        if self.samples != cfg.samples {
            problems.push(differs(
                "samples",
                self.samples.to_string(),
                format!("config.samples is {}", cfg.samples),
            ));
        }
        if self.seed != cfg.seed {
            problems.push(differs(
                "seed",
                self.seed.to_string(),
                format!("config.seed is {}", cfg.seed),
            ));
        }
        if self.classes != Class::NAMES {
            problems.push(differs(
                "classes",
                format!("{:?}", self.classes),
                format!("labels index {:?}", Class::NAMES),
            ));
        }
        if self.params_fields != PARAM_FIELDS {
            problems.push(differs(
                "params_fields",
                format!("{:?}", self.params_fields),
                format!("this version writes {PARAM_FIELDS:?}"),
            ));
        }
        if self.split.fractions != cfg.split {
            problems.push(differs(
                "split.fractions",
                format!("{:?}", self.split.fractions),
                format!("config.split is {:?}", cfg.split),
            ));
        }
        let expected = class_counts(cfg);
        if self.class_counts != expected {
            problems.push(differs(
                "class_counts",
                format!("{:?}", self.class_counts),
                format!(
                    "{} samples of config.classes in turn give {expected:?}",
                    cfg.samples
                ),
            ));
        }
        let shards = cfg.shard_count();
        if !self.complete {
            problems.push(format!(
                "dataset is incomplete ({} of {shards} shards); re-run generate to finish it",
                self.shards.len()
            ));
        } else if self.shards.len() != shards {
            problems.push(format!(
                "shards lists {} entries, but {} samples in shards of {} (checkpoint_interval) need {shards}",
                self.shards.len(),
                cfg.samples,
                cfg.checkpoint_interval
            ));
        }
        let mut covered = self.shards.len() == shards;
        for (k, entry) in self.shards.iter().enumerate() {
            let first = k as u64 * cfg.checkpoint_interval as u64;
            let count = cfg
                .checkpoint_interval
                .min(cfg.samples.saturating_sub(first as usize));
            let file = shard_file_name(k);
            if (entry.file.as_str(), entry.first_index, entry.count)
                != (file.as_str(), first, count)
            {
                covered = false;
                problems.push(format!(
                    "shard {k} is {} [{}, +{}), expected {file} [{first}, +{count})",
                    entry.file, entry.first_index, entry.count
                ));
            }
            let path = dir.join(&entry.file);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() != entry.bytes => problems.push(format!(
                    "{}: the file has {} bytes, but the manifest's bytes says {}",
                    entry.file,
                    m.len(),
                    entry.bytes
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("{}: {e}", entry.file)),
            }
        }
        // Only once the entries cover the samples: an edited `samples` of 10^12 is not counted.
        if covered {
            let expected = split_counts(cfg);
            let nonzero = |m: &BTreeMap<String, usize>| {
                let mut m = m.clone();
                m.retain(|_, v| *v > 0);
                m
            };
            if nonzero(&self.split.counts) != nonzero(&expected) {
                problems.push(differs(
                    "split.counts",
                    format!("{:?}", self.split.counts),
                    format!("the rule for seed {} gives {expected:?}", cfg.seed),
                ));
            }
        }
        problems
    }
}

/// Samples per class: the classes take turns (`class_of`), so the first `samples % n` classes
/// get one more.
pub fn class_counts(cfg: &DataConfig) -> BTreeMap<String, usize> {
    let n = cfg.classes.len();
    cfg.classes
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let extra = usize::from(j < cfg.samples % n);
            (c.name().to_string(), cfg.samples / n + extra)
        })
        .collect()
}

/// Samples per split under [`SPLIT_RULE`] (one hash per sample).
pub fn split_counts(cfg: &DataConfig) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = Split::ALL
        .iter()
        .map(|s| (s.name().to_string(), 0))
        .collect();
    for i in 0..cfg.samples as u64 {
        *counts
            .get_mut(split_of(cfg.seed, i, &cfg.split).name())
            .expect("listed") += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_class_counts_match_the_round_robin() {
        for samples in [1, 7, 64, 65, 1001] {
            let cfg = DataConfig {
                samples,
                classes: vec![Class::Helical, Class::Linear, Class::Circular],
                ..DataConfig::tiny()
            };
            let mut counted: BTreeMap<String, usize> =
                cfg.classes.iter().map(|c| (c.name().into(), 0)).collect();
            for i in 0..samples as u64 {
                *counted
                    .entry(crate::sample::class_of(&cfg, i).name().into())
                    .or_default() += 1;
            }
            assert_eq!(class_counts(&cfg), counted, "{samples}");
        }
    }

    #[test]
    fn counts_are_balanced_and_saved_atomically() {
        let cfg = DataConfig::tiny();
        let m = Manifest::new(&cfg);
        assert_eq!(
            m.class_counts.values().copied().collect::<Vec<_>>(),
            vec![16; 4]
        );
        assert_eq!(m.split.counts.values().sum::<usize>(), 64);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![MANIFEST_FILE.to_string()]);
    }
}
