//! The host's safe handle on a built backbone: converts tensors to and from handles, checks
//! the output contract, and names the plugin in every error.

use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use tch::Tensor;
use trajhost_plugin_api::{ExtractorBox, InputLayout, NamedTensor, TensorHandle};

pub struct PluginBackbone {
    name: String,
    inner: ExtractorBox,
}

impl PluginBackbone {
    pub(super) fn new(name: String, inner: ExtractorBox) -> Self {
        PluginBackbone { name, inner }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn feature_dim(&self) -> i64 {
        self.inner.feature_dim()
    }

    /// The memory layout the backbone reads fastest; batches are prepared in it.
    pub fn input_layout(&self) -> InputLayout {
        self.inner.input_layout()
    }

    /// `(B, T, C, H, W)` → `(B, T, D)`; any other output shape is the plugin's error.
    pub fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor> {
        let input = video.size();
        // The plugin receives its own reference to the same tensor (see TensorHandle).
        let features = self
            .inner
            .forward(TensorHandle::share(video), train)
            .into_result()
            .map_err(|e| {
                anyhow!(
                    "plugin '{}' failed on input of shape {input:?}: {e}",
                    self.name
                )
            })?
            .into_tensor();
        let expected = [input[0], input[1], self.feature_dim()];
        if features.size() != expected {
            bail!(
                "plugin '{}' returned features of shape {:?} for input of shape {input:?}; expected (B, T, D) = {expected:?}",
                self.name,
                features.size()
            );
        }
        Ok(features)
    }

    /// Trainable parameters, sorted by name; they share storage with the plugin's model.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        unpack(self.inner.parameters())
    }

    /// Saved but untrained state (e.g. BatchNorm running statistics), sorted by name.
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        unpack(self.inner.buffers())
    }

    pub fn parameter_count(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// Parameters and buffers together: what a checkpoint saves.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.parameters();
        state.extend(self.buffers());
        state
    }

    /// Copies saved tensors into the model in place. Every name must be present with the
    /// same shape; the error lists what differs.
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let mut problems = Vec::new();
        let state = self.state();
        for (name, target) in &state {
            match saved.get(name) {
                None => problems.push(format!("missing '{name}'")),
                Some(t) if t.size() != target.size() => problems.push(format!(
                    "'{name}' has shape {:?}, the model expects {:?}",
                    t.size(),
                    target.size()
                )),
                Some(_) => {}
            }
        }
        let known: std::collections::HashSet<&str> =
            state.iter().map(|(n, _)| n.as_str()).collect();
        problems.extend(
            saved
                .keys()
                .filter(|n| !known.contains(n.as_str()))
                .map(|n| format!("unexpected '{n}'")),
        );
        if !problems.is_empty() {
            problems.sort();
            bail!(
                "saved state does not fit plugin '{}': {}",
                self.name,
                problems.join("; ")
            );
        }
        tch::no_grad(|| -> Result<()> {
            for (name, mut target) in state {
                target.f_copy_(&saved[&name])?;
            }
            Ok(())
        })
    }
}

fn unpack(named: abi_stable::std_types::RVec<NamedTensor>) -> Vec<(String, Tensor)> {
    named
        .into_iter()
        .map(|n| (n.name.into_string(), n.tensor.into_tensor()))
        .collect()
}
