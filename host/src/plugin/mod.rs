//! Backbone plugins as the host sees them: finding, loading and calling them.

mod backbone;
mod elf;
pub mod info;
mod loader;
mod resolve;
pub mod scaffold;

pub use backbone::PluginBackbone;
pub use loader::Plugin;
pub use resolve::{resolve_plugin, resolve_recorded_plugin};
