//! The shortest way to write a backbone: a [`Network`] is the model alone — its layers, made
//! under a path, and its forward pass. [`build`] adds what every backbone repeats (parsing
//! the config, the `VarStore`, PyTorch's default initialisation) and [`Built`] implements
//! [`Backbone`]; [`crate::export_network!`] registers it. A backbone that needs more (state
//! between calls, its own initialisation) implements [`Backbone`] itself.

use crate::layers::pytorch_default_init;
use crate::{Backbone, BackboneError, InputLayout};
use tch::{nn, Device, Tensor};

/// A config parsed from RON text, empty meaning the defaults; [`crate::backbone_config!`]
/// implements it.
pub trait FromRon: Sized {
    fn from_ron(text: &str) -> Result<Self, BackboneError>;
}

/// A backbone's model: `(B, T, C, H, W)` → `(B, T, D)`.
pub trait Network: Sized + 'static {
    type Config: FromRon;
    /// Creates the layers under `root` (the variables live in the store behind it).
    fn new(root: &nn::Path, config: &Self::Config) -> Result<Self, BackboneError>;
    /// `D` for this config.
    fn feature_dim(config: &Self::Config) -> i64;
    /// The memory layout `forward` reads fastest: `ChannelMajor` for a model that starts with
    /// a 3-D convolution over `video.permute([0, 2, 1, 3, 4])` (see [`InputLayout`]).
    const INPUT_LAYOUT: InputLayout = InputLayout::TimeMajor;
    /// `train` selects batch statistics and dropout; plain tch calls are fine (a panic is
    /// caught and reported to the host).
    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError>;
}

/// A [`Network`] with its store: what the host builds and calls.
pub struct Built<N> {
    vs: nn::VarStore,
    feature_dim: i64,
    network: N,
}

impl<N> Built<N> {
    pub fn network(&self) -> &N {
        &self.network
    }
}

/// The [`crate::backbone::BuildFn`] of a [`Network`]: parse, create the layers on `device`,
/// re-initialise them as PyTorch does (tch's defaults are 2.45× its scale: docs/training.md).
pub fn build<N: Network>(config: &str, device: Device) -> Result<Built<N>, BackboneError> {
    let config = N::Config::from_ron(config)?;
    let vs = nn::VarStore::new(device);
    let network = N::new(&vs.root(), &config)?;
    pytorch_default_init(&vs);
    Ok(Built {
        feature_dim: N::feature_dim(&config),
        vs,
        network,
    })
}

impl<N: Network> Backbone for Built<N> {
    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError> {
        self.network.forward(video, train)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn input_layout(&self) -> InputLayout {
        N::INPUT_LAYOUT
    }
}

/// Registers a [`Network`] as the plugin's backbone, and defines `pub fn build` (its
/// [`crate::backbone::BuildFn`]) at the call site, for the crate's tests:
/// `export_network!(MyNet);` then `conformance_test!(mynet::build)`.
#[macro_export]
macro_rules! export_network {
    ($network:ty) => {
        /// Builds the backbone from its RON config on `device`.
        pub fn build(
            config: &str,
            device: $crate::tch::Device,
        ) -> Result<$crate::network::Built<$network>, $crate::BackboneError> {
            $crate::network::build::<$network>(config, device)
        }
        $crate::export_backbone!(build);
    };
}
