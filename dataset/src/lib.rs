//! trajhost-dataset: synthetic videos of a ball flying along 3-D trajectories (linear, circular,
//! helical, parabolic), stored as resumable, hashed safetensors shards with a JSON manifest.
//!
//! Entry points: [`generate::generate`] to build a folder, [`loader::Dataset`] to read it,
//! [`check::check_dataset`] to validate it, [`cli`] for `trajhost data <sub>`.
//! Coordinate frames, normalisation and file layout are documented in `docs/dataset.md`.

pub mod appearance;
pub mod camera;
pub mod check;
pub mod class;
pub mod cli;
pub mod config;
pub mod error;
pub mod export;
pub mod generate;
pub mod limits;
pub mod loader;
pub mod manifest;
pub mod pipeline;
pub mod preview;
pub mod progress;
pub mod render;
pub mod resources;
pub mod sample;
pub mod shard;
pub mod shifts;
pub mod split;
pub mod stream;
pub mod trajectory;
pub mod validity;

pub use check::{check_dataset, CheckReport};
pub use class::Class;
pub use cli::{run, DataCommand};
pub use config::{ConfigError, DataConfig, DEFAULT_CONFIG_RON};
pub use error::{Error, Result};
pub use generate::{generate, GenerateOptions, GenerateReport};
pub use loader::Dataset;
pub use manifest::Manifest;
pub use shard::Shard;
pub use split::Split;
