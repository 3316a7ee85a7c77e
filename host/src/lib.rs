//! The trajhost host: everything but the backbones.

pub mod atomic;
pub mod cli;
pub mod conformance;
pub mod device;
pub mod plugin;
pub mod train;
