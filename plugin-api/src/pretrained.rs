//! Starting a backbone from saved weights: a local safetensors file holding every parameter
//! and BatchNorm statistic under the backbone's own variable names (what `trajhost export`
//! writes), checked name by name and shape by shape before anything is copied.

use crate::BackboneError;
use std::collections::HashMap;
use tch::{nn, Tensor};

/// Copies every variable of `vs` from the safetensors file at `path`, refusing a file whose
/// names or shapes differ from the model's.
pub fn load(plugin: &str, vs: &nn::VarStore, path: &str) -> Result<(), BackboneError> {
    let fail = |why: String| BackboneError(format!("{plugin} pretrained weights {path}: {why}"));
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| fail(format!("cannot read the file: {e}")))?
        .into_iter()
        .collect();
    let mut ours: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    let missing: Vec<&str> = ours
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !file.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "{} tensor(s) missing from the file: {}",
            missing.len(),
            missing.join(", ")
        )));
    }
    let mut unexpected: Vec<&str> = file
        .keys()
        .map(String::as_str)
        .filter(|n| !ours.iter().any(|(o, _)| o == n))
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(fail(format!(
            "{} tensor(s) in the file are not in the model: {}",
            unexpected.len(),
            unexpected.join(", ")
        )));
    }
    for (name, var) in &ours {
        let saved = &file[name];
        if saved.size() != var.size() {
            return Err(fail(format!(
                "tensor `{name}` has shape {:?} in the file but {:?} in the model",
                saved.size(),
                var.size()
            )));
        }
    }
    tch::no_grad(|| -> Result<(), BackboneError> {
        for (name, mut var) in ours {
            let saved = file[&name]
                .f_to_kind(var.kind())?
                .f_to_device(var.device())?;
            var.f_copy_(&saved)?;
        }
        Ok(())
    })
}
