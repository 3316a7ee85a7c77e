//! Any TorchScript video module as a trajhost backbone, so a PyTorch model trains, checkpoints,
//! resumes and is compared like the built-in ones without a rewrite in Rust.
//!
//! The module maps `(B, T, C, H, W)` standardised pixels to `(B, T, D)` per-frame features and
//! has an exported method `feature_dim() -> int`. `trajhost.torchscript.save` (the Python
//! package in `python/`) writes such a file from any `nn.Module`, and `trajhost.torchscript.
//! video_backbone("r3d_18")` makes one of a `torchvision.models.video` network.
//!
//! Its parameters join the host's variable store (tch's `TrainableCModule`), so the host's AdamW
//! updates them in place and checkpoints hold them. TorchScript cannot list a module's buffers
//! to Rust, so `save` turns them (BatchNorm's running statistics) into parameters that need no
//! gradient: they are checkpointed and restored like the built-ins' buffers, and a resumed run
//! continues exactly.
//!
//! # Configuration (RON)
//! `(module: "r3d18.pt")`, plus optionally `sha256: Some("…")`: the module file's SHA-256, checked
//! before it is loaded. The path is read as given (relative to the current folder). A run's
//! config names the file, so evaluating someone else's run loads the TorchScript file their
//! config names: TorchScript runs torch operators, not Python, but give it the hash and read
//! the file as you would a checkpoint.

use serde::Deserialize;
use std::path::Path;
use tch::{nn, Device, IValue, Tensor, TrainableCModule};
use trajhost_plugin_api::{export_backbone, preset, Backbone, BackboneError};

const PLUGIN: &str = "torchscript";

/// The RON configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "torchscript")]
pub struct Config {
    /// The TorchScript file (`torch.jit.save`).
    pub module: String,
    /// Its SHA-256 (lower-case hex), checked before loading when given.
    pub sha256: Option<String>,
}

pub struct TorchScript {
    vs: nn::VarStore,
    module: TrainableCModule,
    feature_dim: i64,
    /// The mode the module was last put in (TorchScript keeps it per module).
    training: Option<bool>,
}

impl TorchScript {
    pub fn build(config: &str, device: Device) -> Result<Self, BackboneError> {
        let config: Config = preset::parse_ron(PLUGIN, config)?;
        if config.module.is_empty() {
            return Err(preset::invalid(
                PLUGIN,
                "module",
                "name the TorchScript file, e.g. `(module: \"r3d18.pt\")`",
            ));
        }
        let path = Path::new(&config.module);
        let bytes = read_module(path)?;
        if let Some(expected) = &config.sha256 {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(BackboneError(format!(
                    "TorchScript module {} has sha256 {actual}, the config expects {expected}",
                    path.display()
                )));
            }
        }
        let vs = nn::VarStore::new(device);
        let module =
            TrainableCModule::load_data(&mut bytes.as_slice(), vs.root()).map_err(|e| {
                BackboneError(format!(
                    "{} is not a TorchScript module this libtorch can load: {e}",
                    path.display()
                ))
            })?;
        let feature_dim = match module.method_is::<IValue>("feature_dim", &[]) {
            Ok(IValue::Int(d)) if d >= 1 => d,
            Ok(other) => {
                return Err(BackboneError(format!(
                    "{}: feature_dim() returned {other:?}, not a positive int",
                    path.display()
                )))
            }
            Err(_) => {
                return Err(BackboneError(format!(
                    "{} has no method feature_dim(): save it with trajhost.torchscript.save (python/), which adds one",
                    path.display()
                )))
            }
        };
        Ok(TorchScript {
            vs,
            module,
            feature_dim,
            training: None,
        })
    }
}

/// The largest module file read: 16 GiB of weights is far past any backbone two cores train,
/// and a run's config (possibly someone else's) names the file.
const MAX_MODULE_BYTES: u64 = 16 << 30;

/// The module file, read whole (a regular file of bounded size only: a FIFO or a device would
/// never end).
fn read_module(path: &Path) -> Result<Vec<u8>, BackboneError> {
    let unreadable =
        |why: String| BackboneError(format!("TorchScript module {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(unreadable(format!(
            "{} bytes, more than the {} GiB a module may have",
            meta.len(),
            MAX_MODULE_BYTES >> 30
        )));
    }
    std::fs::read(path).map_err(|e| unreadable(e.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Backbone for TorchScript {
    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        if self.training != Some(train) {
            if train {
                self.module.f_set_train()?;
            } else {
                self.module.f_set_eval()?;
            }
            self.training = Some(train);
        }
        Ok(self.module.forward_ts(&[video])?)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
}

export_backbone!(TorchScript::build);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_without_a_module_or_with_a_missing_file_is_refused_naming_it() {
        let error = |text: &str| match TorchScript::build(text, Device::Cpu) {
            Err(e) => e.0,
            Ok(_) => panic!("{text} built"),
        };
        assert!(error("").contains("module"));
        assert!(error("(module: \"/nonexistent/x.pt\")").contains("/nonexistent/x.pt"));
        assert!(error("(module: \"/dev\")").contains("not a regular file"));
        assert!(error("(modul: \"x.pt\")").contains("modul"));
    }
}
