//! Tools for backbone authors' own tests and measurements, shared so that every plugin crate
//! (ours and third parties') describes and times its model the same way.

use crate::Backbone;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Every parameter and buffer with its shape, the parameter count, `D`, and the feature shape
/// for each `(B, T)` in `inputs` (eval mode, 64×64 frames): the text plugin snapshots hold.
pub fn describe(model: &mut dyn Backbone, inputs: &[(i64, i64)]) -> String {
    let mut vars: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
    // Parameters first, then buffers, each sorted by name.
    vars.sort_by(|a, b| (!a.1.requires_grad(), &a.0).cmp(&(!b.1.requires_grad(), &b.0)));
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::new();
    let mut total = 0;
    for (name, t) in &vars {
        let kind = if t.requires_grad() {
            total += t.numel();
            "param "
        } else {
            "buffer"
        };
        text += &format!("{kind} {name:<width$} {:?}\n", t.size());
    }
    text += &format!("total parameters: {total}\n");
    text += &format!("feature_dim: {}\n", model.feature_dim());
    for &(b, t) in inputs {
        tch::manual_seed(1);
        let video = Tensor::rand([b, t, 3, 64, 64], (Kind::Float, Device::Cpu));
        let shape = match tch::no_grad(|| model.forward(&video, false)) {
            Ok(out) => format!("{:?}", out.size()),
            Err(e) => format!("error: {}", e.0),
        };
        text += &format!("features for ({b}, {t}, 3, 64, 64): {shape}\n");
    }
    text
}

/// Throughput in videos/s on random `(batch, 32, 3, 64, 64)` input, averaged over `batches`
/// after one warm-up: `(training: forward + backward, inference: forward only)`.
pub fn throughput(
    model: &mut dyn Backbone,
    batch: i64,
    batches: usize,
) -> Result<(f64, f64), crate::BackboneError> {
    let video = Tensor::rand([batch, 32, 3, 64, 64], (Kind::Float, Device::Cpu));
    let mut step = |train: bool| -> Result<(), crate::BackboneError> {
        if train {
            model
                .forward(&video, true)?
                .square()
                .mean(Kind::Float)
                .backward();
            for mut p in model.var_store().trainable_variables() {
                p.zero_grad();
            }
        } else {
            let _ = tch::no_grad(|| model.forward(&video, false))?;
        }
        Ok(())
    };
    step(true)?;
    let mut rates = [0.0; 2];
    for (rate, train) in rates.iter_mut().zip([true, false]) {
        let start = Instant::now();
        for _ in 0..batches {
            step(train)?;
        }
        *rate = (batch as usize * batches) as f64 / start.elapsed().as_secs_f64();
    }
    Ok((rates[0], rates[1]))
}

/// The body of a plugin's `examples/throughput.rs`:
/// `cargo run --release -p NAME --example NAME_throughput -- [config] [batches]`, two threads
/// unless `THREADS` says otherwise.
pub fn throughput_main<B: Backbone>(
    name: &str,
    build: crate::backbone::BuildFn<B>,
) -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_default();
    let batches: usize = args
        .next()
        .map_or(Ok(5), |n| n.parse())
        .map_err(|e| format!("batches: {e}"))?;
    let threads = std::env::var("THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let mut model = build(&config, Device::Cpu).map_err(|e| e.0)?;
    let count: i64 = model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let (train, infer) = throughput(&mut model, 32, batches).map_err(|e| e.0)?;
    println!(
        "{name} {config:?}: {count} parameters, {threads} threads; training (forward + backward) {train:.1} videos/s, \
         forward only {infer:.1} videos/s (batches of 32 × (32, 3, 64, 64))"
    );
    Ok(())
}
