//! The trajhost side of the side-by-side benchmark (docs/bench.md): each measurement runs the real
//! host code (plugin loading, `UnifiedModel`, `compute_loss`, the host's `AdamW`, the prefetching
//! `data::batches`, the dataset generator) in its own process and prints one JSON object, with
//! the process's peak resident memory, for `bench/python/run_bench.py` to put next to the
//! PyTorch/numpy numbers.
//!
//! This library links no plugin crate: every plugin's rlib exports the same `#[no_mangle]`
//! symbols, so the in-process half of the boundary measurement lives in one small binary per
//! backbone (`src/bin/boundary_<name>.rs`), built on [`boundary::run`].

pub mod boundary;
pub mod clock;
pub mod pairs;
pub mod report;

use anyhow::{anyhow, bail, Context, Result};
use clock::{Channel, StepClock};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};
use trajhost::config::{Background, Colour, PositionHead};
use trajhost::plugin::{resolve_plugin, Plugin};
use trajhost::train::data::{batches, epoch_order, Batch, SplitData};
use trajhost::train::loss::{compute_loss, LossWeights};
use trajhost::train::metrics::Accumulator;
use trajhost::train::model::UnifiedModel;
use trajhost::train::model_input::InputForm;
use trajhost::train::optim::{learning_rate, AdamW};
use trajhost::train::pinhole::Lens;
use trajhost::train::source::{DataSource, TrainingData};
use trajhost::train::step::{forward_step, update_step};
use trajhost_dataset::{generate, DataConfig, GenerateOptions};
use trajhost_plugin_api::InputLayout;

/// The four backbones the benchmark compares.
pub const BACKBONES: [&str; 4] = ["i3d", "slowfast", "transformer", "magvit"];

/// `--key value` arguments (and bare `--flag`s, stored as "true").
pub struct Args(HashMap<String, String>);

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args> {
        let mut map = HashMap::new();
        let mut it = args.into_iter().peekable();
        while let Some(arg) = it.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| anyhow!("unexpected argument {arg:?} (options are --key value)"))?
                .to_string();
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap(),
                _ => "true".to_string(),
            };
            map.insert(key, value);
        }
        Ok(Args(map))
    }

    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow!("--{key} {v:?}: {e}")),
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    pub fn require(&self, key: &str) -> Result<String> {
        self.string(key).ok_or_else(|| anyhow!("missing --{key}"))
    }
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Minor page faults of this process so far (each one a fresh page the kernel had to zero).
pub fn minor_faults() -> u64 {
    // SAFETY: getrusage only writes the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_minflt as u64
    }
}

/// Sets libtorch's intra-op threads (the same number the PyTorch side uses).
pub fn set_threads(threads: i32) {
    tch::set_num_threads(threads);
}

/// Summary statistics of per-step seconds.
pub fn stats(seconds: &[f64]) -> Value {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    };
    json!({
        "n": n,
        "median_s": median,
        "min_s": sorted.first().copied().unwrap_or(0.0),
        "mean_s": if n == 0 { 0.0 } else { seconds.iter().sum::<f64>() / n as f64 },
    })
}

/// Frames per clip of the benchmark's videos (the dataset default).
pub const BENCH_FRAMES: i64 = 32;

/// Loads a plugin by name or path, as `trajhost train --plugin` does.
pub fn load_plugin(spec: &str) -> Result<Plugin> {
    Plugin::load(&resolve_plugin(spec)?)
}

/// Parameter counts and shapes of every backbone's `cpu` preset inside the host's unified model.
pub fn params_report() -> Result<Value> {
    let mut out = serde_json::Map::new();
    for name in BACKBONES {
        let plugin = load_plugin(name)?;
        let backbone = plugin.build("", Device::Cpu)?;
        let feature_dim = backbone.feature_dim();
        let backbone_params = backbone.parameter_count();
        let model = UnifiedModel::new(
            backbone,
            BENCH_FRAMES,
            PositionHead::Direct,
            (Background::Keep, Colour::Rgb),
            Device::Cpu,
        );
        let total = model.parameter_count();
        let parameters = model.parameters();
        let shapes_under = |prefix: &str| {
            let mut shapes: Vec<Vec<i64>> = parameters
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(_, t)| t.size())
                .collect();
            shapes.sort();
            shapes
        };
        let (shapes, head_shapes) = (shapes_under("backbone."), shapes_under("heads."));
        out.insert(
            name.to_string(),
            json!({
                "feature_dim": feature_dim,
                "backbone": backbone_params,
                "heads": total - backbone_params,
                "total": total,
                "backbone_shapes": shapes,
                "head_shapes": head_shapes,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// The golden ratio's fractional parts: a deterministic pattern both sides compute identically
/// in f64 (`bench/python/measure.py` has the same function).
pub fn pattern(n: usize, offset: f64) -> Vec<f32> {
    const PHI: f64 = 0.618_033_988_749_894_9;
    (0..n)
        .map(|k| ((k as f64 + offset) * PHI).fract() as f32)
        .collect()
}

/// Every backbone's `cpu` preset with every parameter set from its *shape* only (so the two
/// sides agree without mapping names: same-shaped tensors get the same values), evaluated on
/// a fixed input in eval mode, one thread. The PyTorch modules must give the same features.
pub fn forward_check() -> Result<Value> {
    set_threads(1);
    let mut out = serde_json::Map::new();
    for name in BACKBONES {
        let plugin = load_plugin(name)?;
        let mut backbone = plugin.build("", Device::Cpu)?;
        tch::no_grad(|| -> Result<()> {
            for (_, mut p) in backbone.parameters() {
                p.f_copy_(&shaped(&p.size()))?;
            }
            Ok(())
        })?;
        let shape = [2i64, 32, 3, 64, 64];
        let video =
            Tensor::from_slice(&pattern(shape.iter().product::<i64>() as usize, 0.5)).view(shape);
        let features = tch::no_grad(|| backbone.forward(&video, false))?;
        let values: Vec<f32> = Vec::try_from(features.flatten(0, -1))?;
        out.insert(
            name.to_string(),
            json!({"shape": features.size(), "values": values}),
        );
    }
    Ok(Value::Object(out))
}

/// The parameter value [`forward_check`] uses for a tensor of `shape`: the pattern centred and
/// scaled by 1/√fan_in for weights (rank > 1), 1 + 0.1·(pattern − ½) for rank-1 tensors
/// (norm scales and biases alike).
pub fn shaped(shape: &[i64]) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    let p = Tensor::from_slice(&pattern(n, n as f64)).view(shape) - 0.5;
    if shape.len() > 1 {
        let fan_in = (n as i64 / shape[0]).max(1) as f64;
        p * (2.0 / fan_in.sqrt())
    } else {
        p * 0.2 + 1.0
    }
}

/// The dataset config every measurement uses: the shipped `configs/data.ron` (32 frames of
/// 64×64) with `samples` videos in one shard.
pub fn data_config(samples: usize, seed: u64) -> DataConfig {
    let mut cfg = DataConfig::default_config();
    cfg.samples = samples;
    cfg.checkpoint_interval = samples.clamp(1, 2000);
    cfg.seed = seed;
    cfg
}

/// Rendering only, in memory, on a pool of `threads` workers: videos/s of the generator itself.
pub fn render_bench(samples: usize, threads: usize) -> Result<Value> {
    let cfg = data_config(samples, 7);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    let video_bytes = cfg.video_bytes();
    let start = Instant::now();
    let checksum: u64 = pool.install(|| {
        (0..samples as u64)
            .into_par_iter()
            .map_init(
                || vec![0u8; video_bytes],
                |buf, i| {
                    let labels = trajhost_dataset::sample::generate_sample(&cfg, i, buf);
                    u64::from(buf[buf.len() / 2]) + u64::from(labels.label)
                },
            )
            .sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    Ok(json!({
        "side": "trajhost",
        "what": "render",
        "samples": samples,
        "threads": threads,
        "seconds": seconds,
        "videos_per_s": samples as f64 / seconds,
        "checksum": checksum,
        "frames": cfg.frames,
        "height": cfg.height,
        "width": cfg.width,
        "peak_rss_kib": peak_rss_kib(),
    }))
}

/// `trajhost data generate` end to end (render, hash, write safetensors shards) into `out`.
pub fn make_data(out: &Path, samples: usize, threads: usize) -> Result<Value> {
    let cfg = data_config(samples, 42);
    let opts = GenerateOptions {
        workers: threads.max(1),
        force: true,
    };
    let report = generate(&cfg, out, &opts)?;
    Ok(json!({
        "side": "trajhost",
        "what": "generate",
        "samples": samples,
        "threads": threads,
        "seconds": report.seconds,
        "videos_per_s": report.generated as f64 / report.seconds,
        "out": out.display().to_string(),
        "peak_rss_kib": peak_rss_kib(),
    }))
}

/// What a training or inference measurement needs.
pub struct ModelBench {
    pub plugin: String,
    pub data: PathBuf,
    pub batch_size: usize,
    pub warmup: usize,
    /// Timed steps (served: per block).
    pub steps: usize,
    /// Served blocks on stdin/stdout ([`clock`]) instead of one fixed run.
    pub serve: bool,
    /// The step with the host's own work taken out: one batch made once and reused, no finite
    /// check, no metrics; what is left is libtorch's kernels, their dispatch and AdamW.
    pub floor: bool,
    pub threads: i32,
    /// What `configs/validation.ron` sets.
    pub lr: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub predict_future: usize,
    pub seed: u64,
}

impl ModelBench {
    pub fn from_args(args: &Args) -> Result<ModelBench> {
        Ok(ModelBench {
            plugin: args.require("plugin")?,
            data: PathBuf::from(args.require("data")?),
            batch_size: args.get("batch", 32)?,
            warmup: args.get("warmup", 3)?,
            steps: args.get("steps", 20)?,
            serve: args.get("serve", false)?,
            floor: args.get("floor", false)?,
            threads: args.get("threads", 2)?,
            lr: 1e-3,
            weight_decay: 0.01,
            grad_clip: 1.0,
            predict_future: 5,
            seed: 42,
        })
    }

    /// The batches of one pass over `order`; with `floor`, its first batch made once and
    /// handed out again for every step.
    fn batches<'a>(
        &self,
        split: &'a SplitData,
        order: &[i64],
        form: InputForm,
    ) -> Box<dyn Iterator<Item = Batch> + 'a> {
        let mut fresh = batches(split, order, self.batch_size, Device::Cpu, form);
        if !self.floor {
            return Box::new(fresh);
        }
        let Some(first) = fresh.next() else {
            return Box::new(fresh);
        };
        let steps = order.len().div_ceil(self.batch_size.max(1));
        Box::new((0..steps).map(move |_| first.shallow_clone()))
    }

    fn clock(&self) -> StepClock {
        if self.serve {
            StepClock::served(self.warmup, self.steps, Channel::stdio())
        } else {
            StepClock::fixed(self.warmup, self.steps)
        }
    }
}

/// The bench's model (the plugin's default config, the direct head, seeded) and its data, on
/// `b.threads` threads.
fn model_and_data(b: &ModelBench) -> Result<(UnifiedModel, TrainingData)> {
    set_threads(b.threads);
    let plugin = load_plugin(&b.plugin)?;
    tch::manual_seed(b.seed as i64);
    let backbone = plugin.build("", Device::Cpu)?;
    let data = DataSource::Stored(b.data.clone()).load(b.predict_future, None)?;
    let model = UnifiedModel::new(
        backbone,
        data.frames as i64,
        PositionHead::Direct,
        (Background::Keep, Colour::Rgb),
        Device::Cpu,
    );
    Ok((model, data))
}

/// Training throughput of the host's loop: the body of `trainer.rs`'s step, verbatim in what it
/// computes (per-step seed, forward, loss, finite check, zero_grad, backward, clipping,
/// schedule, AdamW, metric accumulation), over `data::batches` of a generated dataset.
/// The first `warmup` steps are not timed.
pub fn train_bench(b: &ModelBench) -> Result<Value> {
    let (mut model, data) = model_and_data(b)?;
    let mut optimizer = AdamW::new(model.parameters(), b.weight_decay);
    let (split, form) = (&data.train, model.input_form());
    let mut progress = Accumulator::default();
    let mut clock = b.clock();
    let mut epoch = 0;
    'outer: loop {
        epoch += 1;
        let order = epoch_order(split.len(), b.seed, epoch);
        clock.restart();
        for batch in b.batches(split, &order, form) {
            let global_step = clock.step();
            let (outputs, losses) = forward_step(
                &mut model,
                &batch,
                b.seed,
                global_step as i64,
                LossWeights::ALL_ONE,
            )?;
            if !b.floor {
                let loss = losses.total.double_value(&[]);
                if !loss.is_finite() {
                    bail!("loss became {loss} at step {global_step}");
                }
            }
            let lr = learning_rate(global_step, 50, 1000, b.lr, 1e-5, true);
            update_step(&mut optimizer, &losses.total, Some(b.grad_clip), lr)?;
            if !b.floor {
                tch::no_grad(|| progress.add(&outputs, &batch, &losses));
            }
            if clock.step_done(batch.labels.size()[0] as usize) {
                break 'outer;
            }
        }
    }
    Ok(clock.report(json!({
        "what": "train",
        "backbone": model.backbone.name(),
        "parameters": model.parameter_count(),
        "threads": b.threads,
        "batch_size": b.batch_size,
        "final_loss": progress.finish().loss,
    })))
}

/// Inference throughput as `metrics::evaluate` runs it: no_grad, eval mode, loss and metrics
/// accumulated per batch, sequential order.
pub fn infer_bench(b: &ModelBench) -> Result<Value> {
    let (mut model, data) = model_and_data(b)?;
    let (split, form) = (&data.train, model.input_form());
    let mut acc = Accumulator::default();
    let mut clock = b.clock();
    let order: Vec<i64> = (0..split.len() as i64).collect();
    tch::no_grad(|| -> Result<()> {
        loop {
            clock.restart();
            for batch in b.batches(split, &order, form) {
                let outputs = model.forward(&batch.videos, &batch.lenses, false)?;
                if !b.floor {
                    let losses = compute_loss(&outputs, &batch, LossWeights::ALL_ONE);
                    acc.add(&outputs, &batch, &losses);
                }
                if clock.step_done(batch.labels.size()[0] as usize) {
                    return Ok(());
                }
            }
        }
    })?;
    Ok(clock.report(json!({
        "what": "infer",
        "backbone": model.backbone.name(),
        "threads": b.threads,
        "batch_size": b.batch_size,
        "accuracy": acc.finish().accuracy,
    })))
}

/// What preparing the batches alone costs (`data::batches`: gather, convert to float, lay out
/// as `layout`), the part of a step that a prefetch thread could overlap with compute; ms and
/// minor faults per batch.
pub fn batches_bench(
    data_dir: &Path,
    batch_size: usize,
    threads: i32,
    rounds: usize,
    layout: InputLayout,
) -> Result<Value> {
    set_threads(threads);
    let data = DataSource::Stored(data_dir.to_path_buf()).load(5, None)?;
    let split = &data.train;
    let mut seconds = Vec::new();
    let mut faults = 0;
    for epoch in 0..rounds.div_ceil(split.len().div_ceil(batch_size)) + 1 {
        let order = epoch_order(split.len(), 42, epoch + 1);
        let mut it = batches(split, &order, batch_size, Device::Cpu, layout.into());
        loop {
            let (before, start) = (minor_faults(), Instant::now());
            let Some(batch) = it.next() else { break };
            let s = start.elapsed().as_secs_f64();
            if epoch > 0 && seconds.len() < rounds && batch.labels.size()[0] == batch_size as i64 {
                seconds.push(s);
                faults += minor_faults() - before;
            }
        }
    }
    Ok(json!({
        "what": "batches",
        "layout": format!("{layout:?}"),
        "threads": threads,
        "batch_size": batch_size,
        "ms_per_batch": 1e3 * seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        "minor_faults_per_batch": faults as f64 / seconds.len().max(1) as f64,
        "batches": seconds.len(),
    }))
}

/// What libtorch reports and does with `threads` intra-op threads: a matmul and a conv3d timed.
pub fn threads_check(threads: i32) -> Value {
    set_threads(threads);
    let a = Tensor::rand([1024, 1024], (tch::Kind::Float, Device::Cpu));
    let x = Tensor::rand([8, 16, 32, 16, 16], (tch::Kind::Float, Device::Cpu));
    let w = Tensor::rand([16, 16, 3, 3, 3], (tch::Kind::Float, Device::Cpu));
    let time = |f: &dyn Fn() -> Tensor| {
        let _ = f();
        let start = Instant::now();
        for _ in 0..5 {
            let _ = f();
        }
        start.elapsed().as_secs_f64() / 5.0
    };
    let matmul = time(&|| a.matmul(&a));
    let conv = time(&|| x.conv3d(&w, None::<Tensor>, [1, 1, 1], [1, 1, 1], [1, 1, 1], 1));
    json!({
        "requested": threads,
        "get_num_threads": tch::get_num_threads(),
        "matmul_1024_s": matmul,
        "conv3d_s": conv,
    })
}

/// The host optimiser's share of a step: `clip_grad_norm` and `AdamW::step` over a backbone's
/// and heads' parameters with real gradients, single-threaded, per step.
pub fn optim_check(plugin: &str, rounds: usize) -> Result<Value> {
    set_threads(1);
    let plugin = load_plugin(plugin)?;
    tch::manual_seed(0);
    let backbone = plugin.build("", Device::Cpu)?;
    let mut model = UnifiedModel::new(
        backbone,
        BENCH_FRAMES,
        PositionHead::Direct,
        (Background::Keep, Colour::Rgb),
        Device::Cpu,
    );
    let params = model.parameters();
    let tensors = params.len();
    let mut optimizer = AdamW::new(params, 0.01);
    let videos = random_video(2, BENCH_FRAMES, 64);
    let lenses = Lens::table(&[Lens::from_fov(50.0, 64, 64); 2]);
    let outputs = model.forward(&videos, &lenses, true)?;
    let batch = Batch {
        videos,
        labels: Tensor::from_slice(&[0i64, 1]),
        target: Tensor::zeros([2, 3], (tch::Kind::Float, Device::Cpu)),
        track: Tensor::zeros([2, BENCH_FRAMES, 3], (tch::Kind::Float, Device::Cpu)),
        lenses,
    };
    compute_loss(&outputs, &batch, LossWeights::ALL_ONE)
        .total
        .backward();
    let (mut clip, mut step) = (0.0, 0.0);
    for _ in 0..rounds {
        let start = Instant::now();
        optimizer.clip_grad_norm(1.0)?;
        let mid = Instant::now();
        optimizer.step(1e-3)?;
        clip += mid.duration_since(start).as_secs_f64();
        step += mid.elapsed().as_secs_f64();
    }
    Ok(json!({
        "backbone": model.backbone.name(),
        "tensors": tensors,
        "parameters": model.parameter_count(),
        "clip_grad_norm_ms": 1e3 * clip / rounds as f64,
        "adamw_step_ms": 1e3 * step / rounds as f64,
    }))
}

/// A random `(B, T, 3, H, W)` batch in [0, 1].
pub fn random_video(batch: i64, frames: i64, size: i64) -> Tensor {
    Tensor::rand(
        [batch, frames, 3, size, size],
        (tch::Kind::Float, Device::Cpu),
    )
}

/// Writes `text` to `path` through a temporary file in the same folder, so a reader never sees
/// half of it.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp-trajhost-bench");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Prints `value` as one JSON line on stdout.
pub fn emit(value: &Value) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string(value).context("serialising the result")?
    );
    Ok(())
}
