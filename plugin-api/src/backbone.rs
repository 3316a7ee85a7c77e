//! What a plugin author writes: a [`Backbone`] and one [`crate::export_backbone!`] line.
//!
//! The adapter here turns it into the ABI's `Extractor` and guarantees that no panic crosses
//! the boundary (a panic in an `extern "C"` function aborts the whole host): every call of
//! plugin code runs under `catch_unwind`, so a plain tch call that panics on a libtorch error
//! comes back to the host as an error message instead. `feature_dim`, `parameters` and
//! `buffers` cannot return an error through the ABI, so the backbone's answers to them are
//! read once, under the guard, when it is built: a panic there is a build error.

use crate::abi::{Extractor, ExtractorBox, Extractor_TO, InputLayout, NamedTensor, PluginDevice};
use crate::tensor::TensorHandle;
use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RString, RVec},
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tch::{nn::VarStore, Device, Tensor};

/// An error message from a backbone; `?` converts tch errors and strings into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackboneError(pub String);

impl From<tch::TchError> for BackboneError {
    fn from(e: tch::TchError) -> Self {
        BackboneError(e.to_string())
    }
}
impl From<String> for BackboneError {
    fn from(e: String) -> Self {
        BackboneError(e)
    }
}
impl From<&str> for BackboneError {
    fn from(e: &str) -> Self {
        BackboneError(e.to_string())
    }
}

/// A video backbone: `(B, T, C, H, W)` float video → `(B, T, D)` per-frame features.
pub trait Backbone: 'static {
    /// `D`.
    fn feature_dim(&self) -> i64;

    /// The forward pass; `train` selects batch statistics / dropout. Plain tch calls are
    /// fine: a panic is caught and reported to the host.
    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, BackboneError>;

    /// The store holding every parameter (requires grad) and buffer (does not).
    fn var_store(&self) -> &VarStore;

    /// The memory layout [`Backbone::forward`] reads fastest (see [`InputLayout`]).
    fn input_layout(&self) -> InputLayout {
        InputLayout::TimeMajor
    }
}

/// The signature of a plugin's constructor: RON configuration text and a device.
pub type BuildFn<B> = fn(config: &str, device: Device) -> Result<B, BackboneError>;

thread_local! {
    /// Whether this thread is inside [`guard`], whose panics become error messages.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last guarded panic on this thread happened.
    static PANIC_LOCATION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A plugin links its own copy of std, so this hook sees only the plugin's panics: inside
/// [`guard`] it keeps their location for the error message instead of printing them; other
/// panics go to the previous hook as usual.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_LOCATION.with(|p| *p.borrow_mut() = at.unwrap_or_default());
            } else {
                previous(info);
            }
        }))
    });
}

/// libtorch appends a C++ backtrace to its messages (escaped, in a panic's `Debug` text);
/// the part before it is the one to read.
fn first_part(message: &str) -> &str {
    let head = message
        .split("Exception raised from")
        .next()
        .unwrap_or(message);
    head.trim_end().trim_end_matches("\\n").trim_end()
}

/// Runs `f`, turning both its error and any panic into the message the host will see.
pub fn guard<T>(f: impl FnOnce() -> Result<T, BackboneError>) -> RResult<T, RString> {
    install_panic_hook();
    let was_guarded = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was_guarded));
    match result {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(BackboneError(message))) => RResult::RErr(first_part(&message).into()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let at = PANIC_LOCATION.with(|p| p.take());
            RResult::RErr(format!("panicked at {at}: {}", first_part(&message)).into())
        }
    }
}

/// Called by [`crate::export_backbone!`]'s generated `build` function.
pub fn build_extractor<B: Backbone>(
    config: &str,
    device: PluginDevice,
    build: BuildFn<B>,
) -> RResult<ExtractorBox, RString> {
    guard(|| {
        let backbone = build(config, device.into())?;
        let (feature_dim, input_layout) = (backbone.feature_dim(), backbone.input_layout());
        let (parameters, buffers) = variables(backbone.var_store());
        let adapter = Adapter {
            backbone,
            feature_dim,
            input_layout,
            parameters,
            buffers,
        };
        Ok(Extractor_TO::from_value(adapter, TD_Opaque))
    })
}

/// Named tensors, sorted by name.
type Named = Vec<(String, Tensor)>;

/// The store's (parameters, buffers): variables that require grad and those that do not, each
/// sorted by name.
fn variables(store: &VarStore) -> (Named, Named) {
    let mut vars = store.variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter().partition(|(_, t)| t.requires_grad())
}

/// A built backbone with what the infallible calls answer, read under the guard at build.
/// The tensors are references to the store's own (a `VarStore` never swaps a variable's tensor,
/// loading and optimiser steps write into it), so handing out more references to them is what
/// asking the store again would give.
struct Adapter<B> {
    backbone: B,
    feature_dim: i64,
    input_layout: InputLayout,
    parameters: Named,
    buffers: Named,
}

/// Shares each tensor of `vars` (same storage and autograd leaf).
fn named(vars: &[(String, Tensor)]) -> RVec<NamedTensor> {
    vars.iter()
        .map(|(name, t)| NamedTensor {
            name: name.as_str().into(),
            tensor: TensorHandle::share(t),
        })
        .collect()
}

impl<B: Backbone> Extractor for Adapter<B> {
    fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    fn forward(&mut self, video: TensorHandle, train: bool) -> RResult<TensorHandle, RString> {
        guard(|| {
            let video = video.into_tensor();
            if video.dim() != 5 {
                return Err(format!(
                    "expected a video of shape (B, T, C, H, W), got {:?}",
                    video.size()
                )
                .into());
            }
            Ok(TensorHandle::new(self.backbone.forward(&video, train)?))
        })
    }

    fn parameters(&self) -> RVec<NamedTensor> {
        named(&self.parameters)
    }

    fn buffers(&self) -> RVec<NamedTensor> {
        named(&self.buffers)
    }

    fn input_layout(&self) -> InputLayout {
        self.input_layout
    }
}

/// Registers a backbone: exports the stamp and the root module. `$build` is a [`BuildFn`].
/// The plugin's name and version are its crate's.
///
/// ```ignore
/// trajhost_plugin_api::export_backbone!(MyBackbone::build);
/// ```
#[macro_export]
macro_rules! export_backbone {
    ($build:path) => {
        #[no_mangle]
        pub extern "C" fn trajhost_plugin_stamp() -> $crate::stamp::PluginStamp {
            $crate::stamp::PluginStamp::current(
                $crate::c_str!(env!("CARGO_PKG_NAME")),
                $crate::c_str!(env!("CARGO_PKG_VERSION")),
            )
        }
        $crate::export_backbone_module!($build);
    };
}

/// The root-module half of [`export_backbone!`], for test fixtures that forge their stamp.
#[doc(hidden)]
///
/// This is what `#[abi_stable::export_root_module]` expands to, written with `$crate` paths:
/// that attribute names `::abi_stable` itself, so every plugin would need its own dependency
/// on `abi_stable`. The static's name is the symbol `abi_stable` 0.11 looks up (a test below
/// checks it against `abi_stable::library::ROOT_MODULE_LOADER_NAME`).
#[macro_export]
macro_rules! export_backbone_module {
    ($build:path) => {
        pub fn trajhost_backbone_root_module() -> $crate::BackboneModRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            // Not `build`: that may be the name `$build` gives (export_network!'s is).
            extern "C" fn trajhost_build(
                config: $crate::abi_stable::std_types::RStr<'_>,
                device: $crate::PluginDevice,
            ) -> $crate::abi_stable::std_types::RResult<
                $crate::ExtractorBox,
                $crate::abi_stable::std_types::RString,
            > {
                $crate::backbone::build_extractor(config.as_str(), device, $build)
            }
            $crate::BackboneMod {
                build: trajhost_build,
            }
            .leak_into_prefix()
        }

        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            pub extern "C" fn _sabi_erased_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(trajhost_backbone_root_module)
            }
            type __SABI_Module = <$crate::BackboneModRef as $crate::abi_stable::library::IntoRootModuleResult>::Module;
            // SAFETY: as in abi_stable's own expansion: the constructor returns the module's
            // layout-checked root, of the type named here.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<__SABI_Module>(
                    _sabi_erased_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// A `&'static CStr` from a string literal expression (e.g. `env!(..)`).
#[doc(hidden)]
#[macro_export]
macro_rules! c_str {
    ($s:expr) => {
        match ::std::ffi::CStr::from_bytes_with_nul(concat!($s, "\0").as_bytes()) {
            Ok(c) => c,
            Err(_) => panic!("string holds a NUL byte"),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Kind};

    /// A one-layer backbone that can be told to panic.
    struct Probe {
        vs: VarStore,
        proj: nn::Linear,
        panic: bool,
        panic_store: bool,
    }

    impl Backbone for Probe {
        fn feature_dim(&self) -> i64 {
            4
        }
        fn forward(&mut self, video: &Tensor, _train: bool) -> Result<Tensor, BackboneError> {
            if self.panic {
                let _ = video.view([7, -1]); // 96 elements do not split in 7: tch panics
            }
            let colour = video.f_mean_dim([3, 4].as_slice(), false, Kind::Float)?;
            Ok(nn::Module::forward(&self.proj, &colour))
        }
        fn var_store(&self) -> &VarStore {
            if self.panic_store {
                panic!("no store");
            }
            &self.vs
        }
    }

    fn probe(config: &str, device: Device) -> Result<Probe, BackboneError> {
        let vs = VarStore::new(device);
        let proj = nn::linear(vs.root() / "proj", 3, 4, Default::default());
        let _ = vs.root().zeros_no_train("running", &[2]);
        if config == "bad" {
            return Err("invalid probe config: bad".into());
        }
        Ok(Probe {
            vs,
            proj,
            panic: config == "panic",
            panic_store: config == "panic-store",
        })
    }

    fn build(config: &str) -> Result<ExtractorBox, String> {
        build_extractor(config, PluginDevice::Cpu, probe)
            .into_result()
            .map_err(|e| e.into_string())
    }

    #[test]
    fn forward_hands_tensors_across_and_back() {
        let mut extractor = build("").unwrap();
        assert_eq!(extractor.feature_dim(), 4);
        let video = Tensor::rand([2, 3, 3, 4, 4], (Kind::Float, Device::Cpu));
        let out = extractor
            .forward(TensorHandle::share(&video), false)
            .unwrap()
            .into_tensor();
        assert_eq!(out.size(), [2, 3, 4]);
    }

    #[test]
    fn parameters_and_buffers_are_named_sorted_and_shared() {
        let extractor = build("").unwrap();
        let names: Vec<String> = extractor
            .parameters()
            .into_iter()
            .map(|n| n.name.into_string())
            .collect();
        assert_eq!(names, ["proj.bias", "proj.weight"]);
        let buffers: Vec<String> = extractor
            .buffers()
            .into_iter()
            .map(|n| n.name.into_string())
            .collect();
        assert_eq!(buffers, ["running"]);
        // A handle shares storage: writing through it shows in a second one.
        let first_parameter = || {
            let first = extractor.parameters().into_iter().next().unwrap();
            first.tensor.into_tensor()
        };
        let mut bias = first_parameter();
        tch::no_grad(|| {
            let _ = bias.fill_(3.0);
        });
        assert_eq!(first_parameter().sum(Kind::Float).double_value(&[]), 12.0);
    }

    #[test]
    fn errors_and_panics_become_messages() {
        assert_eq!(build("bad").err().unwrap(), "invalid probe config: bad");
        let mut extractor = build("panic").unwrap();
        let video = Tensor::rand([1, 2, 3, 4, 4], (Kind::Float, Device::Cpu));
        let err = extractor
            .forward(TensorHandle::share(&video), true)
            .unwrap_err()
            .into_string();
        assert!(err.starts_with("panicked at "), "{err}");
        assert!(
            !err.contains("Exception raised from"),
            "libtorch's backtrace is cut: {err}"
        );
        let four_d = Tensor::rand([1, 3, 4, 4], (Kind::Float, Device::Cpu));
        let err = extractor
            .forward(TensorHandle::new(four_d), true)
            .unwrap_err()
            .into_string();
        assert!(
            err.contains("(B, T, C, H, W)") && err.contains("[1, 3, 4, 4]"),
            "{err}"
        );
    }

    #[test]
    fn a_panic_behind_the_infallible_calls_is_a_build_error() {
        let err = build("panic-store").err().unwrap();
        assert!(
            err.starts_with("panicked at ") && err.ends_with("no store"),
            "{err}"
        );
    }

    #[test]
    fn the_exported_header_has_the_name_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn the_first_part_of_a_libtorch_message_is_kept() {
        assert_eq!(
            first_part("bad shape\nException raised from x\nframe #0"),
            "bad shape"
        );
        assert_eq!(
            first_part("Torch(\"bad shape\\nException raised from x"),
            "Torch(\"bad shape"
        );
        assert_eq!(first_part("plain"), "plain");
    }
}
