//! A trained model back from its run folder: the checkpoint chosen, the plugin it names, the
//! heads and weights restored — refused, naming what differs, when the plugin or the
//! architecture no longer fits (as `train --resume` refuses).

use crate::plugin::{resolve_plugin, resolve_recorded_plugin, Plugin, PluginBackbone};
use crate::train::checkpoint::{self, CheckpointMeta, PluginIdentity};
use crate::train::model::UnifiedModel;
use crate::train::TrainConfig;
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

/// How `eval` and `predict` load a run's model and have it answer: the plugin file, and mirror
/// averaging.
#[derive(Debug, Default, clap::Args)]
pub struct ModelChoice {
    /// Use this plugin (a name or path) instead of the one the checkpoint names.
    #[arg(long)]
    pub plugin: Option<String>,
    /// Use the plugin even when its file differs from the build the run was trained with.
    #[arg(long)]
    pub accept_plugin_change: bool,
    /// Average each answer with the model's answer for the clip's left-right mirror image, its
    /// x negated back (twice the inference; docs/training.md, "Mirror averaging"), whatever the
    /// run's own `mirror_average` says.
    #[arg(long, conflicts_with = "no_mirror_average")]
    pub mirror_average: bool,
    /// Answer from the clip alone, though the run's own `mirror_average` averages: to score the
    /// plain model of such a run.
    #[arg(long)]
    pub no_mirror_average: bool,
    /// Let the fovea look this many times (1–4) instead of the run's own `fovea_passes`: to
    /// score a run from before the field with two looks, say (docs/training.md, "Looking twice").
    #[arg(long, value_name = "N")]
    pub fovea_passes: Option<usize>,
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

impl Trained {
    /// The fovea's looks where `--fovea-passes` made them other than the run's own: what a
    /// report records beside its numbers.
    pub fn fovea_passes_override(&self) -> Option<usize> {
        let passes = self.model.fovea_passes;
        (passes != self.meta.config.fovea_passes).then_some(passes)
    }

    /// The flag that made the model's mirror averaging other than the run's own, if one did.
    pub fn mirror_average_override(&self) -> Option<&'static str> {
        match self.model.mirror_average {
            averaged if averaged == self.meta.config.mirror_average => None,
            true => Some("--mirror-average"),
            false => Some("--no-mirror-average"),
        }
    }

    /// Refuses outputs that are not finite (`what` says which): damaged weights or a backbone
    /// that produces NaN/Inf, named with the plugin and the checkpoint rather than reported as
    /// a score.
    pub fn check_finite(&self, what: &str, values: &[f64]) -> Result<()> {
        if values.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        bail!(
            "the model's {what} are not finite ({values:?}): plugin '{}' with checkpoint {} produces NaN or Inf (damaged weights, or a backbone that is not numerically safe)",
            self.meta.plugin.name,
            self.checkpoint.display()
        )
    }
}

/// Builds the checkpoint's backbone with the process's address space capped at twice its
/// tensors file plus 1 GiB: a checkpoint's `config.backbone` is read from a file someone else
/// may have written, and it could ask for any size of model before the shapes are compared.
/// The file's size (checked against the file by `read_meta`), not the tensor list the JSON
/// claims, sets the allowance, so a forged list cannot raise it. On the CPU only: a CUDA
/// context reserves far more address space than memory.
fn build_within_recorded_size(
    plugin: &Plugin,
    meta: &CheckpointMeta,
    device: Device,
    json: &Path,
) -> Result<PluginBackbone> {
    let config = &meta.config.backbone;
    if device != Device::Cpu {
        return plugin.build(config, device);
    }
    let allowance = meta.tensors_bytes.saturating_mul(2).saturating_add(1 << 30);
    let built = with_address_space_allowance(allowance, || plugin.build(config, device));
    built.map_err(|e| {
        // libtorch's allocation error comes with a C++ backtrace: keep the one line that says
        // how much was asked for.
        let text = format!("{e:#}");
        if !text.contains("allocate") {
            return e.context(format!("checkpoint {}: config.backbone {config:?}", json.display()));
        }
        let asked = text
            .find("you tried to allocate")
            .and_then(|at| text[at..].split(['.', '"', '\\']).next())
            .map_or(String::new(), |s| format!(" ({})", s.replace("you tried", "it tried")));
        anyhow!(
            "checkpoint {}: its config.backbone {config:?} does not build within {} MiB, twice its tensors file plus 1 GiB{asked}: a config that asks for another model than the one saved",
            json.display(),
            allowance >> 20
        )
    })
}

/// Runs `f` with the soft address-space limit at what the process maps now plus `allowance`
/// (never above the limit already set), then puts the limit back.
fn with_address_space_allowance<T>(allowance: u64, f: impl FnOnce() -> T) -> T {
    let mapped = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024);
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) } == 0;
    let Some(mapped) = mapped.filter(|_| read) else {
        return f();
    };
    let capped = libc::rlimit {
        rlim_cur: mapped.saturating_add(allowance).min(old.rlim_cur),
        rlim_max: old.rlim_max,
    };
    // SAFETY: only the soft limit changes, within the hard one; restored below.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &capped) } == 0;
    let result = f();
    if set {
        // SAFETY: as above: the soft limit back to what it was.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) };
    }
    result
}

/// Where the run's plugin file was when it trained, and whether it is still that build: a hint
/// for running a third party's run from another folder. Only a hint: a path a run records is
/// never loaded without the user giving it as `--plugin`, and a file that came inside the run
/// folder (`run`) is named as such, since whoever wrote the run chose it.
fn where_it_was(identity: &PluginIdentity, run: &Path) -> String {
    /// Larger files are not read for the hint (a plugin is a few MiB).
    const MAX_HASHED: u64 = 1 << 30;
    let Some(path) = &identity.path else {
        return "give the plugin file with --plugin".into();
    };
    let shown = path.display();
    let inside = std::fs::canonicalize(run).is_ok_and(|run| path.starts_with(run));
    if inside {
        return format!(
            "it names {shown}, a file inside the run folder itself: load it only if you trust whoever made the run (--plugin)"
        );
    }
    let size = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let now = match size {
        Some(size) if size <= MAX_HASHED => trajhost_dataset::shard::hash_file(path).ok(),
        _ => None,
    };
    match (now, &identity.sha256) {
        (Some((_, now)), Some(then)) if &now == then => format!(
            "it trained with {shown}, which is still there with the same SHA-256: if you trust it, give --plugin {shown}"
        ),
        (Some(_), _) => format!(
            "it trained with {shown}, which has changed since: give --plugin with the build it trained with, or --accept-plugin-change"
        ),
        (None, _) => format!(
            "it trained with {shown}, which is gone: give the plugin file with --plugin"
        ),
    }
}

/// The checkpoint's JSON for `choice` in the run folder `run`.
pub fn checkpoint_json(run: &Path, choice: &CheckpointChoice) -> Result<PathBuf> {
    let json = match choice {
        CheckpointChoice::Best => checkpoint::checkpoint_dir(run).join("best.json"),
        CheckpointChoice::Last => {
            let (newest, skipped) = checkpoint::newest_readable(run)?;
            for warning in skipped {
                eprintln!("warning: {warning}");
            }
            newest.ok_or_else(|| {
                anyhow!(
                    "{} has no complete checkpoint (is it a run folder? a run writes checkpoints/ as it trains)",
                    run.display()
                )
            })?
        }
        CheckpointChoice::Path(path) => path.with_extension("json"),
    };
    match std::fs::metadata(&json) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => bail!("checkpoint {} is not a regular file", json.display()),
        Err(_) => bail!("checkpoint {} does not exist", json.display()),
    }
    Ok(json)
}

/// Loads the model of `run`'s checkpoint `choice` on `device`. The plugin is the one the
/// checkpoint names, looked up by name only (a run folder may come from someone else), unless
/// `plugin` chooses one; `fallback_size` is `[H, W]` for checkpoints that do not record their
/// clips' size.
pub fn load(
    run: &Path,
    choice: &CheckpointChoice,
    choice_of_model: &ModelChoice,
    device: Device,
    fallback_size: [i64; 2],
) -> Result<Trained> {
    let json = checkpoint_json(run, choice)?;
    let loaded = checkpoint::load(&json)?;
    let meta = &loaded.meta;
    let plugin_path = match &choice_of_model.plugin {
        Some(spec) => resolve_plugin(spec),
        None => resolve_recorded_plugin(&meta.plugin.name),
    }
    .with_context(|| {
        format!(
            "checkpoint {} was made with plugin {:?} ({})",
            json.display(),
            meta.plugin.name,
            where_it_was(&meta.plugin, run)
        )
    })?;
    let accept_plugin_change = choice_of_model.accept_plugin_change;
    let plugin = Plugin::load(&plugin_path)?;
    let identity = PluginIdentity::of(&plugin);
    // Before anything is built: a checkpoint of another plugin or build costs no model.
    checkpoint::check_plugin(meta, &identity, accept_plugin_change, &json)?;
    let frames = checkpoint::clip_frames(meta).ok_or_else(|| {
        anyhow!(
            "checkpoint {} has no trajectory head: was it made by an older trajhost?",
            json.display()
        )
    })?;
    // Both come from the file: bounded before anything is allocated for them.
    let video_shape = meta
        .video_shape
        .unwrap_or([frames, fallback_size[0], fallback_size[1]]);
    let [t, h, w] = video_shape;
    trajhost_dataset::limits::check_clip(t, h, w)
        .map_err(|(field, why)| anyhow!("{field} {why}"))
        .and_then(|()| match t == frames {
            true => Ok(()),
            false => Err(anyhow!("its heads read {frames} frames")),
        })
        .with_context(|| {
            format!(
                "checkpoint {}: video_shape {video_shape:?} is not a clip this model reads",
                json.display()
            )
        })?;
    let backbone = build_within_recorded_size(&plugin, meta, device, &json)?;
    let config = &meta.config;
    let mut model = UnifiedModel::new(
        backbone,
        frames,
        config.position_head,
        (config.background, config.colour),
        device,
    );
    let shapes: Vec<(String, Vec<i64>)> = model
        .state()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    checkpoint::check_fits(meta, &identity, accept_plugin_change, &shapes, &json)?;
    checkpoint::restore_model(&mut model, &loaded, &json)?;
    model.mirror_average = match (
        choice_of_model.mirror_average,
        choice_of_model.no_mirror_average,
    ) {
        (true, _) => true,
        (_, true) => false,
        _ => config.mirror_average,
    };
    model.fovea_passes = config.fovea_passes;
    if let Some(passes) = choice_of_model.fovea_passes {
        // Checked as the config would be: a range, and only a fovea looks again.
        let asked = TrainConfig {
            fovea_passes: passes,
            ..config.clone()
        };
        asked
            .validate()
            .map_err(|invalid| anyhow!("--fovea-passes {passes}: {}", invalid.message))?;
        model.fovea_passes = passes;
    }
    Ok(Trained {
        model,
        meta: loaded.meta,
        checkpoint: json,
        video_shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_plugin_file_is_named_as_a_hint_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libmynet.so");
        std::fs::write(&file, b"the build it trained with").unwrap();
        let (_, sha256) = trajhost_dataset::shard::hash_file(&file).unwrap();
        let identity = PluginIdentity {
            name: "mynet".into(),
            version: "0.1.0".into(),
            fingerprint: String::new(),
            sha256: Some(sha256),
            path: Some(file.clone()),
        };
        let hint = where_it_was(&identity, Path::new("/nonexistent"));
        assert!(
            hint.contains("same SHA-256") && hint.contains(&format!("--plugin {}", file.display())),
            "{hint}"
        );
        std::fs::write(&file, b"another build").unwrap();
        assert!(where_it_was(&identity, Path::new("/nonexistent")).contains("has changed since"));
        std::fs::remove_file(&file).unwrap();
        assert!(where_it_was(&identity, Path::new("/nonexistent")).contains("is gone"));
        // A file that came with the run folder is named as the run's own choice.
        std::fs::write(&file, b"the build it trained with").unwrap();
        let inside = where_it_was(&identity, dir.path());
        assert!(inside.contains("inside the run folder"), "{inside}");
        let older = PluginIdentity {
            path: None,
            ..identity
        };
        assert!(where_it_was(&older, Path::new("/nonexistent")).contains("--plugin"));
    }
}
