//! The `trajhost` command line: the command tree, and one function per command that hands its
//! arguments to the module doing the work.
//!
//! Naming: a command's clap struct is `<Command>Args` (this file's, or beside the command's own
//! `run` for `eval`, `predict`, `export`, `serve`, `monitor`, `keepalive`, `plugin new`); what
//! the engine takes (`TrainOptions`, `SweepOptions`, `GenerateOptions`) is `<Engine>Options`.

use crate::config::Phase;
use crate::config::{SweepConfig, TrainConfig};
use crate::device::{parse_device, parse_threads};
use crate::keepalive::KeepaliveArgs;
use crate::monitor::MonitorArgs;
use crate::plugin::{info, resolve_plugin, scaffold, Plugin};
use crate::rundir::outcome::Status;
use crate::sweep::{slurm, SweepOptions};
use crate::train::{self, Resume, TrainOptions, TrainOutcome};
use crate::{compare, conformance, pipeline};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "trajhost",
    version,
    about = "Train and compare video backbones on synthetic 3-D trajectory videos"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect and check backbone plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Generate, check and preview trajectory video datasets.
    #[command(subcommand)]
    Data(trajhost_dataset::DataCommand),
    /// Train a backbone plugin with the unified heads.
    Train(TrainArgs),
    /// Train several backbones at once, one process each (configs/sweep.ron).
    Sweep(SweepArgs),
    /// Validate every backbone, gate, then train the ones that passed to the end.
    Pipeline(SweepArgs),
    /// Evaluate a trained run on any dataset, and under distribution shifts (--shifts).
    Eval(crate::eval::EvalArgs),
    /// What a trained run's model says about one video: class and future position.
    Predict(crate::predict::PredictArgs),
    /// A trained run's model as a PyTorch state dict for the `trajhost` Python package.
    Export(crate::export::ExportArgs),
    /// Compare finished runs: a Markdown (or JSON) report with curves and the plan's checklist.
    Compare(CompareArgs),
    /// Watch every run in a results folder (a terminal dashboard, or `--once` as text).
    Monitor(MonitorArgs),
    /// Run a command with heartbeats, forwarded signals and cleanup of its children.
    Keepalive(KeepaliveArgs),
    /// A read-only web dashboard of every run in a results folder (127.0.0.1:8686 by default).
    Serve(crate::serve::ServeArgs),
}

#[derive(clap::Args)]
struct SweepArgs {
    /// The sweep configuration (e.g. configs/sweep.ron).
    config: PathBuf,
    /// Cores for the whole sweep, split evenly between the runs under way (default: the
    /// config's `threads`, else all cores); 1 to 1024.
    #[arg(long, value_parser = parse_threads, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Most runs at once (default: the config's `max_parallel`, else all).
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Only this run (repeatable); for one run per machine or per Slurm task.
    #[arg(long)]
    only: Vec<String>,
    /// `sweep` only: which phase's config to train with (default: validation).
    #[arg(long, value_enum)]
    phase: Option<Phase>,
    /// Instead of training, write a job script: `slurm` = a job array, one run per task.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Where `--emit` writes (default: <results>/<sweep|pipeline>.slurm).
    #[arg(long, requires = "emit")]
    emit_out: Option<PathBuf>,
    /// An extra `#SBATCH` option for `--emit slurm` (repeatable), e.g. `--partition=gpu`.
    #[arg(long = "sbatch", requires = "emit", allow_hyphen_values = true)]
    sbatch: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Emit {
    Slurm,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Run folders, or folders of run folders (e.g. `results/*` or `results/`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Write the report here (the curves go beside it as <name>_curves.png); default: stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "markdown")]
    format: compare::Format,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// A plugin file, or the name of one in plugins/ (e.g. `magvit`).
    #[arg(long)]
    plugin: String,
    /// A dataset folder made by `trajhost data generate`.
    #[arg(long)]
    data: PathBuf,
    /// The training config; default: the shipped `configs/validation.ron` (built in, so it
    /// works from any folder).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run's results folder.
    #[arg(long)]
    out: PathBuf,
    /// `auto` (the newest checkpoint in --out, if any) or a checkpoint path.
    #[arg(long, value_parser = parse_resume)]
    resume: Option<ResumeArg>,
    /// Delete the run already in --out (metrics, checkpoints, logs) and start over; without it
    /// (or --resume) a folder holding a run is refused.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// libtorch intra-op threads, 1 to 1024 (default: libtorch's choice).
    #[arg(long, value_parser = parse_threads, allow_negative_numbers = true)]
    threads: Option<usize>,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Override the config's total epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the config's backbone RON (e.g. '(preset: "cpu")').
    #[arg(long)]
    backbone: Option<String>,
    /// Override the config's seed (initialisation, sample order, augmentation draws).
    #[arg(long)]
    seed: Option<u64>,
    /// Resume even when the plugin file differs from the build the checkpoint was made with.
    #[arg(long)]
    accept_plugin_change: bool,
}

/// `--resume`'s value: clap needs it `Clone`, which [`Resume`] is not.
#[derive(Clone)]
enum ResumeArg {
    Auto,
    Path(PathBuf),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Name, version, feature size, parameters and ABI of a plugin.
    Info(PluginArgs),
    /// Create a backbone crate of your own (from plugins/template) that builds outside this
    /// repository and runs the conformance kit in its `cargo test`.
    New(scaffold::NewPluginArgs),
    /// Run the conformance kit; exits non-zero when a check fails.
    Check(PluginArgs),
}

#[derive(clap::Args)]
struct PluginArgs {
    /// A plugin file, or the name of one in plugins/ (e.g. `template`).
    plugin: String,
    /// The backbone's RON configuration: a file, or inline RON text.
    #[arg(long, default_value = "")]
    config: String,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plugin(PluginCommand::Info(args)) => plugin_info(args),
        Command::Plugin(PluginCommand::Check(args)) => plugin_check(args),
        Command::Plugin(PluginCommand::New(options)) => {
            scaffold::run(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(command) => {
            trajhost_dataset::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => train(args),
        Command::Sweep(args) => sweep(args, false),
        Command::Pipeline(args) => sweep(args, true),
        Command::Eval(args) => {
            crate::eval::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict(args) => {
            crate::predict::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(args) => {
            crate::export::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare(args) => {
            compare::run(&args.runs, args.out.as_deref(), args.format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor(options) => {
            crate::monitor::run(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keepalive(options) => {
            let code = crate::keepalive::run(&options)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Serve(args) => {
            exec_lean_server();
            crate::serve::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plugin_info(args: PluginArgs) -> Result<ExitCode> {
    let plugin = Plugin::load(&resolve_plugin(&args.plugin)?)?;
    let device = parse_device(&args.device)?;
    print!(
        "{}",
        info::render(&plugin, &read_config(&args.config)?, device)?
    );
    Ok(ExitCode::SUCCESS)
}

fn plugin_check(args: PluginArgs) -> Result<ExitCode> {
    let plugin = Plugin::load(&resolve_plugin(&args.plugin)?)?;
    let config = read_config(&args.config)?;
    let report = conformance::check_plugin(&plugin, &config, parse_device(&args.device)?);
    print!("{}", report.render());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `train`'s config when none is given: the shipped one, whatever the current folder.
const DEFAULT_TRAIN_CONFIG: &str = include_str!("../../configs/validation.ron");

fn train(args: TrainArgs) -> Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => TrainConfig::load(path)?,
        None => TrainConfig::parse(DEFAULT_TRAIN_CONFIG, "the built-in configs/validation.ron")?,
    };
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if let Some(backbone) = args.backbone {
        config.backbone = backbone;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.validate().context("invalid command-line override")?;
    if let Some(threads) = args.threads {
        // parse_threads keeps it within 1..=MAX_THREADS.
        tch::set_num_threads(threads as i32);
    }
    let outcome = train::train(TrainOptions {
        plugin: resolve_plugin(&args.plugin)?,
        data: args.data,
        config,
        out: args.out,
        resume: args.resume.map(|r| match r {
            ResumeArg::Auto => Resume::Auto,
            ResumeArg::Path(p) => Resume::Path(p),
        }),
        overwrite: args.overwrite,
        device: parse_device(&args.device)?,
        stop_after_steps: None,
        accept_plugin_change: args.accept_plugin_change,
    })?;
    match outcome {
        TrainOutcome::Finished { final_metrics } => {
            println!("finished: {}", final_metrics.display())
        }
        TrainOutcome::AlreadyFinished {
            final_metrics,
            stop_reason,
            epochs,
        } => println!(
            "already finished ({}) after epoch {epochs}: {}; nothing to do (to train again, use a new --out or --overwrite)",
            stop_reason.describe(),
            final_metrics.display()
        ),
        TrainOutcome::Interrupted { checkpoint } => {
            println!(
                "interrupted; checkpoint written: {} (resume with --resume auto)",
                checkpoint.display()
            );
            return Ok(ExitCode::from(crate::stop::INTERRUPTED_EXIT_CODE));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sweep` and `pipeline`: train, or with `--emit slurm` write the job array instead.
fn sweep(args: SweepArgs, pipeline: bool) -> Result<ExitCode> {
    let sweep = SweepConfig::load(&args.config)?;
    sweep.select(&args.only)?;
    let subcommand = if pipeline { "pipeline" } else { "sweep" };
    if let Some(Emit::Slurm) = args.emit {
        return emit_slurm(&sweep, &args, subcommand);
    }
    if pipeline && args.phase.is_some() {
        bail!("--phase is for `trajhost sweep`; `trajhost pipeline` runs both phases");
    }
    let exe = std::env::current_exe().context("finding the trajhost binary")?;
    let (failed, interrupted) = if pipeline {
        let report = pipeline::run_pipeline(
            &sweep,
            &pipeline::PipelineOptions {
                threads: args.threads,
                max_parallel: args.max_parallel,
                only: args.only,
                exe,
                config_path: args.config,
            },
        )?;
        println!("{}", report.render());
        (report.failed(), report.interrupted())
    } else {
        let summary = args
            .only
            .is_empty()
            .then(|| sweep.results.join(crate::config::sweep::SWEEP_SUMMARY));
        let report = crate::sweep::run_sweep(
            &sweep,
            &SweepOptions {
                phase: args.phase.unwrap_or(Phase::Validation),
                threads: args.threads,
                max_parallel: args.max_parallel,
                only: args.only,
                exe,
                config_path: args.config,
                summary,
            },
        )?;
        println!("{}", report.render());
        let busy = report.runs.iter().filter(|r| r.status == Status::Busy);
        if let n @ 1.. = busy.count() {
            eprintln!("error: {n} run(s) not trained: another process holds their folder");
            return Ok(ExitCode::FAILURE);
        }
        (report.failed().len(), report.interrupted())
    };
    if failed > 0 {
        eprintln!("error: {failed} run(s) failed (see above); the others carried on");
        return Ok(ExitCode::FAILURE);
    }
    if interrupted > 0 {
        eprintln!(
            "interrupted: {interrupted} run(s) not finished; the same command resumes them (exit {})",
            crate::stop::INTERRUPTED_EXIT_CODE
        );
        return Ok(ExitCode::from(crate::stop::INTERRUPTED_EXIT_CODE));
    }
    Ok(ExitCode::SUCCESS)
}

fn emit_slurm(sweep: &SweepConfig, args: &SweepArgs, subcommand: &str) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the trajhost binary")?;
    let workdir = std::env::current_dir()?;
    let config = std::path::absolute(&args.config)?;
    let options = slurm::SlurmOptions {
        subcommand,
        exe: &exe,
        workdir: &workdir,
        config: &config,
        // What the sweep runner would give each run: the sweep's threads (else this
        // machine's cores) split between the runs, one array task each.
        cpus_per_task: crate::sweep::runner::thread_share(
            args.threads.or(sweep.threads),
            args.max_parallel.or(sweep.max_parallel),
            sweep.runs.len(),
        )
        .2,
        extra: &args.sbatch,
    };
    let out = slurm::write(sweep, &options, args.emit_out.clone())?;
    println!(
        "wrote {} ({} array tasks); submit it with: sbatch {}",
        out.display(),
        sweep.runs.len(),
        slurm::quote(&out.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_resume(text: &str) -> std::result::Result<ResumeArg, String> {
    Ok(match text {
        "auto" => ResumeArg::Auto,
        path => ResumeArg::Path(path.into()),
    })
}

/// `--config` takes a RON file or inline RON text.
fn read_config(config: &str) -> Result<String> {
    let path = Path::new(config);
    if !config.is_empty() && path.is_file() {
        return trajhost_config::read_file(path).with_context(|| format!("reading {config}"));
    }
    Ok(config.to_string())
}

/// `trajhost serve ARGS` becomes `trajhost-serve ARGS` (beside this binary) in this same
/// process: the server then runs without libtorch's ~380 MiB. Where that binary is missing,
/// from another build (an older dashboard), or cannot start, this process serves.
fn exec_lean_server() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new("serve")) {
        return;
    }
    let Some(lean) = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("trajhost-serve"))
        .filter(|lean| lean.is_file())
    else {
        return;
    };
    let build = std::process::Command::new(&lean).arg("--build-id").output();
    let same =
        build.is_ok_and(|b| String::from_utf8_lossy(&b.stdout).trim() == crate::serve::BUILD);
    if !same {
        eprintln!(
            "note: {} is from another build than this trajhost; serving from this process",
            lean.display()
        );
        return;
    }
    let error = std::process::Command::new(&lean).args(args).exec();
    eprintln!(
        "warning: could not start {} ({error}); serving from this process",
        lean.display()
    );
}
