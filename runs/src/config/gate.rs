//! The gate's thresholds (a sweep config's `gate` field); the decision is `crate::gate`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    pub min_accuracy: f64,
    pub max_mse: f64,
    pub require_val_loss_improving: bool,
    #[serde(default = "default_window")]
    pub improving_window: usize,
    #[serde(default = "default_tolerance")]
    pub improving_tolerance: f64,
}

fn default_window() -> usize {
    3
}

fn default_tolerance() -> f64 {
    0.01
}

impl Default for GateConfig {
    /// The original plan's thresholds.
    fn default() -> Self {
        GateConfig {
            min_accuracy: 0.70,
            max_mse: 0.1,
            require_val_loss_improving: true,
            improving_window: default_window(),
            improving_tolerance: default_tolerance(),
        }
    }
}
