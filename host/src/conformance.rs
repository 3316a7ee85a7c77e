//! `trajhost plugin check`: the conformance kit of `trajhost_plugin_api::devkit::conformance`
//! run on a loaded plugin file — the same checks a plugin's own `cargo test` runs in-process.

use crate::plugin::{Plugin, PluginBackbone};
use tch::{Device, Tensor};
use trajhost_plugin_api::devkit::conformance::{self, Subject};

pub use conformance::{CheckOutcome, Report, Verdict, SHAPES};

impl Subject for PluginBackbone {
    fn feature_dim(&self) -> i64 {
        PluginBackbone::feature_dim(self)
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, String> {
        PluginBackbone::forward(self, video, train).map_err(|e| format!("{e:#}"))
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        PluginBackbone::parameters(self)
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        PluginBackbone::buffers(self)
    }
}

/// Runs every check on `plugin` built from `config`.
pub fn check_plugin(plugin: &Plugin, config: &str, device: Device) -> Report {
    let build = |seed: i64| -> Result<PluginBackbone, String> {
        tch::manual_seed(seed);
        plugin.build(config, device).map_err(|e| format!("{e:#}"))
    };
    conformance::run(plugin.name(), &build, device)
}
