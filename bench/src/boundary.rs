//! The plugin boundary's cost: the same backbone, built with the same seed, called linked into
//! this process (`Backbone::forward` on the plugin crate's rlib) and through its `cdylib`
//! (`Plugin::load` → `PluginBackbone::forward`, what `trajhost train` uses). Both are timed on
//! the same input, alternating A/B and B/A each round so drift and contention hit both alike.

use crate::{emit, load_plugin, peak_rss_kib, random_video, set_threads, stats, Args};
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use std::time::Instant;
use tch::{Device, Kind, Tensor};
use trajhost::plugin::PluginBackbone;
use trajhost_plugin_api::{Backbone, BackboneError};

/// One way of calling the backbone.
trait Call {
    fn call(&mut self, video: &Tensor, train: bool) -> Result<Tensor>;
}

struct InProcess<B: Backbone>(B);

impl<B: Backbone> Call for InProcess<B> {
    fn call(&mut self, video: &Tensor, train: bool) -> Result<Tensor> {
        self.0.forward(video, train).map_err(|e| anyhow!(e.0))
    }
}

struct ThroughPlugin(PluginBackbone);

impl Call for ThroughPlugin {
    fn call(&mut self, video: &Tensor, train: bool) -> Result<Tensor> {
        self.0.forward(video, train)
    }
}

/// One timed call: inference (no_grad, eval) or a training forward + backward of the mean.
fn once(model: &mut dyn Call, video: &Tensor, train: bool) -> Result<f64> {
    let start = Instant::now();
    if train {
        let features = model.call(video, true)?;
        features.mean(Kind::Float).backward();
    } else {
        let _features = tch::no_grad(|| model.call(video, false))?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn measure(
    a: &mut dyn Call,
    b: &mut dyn Call,
    video: &Tensor,
    train: bool,
    warmup: usize,
    rounds: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    for _ in 0..warmup {
        once(a, video, train)?;
        once(b, video, train)?;
    }
    let (mut ta, mut tb) = (vec![], vec![]);
    for round in 0..rounds {
        if round % 2 == 0 {
            ta.push(once(a, video, train)?);
            tb.push(once(b, video, train)?);
        } else {
            tb.push(once(b, video, train)?);
            ta.push(once(a, video, train)?);
        }
    }
    Ok((ta, tb))
}

fn median(v: &[f64]) -> f64 {
    stats(v)["median_s"].as_f64().unwrap_or(0.0)
}

/// `boundary_<name> [--threads N] [--batch B] [--frames T] [--warmup W] [--rounds R]
/// [--small-rounds R]`.
pub fn run<B: Backbone>(
    name: &str,
    build: fn(&str, Device) -> Result<B, BackboneError>,
) -> Result<()> {
    trajhost::allocator::tune(); // as trajhost and trajhost-bench start
    let args = Args::parse(std::env::args().skip(1))?;
    let threads: i32 = args.get("threads", 2)?;
    let batch: i64 = args.get("batch", 32)?;
    let frames: i64 = args.get("frames", 32)?;
    let warmup: usize = args.get("warmup", 2)?;
    let rounds: usize = args.get("rounds", 10)?;
    let small_rounds: usize = args.get("small-rounds", 200)?;
    set_threads(threads);

    tch::manual_seed(0);
    let mut linked = InProcess(build("", Device::Cpu).map_err(|e| anyhow!(e.0))?);
    let plugin = load_plugin(name)?;
    tch::manual_seed(0);
    let mut loaded = ThroughPlugin(plugin.build("", Device::Cpu)?);

    // Same code, same seed: the two must agree exactly, or this compares different models.
    let video = random_video(batch, frames, 64);
    let check = video.narrow(0, 0, 1);
    let (x, y) = tch::no_grad(|| -> Result<_> {
        Ok((linked.call(&check, false)?, loaded.call(&check, false)?))
    })?;
    let diff = (&x - &y).abs().max().double_value(&[]);
    if diff > 1e-5 {
        bail!("{name}: linked and plugin outputs differ by {diff}: not the same model");
    }

    let mut result = json!({
        "side": "trajhost",
        "what": "boundary",
        "backbone": name,
        "threads": threads,
        "batch_size": batch,
        "rounds": rounds,
        "max_abs_diff": diff,
    });
    for (mode, train) in [("infer", false), ("train", true)] {
        let (t_linked, t_plugin) =
            measure(&mut linked, &mut loaded, &video, train, warmup, rounds)?;
        // Each round's two calls ran back to back, so their ratio cancels the machine's drift;
        // the median of those ratios is the estimate (the ratio of medians is kept for reference).
        let paired: Vec<f64> = t_plugin.iter().zip(&t_linked).map(|(p, l)| p / l).collect();
        result[mode] = json!({
            "linked": stats(&t_linked),
            "plugin": stats(&t_plugin),
            "overhead_pct": 100.0 * (median(&paired) - 1.0),
            "ratio_of_medians_pct": 100.0 * (median(&t_plugin) / median(&t_linked) - 1.0),
        });
    }
    // The fixed cost of one crossing, on a one-video, two-frame input where compute is small.
    let tiny = random_video(1, 2, 64);
    let (t_linked, t_plugin) = measure(&mut linked, &mut loaded, &tiny, false, 3, small_rounds)?;
    result["small_call_us"] = json!({
        "linked": 1e6 * median(&t_linked),
        "plugin": 1e6 * median(&t_plugin),
    });
    result["peak_rss_kib"] = json!(peak_rss_kib());
    emit(&result)
}
