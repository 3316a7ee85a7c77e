//! Training throughput (forward + backward) on random input with two threads:
//! `cargo run --release -p slowfast --example slowfast_throughput -- [config] [batches]`.

use slowfast::SlowFast as Model;
use std::time::Instant;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;

const NAME: &str = "slowfast";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_default();
    let batches: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5);
    // Two threads by default (the target machine); `THREADS=n` overrides.
    let threads = std::env::var("THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let mut model = Model::build(&config, Device::Cpu).map_err(|e| e.0)?;
    let count: i64 = model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let video = Tensor::rand([32, 32, 3, 64, 64], (Kind::Float, Device::Cpu));
    let mut step = |backward: bool| -> Result<(), Box<dyn std::error::Error>> {
        if backward {
            let out = model.forward(&video, true).map_err(|e| e.0)?;
            out.square().mean(Kind::Float).backward();
            for mut p in model.var_store().trainable_variables() {
                p.zero_grad();
            }
        } else {
            let _ = tch::no_grad(|| model.forward(&video, true)).map_err(|e| e.0)?;
        }
        Ok(())
    };
    step(true)?; // warm-up
    let mut per_batch = [0.0; 2];
    for (i, backward) in [false, true].into_iter().enumerate() {
        let start = Instant::now();
        for _ in 0..batches {
            step(backward)?;
        }
        per_batch[i] = start.elapsed().as_secs_f64() / batches as f64;
    }
    println!(
        "{NAME} {config:?}: {count} parameters, {threads} threads; training (forward + backward) {:.1} videos/s \
         ({:.3} s per batch of 32 × (32, 3, 64, 64)); forward only {:.1} videos/s",
        32.0 / per_batch[1],
        per_batch[1],
        32.0 / per_batch[0],
    );
    Ok(())
}
