//! Sweeps: several backbones trained at once, each as its own `trajhost train` process with its
//! own run folder and share of the cores (`runner`), configured by `configs/sweep.ron`
//! (`config`), or spread over a cluster as a Slurm job array (`slurm`).

pub mod config;
pub mod runner;
pub mod slurm;

pub use config::{RunSpec, SweepConfig};
pub use runner::{run_sweep, Phase, RunOutcome, SweepOptions, SweepReport};
