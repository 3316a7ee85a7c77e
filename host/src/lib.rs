//! The trajhost host: everything but the backbones. Run folders are read and shown by
//! `trajhost-runs` (no libtorch), whose modules are re-exported here under the same names.

pub mod allocator;
pub mod cli;
pub mod conformance;
pub mod device;
pub mod eval;
pub mod export;
pub mod keepalive;
pub mod pipeline;
pub mod plugin;
pub mod predict;
pub mod stop;
pub mod sweep;
pub mod train;
pub use trajhost_runs::{
    atomic, clock, compare, config, curves, format, gate, monitor, rundir, serve,
};
