//! A trained model back from its run folder: the checkpoint chosen, the plugin it names, the
//! heads and weights restored — refused, naming what differs, when the plugin or the
//! architecture no longer fits (as `train --resume` refuses).

use crate::plugin::{resolve_plugin, Plugin};
use crate::train::checkpoint::{self, CheckpointMeta, PluginIdentity};
use crate::train::model::UnifiedModel;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::Device;

/// `--checkpoint best|last|PATH`.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointChoice {
    /// The best validation score (`checkpoints/best.json`).
    Best,
    /// The newest epoch checkpoint: the model `final_metrics.json` was measured on.
    Last,
    Path(PathBuf),
}

impl std::str::FromStr for CheckpointChoice {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "best" => CheckpointChoice::Best,
            "last" => CheckpointChoice::Last,
            path => CheckpointChoice::Path(path.into()),
        })
    }
}

pub struct Trained {
    pub model: UnifiedModel,
    pub meta: CheckpointMeta,
    /// The checkpoint's JSON.
    pub checkpoint: PathBuf,
    /// The clips the model reads, `[T, H, W]` (H and W from the checkpoint when it records
    /// them, else from `fallback_size`).
    pub video_shape: [i64; 3],
}

/// The checkpoint's JSON for `choice` in the run folder `run`.
pub fn checkpoint_json(run: &Path, choice: &CheckpointChoice) -> Result<PathBuf> {
    let json = match choice {
        CheckpointChoice::Best => checkpoint::checkpoint_dir(run).join("best.json"),
        CheckpointChoice::Last => checkpoint::newest(run).ok_or_else(|| {
            anyhow!(
                "{} has no complete checkpoint (is it a run folder? a run writes checkpoints/ as it trains)",
                run.display()
            )
        })?,
        CheckpointChoice::Path(path) => path.with_extension("json"),
    };
    if !json.is_file() {
        bail!("checkpoint {} does not exist", json.display());
    }
    Ok(json)
}

/// Loads the model of `run`'s checkpoint `choice` on `device`. `plugin` overrides the plugin
/// the checkpoint names (a path or a name); `fallback_size` is `[H, W]` for checkpoints that
/// do not record their clips' size.
pub fn load(
    run: &Path,
    choice: &CheckpointChoice,
    plugin: Option<&str>,
    device: Device,
    fallback_size: [i64; 2],
) -> Result<Trained> {
    let json = checkpoint_json(run, choice)?;
    let loaded = checkpoint::load(&json)?;
    let meta = &loaded.meta;
    let plugin_path = resolve_plugin(plugin.unwrap_or(&meta.plugin.name)).with_context(|| {
        format!(
            "checkpoint {} was made with plugin '{}' (give another with --plugin)",
            json.display(),
            meta.plugin.name
        )
    })?;
    let plugin = Plugin::load(&plugin_path)?;
    let identity = PluginIdentity {
        name: plugin.stamp.name.clone(),
        version: plugin.stamp.plugin_version.clone(),
        fingerprint: plugin.stamp.fingerprint.clone(),
    };
    let frames = checkpoint::clip_frames(meta).ok_or_else(|| {
        anyhow!(
            "checkpoint {} has no trajectory head: was it made by an older trajhost?",
            json.display()
        )
    })?;
    let backbone = plugin.build(&meta.config.backbone, device)?;
    let mut model = UnifiedModel::new(backbone, frames, device);
    let shapes: Vec<(String, Vec<i64>)> = model
        .state()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    checkpoint::check_fits(meta, &identity, &shapes, &json)?;
    checkpoint::restore_model(&mut model, &loaded, &json)?;
    let video_shape = meta
        .video_shape
        .unwrap_or([frames, fallback_size[0], fallback_size[1]]);
    Ok(Trained {
        model,
        meta: loaded.meta,
        checkpoint: json,
        video_shape,
    })
}
