// `#[sabi_trait]` expands to impls that newer rustc flags as non-local; harmless here.
#![allow(non_local_definitions)]

//! The `abi_stable` part of the interface: the root module every plugin exports and the
//! `Extractor` trait object it builds. Plugin authors do not use this directly: they
//! implement [`crate::Backbone`], which [`crate::export_backbone!`] adapts to this.

use crate::tensor::TensorHandle;
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

/// Where the plugin should create its parameters.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginDevice {
    Cpu,
    Cuda(u32),
}

impl From<PluginDevice> for tch::Device {
    fn from(d: PluginDevice) -> Self {
        match d {
            PluginDevice::Cpu => tch::Device::Cpu,
            PluginDevice::Cuda(i) => tch::Device::Cuda(i as usize),
        }
    }
}

impl TryFrom<tch::Device> for PluginDevice {
    type Error = String;
    fn try_from(d: tch::Device) -> Result<Self, String> {
        match d {
            tch::Device::Cpu => Ok(PluginDevice::Cpu),
            tch::Device::Cuda(i) => Ok(PluginDevice::Cuda(i as u32)),
            other => Err(format!("device {other:?} is not supported by plugins")),
        }
    }
}

/// How the backbone wants its input video laid out in memory. The shape is `(B, T, C, H, W)`
/// either way; `ChannelMajor` means the memory is ordered `(B, C, T, H, W)`, so that
/// `video.permute([0, 2, 1, 3, 4])` — a 3-D convolution's input — is contiguous and the
/// convolution does not copy the batch first. The host fills the batch in that order at no
/// extra cost; a backbone must still accept any strides (the conformance kit checks).
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputLayout {
    /// Contiguous `(B, T, C, H, W)`: frames whole, as a per-frame 2-D layer reads them.
    #[default]
    TimeMajor,
    /// `(B, C, T, H, W)` in memory: what 3-D convolutions read.
    ChannelMajor,
}

/// A named tensor: a parameter or a buffer, sharing storage with the plugin's model.
#[repr(C)]
#[derive(StableAbi)]
pub struct NamedTensor {
    pub name: RString,
    pub tensor: TensorHandle,
}

/// A built backbone, as the host sees it. Errors are plain messages; the host adds the
/// plugin's name and the input shape.
#[sabi_trait]
pub trait Extractor {
    /// `D`, the size of the per-frame feature vector.
    fn feature_dim(&self) -> i64;

    /// Video `(B, T, C, H, W)` float → features `(B, T, D)`. `train` selects training
    /// behaviour (BatchNorm batch statistics and running-stat updates, dropout).
    fn forward(&mut self, video: TensorHandle, train: bool) -> RResult<TensorHandle, RString>;

    /// Trainable parameters, sorted by name.
    fn parameters(&self) -> RVec<NamedTensor>;

    /// State that is saved but not trained (e.g. BatchNorm running statistics), sorted by name.
    fn buffers(&self) -> RVec<NamedTensor>;

    /// The memory layout `forward` reads fastest.
    #[sabi(last_prefix_field)]
    fn input_layout(&self) -> InputLayout;
}

/// The owned trait object a plugin's `build` returns.
pub type ExtractorBox = Extractor_TO<'static, RBox<()>>;

/// The root module of a backbone plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackboneModRef)))]
#[sabi(missing_field(panic))]
pub struct BackboneMod {
    /// Builds a backbone from its RON configuration text on `device`. Parameters are
    /// initialised from libtorch's global generator, which the host seeds beforehand.
    #[sabi(last_prefix_field)]
    pub build:
        extern "C" fn(config: RStr<'_>, device: PluginDevice) -> RResult<ExtractorBox, RString>,
}

impl RootModule for BackboneModRef {
    declare_root_module_statics! {BackboneModRef}
    const BASE_NAME: &'static str = "trajhost_backbone";
    const NAME: &'static str = "trajhost_backbone";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
