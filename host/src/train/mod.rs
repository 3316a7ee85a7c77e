//! The training engine: unified model, loss, AdamW, checkpoints, the loop and its outputs.

pub mod checkpoint;
pub mod config;
pub mod curve_fit;
pub mod curves;
pub mod data;
pub mod folder;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod outputs;
pub mod step;
pub mod stop;
pub mod tensorboard;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{train, Resume, TrainOptions, TrainOutcome};
