//! What a user asks for, as RON files: the training config, the sweep config and the gate's
//! thresholds. Parsed through `trajhost-config` (the same reader the dataset and the plugins
//! use), so every error names the field with its line and column.

pub mod gate;
pub mod sweep;
pub mod train;

pub use gate::GateConfig;
pub use sweep::{Phase, RunSpec, SweepConfig};
pub use train::{EarlyStoppingConfig, LossWeights, Metric, PositionHead, TrainConfig};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use trajhost_config::{Invalid, Source};

/// How `--data` (and a sweep's `data`) names a data config to render on the fly instead of a
/// dataset folder: `procedural:configs/data.ron` (see `train::source`). Only the two functions
/// below read or write it.
const PROCEDURAL_PREFIX: &str = "procedural:";

/// The data config a `--data` spec renders on the fly (`procedural:PATH`; `procedural:` alone,
/// the default config, gives ""), or None for a dataset folder.
pub fn procedural_config(spec: &Path) -> Option<String> {
    spec.to_string_lossy()
        .strip_prefix(PROCEDURAL_PREFIX)
        .map(str::to_string)
}

/// The `--data` spec that renders the data config `config` on the fly.
pub fn procedural_spec(config: &Path) -> PathBuf {
    PathBuf::from(format!("{PROCEDURAL_PREFIX}{}", config.display()))
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
