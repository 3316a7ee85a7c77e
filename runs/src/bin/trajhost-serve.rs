//! `trajhost-serve`: the dashboard server in a process without libtorch (which holds about
//! 380 MiB resident before the first request), so a dashboard stays small on a shared training
//! machine. `trajhost serve` runs this binary when it lies beside it.

use clap::Parser;
use std::process::ExitCode;

/// A read-only web dashboard of every run in a results folder (127.0.0.1:8686 by default).
#[derive(Parser)]
#[command(name = "trajhost serve", version)]
struct Cli {
    #[command(flatten)]
    args: trajhost_runs::serve::ServeArgs,
}

fn main() -> ExitCode {
    // Asked by `trajhost serve` before it hands over (`serve::BUILD`).
    if std::env::args().nth(1).as_deref() == Some("--build-id") {
        println!("{}", trajhost_runs::serve::BUILD);
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    match trajhost_runs::serve::run(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
