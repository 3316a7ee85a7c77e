//! The trajhost host: everything but the backbones.

pub mod allocator;
pub mod atomic;
pub mod cli;
pub mod compare;
pub mod conformance;
pub mod device;
pub mod gate;
pub mod keepalive;
pub mod monitor;
pub mod pipeline;
pub mod plugin;
pub mod ron_config;
pub mod rundir;
pub mod sweep;
pub mod train;
