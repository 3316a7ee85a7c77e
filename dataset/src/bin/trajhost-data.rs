//! Stand-alone `trajhost-data` (same subcommands as `trajhost data`), used by the integration
//! tests that kill a real generation process.

use std::process::ExitCode;

use clap::Parser;
use trajhost_dataset::cli::{run, DataCommand};

#[derive(Parser)]
#[command(name = "trajhost-data", about = "Synthetic trajectory video datasets")]
struct Cli {
    #[command(subcommand)]
    command: DataCommand,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
