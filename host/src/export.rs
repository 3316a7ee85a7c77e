//! `trajhost export`: a run's model as a PyTorch state dict that the `trajhost` Python package
//! (`python/trajhost`) loads with `strict=True`: `model.safetensors` (every parameter and
//! buffer under the plugins' own names, plus BatchNorm's `num_batches_tracked`, which libtorch
//! does not keep) and `model.json` (what to build, and the run it came from).
//!
//! No plugin is loaded: a run folder may come from someone else, and its tensors and config
//! are all the export needs.

use crate::eval::trained::{checkpoint_json, CheckpointChoice};
use crate::train::checkpoint::{self, CheckpointMeta};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The backbones the Python package builds (`trajhost.backbones.BACKBONES`).
pub const PYTHON_BACKBONES: [&str; 4] = ["i3d", "slowfast", "transformer", "magvit"];
/// `model.json`'s format, checked by `trajhost.load`.
pub const FORMAT: u32 = 1;

/// `trajhost export`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run folder (e.g. results/magvit).
    #[arg(long)]
    pub run: PathBuf,
    /// `last` (the model final_metrics.json measured), `best`, or a checkpoint path.
    #[arg(long, default_value = "last")]
    pub checkpoint: CheckpointChoice,
    /// A new (or empty) folder for model.safetensors and model.json.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    if !args.run.is_dir() {
        bail!("{} is not a run folder", args.run.display());
    }
    refuse_unless_new_or_empty(&args.out)?;
    crate::atomic::refuse_outputs_over_inputs(
        &[("--out", &args.out)],
        &[("the run folder", &args.run)],
    )?;
    let json = checkpoint_json(&args.run, &args.checkpoint)?;
    let loaded = checkpoint::load(&json)?;
    let meta = &loaded.meta;
    let backbone = &meta.plugin.name;
    if !PYTHON_BACKBONES.contains(&backbone.as_str()) {
        bail!(
            "checkpoint {} is of plugin '{backbone}'; the trajhost Python package builds {} (a third-party backbone needs a PyTorch module of its own, named like its variable store)",
            json.display(),
            PYTHON_BACKBONES.join(", ")
        );
    }
    let mut tensors = Vec::with_capacity(meta.model_tensors.len());
    for (name, _) in &meta.model_tensors {
        let tensor = loaded.tensors.get(name).with_context(|| {
            format!(
                "checkpoint {} lists tensor {name} but its tensors file lacks it",
                json.display()
            )
        })?;
        tensors.push((name.clone(), tensor.shallow_clone()));
        if let Some(norm) = name.strip_suffix(".running_mean") {
            // PyTorch counts the batches a BatchNorm saw; each training step is one.
            tensors.push((
                format!("{norm}.num_batches_tracked"),
                Tensor::from(meta.global_step),
            ));
        }
    }
    let description = describe(meta, &json, &args.run)?;
    write_folder(&args.out, &tensors, &description)?;
    println!(
        "exported {} ({backbone}, epoch {}) to {}: model.safetensors ({} tensors), model.json",
        json.display(),
        meta.epoch,
        args.out.display(),
        tensors.len()
    );
    Ok(())
}

/// An existing output folder must be empty: an export never mixes with other files.
fn refuse_unless_new_or_empty(out: &Path) -> Result<()> {
    match std::fs::symlink_metadata(out) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => {
            let mut entries =
                std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
            if entries.next().is_some() {
                bail!(
                    "--out {} is not empty; export into a new or empty folder",
                    out.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!("--out {} exists and is not a folder", out.display()),
    }
}

/// `model.json`: what `trajhost.load` builds, and where the weights came from.
fn describe(meta: &CheckpointMeta, json: &Path, run: &Path) -> Result<Value> {
    let frames = checkpoint::clip_frames(meta)
        .with_context(|| format!("checkpoint {} has no trajectory head", json.display()))?;
    let config = &meta.config;
    Ok(json!({
        "format": FORMAT,
        "backbone": meta.plugin.name,
        "backbone_config": backbone_config(&config.backbone).with_context(|| {
            format!("checkpoint {}: field `config.backbone`", json.display())
        })?,
        "backbone_config_ron": config.backbone,
        "frames": frames,
        "video_shape": meta.video_shape,
        "position_head": config.position_head,
        "fovea_passes": config.fovea_passes,
        "mirror_average": config.mirror_average,
        "background": config.background,
        "colour": config.colour,
        "predict_future": config.predict_future,
        "batch_size": config.batch_size,
        "classes": trajhost_dataset::Class::NAMES,
        "input": "uint8 RGB (B, T, 3, H, W) -> float32 p * (1 / 63.75) - 2 (trajhost.data.standardise); with background subtract_median, the model takes each pixel's background out first (trajhost.data.subtract_background)",
        "target": "the ball's position predict_future frames after the clip's last frame, in the normalised camera frame of docs/dataset.md",
        "run": crate::rundir::run_name(run),
        "checkpoint": json.file_name().map(|n| n.to_string_lossy().into_owned()),
        "epoch": meta.epoch,
        "global_step": meta.global_step,
        "plugin": meta.plugin,
        "trajhost": env!("CARGO_PKG_VERSION"),
    }))
}

/// The plugin's RON configuration as JSON for `trajhost.build_backbone`: `(preset: "cpu",
/// width: Some(16))` → `{"preset": "cpu", "width": 16}`; an empty text is `{}` (the `cpu`
/// preset).
pub fn backbone_config(ron_text: &str) -> Result<Value> {
    if ron_text.trim().is_empty() {
        return Ok(json!({}));
    }
    let value: ron::Value =
        ron::from_str(ron_text).with_context(|| format!("{ron_text:?} is not RON"))?;
    let value = to_json(value)?;
    if !value.is_object() {
        bail!("{ron_text:?} is not a configuration like `(preset: \"cpu\")`");
    }
    Ok(value)
}

fn to_json(value: ron::Value) -> Result<Value> {
    Ok(match value {
        ron::Value::Bool(b) => json!(b),
        ron::Value::Char(c) => json!(c.to_string()),
        ron::Value::String(s) => json!(s),
        ron::Value::Number(ron::Number::Integer(i)) => json!(i),
        ron::Value::Number(ron::Number::Float(f)) => json!(f.get()),
        ron::Value::Option(None) | ron::Value::Unit => Value::Null,
        ron::Value::Option(Some(inner)) => to_json(*inner)?,
        ron::Value::Seq(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_>>()?)
        }
        ron::Value::Map(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let ron::Value::String(key) = key else {
                    bail!("a key that is not a field name: {key:?}");
                };
                object.insert(key, to_json(value)?);
            }
            Value::Object(object)
        }
    })
}

/// Writes both files into a temporary folder beside `out`, then renames it into place: an
/// interrupted export leaves no half-written folder, and of two exports to one place the
/// second is refused.
fn write_folder(out: &Path, tensors: &[(String, Tensor)], description: &Value) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    Tensor::write_safetensors(tensors, temp.path().join("model.safetensors"))
        .with_context(|| format!("writing model.safetensors in {}", parent.display()))?;
    crate::atomic::write_json(&temp.path().join("model.json"), description)?;
    std::fs::rename(temp.path(), out).with_context(|| {
        format!(
            "moving the export into {} (another export got there first, or it is not empty)",
            out.display()
        )
    })?;
    // The folder now lives at `out`; nothing is left to clean up.
    let _ = temp.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backbone_configs_become_the_json_the_python_package_reads() {
        assert_eq!(backbone_config("").unwrap(), json!({}));
        assert_eq!(
            backbone_config("(preset: \"cpu\", width: Some(16), blocks: Some([1, 2, 1]), temporal_strides: Some(true))").unwrap(),
            json!({"preset": "cpu", "width": 16, "blocks": [1, 2, 1], "temporal_strides": true})
        );
        let error = backbone_config("(preset: ").unwrap_err();
        assert!(format!("{error:#}").contains("is not RON"), "{error:#}");
        assert!(backbone_config("[1, 2]").is_err());
    }
}
