//! Where a run's videos come from: a dataset folder written by `trajhost data generate`
//! (`data::stored`), or `procedural:<data config>`, rendered on the fly (`data::procedural`),
//! parsed once from `--data` and loaded into the same [`TrainingData`].

use super::data::procedural::{self, Procedural};
use super::data::{stored, SplitData};
use anyhow::{bail, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use trajhost_dataset::shard::hex;
use trajhost_dataset::{DataConfig, Manifest};

use crate::config::DataSpec;

/// A run's splits, whichever the source.
pub struct TrainingData {
    /// Without videos when `procedural` renders them instead.
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    pub frames: usize,
    /// Set when training batches are rendered on the fly.
    pub procedural: Option<Procedural>,
}

#[derive(Debug, Clone)]
pub enum DataSource {
    /// A dataset folder.
    Stored(PathBuf),
    /// A data config, rendered on the fly.
    Procedural {
        config_path: PathBuf,
        config: Box<DataConfig>,
    },
}

impl DataSource {
    /// `procedural:PATH` (a data config; `procedural:` alone is the default config), else a
    /// dataset folder.
    pub fn parse(spec: &Path) -> Result<Self> {
        let config_path = match DataSpec::parse(spec) {
            DataSpec::Stored(dir) => return Ok(DataSource::Stored(dir)),
            DataSpec::Procedural(None) => {
                return Ok(DataSource::Procedural {
                    config_path: PathBuf::from("configs/data.ron"),
                    config: Box::new(DataConfig::default_config()),
                })
            }
            DataSpec::Procedural(Some(path)) => path,
        };
        let config = Box::new(DataConfig::from_file(&config_path)?);
        Ok(DataSource::Procedural {
            config_path,
            config,
        })
    }

    /// Refuses a data spec recorded in a file from someone else (a checkpoint) that names
    /// anything but a folder or a `.ron` data config: reading another file as a config would
    /// echo its first bytes in the error.
    pub fn check_recorded(spec: &Path) -> Result<()> {
        if let DataSpec::Procedural(Some(config)) = DataSpec::parse(spec) {
            if config.extension().is_none_or(|e| e != "ron") {
                bail!("a recorded procedural data config must be a .ron file");
            }
        }
        Ok(())
    }

    /// Whether this is the data `recorded` (a checkpoint's `data`) names: the same kind, at
    /// the same real path.
    pub fn is_recorded(&self, recorded: &Path) -> bool {
        let real = |path: &Path| std::fs::canonicalize(path).ok();
        let recorded = match (DataSpec::parse(recorded), self) {
            (DataSpec::Stored(dir), DataSource::Stored(_)) => dir,
            (DataSpec::Procedural(Some(config)), DataSource::Procedural { .. }) => config,
            _ => return false,
        };
        real(&recorded).is_some_and(|r| Some(r) == real(self.input()))
    }

    /// Whether this is the data a checkpoint recorded (`recorded`, with `digest` where the
    /// checkpoint has one): the same path, still holding what it held then. A data config
    /// edited or a dataset regenerated at that path since is other data.
    pub fn is_as_recorded(&self, recorded: &Path, digest: Option<&str>) -> Result<bool> {
        if !self.is_recorded(recorded) {
            return Ok(false);
        }
        Ok(match digest {
            Some(digest) => self.digest()? == digest,
            None => true, // a checkpoint from before the digest: the path is all it says
        })
    }

    /// A digest of the data it holds — the data config's settings, and for a dataset each
    /// shard's hash — recorded in checkpoints (`is_as_recorded`). The worker count is left out:
    /// it changes no byte.
    pub fn digest(&self) -> Result<String> {
        let (mut config, shards) = match self {
            DataSource::Stored(dir) => {
                let manifest = Manifest::load(dir)?;
                let shards = manifest.shards.into_iter().map(|s| s.sha256).collect();
                (manifest.config, shards)
            }
            DataSource::Procedural { config, .. } => ((**config).clone(), Vec::new()),
        };
        config.workers = 0;
        let bytes = serde_json::to_vec(&(config, shards))?;
        Ok(hex(&Sha256::digest(bytes)))
    }

    /// What it reads: the dataset folder or the data config.
    pub fn input(&self) -> &Path {
        match self {
            DataSource::Stored(dir) => dir,
            DataSource::Procedural { config_path, .. } => config_path,
        }
    }

    /// How it is written on the command line, with absolute paths (recorded in checkpoints).
    pub fn spec(&self) -> Result<PathBuf> {
        Ok(match self {
            DataSource::Stored(dir) => std::path::absolute(dir)?,
            DataSource::Procedural { config_path, .. } => {
                DataSpec::Procedural(Some(std::path::absolute(config_path)?)).to_arg()
            }
        })
    }

    /// The clips, `[T, H, W]`.
    pub fn clip_shape(&self) -> Result<[i64; 3]> {
        match self {
            DataSource::Stored(dir) => stored::clip_shape(dir),
            DataSource::Procedural { config, .. } => Ok([
                config.frames as i64,
                config.height as i64,
                config.width as i64,
            ]),
        }
    }

    /// The splits: all in memory for a stored dataset; for a procedural one, val and test
    /// rendered, and the training split's labels without its videos.
    pub fn load(&self, predict_future: usize, max_train: Option<usize>) -> Result<TrainingData> {
        let ([train, val, test], procedural) = match self {
            DataSource::Stored(dir) => (stored::load(dir, predict_future, max_train)?, None),
            DataSource::Procedural { config, .. } => {
                let (splits, renderer) = procedural::load(config, predict_future, max_train)?;
                (splits, Some(renderer))
            }
        };
        let frames = train.track.size()[1] as usize;
        Ok(TrainingData {
            train,
            val,
            test,
            frames,
            procedural,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_reads_a_config_or_the_default_and_leaves_folders_alone() {
        assert!(matches!(
            DataSource::parse(Path::new("data/10k")).unwrap(),
            DataSource::Stored(_)
        ));
        let DataSource::Procedural { config, .. } =
            DataSource::parse(Path::new("procedural:")).unwrap()
        else {
            panic!("procedural")
        };
        assert_eq!(*config, DataConfig::default_config());
        let err = format!(
            "{:#}",
            DataSource::parse(Path::new("procedural:/nonexistent.ron")).unwrap_err()
        );
        assert!(err.contains("/nonexistent.ron"), "{err}");
    }

    #[test]
    fn the_digest_follows_the_data_not_the_worker_count() {
        let source = |config: DataConfig| DataSource::Procedural {
            config_path: PathBuf::from("configs/data.ron"),
            config: Box::new(config),
        };
        let config = DataConfig::default_config();
        let digest = source(config.clone()).digest().unwrap();
        let more_workers = DataConfig {
            workers: config.workers + 3,
            ..config.clone()
        };
        assert_eq!(source(more_workers).digest().unwrap(), digest);
        let noisier = DataConfig {
            pixel_noise: 0.05,
            ..config
        };
        assert_ne!(source(noisier).digest().unwrap(), digest);
    }
}
