//! The training engine: unified model, loss, AdamW, checkpoints, the loop and its outputs.

pub mod background;
pub mod checkpoint;
pub mod curve_fit;
pub mod data;
pub mod fovea;
pub mod hue_free;
pub mod libtorch_threads;
pub mod loss;
pub mod metrics;
pub mod mirror;
pub mod model;
pub mod model_input;
pub mod optim;
pub mod pinhole;
pub mod resume;
pub mod sinks;
pub mod source;
pub mod step;
pub mod stopping;
pub mod tensorboard;
pub mod trainer;

pub use crate::config::TrainConfig;
pub use resume::Resume;
pub use trainer::{train, TrainOptions, TrainOutcome};
