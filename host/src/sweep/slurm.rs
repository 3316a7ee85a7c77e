//! `trajhost sweep|pipeline CONFIG --emit slurm`: a Slurm job-array script that runs one
//! sweep member per array task, each an independent process writing its own run folder in the
//! shared results folder (so `trajhost monitor` and `trajhost compare` read them all).

use crate::config::SweepConfig;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct SlurmOptions<'a> {
    /// `sweep` or `pipeline`.
    pub subcommand: &'a str,
    /// The trajhost binary, as the cluster's nodes see it.
    pub exe: &'a Path,
    /// The working directory of every task (the sweep's relative paths start there).
    pub workdir: &'a Path,
    /// The sweep config, as the nodes see it.
    pub config: &'a Path,
    /// The threads one run gets (`runner::thread_share` over the array's runs).
    pub cpus_per_task: usize,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu` or `--gres=gpu:1`.
    pub extra: &'a [String],
}

/// `text` as one shell word (single-quoted unless it is plain).
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

pub fn script(sweep: &SweepConfig, o: &SlurmOptions) -> String {
    let names: Vec<String> = sweep.runs.iter().map(|r| quote(&r.name)).collect();
    let logs = sweep.results.join("slurm");
    let mut s = String::new();
    s += "#!/usr/bin/env bash\n";
    s += &format!(
        "# Written by `trajhost {} {} --emit slurm`: one run per array task.\n",
        o.subcommand,
        o.config.display()
    );
    s += &format!(
        "# Submit with `sbatch` from any node that sees {}; each task writes its own run folder under\n",
        o.workdir.display()
    );
    s += &format!(
        "# {} (a shared file system), so `trajhost monitor {}` and `trajhost compare` see every run.\n",
        sweep.results.display(),
        sweep.results.display()
    );
    s += "# Submitting again resumes unfinished runs from their checkpoints and skips finished ones.\n";
    s += &format!(
        "# A task stopped by the time limit checkpoints and exits {} (sacct: FAILED, ExitCode {}:0):\n# submit again to resume it.\n",
        crate::stop::INTERRUPTED_EXIT_CODE,
        crate::stop::INTERRUPTED_EXIT_CODE
    );
    s += "#SBATCH --job-name=trajhost-";
    s += o.subcommand;
    s += "\n";
    s += &format!("#SBATCH --array=0-{}\n", sweep.runs.len().saturating_sub(1));
    s += &format!("#SBATCH --cpus-per-task={}\n", o.cpus_per_task.max(1));
    s += &format!(
        "#SBATCH --output={}\n",
        quote(&logs.join("%x-%A_%a.out").display().to_string())
    );
    // SIGTERM two minutes before the time limit, to the batch shell (`B:`), which `exec` below
    // makes trajhost; it checkpoints on it. Without `B:` Slurm signals only job steps, and
    // this script starts none.
    s += "#SBATCH --signal=B:TERM@120\n";
    for extra in o.extra {
        s += &format!("#SBATCH {extra}\n");
    }
    s += "set -euo pipefail\n";
    s += &format!("cd {}\n", quote(&o.workdir.display().to_string()));
    s += &format!("runs=({})\n", names.join(" "));
    s += "run=${runs[$SLURM_ARRAY_TASK_ID]}\n";
    s += &format!(
        "exec {} {} {} --only \"$run\" --threads \"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
        quote(&o.exe.display().to_string()),
        o.subcommand,
        quote(&o.config.display().to_string())
    );
    s
}

/// Where `--emit slurm` writes its script unless told otherwise.
pub fn default_path(sweep: &SweepConfig, subcommand: &str) -> PathBuf {
    sweep.results.join(format!("{subcommand}.slurm"))
}

/// Writes `script` for `o` to `out` (default: [`default_path`]), executable, and creates the
/// folder the tasks log to (Slurm does not create the folder of `--output` itself).
pub fn write(sweep: &SweepConfig, o: &SlurmOptions, out: Option<PathBuf>) -> Result<PathBuf> {
    let out = out.unwrap_or_else(|| default_path(sweep, o.subcommand));
    std::fs::create_dir_all(sweep.results.join("slurm"))?;
    // Executable (less the umask) from the start; a device or FIFO keeps its own mode.
    crate::atomic::write_atomic_mode(&out, script(sweep, o).as_bytes(), 0o777)?;
    Ok(out)
}
