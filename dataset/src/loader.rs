//! Read access for the trainer: open a generated folder, verify hashes on demand, load shards.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::config::DataConfig;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ShardEntry, MANIFEST_FILE};
use crate::shard::{hash_file, read_shard, Shard};
use crate::split::Split;

#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Dataset {
    /// Opens a complete dataset whose manifest passes [`Manifest::problems`] (the same check
    /// as `data check`'s, short of reading the shards): the error lists every problem. Hashes
    /// are not checked (that reads every byte); see [`Dataset::verify`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::load(&dir)?;
        let problems = manifest.problems(&dir);
        if !problems.is_empty() {
            return Err(Error::format(
                dir.join(MANIFEST_FILE),
                format!(
                    "the dataset does not match its manifest: {} (`trajhost data check` lists every problem)",
                    problems.join("; ")
                ),
            ));
        }
        Ok(Dataset { dir, manifest })
    }

    /// [`Dataset::open`] followed by [`Dataset::verify`].
    pub fn open_verified(dir: impl AsRef<Path>) -> Result<Dataset> {
        let ds = Dataset::open(dir)?;
        ds.verify()?;
        Ok(ds)
    }

    /// Checks every shard's SHA-256 against the manifest (in parallel); the error names the
    /// first mismatching shard file.
    pub fn verify(&self) -> Result<()> {
        (0..self.num_shards())
            .into_par_iter()
            .try_for_each(|k| self.verify_shard(k))
    }

    pub fn verify_shard(&self, k: usize) -> Result<()> {
        let entry = &self.manifest.shards[k];
        let (_, actual) = hash_file(&self.dir.join(&entry.file))?;
        if actual != entry.sha256 {
            return Err(Error::HashMismatch {
                file: entry.file.clone(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    pub fn num_shards(&self) -> usize {
        self.manifest.shards.len()
    }

    pub fn len(&self) -> usize {
        self.manifest.samples
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.samples == 0
    }

    /// Loads shard `k` (dtypes, shapes and sample range are checked against the manifest).
    pub fn load_shard(&self, k: usize) -> Result<Shard> {
        read_checked_shard(&self.dir, &self.manifest.shards[k], &self.manifest.config)
    }

    /// Split membership of a global sample index.
    pub fn split_of(&self, index: u64) -> Split {
        self.manifest.split_of(index)
    }

    /// All global indices in `split`, ascending.
    pub fn indices(&self, split: Split) -> Vec<u64> {
        (0..self.manifest.samples as u64)
            .filter(|&i| self.split_of(i) == split)
            .collect()
    }
}

/// Reads the shard file of `entry` and checks its metadata (sample range, frames, horizon,
/// size) against the manifest entry and config; shared by the loader and `data check`.
pub(crate) fn read_checked_shard(
    dir: &Path,
    entry: &ShardEntry,
    cfg: &DataConfig,
) -> Result<Shard> {
    let path = dir.join(&entry.file);
    let (meta, shard) = read_shard(&path)?;
    let expected = (
        entry.first_index,
        entry.count,
        cfg.frames,
        cfg.horizon,
        cfg.height,
        cfg.width,
    );
    let got = (
        meta.first_index,
        meta.count,
        meta.frames,
        meta.horizon,
        meta.height,
        meta.width,
    );
    if got != expected {
        return Err(Error::format(
            &path,
            format!(
                "(first_index, count, frames, horizon, height, width) is {got:?}, \
                 manifest says {expected:?}"
            ),
        ));
    }
    Ok(shard)
}
