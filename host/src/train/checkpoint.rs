//! Checkpoints: `checkpoints/<name>.safetensors` (model weights and buffers, AdamW moments)
//! plus `checkpoints/<name>.json` (everything else). The JSON is written last, so a
//! checkpoint whose JSON exists is complete; both writes are atomic.
//!
//! Names: `epoch-0010` after a finished epoch, `epoch-0010-step-0012` when a run was
//! interrupted 12 steps into epoch 11, and `best` for the best validation score so far.

use super::metrics::Accumulator;
use super::model::{UnifiedModel, FRAME_CODE};
use super::stopping::EarlyStoppingState;
use crate::atomic::{write_json, write_with};
use crate::config::TrainConfig;
use crate::plugin::Plugin;
use crate::rundir::{metrics::StopReason, CHECKPOINTS};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginIdentity {
    pub name: String,
    pub version: String,
    pub fingerprint: String,
    /// SHA-256 of the plugin file trained with; None in checkpoints from before the field.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where that file was (absolute): named in the hint when the plugin is not found by
    /// name, never loaded from here. None in checkpoints from before the field.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl PluginIdentity {
    pub fn of(plugin: &Plugin) -> PluginIdentity {
        PluginIdentity {
            name: plugin.stamp.name.clone(),
            version: plugin.stamp.plugin_version.clone(),
            fingerprint: plugin.stamp.fingerprint.clone(),
            sha256: Some(plugin.sha256.clone()),
            path: std::fs::canonicalize(&plugin.path).ok(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// Batches already trained of epoch `epoch + 1` (0 at an epoch boundary).
    pub step_in_epoch: usize,
    /// Optimiser steps so far.
    pub global_step: i64,
    /// The partial epoch's training sums.
    pub train_progress: Accumulator,
    pub early_stopping: EarlyStoppingState,
    /// Seconds of training so far, across resumes.
    pub elapsed_seconds: f64,
    pub timestamp_unix: u64,
    pub config: TrainConfig,
    pub plugin: PluginIdentity,
    /// Name and shape of every saved model tensor, to refuse another architecture early.
    pub model_tensors: Vec<(String, Vec<i64>)>,
    pub tensors_file: String,
    pub tensors_bytes: u64,
    /// SHA-256 of the tensors file, checked on every load; None in checkpoints from before
    /// the field.
    #[serde(default)]
    pub tensors_sha256: Option<String>,
    /// Set on the checkpoint of the epoch where training stopped (all epochs done, early
    /// stopping, time budget): resuming it only redoes the final evaluation if that is missing.
    /// None for older checkpoints, and for every other one.
    #[serde(default)]
    pub stopped: Option<StopReason>,
    /// The dataset trained on (absolute), so `eval` can default to its test split; None in
    /// checkpoints from before the field.
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// [`DataSource::digest`](crate::train::source::DataSource::digest) of that data when
    /// training started; None in checkpoints from before the field.
    #[serde(default)]
    pub data_digest: Option<String>,
    /// The clips the model was trained on, `[T, H, W]`, so `predict` can resize its input;
    /// None in checkpoints from before the field.
    #[serde(default)]
    pub video_shape: Option<[i64; 3]>,
}

pub fn checkpoint_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINTS)
}

pub fn name_for(epoch: usize, step_in_epoch: usize) -> String {
    match step_in_epoch {
        0 => format!("epoch-{epoch:04}"),
        s => format!("epoch-{epoch:04}-step-{s:04}"),
    }
}

/// Writes a checkpoint named `name` (tensors first, then the JSON that completes it).
pub fn save(
    dir: &Path,
    name: &str,
    meta: &mut CheckpointMeta,
    tensors: &[(String, Tensor)],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tensors_file = format!("{name}.safetensors");
    let tensors_path = dir.join(&tensors_file);
    write_with(&tensors_path, 0o666, |temp| {
        Ok(Tensor::write_safetensors(tensors, temp)?)
    })?;
    let (bytes, sha256) = trajhost_dataset::shard::hash_file(&tensors_path)?;
    meta.tensors_file = tensors_file;
    meta.tensors_bytes = bytes;
    meta.tensors_sha256 = Some(sha256);
    let json = dir.join(format!("{name}.json"));
    write_json(&json, meta)?;
    Ok(json)
}

pub struct Loaded {
    pub meta: CheckpointMeta,
    pub tensors: HashMap<String, Tensor>,
}

/// Reads a checkpoint given as its `.json`, its `.safetensors` or its name without extension.
pub fn load(path: &Path) -> Result<Loaded> {
    let json = path.with_extension("json");
    let meta = read_meta(&json)?;
    let tensors_path = json.with_file_name(&meta.tensors_file);
    // read_meta checked that it is a regular file of the recorded size.
    let bytes = std::fs::read(&tensors_path)
        .with_context(|| format!("reading checkpoint tensors {}", tensors_path.display()))?;
    if let Some(expected) = &meta.tensors_sha256 {
        let actual = trajhost_dataset::shard::sha256_hex(&bytes);
        if &actual != expected {
            bail!(
                "checkpoint {} is damaged: {} has sha256 {actual}, the checkpoint records {expected} (use another checkpoint, e.g. --checkpoint best or an older epoch)",
                json.display(),
                tensors_path.display()
            );
        }
    }
    let damaged = || format!("checkpoint tensors {} are damaged", tensors_path.display());
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(damaged)?
        .tensors()
        .into_iter()
        .map(|(name, view)| Ok((name, Tensor::try_from(view).with_context(damaged)?)))
        .collect::<Result<_>>()?;
    Ok(Loaded { meta, tensors })
}

/// Reads and checks a checkpoint's JSON: it parses, has this format, and its tensors file has
/// the recorded size.
pub fn read_meta(json: &Path) -> Result<CheckpointMeta> {
    let text = crate::rundir::read_regular(json)
        .with_context(|| format!("reading checkpoint {}", json.display()))?
        .with_context(|| format!("checkpoint {} does not exist", json.display()))?;
    let meta: CheckpointMeta = serde_json::from_slice(&text)
        .with_context(|| format!("checkpoint {} is not valid", json.display()))?;
    if meta.format != FORMAT {
        bail!(
            "checkpoint {} has format {}, this trajhost reads format {FORMAT}",
            json.display(),
            meta.format
        );
    }
    // Its config is someone else's file: held to what a config file may say (a billion fovea
    // passes would loop on every frame).
    meta.config
        .validate()
        .with_context(|| format!("checkpoint {}: field `config`", json.display()))?;
    // The tensors lie beside the JSON: a name from the file, never a path elsewhere.
    let plain = Path::new(&meta.tensors_file).file_name() == Some(meta.tensors_file.as_ref())
        && meta.tensors_file.ends_with(".safetensors");
    if !plain {
        bail!(
            "checkpoint {}: tensors_file {:?} is not a .safetensors file name beside it",
            json.display(),
            meta.tensors_file
        );
    }
    let tensors = json.with_file_name(&meta.tensors_file);
    let size = std::fs::symlink_metadata(&tensors)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if size != Some(meta.tensors_bytes) {
        bail!(
            "checkpoint {} is incomplete: {} is missing or has the wrong size",
            json.display(),
            tensors.display()
        );
    }
    Ok(meta)
}

/// The periodic checkpoints (`epoch-*.json`) in `run_dir`, readable or not.
fn periodic_jsons(run_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(checkpoint_dir(run_dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with("epoch-"))
        })
        .collect();
    found.sort();
    found
}

/// What `--resume auto` finds in a run folder.
struct Scan {
    /// The newest valid checkpoint (by training progress).
    newest: Option<PathBuf>,
    /// Checkpoints that cannot be resumed from, each with why.
    unreadable: Vec<(PathBuf, String)>,
}

/// Reads every periodic checkpoint of `run_dir` far enough to know it can be resumed: the
/// JSON parses, the tensors file has the recorded size and its safetensors header parses.
fn scan(run_dir: &Path) -> Scan {
    let mut valid = Vec::new();
    let mut unreadable = Vec::new();
    for json in periodic_jsons(run_dir) {
        let checked = read_meta(&json).and_then(|meta| {
            check_tensors_header(&json.with_file_name(&meta.tensors_file))?;
            Ok(meta)
        });
        match checked {
            Ok(meta) => valid.push(((meta.epoch, meta.step_in_epoch), json)),
            Err(e) => unreadable.push((json, format!("{e:#}"))),
        }
    }
    Scan {
        newest: valid
            .into_iter()
            .max_by_key(|(progress, _)| *progress)
            .map(|(_, p)| p),
        unreadable,
    }
}

/// The checkpoint `--resume auto` continues from: the newest valid one (None where there is no
/// checkpoint yet), and a warning for each unreadable one it skips. Refuses, naming each
/// unreadable file, when there are checkpoints but none can be read: starting over would lose
/// the run.
pub fn for_auto_resume(run_dir: &Path) -> Result<(Option<PathBuf>, Vec<String>)> {
    newest_readable(run_dir).map_err(|e| {
        anyhow!("--resume auto: {e:#} (nothing to resume from, and starting over would lose the run; move the folder away, or use --overwrite)")
    })
}

/// The newest valid checkpoint in `run_dir` (None where there is none yet), and a warning for
/// each unreadable one skipped; an error naming each unreadable file when none can be read.
pub fn newest_readable(run_dir: &Path) -> Result<(Option<PathBuf>, Vec<String>)> {
    let scan = scan(run_dir);
    let unreadable: Vec<String> = scan
        .unreadable
        .iter()
        .map(|(path, why)| {
            let path = path.display().to_string();
            if why.contains(&path) {
                why.clone()
            } else {
                format!("{path}: {why}")
            }
        })
        .collect();
    if scan.newest.is_none() && !unreadable.is_empty() {
        bail!(
            "no checkpoint in {} can be read:\n  {}",
            checkpoint_dir(run_dir).display(),
            unreadable.join("\n  ")
        );
    }
    let skipped = unreadable
        .into_iter()
        .map(|problem| format!("skipping an unreadable checkpoint: {problem}"))
        .collect();
    Ok((scan.newest, skipped))
}

/// The newest valid checkpoint in `run_dir`, if any (see [`scan`]).
pub fn newest(run_dir: &Path) -> Option<PathBuf> {
    scan(run_dir).newest
}

/// Checks that a safetensors file's header parses and its tensors lie within the file,
/// without reading the tensors.
pub fn check_tensors_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let shown = path.display();
    let mut file = crate::rundir::open_regular(path)
        .with_context(|| format!("opening {shown}"))?
        .with_context(|| format!("{shown} does not exist"))?;
    let size = file.metadata()?.len();
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .with_context(|| format!("{shown} is too short for a safetensors header"))?;
    let length = u64::from_le_bytes(length);
    if length > size.saturating_sub(8) || length > 100 << 20 {
        bail!(
            "{shown}: the safetensors header length {length} does not fit the file ({size} bytes)"
        );
    }
    let mut header = vec![0u8; length as usize];
    file.read_exact(&mut header)
        .with_context(|| format!("reading the header of {shown}"))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .with_context(|| format!("{shown}: the safetensors header is damaged"))?;
    let data = size - 8 - length;
    for (name, entry) in header.iter().filter(|(n, _)| *n != "__metadata__") {
        let offsets = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .map(|o| o.iter().filter_map(|v| v.as_u64()).collect::<Vec<_>>());
        match offsets.as_deref() {
            Some(&[begin, end]) if begin <= end && end <= data => {}
            _ => bail!("{shown}: tensor '{name}' lies outside the file (the header is damaged)"),
        }
    }
    Ok(())
}

/// Refuses a checkpoint made for another plugin or architecture, naming what differs. Another
/// build of the same plugin (its file's hash differs) is refused unless `accept_plugin_change`.
pub fn check_fits(
    meta: &CheckpointMeta,
    plugin: &PluginIdentity,
    accept_plugin_change: bool,
    model: &[(String, Vec<i64>)],
    source: &Path,
) -> Result<()> {
    check_plugin(meta, plugin, accept_plugin_change, source)?;
    check_shapes(meta, model, source)
}

/// The plugin half of [`check_fits`]: callable before the backbone is built, so a checkpoint
/// for another plugin or build costs no model.
pub fn check_plugin(
    meta: &CheckpointMeta,
    plugin: &PluginIdentity,
    accept_plugin_change: bool,
    source: &Path,
) -> Result<()> {
    let shown = source.display();
    if meta.plugin.name != plugin.name {
        bail!(
            "checkpoint {shown} was made for plugin '{}' {}, this run uses plugin '{}' {}",
            meta.plugin.name,
            meta.plugin.version,
            plugin.name,
            plugin.version
        );
    }
    if meta.plugin.fingerprint != plugin.fingerprint {
        bail!(
            "checkpoint {shown} was made with {}, this run uses {}",
            meta.plugin.fingerprint,
            plugin.fingerprint
        );
    }
    if let (Some(saved), Some(loaded)) = (&meta.plugin.sha256, &plugin.sha256) {
        if saved != loaded && accept_plugin_change {
            eprintln!(
                "warning: checkpoint {shown} was made with another build of plugin '{}' (version {}, sha256 {saved}); using version {} (sha256 {loaded}) as --accept-plugin-change says",
                plugin.name, meta.plugin.version, plugin.version
            );
        }
        if saved != loaded && !accept_plugin_change {
            bail!(
                "checkpoint {shown} was made with another build of plugin '{}' (sha256 {saved}, version {}); the plugin file found now has sha256 {loaded} (version {}): give --accept-plugin-change to use it anyway, or --plugin to choose the file trained with",
                plugin.name,
                meta.plugin.version,
                plugin.version
            );
        }
    }
    Ok(())
}

/// The architecture half of [`check_fits`]: the model's tensor names and shapes.
fn check_shapes(meta: &CheckpointMeta, model: &[(String, Vec<i64>)], source: &Path) -> Result<()> {
    let shown = source.display();
    if meta.model_tensors != model {
        let saved: HashMap<&String, &Vec<i64>> =
            meta.model_tensors.iter().map(|(n, s)| (n, s)).collect();
        let (name, difference) = model
            .iter()
            .find_map(|(n, s)| match saved.get(n) {
                None => Some((
                    n.as_str(),
                    format!("the model has '{n}' {s:?}, the checkpoint does not"),
                )),
                Some(saved) if *saved != s => Some((
                    n.as_str(),
                    format!("'{n}' is {s:?} in the model, {saved:?} in the checkpoint"),
                )),
                _ => None,
            })
            .unwrap_or_else(|| {
                let model: std::collections::HashSet<&String> =
                    model.iter().map(|(n, _)| n).collect();
                let difference = match meta.model_tensors.iter().find(|(n, _)| !model.contains(n)) {
                    Some((extra, _)) => format!("the checkpoint has '{extra}', the model does not"),
                    None => "the checkpoint lists the model's tensors in another order".into(),
                };
                ("", difference)
            });
        let hint = if name.starts_with("heads.trajectory_in") {
            "the heads read clips of a fixed length: does the dataset have other `frames` than the checkpoint's?"
        } else if name.starts_with("heads.") {
            "was the checkpoint made by a trajhost with other heads?"
        } else {
            "was the backbone config changed?"
        };
        return Err(anyhow!(
            "checkpoint {shown} does not fit this model's architecture: {difference} ({hint})"
        ));
    }
    Ok(())
}

/// Copies a checkpoint's model tensors (the backbone's and the heads') into `model`, which
/// `check_fits` has accepted.
pub fn restore_model(model: &mut UnifiedModel, loaded: &Loaded, source: &Path) -> Result<()> {
    let backbone: HashMap<String, Tensor> = loaded
        .tensors
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix("backbone.")
                .map(|n| (n.to_string(), t.shallow_clone()))
        })
        .collect();
    model
        .backbone
        .load_state(&backbone)
        .with_context(|| format!("restoring checkpoint {}", source.display()))?;
    tch::no_grad(|| -> Result<()> {
        for (name, mut head) in model
            .state()
            .into_iter()
            .filter(|(n, _)| n.starts_with("heads."))
        {
            let saved = loaded.tensors.get(&name).ok_or_else(|| {
                anyhow!(
                    "checkpoint {} has no tensor '{name}' (its tensors file is damaged or incomplete)",
                    source.display()
                )
            })?;
            head.f_copy_(saved)?;
        }
        Ok(())
    })
}

/// The clip length the checkpoint's heads read: the trajectory encoder's input is
/// `frames × (FRAME_CODE + 3)` wide.
pub fn clip_frames(meta: &CheckpointMeta) -> Option<i64> {
    meta.model_tensors
        .iter()
        .find(|(n, _)| n == "heads.trajectory_in.weight")
        .and_then(|(_, shape)| shape.get(1))
        .map(|width| width / (FRAME_CODE + 3))
}

/// Deletes periodic checkpoints beyond the newest `keep` (never `best`).
pub fn prune(run_dir: &Path, keep: usize) -> Result<()> {
    let mut periodic: Vec<(usize, usize, PathBuf)> = periodic_jsons(run_dir)
        .into_iter()
        .filter_map(|p| read_meta(&p).ok().map(|m| (m.epoch, m.step_in_epoch, p)))
        .collect();
    periodic.sort();
    let excess = periodic.len().saturating_sub(keep);
    for (_, _, json) in periodic.into_iter().take(excess) {
        // The JSON first: without it the checkpoint no longer counts as complete.
        std::fs::remove_file(&json)?;
        let _ = std::fs::remove_file(json.with_extension("safetensors"));
    }
    Ok(())
}
