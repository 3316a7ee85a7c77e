//! Sweeps: several backbones trained at once, each as its own `trajhost train` process with its
//! own run folder and share of the cores (`runner`), configured by `configs/sweep.ron`
//! (`crate::config::sweep`), or spread over a cluster as a Slurm job array (`slurm`).

pub mod runner;
pub mod slurm;

pub use crate::config::Phase;
pub use crate::config::{RunSpec, SweepConfig};
pub use crate::rundir::outcome::RunOutcome;
pub use runner::{run_sweep, SweepOptions, SweepReport};
