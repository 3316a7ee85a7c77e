//! The conformance kit: what `trajhost plugin check` runs on a loaded plugin file and what a
//! plugin's own `cargo test` runs on its backbone in-process ([`crate::conformance_test!`]).
//! One piece of code for both, so a plugin's tests catch what the host would refuse.
//!
//! The checks see a backbone through [`Subject`]: the host implements it for the plugins it
//! loads, and [`check_backbone`] builds the backbone through the same adapter the ABI uses
//! ([`crate::backbone::build_extractor`]), so panics become errors here too.

use crate::abi::Extractor;
use crate::backbone::{build_extractor, BuildFn};
use crate::input::INPUT_RANGE;
use crate::{Backbone, ExtractorBox, PluginDevice, TensorHandle};
use std::collections::HashMap;
use std::fmt::Display;
use tch::{Device, Kind, Tensor};

/// Input sizes `(B, T, H, W)` the output shape is checked on; the first is the seed's.
pub const SHAPES: [[i64; 4]; 3] = [[2, 16, 64, 64], [1, 8, 64, 64], [3, 32, 64, 64]];

/// A built backbone as the checks see it.
pub trait Subject {
    fn feature_dim(&self) -> i64;
    /// `(B, T, C, H, W)` → the backbone's output, whatever its shape (the kit checks it).
    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, String>;
    /// Trainable parameters; they share storage and autograd state with the model's own.
    fn parameters(&self) -> Vec<(String, Tensor)>;
    /// Saved but untrained state (e.g. BatchNorm running statistics), sharing storage.
    fn buffers(&self) -> Vec<(String, Tensor)>;
}

impl Subject for ExtractorBox {
    fn feature_dim(&self) -> i64 {
        Extractor::feature_dim(self)
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, String> {
        Extractor::forward(self, TensorHandle::share(video), train)
            .into_result()
            .map(TensorHandle::into_tensor)
            .map_err(|e| e.into_string())
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        unpack(Extractor::parameters(self))
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        unpack(Extractor::buffers(self))
    }
}

fn unpack(named: abi_stable::std_types::RVec<crate::NamedTensor>) -> Vec<(String, Tensor)> {
    named
        .into_iter()
        .map(|n| (n.name.into_string(), n.tensor.into_tensor()))
        .collect()
}

/// How one check ended, with what was seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed(String),
    Failed(String),
    /// Not run: it needs a check that failed.
    Skipped(String),
}

pub struct CheckOutcome {
    pub name: &'static str,
    pub verdict: Verdict,
}

pub struct Report {
    pub plugin: String,
    pub outcomes: Vec<CheckOutcome>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.count(|v| matches!(v, Verdict::Failed(_))) == 0
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.outcomes.iter().filter(|o| which(&o.verdict)).count()
    }

    pub fn render(&self) -> String {
        let mut text = format!("conformance of plugin '{}'\n", self.plugin);
        for o in &self.outcomes {
            let (mark, detail) = match &o.verdict {
                Verdict::Passed(d) => ("ok  ", d),
                Verdict::Failed(e) => ("FAIL", e),
                Verdict::Skipped(why) => ("skip", why),
            };
            text += &format!("  {mark} {:<22} {detail}\n", o.name);
        }
        let total = self.outcomes.len();
        let failed = self.count(|v| matches!(v, Verdict::Failed(_)));
        let skipped = self.count(|v| matches!(v, Verdict::Skipped(_)));
        text += &match (failed, skipped) {
            (0, _) => format!("all {total} checks passed\n"),
            (n, 0) => format!("{n} of {total} checks failed\n"),
            (n, s) => format!("{n} of {total} checks failed, {s} skipped\n"),
        };
        text
    }
}

/// A check's result: what it saw, or the problem.
type Checked<T> = std::result::Result<T, String>;

/// Builds a fresh backbone after seeding libtorch's generator with the given seed.
pub type Build<'a, S> = dyn Fn(i64) -> Checked<S> + 'a;

/// Held while the kit runs: the determinism check seeds libtorch's one global generator, so
/// two kits in one process (parallel tests) must take turns. Other code drawing random numbers
/// in the same process at the same time can still disturb it: give the kit its own test file.
static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs every check on the backbones `build` makes. Checks that need the output shape are
/// skipped when it is wrong, instead of each reporting the same error again.
pub fn run<S: Subject>(plugin: &str, build: &Build<S>, device: Device) -> Report {
    // A kit that panicked in another test leaves nothing behind that needs repair.
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let mut outcomes = vec![];
    let mut record = |name, verdict| outcomes.push(CheckOutcome { name, verdict });
    match build(0) {
        Err(e) => record("build", Verdict::Failed(e)),
        Ok(model) => {
            record("build", Verdict::Passed(describe(&model)));
            let shapes = check_shapes(build, device);
            let shapes_ok = shapes.is_ok();
            record("output shape", verdict(shapes));
            type Check<S> = fn(&Build<S>, Device) -> Checked<String>;
            // Repeatability comes before the checks that compare two outputs, so that a
            // backbone whose eval mode is random fails on that, not on a memory layout.
            let dependent: [(&str, Check<S>); 7] = [
                ("finite output", check_finite),
                ("same seed, same output", check_determinism),
                ("train / eval mode", check_modes),
                ("any memory layout", check_layouts),
                ("gradients", check_gradients),
                ("hidden parameters", check_hidden_parameters),
                ("save / load", check_round_trip),
            ];
            for (name, check) in dependent {
                record(
                    name,
                    match shapes_ok {
                        true => verdict(check(build, device)),
                        false => Verdict::Skipped("needs a correct output shape".into()),
                    },
                );
            }
        }
    }
    Report {
        plugin: plugin.to_string(),
        outcomes,
    }
}

/// The kit on a backbone built in-process from `config` on the CPU, through the adapter the
/// host's calls go through.
pub fn check_backbone<B: Backbone>(plugin: &str, build: BuildFn<B>, config: &str) -> Report {
    let make = |seed: i64| -> Checked<ExtractorBox> {
        tch::manual_seed(seed);
        build_extractor(config, PluginDevice::Cpu, build)
            .into_result()
            .map_err(|e| format!("plugin '{plugin}' could not build its backbone: {e}"))
    };
    run(plugin, &make, Device::Cpu)
}

/// For a plugin's `cargo test`: panics with the whole report unless every check passes.
pub fn assert_conformance<B: Backbone>(plugin: &str, build: BuildFn<B>, config: &str) {
    let report = check_backbone(plugin, build, config);
    assert!(report.passed(), "config {config:?}:\n{}", report.render());
}

fn verdict(result: Checked<String>) -> Verdict {
    match result {
        Ok(detail) => Verdict::Passed(detail),
        Err(problem) => Verdict::Failed(problem),
    }
}

/// `?` on tch errors inside the checks.
fn text(e: impl Display) -> String {
    e.to_string()
}

fn describe(model: &impl Subject) -> String {
    let parameters = model.parameters();
    let count: i64 = parameters.iter().map(|(_, t)| t.numel() as i64).sum();
    format!(
        "feature_dim {}, {count} parameters in {} tensors, {} buffers",
        model.feature_dim(),
        parameters.len(),
        model.buffers().len()
    )
}

/// A clip of uniform noise over every value the host feeds (`crate::input::INPUT_RANGE`).
fn video(shape: [i64; 4], seed: i64, device: Device) -> Tensor {
    let [b, t, h, w] = shape;
    tch::manual_seed(seed);
    let (low, high) = INPUT_RANGE;
    Tensor::rand([b, t, 3, h, w], (Kind::Float, device)) * (high - low) + low
}

/// The clips a backbone must survive, as the host would feed them: noise, and the frames that
/// break per-clip normalisation or `sqrt`/`log` of the input — blank, saturated, mid-grey.
fn probes(shape: [i64; 4], device: Device) -> Vec<(&'static str, Tensor)> {
    let [b, t, h, w] = shape;
    let (low, high) = INPUT_RANGE;
    let filled = |value: f64| Tensor::full([b, t, 3, h, w], value, (Kind::Float, device));
    vec![
        ("noise over the input range", video(shape, 2, device)),
        (
            "a black clip (every value at the lowest input)",
            filled(low),
        ),
        (
            "a white clip (every value at the highest input)",
            filled(high),
        ),
        ("a mid-grey clip (every value 0)", filled(0.0)),
    ]
}

/// `forward`, refusing any output that is not `(B, T, D)`.
fn features(model: &mut impl Subject, video: &Tensor, train: bool) -> Checked<Tensor> {
    let out = model.forward(video, train)?;
    let input = video.size();
    let expected = [input[0], input[1], model.feature_dim()];
    if out.size() != expected {
        return Err(format!(
            "returned features of shape {:?} for input of shape {input:?}; expected (B, T, D) = {expected:?}",
            out.size()
        ));
    }
    Ok(out)
}

fn check_shapes<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut model = build(0)?;
    let mut seen = vec![];
    for shape in SHAPES {
        for train in [true, false] {
            let _ = tch::no_grad(|| features(&mut model, &video(shape, 1, device), train))?;
        }
        seen.push(format!("{shape:?}"));
    }
    Ok(format!("(B, T, D) for (B, T, H, W) in {}", seen.join(" ")))
}

fn check_finite<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let probes = probes(SHAPES[0], device);
    for (what, clip) in &probes {
        for train in [false, true] {
            // A fresh model each time: a NaN in train mode can poison running statistics.
            let mut model = build(0)?;
            let out = tch::no_grad(|| features(&mut model, clip, train))?;
            if out.isfinite().all().int64_value(&[]) != 1 {
                let mode = if train { "train" } else { "eval" };
                return Err(format!(
                    "NaN or Inf in the features for {what}, in {mode} mode: the host feeds values in [{}, {}] (trajhost_plugin_api::input), blank and saturated frames included",
                    INPUT_RANGE.0, INPUT_RANGE.1
                ));
            }
        }
    }
    Ok(format!(
        "no NaN or Inf in train and eval mode for {} clips: noise, black, white, grey",
        probes.len()
    ))
}

fn check_gradients<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut model = build(0)?;
    let out = features(&mut model, &video([2, 8, 64, 64], 3, device), true)?;
    // Random weights: a plain sum can have zero gradient through normalisation layers.
    tch::manual_seed(4);
    (&out * out.randn_like())
        .sum(Kind::Float)
        .f_backward()
        .map_err(|e| format!("backward through the output failed: {e}"))?;
    let parameters = model.parameters();
    let dead: Vec<&str> = parameters
        .iter()
        .filter(|(_, p)| {
            let g = p.grad();
            !g.defined() || g.abs().sum(Kind::Float).double_value(&[]) == 0.0
        })
        .map(|(n, _)| n.as_str())
        .collect();
    if !dead.is_empty() {
        return Err(format!("no gradient reaches {}", dead.join(", ")));
    }
    Ok(format!(
        "all {} parameter tensors receive a gradient",
        parameters.len()
    ))
}

/// With every registered parameter frozen, nothing in the output may still require grad:
/// if it does, a trainable tensor lives outside the VarStore, and the host would never
/// train or checkpoint it.
fn check_hidden_parameters<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut model = build(0)?;
    let parameters = model.parameters();
    for (_, p) in &parameters {
        let _ = p.set_requires_grad(false);
    }
    let out = features(&mut model, &video([2, 8, 64, 64], 9, device), true);
    for (_, p) in &parameters {
        let _ = p.set_requires_grad(true);
    }
    if out?.requires_grad() {
        return Err(
            "the output still requires grad with every registered parameter frozen: \
             a trainable tensor lives outside the VarStore, so the host would never train or \
             save it (create it through the VarStore: `root.var(..)` on the path your constructor is given, `vs.root()` where you hold the VarStore)"
                .into(),
        );
    }
    Ok(format!(
        "the output depends on no trainable tensor but the {} registered ones",
        parameters.len()
    ))
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// The host hands a batch over in the memory order the backbone asks for
/// ([`crate::InputLayout`]); the backbone must read the values, not assume the strides.
fn check_layouts<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut model = build(0)?;
    let time_major = video(SHAPES[0], 6, device);
    let channel_major = time_major
        .permute([0, 2, 1, 3, 4])
        .contiguous()
        .permute([0, 2, 1, 3, 4]);
    let a = tch::no_grad(|| features(&mut model, &time_major, false))?;
    let b = tch::no_grad(|| features(&mut model, &channel_major, false))?;
    let (diff, scale) = (max_difference(&a, &b), a.abs().max().double_value(&[]));
    if diff > 1e-4 * (1.0 + scale) {
        return Err(format!(
            "the same video laid out (B, T, C, H, W) and (B, C, T, H, W) in memory gives outputs differing by up to {diff:e}: read the tensor's values, not its memory (e.g. reshape, not view)"
        ));
    }
    Ok("the same output for (B, T, C, H, W) and (B, C, T, H, W) memory order".into())
}

fn check_determinism<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let x = video(SHAPES[0], 5, device);
    let a = tch::no_grad(|| features(&mut build(7)?, &x, false))?;
    let b = tch::no_grad(|| features(&mut build(7)?, &x, false))?;
    let diff = max_difference(&a, &b);
    if diff > 1e-6 {
        return Err(format!("two builds with seed 7 differ by up to {diff:e}"));
    }
    Ok("two builds with one seed give the same output".into())
}

/// Each buffer's name and a copy of its value.
fn buffer_values(model: &impl Subject) -> Vec<(String, Tensor)> {
    model
        .buffers()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

/// The buffers whose value differs from `before`.
fn changed_buffers(before: &[(String, Tensor)], model: &impl Subject) -> Vec<String> {
    let now: HashMap<String, Tensor> = model.buffers().into_iter().collect();
    before
        .iter()
        .filter(|(n, t)| now.get(n).is_none_or(|t2| max_difference(t, t2) > 0.0))
        .map(|(n, _)| n.clone())
        .collect()
}

fn check_modes<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut model = build(0)?;
    let x = video(SHAPES[0], 6, device);
    let before = buffer_values(&model);
    let (first, second) = tch::no_grad(|| -> Checked<_> {
        Ok((
            features(&mut model, &x, false)?,
            features(&mut model, &x, false)?,
        ))
    })?;
    if max_difference(&first, &second) != 0.0 {
        return Err("two eval-mode calls on one input differ".into());
    }
    let by_eval = changed_buffers(&before, &model);
    if !by_eval.is_empty() {
        return Err(format!("eval mode changed buffers: {}", by_eval.join(", ")));
    }
    let _ = tch::no_grad(|| features(&mut model, &x, true))?;
    let by_train = changed_buffers(&before, &model);
    let stale: Vec<&str> = before
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains("running") && !by_train.iter().any(|c| c == n))
        .collect();
    if !stale.is_empty() {
        return Err(format!(
            "train mode did not update running statistics: {}",
            stale.join(", ")
        ));
    }
    Ok(format!(
        "eval is repeatable and leaves buffers alone; train updated {} of {} buffers",
        by_train.len(),
        before.len()
    ))
}

/// Parameters and buffers together: what a checkpoint saves.
fn state(model: &impl Subject) -> Vec<(String, Tensor)> {
    let mut state = model.parameters();
    state.extend(model.buffers());
    state
}

fn check_round_trip<S: Subject>(build: &Build<S>, device: Device) -> Checked<String> {
    let mut original = build(11)?;
    let x = video(SHAPES[0], 8, device);
    // Move running statistics away from their initial values first.
    let _ = tch::no_grad(|| features(&mut original, &x, true))?;
    // A unique file per call: tests run this in parallel threads and processes.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "trajhost-conformance-{}-{}.safetensors",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = Tensor::write_safetensors(&state(&original), &file);
    let read = written.and_then(|()| Tensor::read_safetensors(&file));
    let _ = std::fs::remove_file(&file);
    let saved: HashMap<String, Tensor> = read
        .map_err(|e| format!("saving and reading the state: {e}"))?
        .into_iter()
        .collect();
    let mut restored = build(12)?;
    tch::no_grad(|| -> Checked<()> {
        for (name, mut target) in state(&restored) {
            let value = saved
                .get(&name)
                .ok_or_else(|| format!("'{name}' was not saved"))?;
            target.f_copy_(value).map_err(text)?;
        }
        Ok(())
    })?;
    let diff = tch::no_grad(|| -> Checked<f64> {
        Ok(max_difference(
            &features(&mut original, &x, false)?,
            &features(&mut restored, &x, false)?,
        ))
    })?;
    if diff > 1e-6 {
        return Err(format!(
            "a model restored from saved state differs by up to {diff:e}"
        ));
    }
    Ok(format!(
        "{} tensors saved and restored; outputs match",
        saved.len()
    ))
}
