//! The `trajhost` command line.

use crate::{
    conformance,
    device::parse_device,
    plugin::{resolve_plugin, Plugin},
};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
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

/// `--config` takes a RON file or inline RON text.
fn read_config(config: &str) -> Result<String> {
    let path = std::path::Path::new(config);
    if !config.is_empty() && path.is_file() {
        return std::fs::read_to_string(path).with_context(|| format!("reading {config}"));
    }
    Ok(config.to_string())
}
