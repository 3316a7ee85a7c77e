//! `trajhost plugin check`: the conformance kit a backbone author runs on their plugin.
//! Each check is independent and reports what it saw; the command fails if any fails.

use crate::plugin::{Plugin, PluginBackbone};
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// Input sizes `(B, T, H, W)` the output shape is checked on; the first is the seed's.
pub const SHAPES: [[i64; 4]; 3] = [[2, 16, 64, 64], [1, 8, 64, 64], [3, 32, 64, 64]];

pub struct CheckOutcome {
    pub name: &'static str,
    /// What was seen: `Ok(detail)` when the check passed, `Err(problem)` when it failed.
    pub result: Result<String, String>,
}

pub struct Report {
    pub plugin: String,
    pub outcomes: Vec<CheckOutcome>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }

    pub fn render(&self) -> String {
        let mut text = format!("conformance of plugin '{}'\n", self.plugin);
        for o in &self.outcomes {
            let (mark, detail) = match &o.result {
                Ok(d) => ("ok  ", d),
                Err(e) => ("FAIL", e),
            };
            text += &format!("  {mark} {:<22} {detail}\n", o.name);
        }
        let failed = self.outcomes.iter().filter(|o| o.result.is_err()).count();
        text += &match failed {
            0 => format!("all {} checks passed\n", self.outcomes.len()),
            n => format!("{n} of {} checks failed\n", self.outcomes.len()),
        };
        text
    }
}

/// Runs every check on `plugin` built from `config`.
pub fn check_plugin(plugin: &Plugin, config: &str, device: Device) -> Report {
    let build = |seed: i64| -> Result<PluginBackbone> {
        tch::manual_seed(seed);
        plugin.build(config, device)
    };
    let mut outcomes = vec![];
    let mut record = |name, result: Result<String>| {
        outcomes.push(CheckOutcome {
            name,
            result: result.map_err(|e| format!("{e:#}")),
        })
    };
    match build(0) {
        Err(e) => record("build", Err(e)),
        Ok(model) => {
            record("build", Ok(describe(&model)));
            record("output shape", check_shapes(&build, device));
            record("finite output", check_finite(&build, device));
            record("gradients", check_gradients(&build, device));
            record("same seed, same output", check_determinism(&build, device));
            record("train / eval mode", check_modes(&build, device));
            record("save / load", check_round_trip(&build, device));
        }
    }
    Report {
        plugin: plugin.name().to_string(),
        outcomes,
    }
}

fn describe(model: &PluginBackbone) -> String {
    format!(
        "feature_dim {}, {} parameters in {} tensors, {} buffers",
        model.feature_dim(),
        model.parameter_count(),
        model.parameters().len(),
        model.buffers().len()
    )
}

type Build<'a> = dyn Fn(i64) -> Result<PluginBackbone> + 'a;

fn video(shape: [i64; 4], seed: i64, device: Device) -> Tensor {
    let [b, t, h, w] = shape;
    tch::manual_seed(seed);
    Tensor::rand([b, t, 3, h, w], (Kind::Float, device))
}

fn check_shapes(build: &Build, device: Device) -> Result<String> {
    let mut model = build(0)?;
    let mut seen = vec![];
    for shape in SHAPES {
        for train in [true, false] {
            // `forward` itself refuses any output that is not (B, T, D).
            let _ = tch::no_grad(|| model.forward(&video(shape, 1, device), train))?;
        }
        seen.push(format!("{shape:?}"));
    }
    Ok(format!("(B, T, D) for (B, T, H, W) in {}", seen.join(" ")))
}

fn check_finite(build: &Build, device: Device) -> Result<String> {
    let mut model = build(0)?;
    for train in [true, false] {
        let out = tch::no_grad(|| model.forward(&video(SHAPES[0], 2, device), train))?;
        let finite = out.isfinite().all().int64_value(&[]) == 1;
        ensure!(finite, "NaN or Inf in the output (train = {train})");
    }
    Ok("no NaN or Inf in train and eval mode".into())
}

fn check_gradients(build: &Build, device: Device) -> Result<String> {
    let mut model = build(0)?;
    let out = model.forward(&video([2, 8, 64, 64], 3, device), true)?;
    // Random weights: a plain sum can have zero gradient through normalisation layers.
    tch::manual_seed(4);
    (&out * out.randn_like()).sum(Kind::Float).backward();
    let parameters = model.parameters();
    let dead: Vec<&str> = parameters
        .iter()
        .filter(|(_, p)| {
            let g = p.grad();
            !g.defined() || g.abs().sum(Kind::Float).double_value(&[]) == 0.0
        })
        .map(|(n, _)| n.as_str())
        .collect();
    ensure!(dead.is_empty(), "no gradient reaches {}", dead.join(", "));
    Ok(format!(
        "all {} parameter tensors receive a gradient",
        parameters.len()
    ))
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn check_determinism(build: &Build, device: Device) -> Result<String> {
    let x = video(SHAPES[0], 5, device);
    let a = tch::no_grad(|| build(7)?.forward(&x, false))?;
    let b = tch::no_grad(|| build(7)?.forward(&x, false))?;
    let diff = max_difference(&a, &b);
    ensure!(
        diff <= 1e-6,
        "two builds with seed 7 differ by up to {diff:e}"
    );
    Ok("two builds with one seed give the same output".into())
}

fn check_modes(build: &Build, device: Device) -> Result<String> {
    let mut model = build(0)?;
    let x = video(SHAPES[0], 6, device);
    let snapshot = |m: &PluginBackbone| -> Vec<(String, Tensor)> {
        m.buffers()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect()
    };
    let changed = |before: &[(String, Tensor)], m: &PluginBackbone| -> Vec<String> {
        let now: HashMap<String, Tensor> = m.buffers().into_iter().collect();
        before
            .iter()
            .filter(|(n, t)| max_difference(t, &now[n]) > 0.0)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let before = snapshot(&model);
    let (first, second) = tch::no_grad(|| -> Result<_> {
        Ok((model.forward(&x, false)?, model.forward(&x, false)?))
    })?;
    ensure!(
        max_difference(&first, &second) == 0.0,
        "two eval-mode calls on one input differ"
    );
    let by_eval = changed(&before, &model);
    ensure!(
        by_eval.is_empty(),
        "eval mode changed buffers: {}",
        by_eval.join(", ")
    );
    let _ = tch::no_grad(|| model.forward(&x, true))?;
    let by_train = changed(&before, &model);
    let stale: Vec<&str> = before
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains("running") && !by_train.iter().any(|c| c == n))
        .collect();
    ensure!(
        stale.is_empty(),
        "train mode did not update running statistics: {}",
        stale.join(", ")
    );
    Ok(format!(
        "eval is repeatable and leaves buffers alone; train updated {} of {} buffers",
        by_train.len(),
        before.len()
    ))
}

fn check_round_trip(build: &Build, device: Device) -> Result<String> {
    let mut original = build(11)?;
    let x = video(SHAPES[0], 8, device);
    // Move running statistics away from their initial values first.
    let _ = tch::no_grad(|| original.forward(&x, true))?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("state.safetensors");
    Tensor::write_safetensors(&original.state(), &file).context("saving the state")?;
    let saved: HashMap<String, Tensor> = Tensor::read_safetensors(&file)?.into_iter().collect();
    let mut restored = build(12)?;
    restored.load_state(&saved)?;
    let diff = tch::no_grad(|| -> Result<f64> {
        Ok(max_difference(
            &original.forward(&x, false)?,
            &restored.forward(&x, false)?,
        ))
    })?;
    if diff > 1e-6 {
        bail!("a model restored from saved state differs by up to {diff:e}");
    }
    Ok(format!(
        "{} tensors saved and restored; outputs match",
        saved.len()
    ))
}
