//! `gate.json`: the pipeline's decision whether a run goes on from the validation phase to
//! the full run (decided by `crate::gate`).

use super::{read_json, GATE};
use crate::atomic::write_json;
use crate::config::GateConfig;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    pub run: String,
    pub passed: bool,
    /// One line per check, starting with `pass:` or `fail:`.
    pub reasons: Vec<String>,
    pub val_accuracy: f64,
    pub val_mse: f64,
    pub thresholds: GateConfig,
}

pub fn read(dir: &Path) -> Result<Option<GateDecision>> {
    read_json(&dir.join(GATE))
}

pub fn write(dir: &Path, decision: &GateDecision) -> Result<()> {
    write_json(&dir.join(GATE), decision)
}
