//! `trajhost-bench <command> [--key value ...]`: one measurement per process, one JSON line on
//! stdout. Driven by `scripts/bench` (`bench/python/run_bench.py`).
//!
//! * `params`: parameter counts and shapes of every backbone's `cpu` preset and the heads;
//! * `forward-check`: every backbone's features with shape-determined weights (parity test);
//! * `render --samples N --threads K`: in-memory rendering throughput;
//! * `generate --out DIR --samples N --threads K`: `trajhost data generate` end to end;
//! * `train|infer --plugin NAME --data DIR [--batch 32] [--warmup 3] [--steps 20] [--threads K]
//!   [--serve]`: with `--serve`, a block of `--steps` timed steps per `run` line on stdin, so
//!   `run_bench.py` can interleave it with the PyTorch peers (`clock.rs`);
//!
//! * `threads-check --threads K`, `optim-check --plugin NAME [--rounds 20]`,
//!   `batches --data DIR [--batch 32] [--threads K] [--rounds 20]`: micro-benchmarks behind the
//!   host-side decisions in docs/bench.md.
//!
//! * `report [--results bench/results.json]`: the tables rendered from a results file;
//! * `docs [--results bench/results.json] [--check]`: writes them into docs/bench.md and the
//!   README (`report.rs`); `--check` only fails if those differ.
//!
//! Every measurement first applies the allocator settings `trajhost` starts with
//! ([`trajhost::allocator::tune`]), so the numbers are those of the host as shipped.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use trajhost_bench::*;
use trajhost_plugin_api::InputLayout;

const USAGE: &str = "usage: trajhost-bench <command> [--key value ...], the command one of params, forward-check, render, generate, train, infer, threads-check, batches, optim-check, report, docs (bench/src/main.rs says what each measures)";

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    if matches!(command.as_str(), "" | "-h" | "--help" | "help") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = Args::parse(argv)?;
    if command == "report" || command == "docs" {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = args
            .string("results")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("bench/results.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let results: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if command == "report" {
            print!("{}", report::bench_block(&results)?);
            return Ok(());
        }
        return report::write_docs(&root, &results, args.get("check", false)?);
    }
    let tuned = trajhost::allocator::tune();
    let threads: usize = args.get("threads", 2)?;
    let mut value = match command.as_str() {
        "params" => params_report()?,
        "forward-check" => forward_check()?,
        "render" => render_bench(args.get("samples", 64)?, threads)?,
        "generate" => make_data(
            &PathBuf::from(args.require("out")?),
            args.get("samples", 64)?,
            threads,
        )?,
        "train" => train_bench(&ModelBench::from_args(&args)?)?,
        "infer" => infer_bench(&ModelBench::from_args(&args)?)?,
        "threads-check" => threads_check(threads as i32),
        "batches" => batches_bench(
            &PathBuf::from(args.require("data")?),
            args.get("batch", 32)?,
            threads as i32,
            args.get("rounds", 20)?,
            if args.get("channel-major", false)? {
                InputLayout::ChannelMajor
            } else {
                InputLayout::TimeMajor
            },
        )?,
        "optim-check" => optim_check(&args.require("plugin")?, args.get("rounds", 20)?)?,
        other => bail!("unknown command {other:?}; {USAGE}"),
    };
    if let Some(object) = value.as_object_mut() {
        object.insert("allocator_tuned".into(), tuned.into());
    }
    emit(&value)
}
