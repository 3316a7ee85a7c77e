//! `trajhost data <sub>`: the clap subcommands, embedded by the host binary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::check::check_dataset;
use crate::config::DataConfig;
use crate::generate::{check_out, generate, generate_shifted_sets, GenerateOptions};
use crate::preview::write_preview;
use crate::resources::{check_resources, usable_workers, MAX_WORKERS, WORKERS_PER_CORE};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DataCommand {
    /// Generate a dataset, or resume an interrupted generation into the same folder.
    Generate {
        #[command(flatten)]
        generation: GenerationChoice,
        /// Output folder (shards, manifest.json, PROGRESS.txt).
        #[arg(long)]
        out: PathBuf,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Replace a dataset made with a different config in OUT.
        #[arg(long)]
        force: bool,
    },
    /// Render the shifted test sets `trajhost eval --shifts` scores a model on (the held-out
    /// styles, a farther camera, noise, jitter, other lenses) without a model: the same videos in
    /// the folders eval's cache uses (`eval --shifts --shift-cache OUT` reuses them), for a model
    /// trajhost does not run. Prints each set's name, `held-out` or `shift`, and folder.
    Shifts {
        /// RON config of the training data; the embedded default (configs/data.ron) when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Videos in each set (eval's --shift-samples).
        #[arg(long, default_value_t = 400)]
        shift_samples: usize,
        /// Worker threads (default: the config's `workers`); output does not depend on it.
        #[arg(long)]
        workers: Option<usize>,
        /// The folder the sets go in, one subfolder each.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a dataset folder; exits non-zero listing every failed check.
    Check { dir: PathBuf },
    /// Write an animated GIF (and a PNG contact sheet beside it) of a few samples per class.
    Preview {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2)]
        per_class: usize,
    },
    /// Write one sample's video as an animated .gif (exact up to 256 colours a frame) or a
    /// .npy array (T, 3, H, W) of u8, e.g. for `trajhost predict`.
    Export {
        dir: PathBuf,
        /// The sample's index in the dataset (0 to samples - 1).
        #[arg(long)]
        index: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Time generation of the full default set (writes to a temp folder unless --out).
    Bench {
        #[command(flatten)]
        generation: GenerationChoice,
        /// A new or empty folder to keep what was generated (default: a temp folder, removed).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What `generate` and `bench` generate, and with how many workers.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerationChoice {
    /// RON config; the embedded default (configs/data.ron) when omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override the config's sample count.
    #[arg(long)]
    samples: Option<usize>,
    /// Worker threads (default: the config's `workers`); output does not depend on it.
    #[arg(long)]
    workers: Option<usize>,
}

impl GenerationChoice {
    /// The config file (or the shipped default) with `seed` and the sample count applied and
    /// checked, and the workers to use.
    fn resolve(&self, seed: Option<u64>) -> anyhow::Result<(DataConfig, usize)> {
        let mut cfg = config_or_default(self.config.as_deref())?;
        cfg.seed = seed.unwrap_or(cfg.seed);
        cfg.samples = self.samples.unwrap_or(cfg.samples);
        cfg.validate()?;
        let workers = resolve_workers(self.workers, cfg.workers)?;
        Ok((cfg, workers))
    }
}

/// The RON config at `path`, or the shipped default (configs/data.ron) without one.
fn config_or_default(path: Option<&Path>) -> anyhow::Result<DataConfig> {
    Ok(match path {
        Some(p) => DataConfig::from_file(p)?,
        None => DataConfig::default_config(),
    })
}

/// `--workers`, else the config's `workers`, capped at what this machine can use (with a note).
fn resolve_workers(flag: Option<usize>, config: usize) -> anyhow::Result<usize> {
    let (requested, source) = match flag {
        Some(0) => bail!("--workers must be at least 1, got 0"),
        Some(w) => (w, "--workers"),
        None => (config, "the config's workers"),
    };
    let usable = usable_workers(requested);
    if usable < requested {
        eprintln!(
            "note: {source} {requested} is more than this machine can use; using {usable} ({WORKERS_PER_CORE} per core, at most {MAX_WORKERS})"
        );
    }
    Ok(usable)
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Generate {
            generation,
            out,
            seed,
            force,
        } => {
            let (cfg, workers) = generation.resolve(seed)?;
            // Up front: what it will take, or the refusal when it cannot fit.
            check_out(&out)?;
            let needs = check_resources(&cfg, &out)?;
            eprintln!(
                "{}: {} samples; generating {needs}",
                out.display(),
                cfg.samples
            );
            let report = generate(&cfg, &out, &GenerateOptions { workers, force })?;
            eprintln!(
                "{}: {} samples in {} shards ({} resumed); generated {} in {:.1} s",
                out.display(),
                cfg.samples,
                report.manifest.shards.len(),
                report.resumed_shards,
                report.generated,
                report.seconds
            );
        }
        DataCommand::Shifts {
            config,
            shift_samples,
            workers,
            out,
        } => {
            if shift_samples == 0 {
                bail!("--shift-samples must be at least 1, got 0");
            }
            let base = config_or_default(config.as_deref())?;
            base.validate()?;
            let workers = resolve_workers(workers, base.workers)?;
            for (shift, dir) in generate_shifted_sets(&base, &out, shift_samples, workers)? {
                let kind = if shift.held_out { "held-out" } else { "shift" };
                println!("{}\t{kind}\t{}", shift.name, dir.display());
            }
        }
        DataCommand::Check { dir } => {
            let report = check_dataset(&dir)?;
            println!("{report}");
            if !report.ok() {
                bail!(
                    "{}: {} check(s) failed",
                    dir.display(),
                    report.problems.len()
                );
            }
        }
        DataCommand::Preview {
            dir,
            out,
            per_class,
        } => {
            let sheet = out.with_extension("png");
            trajhost_fs::refuse_outputs_over_inputs(
                &[("--out", &out), ("its contact sheet", &sheet)],
                &[("the dataset", &dir)],
            )?;
            match write_preview(&dir, &out, per_class)? {
                Some(sheet) => eprintln!("wrote {} and {}", out.display(), sheet.display()),
                None => eprintln!("wrote {} (no contact sheet beside a device)", out.display()),
            }
        }
        DataCommand::Export { dir, index, out } => {
            trajhost_fs::refuse_outputs_over_inputs(&[("--out", &out)], &[("the dataset", &dir)])?;
            crate::export::export(&dir, index, &out)?;
            eprintln!(
                "wrote {} (sample {index} of {})",
                out.display(),
                dir.display()
            );
        }
        DataCommand::Bench { generation, out } => {
            let (cfg, workers) = generation.resolve(None)?;
            let temp = tempfile::tempdir().context("creating a temp folder")?;
            let dir = out.unwrap_or_else(|| temp.path().join("bench"));
            // Timing a resume would measure nothing: insist on a fresh folder.
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                bail!(
                    "bench needs a new or empty --out folder, {} is not",
                    dir.display()
                );
            }
            let start = Instant::now();
            let report = generate(
                &cfg,
                &dir,
                &GenerateOptions {
                    workers,
                    force: true,
                },
            )?;
            let seconds = start.elapsed().as_secs_f64();
            let bytes: u64 = report.manifest.shards.iter().map(|s| s.bytes).sum();
            println!(
                "bench: {} videos of {}x3x{}x{} with {} workers in {:.2} s: {:.0} videos/s, {:.0} MB/s written",
                report.generated,
                cfg.frames,
                cfg.height,
                cfg.width,
                workers,
                seconds,
                report.generated as f64 / seconds,
                bytes as f64 / 1e6 / seconds
            );
        }
    }
    Ok(())
}
