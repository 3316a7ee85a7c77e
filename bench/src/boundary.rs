//! The plugin boundary's cost: the same backbone, built with the same seed, called linked into
//! this process (`Backbone::forward` on the plugin crate's rlib) and through its `cdylib`
//! (`Plugin::load` → `PluginBackbone::forward`, what `trajhost train` uses). Both are timed on
//! the same input, alternating A/B and B/A each round so drift and contention hit both alike.
//!
//! [`Overhead`] is the one estimator of the boundary's cost: the table shows its two medians and
//! its percentage (which is their ratio, so the three always agree) and its verdict.

use crate::pairs::{median, quantile};
use crate::{emit, load_plugin, peak_rss_kib, random_video, set_threads, stats, Args};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
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

/// The boundary's cost per batch from interleaved rounds of linked and plugin calls.
///
/// The estimate is the ratio of the two sides' median times, `plugin / linked − 1`: the two
/// medians a reader sees next to it give exactly that percentage. How much the rounds disagree
/// is the interquartile range of the per-round ratios; a verdict is given only where that
/// spread is within the bound, since a bound of 2 % cannot be checked with ±10 % of noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overhead {
    pub linked_median_s: f64,
    pub plugin_median_s: f64,
    /// `100 · (plugin_median_s / linked_median_s − 1)`.
    pub pct: f64,
    /// Half the interquartile range of the per-round ratios, in percent.
    pub noise_pct: f64,
}

/// Whether an [`Overhead`] meets a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// The rounds spread wider than the bound, or the plugin came out faster than linked by
    /// more than the bound (the same code cannot be; that is noise).
    Inconclusive,
}

impl Overhead {
    pub fn estimate(linked: &[f64], plugin: &[f64]) -> Overhead {
        let (l, p) = (median(linked), median(plugin));
        let ratios: Vec<f64> = plugin.iter().zip(linked).map(|(p, l)| p / l).collect();
        Overhead {
            linked_median_s: l,
            plugin_median_s: p,
            pct: 100.0 * (p / l - 1.0),
            noise_pct: 50.0 * (quantile(&ratios, 0.75) - quantile(&ratios, 0.25)),
        }
    }

    pub fn verdict(&self, bound_pct: f64) -> Verdict {
        if self.pct.is_nan()
            || self.noise_pct.is_nan()
            || self.noise_pct >= bound_pct
            || self.pct <= -bound_pct
        {
            Verdict::Inconclusive
        } else if self.pct < bound_pct {
            Verdict::Met
        } else {
            Verdict::NotMet
        }
    }

    /// `+4.78 % (rounds ±0.90 %): not met (< 2 %)`.
    pub fn describe(&self, bound_pct: f64) -> String {
        let verdict = match self.verdict(bound_pct) {
            Verdict::Met => "met",
            Verdict::NotMet => "not met",
            Verdict::Inconclusive => "inconclusive, rerun on an idle machine",
        };
        format!(
            "{:+.2} % (rounds ±{:.2} %): {verdict} (< {bound_pct} %)",
            self.pct, self.noise_pct
        )
    }

    pub fn to_json(self) -> Value {
        json!({
            "linked_median_s": self.linked_median_s,
            "plugin_median_s": self.plugin_median_s,
            "pct": self.pct,
            "noise_pct": self.noise_pct,
        })
    }

    /// Read back from [`Overhead::to_json`]; None for results written before it existed.
    pub fn from_json(v: &Value) -> Option<Overhead> {
        let f = |k: &str| v.get(k)?.as_f64();
        Some(Overhead {
            linked_median_s: f("linked_median_s")?,
            plugin_median_s: f("plugin_median_s")?,
            pct: f("pct")?,
            noise_pct: f("noise_pct")?,
        })
    }
}

/// The bound the plugin boundary's overhead must stay under, in percent.
pub const BOUND_PCT: f64 = 2.0;

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
        let overhead = Overhead::estimate(&t_linked, &t_plugin);
        result[mode] = json!({
            "linked": stats(&t_linked),
            "plugin": stats(&t_plugin),
            "overhead": overhead.to_json(),
            "verdict": overhead.describe(BOUND_PCT),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentage_is_the_ratio_of_the_medians_shown() {
        // docs/bench.md once showed medians of 131.4 and 125.4 ms next to "+1.26 % (< 2%)":
        // the median of per-round ratios, another estimator than the medians beside it.
        let linked = [125.4e-3, 124.0e-3, 127.0e-3, 125.0e-3, 126.0e-3];
        let plugin = [131.4e-3, 128.0e-3, 133.0e-3, 131.0e-3, 132.0e-3];
        let o = Overhead::estimate(&linked, &plugin);
        assert_eq!(o.linked_median_s, 125.4e-3);
        assert_eq!(o.plugin_median_s, 131.4e-3);
        assert!((o.pct - 100.0 * (131.4 / 125.4 - 1.0)).abs() < 1e-9);
        assert_eq!(o.verdict(BOUND_PCT), Verdict::NotMet);
        assert!(
            o.describe(BOUND_PCT).starts_with("+4.78 %"),
            "{}",
            o.describe(BOUND_PCT)
        );
        assert!(o.describe(BOUND_PCT).contains("not met"));
    }

    #[test]
    fn a_small_steady_overhead_is_met() {
        let linked = [100.0, 101.0, 99.0, 100.0, 100.5];
        let plugin = [100.5, 101.4, 99.6, 100.4, 101.0];
        let o = Overhead::estimate(&linked, &plugin);
        assert!(o.pct > 0.0 && o.pct < 1.0, "{o:?}");
        assert_eq!(o.verdict(BOUND_PCT), Verdict::Met);
    }

    #[test]
    fn noise_wider_than_the_bound_gives_no_verdict() {
        // A busy machine: rounds that disagree by tens of percent ("-31.72 % (< 2%)" was printed
        // as if met); nothing can be said about a 2 % bound from them.
        let linked = [100.0, 150.0, 90.0, 200.0, 100.0, 120.0];
        let plugin = [70.0, 100.0, 95.0, 120.0, 60.0, 130.0];
        let o = Overhead::estimate(&linked, &plugin);
        assert!(o.pct < -2.0);
        assert_eq!(o.verdict(BOUND_PCT), Verdict::Inconclusive);
        assert!(o.describe(BOUND_PCT).contains("inconclusive"));
        // Faster through the plugin than linked, beyond the bound, even with steady rounds.
        let steady = Overhead::estimate(&[100.0; 4], &[90.0; 4]);
        assert_eq!(steady.noise_pct, 0.0);
        assert_eq!(steady.verdict(BOUND_PCT), Verdict::Inconclusive);
    }

    #[test]
    fn it_reads_back_what_it_writes() {
        let o = Overhead::estimate(&[1.0, 2.0], &[1.5, 2.5]);
        assert_eq!(Overhead::from_json(&o.to_json()), Some(o));
        assert_eq!(Overhead::from_json(&json!({"overhead_pct": 1.0})), None);
    }
}
