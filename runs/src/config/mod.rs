//! What a user asks for, as RON files: the training config, the sweep config and the gate's
//! thresholds. Parsed through `trajhost-config` (the same reader the dataset and the plugins
//! use), so every error names the field with its line and column.

pub mod gate;
pub mod sweep;
pub mod train;

pub use gate::GateConfig;
pub use sweep::{Phase, RunSpec, SweepConfig};
pub use train::{
    Background, Colour, EarlyStoppingConfig, LossWeights, Metric, PositionHead, TrainConfig,
};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use trajhost_config::{Invalid, Source};

/// How `--data` (and a sweep's `data`) names a data config to render on the fly instead of a
/// dataset folder: `procedural:configs/data.ron`. Only [`DataSpec`] reads or writes it.
const PROCEDURAL_PREFIX: &str = "procedural:";

/// What `--data` (or a sweep's `data`) names, told apart once: the host's
/// `train::source::DataSource` loads it; the sweep only checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSpec {
    /// A dataset folder made by `trajhost data generate`.
    Stored(PathBuf),
    /// A data config rendered on the fly (`procedural:PATH`); `None` for `procedural:` alone,
    /// the default config.
    Procedural(Option<PathBuf>),
}

impl DataSpec {
    pub fn parse(spec: &Path) -> Self {
        match spec.to_string_lossy().strip_prefix(PROCEDURAL_PREFIX) {
            None => DataSpec::Stored(spec.to_path_buf()),
            Some("") => DataSpec::Procedural(None),
            Some(config) => DataSpec::Procedural(Some(PathBuf::from(config))),
        }
    }

    /// How it is written on the command line.
    pub fn to_arg(&self) -> PathBuf {
        match self {
            DataSpec::Stored(dir) => dir.clone(),
            DataSpec::Procedural(None) => PathBuf::from(PROCEDURAL_PREFIX),
            DataSpec::Procedural(Some(config)) => {
                PathBuf::from(format!("{PROCEDURAL_PREFIX}{}", config.display()))
            }
        }
    }
}

/// The most threads `--threads` (and a sweep's `threads`) accepts: libtorch panics on 0 or a
/// negative count and crashes trying to start 100 000.
pub const MAX_THREADS: usize = 1024;

/// Reads and checks a config file.
pub fn load<T: DeserializeOwned>(
    path: &Path,
    check: impl FnOnce(&T) -> Result<(), Invalid>,
) -> Result<T> {
    let text =
        trajhost_config::read_file(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string(), check)
}

/// Parses and checks RON text; `source` (usually the path) prefixes every error.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    source: &str,
    check: impl FnOnce(&T) -> Result<(), Invalid>,
) -> Result<T> {
    Ok(Source::new(text, source).parse_checked(check)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_spec_is_a_folder_or_a_procedural_config_and_writes_back_as_given() {
        for (text, spec) in [
            ("data/10k", DataSpec::Stored("data/10k".into())),
            ("procedural:", DataSpec::Procedural(None)),
            (
                "procedural:configs/data.ron",
                DataSpec::Procedural(Some("configs/data.ron".into())),
            ),
        ] {
            assert_eq!(DataSpec::parse(Path::new(text)), spec);
            assert_eq!(spec.to_arg(), Path::new(text));
        }
    }
}
