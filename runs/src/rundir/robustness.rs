//! `robustness.json`: a trained model's accuracy and MSE on test sets shifted away from its
//! training distribution, written by `trajhost eval --shifts` and shown by `compare`.

use super::read_json;
use crate::atomic::write_json;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const ROBUSTNESS: &str = "robustness.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    pub run: String,
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    pub epoch: usize,
    /// Videos in each shifted test set.
    pub samples: usize,
    /// The seed every set was generated with (not the training data's: no video is shared).
    pub seed: u64,
    /// The data whose config every set shifts (a dataset folder or `procedural:<config>`,
    /// absolute); None in files from before the field.
    #[serde(default)]
    pub data: Option<String>,
    /// Each answer averaged with the mirror image's: the run's own `mirror_average`, or
    /// `eval --mirror-average` on a run without it (which writes only to a `--shifts-out` file:
    /// a run's own table is its own model's).
    #[serde(default)]
    pub mirror_averaged: bool,
    /// The fovea's looks, where `eval --fovea-passes` made them other than the run's own (which
    /// writes only to a `--shifts-out` file too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fovea_passes: Option<usize>,
    /// The unshifted set first, then one row per shift.
    pub rows: Vec<ShiftResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftResult {
    /// `none`, `pixel_noise_0.05`, `fov_wide`...
    pub shift: String,
    /// What changed, in words.
    pub description: String,
    /// The generated test set.
    pub data: PathBuf,
    pub accuracy: f64,
    pub mse: f64,
    /// Unshifted accuracy minus this one (positive = worse).
    pub accuracy_drop: f64,
    /// This MSE over the unshifted one (above 1 = worse).
    pub mse_ratio: f64,
    /// A look or camera no training range covers (a transfer test); false in files from
    /// before the field.
    #[serde(default)]
    pub held_out: bool,
}

pub fn read(dir: &Path) -> Result<Option<Robustness>> {
    read_json(&dir.join(ROBUSTNESS))
}

/// Writes `robustness` to `path`, or to the run folder `dir`'s own file without one.
pub fn write(dir: &Path, path: Option<&Path>, robustness: &Robustness) -> Result<PathBuf> {
    let path = path.map_or_else(|| dir.join(ROBUSTNESS), Path::to_path_buf);
    write_json(&path, robustness)?;
    Ok(path)
}
