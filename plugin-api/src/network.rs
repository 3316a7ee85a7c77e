//! How a backbone is written: a [`Network`] is the model alone — its layers, made under a path,
//! and its forward pass — with a config made by [`crate::backbone_config!`]. [`build`] adds
//! what every backbone repeats (parsing the config, the `VarStore`, PyTorch's default
//! initialisation, optional pretrained weights) and [`Built`] implements [`Backbone`];
//! [`crate::export_network!`] registers it. (The ABI takes any [`Backbone`]; this is the one
//! path the in-repo backbones and the template share.)

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
    /// `D`, the size of each frame's feature vector.
    fn feature_dim(&self) -> i64;
    /// The memory layout `forward` reads fastest: `ChannelMajor` for a model that starts with
    /// a 3-D convolution over `video.permute([0, 2, 1, 3, 4])` (see [`InputLayout`]).
    const INPUT_LAYOUT: InputLayout = InputLayout::TimeMajor;
    /// A safetensors file to start from instead of the initialisation (for a config with a
    /// `pretrained` knob; see [`crate::pretrained`]).
    fn pretrained(_config: &Self::Config) -> Option<&str> {
        None
    }
    /// `train` selects batch statistics and dropout; plain tch calls are fine (a panic is
    /// caught and reported to the host).
    fn forward(&self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError>;
}

/// A [`Network`] with its store: what the host builds and calls.
pub struct Built<N: Network> {
    vs: nn::VarStore,
    network: N,
}

impl<N: Network> Built<N> {
    pub fn network(&self) -> &N {
        &self.network
    }
}

/// The [`crate::backbone::BuildFn`] of a [`Network`] (`plugin` names it in errors): parse,
/// create the layers on `device`, re-initialise them as PyTorch does (tch's defaults are 2.45×
/// its scale: docs/training.md), then load the pretrained weights the config names.
pub fn build<N: Network>(
    plugin: &str,
    config: &str,
    device: Device,
) -> Result<Built<N>, BackboneError> {
    let config = N::Config::from_ron(config)?;
    let vs = nn::VarStore::new(device);
    let network = N::new(&vs.root(), &config)?;
    pytorch_default_init(&vs);
    if let Some(path) = N::pretrained(&config) {
        crate::pretrained::load(plugin, &vs, path)?;
    }
    Ok(Built { vs, network })
}

impl<N: Network> Backbone for Built<N> {
    fn feature_dim(&self) -> i64 {
        self.network.feature_dim()
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
            $crate::network::build::<$network>(env!("CARGO_PKG_NAME"), config, device)
        }
        $crate::export_backbone!(build);
    };
}
