//! `trajhost plugin info`: what a plugin file is, what it builds, and what one probe forward
//! returns — the first thing to look at when a new backbone misbehaves.

use super::{Plugin, PluginBackbone};
use anyhow::Result;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::devkit::{videos_per_second, Timed};
use trajhost_plugin_api::input::INPUT_RANGE;
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

/// The speed probe: batches of the default clip `(T, C, H, W)`, timed after one warm-up batch.
const SPEED_BATCH: [i64; 5] = [4, 32, 3, 64, 64];
const SPEED_BATCHES: usize = 2;

/// Uniform noise over the values the host feeds.
fn noise(shape: [i64; 5], device: Device) -> Tensor {
    let (low, high) = INPUT_RANGE;
    Tensor::rand(shape, (Kind::Float, device)) * (high - low) + low
}

/// Videos per second through the backbone alone: training (forward and backward of a plain
/// loss) and inference, on this process's libtorch threads. The heads and the optimiser add a
/// few per cent (docs/bench.md); what this shows early is a backbone several times slower
/// than intended (a stride forgotten, a full-resolution attention).
fn speed(model: &mut PluginBackbone, device: Device) -> Result<String> {
    let rates = videos_per_second(model, &noise(SPEED_BATCH, device), SPEED_BATCHES)?;
    Ok(format!(
        "training {:.0} videos/s, inference {:.0} videos/s (batches of {:?}, {} threads; the backbone alone)",
        rates.0,
        rates.1,
        SPEED_BATCH,
        tch::get_num_threads()
    ))
}

impl Timed for PluginBackbone {
    type Error = anyhow::Error;
    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor> {
        PluginBackbone::forward(self, video, train)
    }
    fn zero_grad(&mut self) {
        for (_, mut p) in self.parameters() {
            p.zero_grad();
        }
    }
}

/// The report, one `key  value` line each.
pub fn render(plugin: &Plugin, config: &str, device: Device) -> Result<String> {
    let mut model = plugin.build(config, device)?;
    let bytes: i64 = model
        .parameters()
        .iter()
        .map(|(_, t)| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64)
        .sum();
    let video = noise(PROBE, device);
    // A failing forward is part of the report, not a reason to hide the rest of it.
    let (output, speed) = match tch::no_grad(|| model.forward(&video, false)) {
        Ok(out) => (
            format!("{:?} for input {PROBE:?}", out.size()),
            speed(&mut model, device).unwrap_or_else(|e| format!("error: {e:#}")),
        ),
        Err(e) => (format!("error: {e:#}"), "-".into()),
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
        ("speed", speed),
        ("plugin-api", s.api_version.to_string()),
        ("built with", s.fingerprint.clone()),
    ]
    .iter()
    .map(|(key, value)| format!("{key:<12} {value}\n"))
    .collect())
}
