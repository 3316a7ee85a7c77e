//! The interface between the `trajhost` host and its backbone plugins.
//!
//! A backbone is a `cdylib` that maps a video `(B, T, C, H, W)` (float) to per-frame features
//! `(B, T, D)`. The host owns everything else: heads, optimiser, checkpoints, device placement.
//!
//! **Writing one** needs only [`prelude`]: a config made by [`backbone_config!`] (presets and
//! knobs), a [`Network`] (layers under a path, and `forward`), [`export_network!`]; the
//! building blocks in [`layers`]; and the tests of [`devkit`] ([`conformance_test!`],
//! [`preset_backbone_tests!`]). `plugins/template/` is a complete crate to copy, written the
//! way every in-repo backbone is.
//!
//! **Loading** (the host's side) happens in two steps, so that a wrong plugin is refused with
//! a readable message:
//! 1. [`stamp::PluginStamp`], a frozen `#[repr(C)]` record, is read first: plugin name and
//!    version, [`PLUGIN_API_VERSION`] and the tch/libtorch [`fingerprint`];
//! 2. only then is the `abi_stable` root module ([`abi::BackboneModRef`]) loaded, whose layout
//!    `abi_stable` checks field by field.
//!
//! Tensor ownership across the boundary is described in [`tensor`]. A backbone that cannot be
//! a [`Network`] (the `torchscript` adapter, test fixtures) implements [`Backbone`] and
//! registers with [`export_backbone!`].

pub mod abi;
pub mod backbone;
pub mod devkit;
pub mod input;
pub mod layers;
pub mod network;
pub mod preset;
pub mod pretrained;
pub mod stamp;
pub mod tensor;

/// What a backbone's author writes against.
pub mod prelude {
    pub use crate::layers;
    pub use crate::preset::{self, ConfigRules, Fixed, Invalid};
    pub use crate::{backbone_config, export_network, BackboneError, InputLayout, Network};
    pub use tch::{self, nn, Device, Kind, Tensor};
}

pub use abi::InputLayout;
// The ABI's types, for the host and the export macros; not for backbone authors.
#[doc(hidden)]
pub use abi::{BackboneMod, BackboneModRef, ExtractorBox, Extractor_TO, NamedTensor, PluginDevice};
pub use backbone::{Backbone, BackboneError};
pub use network::Network;
pub use tensor::TensorHandle;

// Re-exported so that `export_backbone!` and `backbone_config!` expand in crates that only
// name this one, and so that a plugin uses the very tch the host does.
pub use abi_stable;
pub use serde;
pub use tch;

// `backbone_config!` names this crate `trajhost_plugin_api` (serde's `crate = ".."` takes no
// `$crate`); this makes the name work inside the crate too.
extern crate self as trajhost_plugin_api;

/// Bumped whenever anything in [`abi`] or [`tensor`] changes incompatibly.
pub const PLUGIN_API_VERSION: u32 = 2;

/// The libtorch version this crate was compiled against, e.g. `2.13.0+cu130`.
pub const LIBTORCH_VERSION: &str = env!("TRAJHOST_LIBTORCH_VERSION");

/// What host and plugin must agree on to share tensors: the tch series and the libtorch
/// release (both builds of one release, `+cpu` or `+cu130`, share a C++ ABI).
pub const FINGERPRINT: &std::ffi::CStr = c_str!(concat!(
    "tch 0.26 / libtorch ",
    env!("TRAJHOST_LIBTORCH_RELEASE")
));
