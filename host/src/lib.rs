//! The trajhost host: everything but the backbones.

pub mod cli;
pub mod conformance;
pub mod device;
pub mod plugin;
