//! `trajhost plugin info`: what a plugin file is, what it builds, and what one probe forward
//! returns — the first thing to look at when a new backbone misbehaves.

use super::Plugin;
use anyhow::Result;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::InputLayout;

/// How the host will lay the backbone's batches out in memory.
fn layout(layout: InputLayout) -> &'static str {
    match layout {
        InputLayout::TimeMajor => "(B, T, C, H, W), time-major memory",
        InputLayout::ChannelMajor => "(B, T, C, H, W), channel-major memory: (B, C, T, H, W)",
    }
}

/// The probe's input `(B, T, C, H, W)`: the conformance kit's first shape.
const PROBE: [i64; 5] = [2, 16, 3, 64, 64];

/// The report, one `key  value` line each.
pub fn render(plugin: &Plugin, config: &str, device: Device) -> Result<String> {
    let mut model = plugin.build(config, device)?;
    let bytes: i64 = model
        .parameters()
        .iter()
        .map(|(_, t)| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64)
        .sum();
    let video = Tensor::rand(PROBE, (Kind::Float, device));
    // A failing forward is part of the report, not a reason to hide the rest of it.
    let output = match tch::no_grad(|| model.forward(&video, false)) {
        Ok(out) => format!("{:?} for input {PROBE:?}", out.size()),
        Err(e) => format!("error: {e:#}"),
    };
    let s = &plugin.stamp;
    Ok([
        ("plugin", s.name.clone()),
        ("version", s.plugin_version.clone()),
        ("file", plugin.path.display().to_string()),
        ("feature_dim", model.feature_dim().to_string()),
        (
            "parameters",
            format!(
                "{} ({} tensors, {bytes} bytes)",
                model.parameter_count(),
                model.parameters().len()
            ),
        ),
        ("buffers", model.buffers().len().to_string()),
        ("input", layout(model.input_layout()).to_string()),
        ("output", output),
        ("plugin-api", s.api_version.to_string()),
        ("built with", s.fingerprint.clone()),
    ]
    .iter()
    .map(|(key, value)| format!("{key:<12} {value}\n"))
    .collect())
}
