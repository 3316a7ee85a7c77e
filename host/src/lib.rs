//! The trajhost host: everything but the backbones.

pub mod allocator;
pub use trajhost_fs as atomic;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod config;
pub mod conformance;
pub mod curves;
pub mod device;
pub mod eval;
pub mod export;
pub mod format;
pub mod gate;
pub mod keepalive;
pub mod monitor;
pub mod pipeline;
pub mod plugin;
pub mod predict;
pub mod rundir;
pub mod serve;
pub mod stop;
pub mod sweep;
pub mod train;
