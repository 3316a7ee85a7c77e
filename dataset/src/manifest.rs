//! `manifest.json`: the config, seed, split rule and counts, per-class counts, and one entry per
//! complete shard (sample range, size, SHA-256). Always replaced atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::camera::{NORM_DEPTH, NORM_SCALE};
use crate::config::{DataConfig, SplitFractions};
use crate::error::{Error, Result};
use crate::sample::class_of;
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
        let mut class_counts: BTreeMap<String, usize> = cfg
            .classes
            .iter()
            .map(|c| (c.name().to_string(), 0))
            .collect();
        let mut split_counts: BTreeMap<String, usize> = Split::ALL
            .iter()
            .map(|s| (s.name().to_string(), 0))
            .collect();
        for i in 0..cfg.samples as u64 {
            *class_counts
                .get_mut(class_of(cfg, i).name())
                .expect("listed") += 1;
            *split_counts
                .get_mut(split_of(cfg.seed, i, &cfg.split).name())
                .expect("listed") += 1;
        }
        Manifest {
            format_version: FORMAT_VERSION,
            generator: concat!("trajhost-dataset ", env!("CARGO_PKG_VERSION")).into(),
            config: cfg.clone(),
            seed: cfg.seed,
            samples: cfg.samples,
            classes: Class::NAMES.iter().map(|s| s.to_string()).collect(),
            class_counts,
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
                counts: split_counts,
            },
            shards: Vec::new(),
            complete: false,
        }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
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
        let mut tmp = tempfile::Builder::new()
            .prefix(".manifest-")
            .suffix(".tmp")
            // 0666 less the umask (0644 under umask 022), as for any file; tempfile's 0600 would
            // keep teammates out of a shared dataset.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_string_pretty(self).expect("manifest serialises");
        tmp.write_all(json.as_bytes())
            .and_then(|()| tmp.write_all(b"\n"))
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }

    pub fn split_of(&self, index: u64) -> Split {
        split_of(self.seed, index, &self.split.fractions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
