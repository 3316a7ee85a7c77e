//! The `trajhost` command line.

use crate::train::{self, Resume, TrainConfig, TrainOptions, TrainOutcome};
use crate::{
    conformance,
    device::parse_device,
    plugin::{resolve_plugin, Plugin},
};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
}

#[derive(clap::Args)]
struct TrainArgs {
    /// A plugin file, or the name of one in plugins/ (e.g. `magvit`).
    #[arg(long)]
    plugin: String,
    /// A dataset folder made by `trajhost data generate`.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "configs/validation.ron")]
    config: PathBuf,
    /// The run's results folder.
    #[arg(long)]
    out: PathBuf,
    /// `auto` (the newest checkpoint in --out, if any) or a checkpoint path.
    #[arg(long)]
    resume: Option<String>,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Override the config's total epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the config's backbone RON (e.g. '(preset: "cpu")').
    #[arg(long)]
    backbone: Option<String>,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Name, version, feature size, parameters and ABI of a plugin.
    Info {
        /// A plugin file, or the name of one in plugins/ (e.g. `template`).
        plugin: String,
        /// The backbone's RON configuration: a file, or inline RON text.
        #[arg(long, default_value = "")]
        config: String,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Run the conformance kit; exits non-zero when a check fails.
    Check {
        plugin: String,
        #[arg(long, default_value = "")]
        config: String,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
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
        Command::Plugin(PluginCommand::Info {
            plugin,
            config,
            device,
        }) => {
            let plugin = Plugin::load(&resolve_plugin(&plugin)?)?;
            let model = plugin.build(&read_config(&config)?, parse_device(&device)?)?;
            let bytes: i64 = model
                .parameters()
                .iter()
                .map(|(_, t)| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64)
                .sum();
            let s = &plugin.stamp;
            println!("plugin       {}", s.name);
            println!("version      {}", s.plugin_version);
            println!("file         {}", plugin.path.display());
            println!("feature_dim  {}", model.feature_dim());
            println!(
                "parameters   {} ({} tensors, {bytes} bytes)",
                model.parameter_count(),
                model.parameters().len()
            );
            println!("buffers      {}", model.buffers().len());
            println!("plugin-api   {}", s.api_version);
            println!("built with   {}", s.fingerprint);
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(command) => {
            trajhost_dataset::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => run_train(args),
        Command::Plugin(PluginCommand::Check {
            plugin,
            config,
            device,
        }) => {
            let plugin = Plugin::load(&resolve_plugin(&plugin)?)?;
            let report =
                conformance::check_plugin(&plugin, &read_config(&config)?, parse_device(&device)?);
            print!("{}", report.render());
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let mut config = TrainConfig::load(&args.config)?;
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if let Some(backbone) = args.backbone {
        config.backbone = backbone;
    }
    config.validate().context("invalid command-line override")?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let resume = args.resume.map(|r| {
        if r == "auto" {
            Resume::Auto
        } else {
            Resume::Path(r.into())
        }
    });
    let outcome = train::train(TrainOptions {
        plugin: resolve_plugin(&args.plugin)?,
        data: args.data,
        config,
        out: args.out,
        resume,
        device: parse_device(&args.device)?,
        stop_after_steps: None,
    })?;
    match outcome {
        TrainOutcome::Finished { final_metrics } => {
            println!("finished: {}", final_metrics.display())
        }
        TrainOutcome::Interrupted { checkpoint } => {
            println!(
                "interrupted; checkpoint written: {} (resume with --resume auto)",
                checkpoint.display()
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--config` takes a RON file or inline RON text.
fn read_config(config: &str) -> Result<String> {
    let path = std::path::Path::new(config);
    if !config.is_empty() && path.is_file() {
        return std::fs::read_to_string(path).with_context(|| format!("reading {config}"));
    }
    Ok(config.to_string())
}
