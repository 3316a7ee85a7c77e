//! A test fixture, not a backbone: it misbehaves in the way its config or environment asks,
//! so the host's tests can show each defence working.
//!
//! * config `(fault: WrongShape)`: returns `(B, D)` instead of `(B, T, D)`;
//!   `Panic`: a tch call panics inside `forward`; `DeadParameter`: one parameter never
//!   reaches the output; `NanAfter(n)`: NaN features from the n-th call on;
//!   `PanicInFeatureDim` / `PanicInVarStore`: `feature_dim` / `var_store` panic (the calls
//!   behind the ABI's `feature_dim`, `parameters` and `buffers`); `HangAfter(n)`: from the
//!   n-th forward call on, says so on stderr and never returns; `HiddenParameter`: a trainable
//!   tensor kept outside the VarStore scales the output; `ReadsMemoryOrder`: reads the input's
//!   memory as if it were contiguous `(B, T, C, H, W)`, whatever its strides; `NanOnBlank`:
//!   divides by each clip's spread, as per-clip standardisation does (NaN on a blank clip); `None`
//!   (default): behaves.
//! * `TRAJHOST_BROKEN_STAMP=old-api | other-libtorch | bad-magic`: forges its stamp.

use serde::Deserialize;
use tch::{nn, nn::Module, Device, Kind, Tensor};
use trajhost_plugin_api::{
    c_str, export_backbone_module,
    stamp::{PluginStamp, STAMP_MAGIC},
    Backbone, BackboneError,
};

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq)]
enum Fault {
    #[default]
    None,
    WrongShape,
    Panic,
    DeadParameter,
    /// NaN features from the n-th forward call on (counting from 0).
    NanAfter(u64),
    PanicInFeatureDim,
    PanicInVarStore,
    /// From the n-th forward call on (counting from 0), says so on stderr and never returns:
    /// tests kill the process at a known point.
    HangAfter(u64),
    /// A trainable tensor outside the VarStore: the host would never train or save it.
    HiddenParameter,
    /// Takes the input's memory for contiguous `(B, T, C, H, W)`, as a `view` on raw storage
    /// would: wrong for the `ChannelMajor` batches the host may hand over.
    ReadsMemoryOrder,
    /// Scales by each clip's spread over its own spread: 1 for any clip with contrast, 0/0 =
    /// NaN for a blank one, as a backbone standardising per clip would.
    NanOnBlank,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    fault: Fault,
    feature_dim: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fault: Fault::None,
            feature_dim: 8,
        }
    }
}

struct Broken {
    vs: nn::VarStore,
    proj: nn::Linear,
    unused: Tensor,
    hidden: Tensor,
    config: Config,
    calls: u64,
}

impl Broken {
    fn build(config: &str, device: Device) -> Result<Self, BackboneError> {
        let config: Config = match config.trim() {
            "" => Config::default(),
            text => ron::from_str(text).map_err(|e| format!("invalid broken config: {e}"))?,
        };
        let vs = nn::VarStore::new(device);
        let proj = nn::linear(
            vs.root() / "proj",
            3,
            config.feature_dim,
            Default::default(),
        );
        let unused = vs.root().zeros("unused", &[1]);
        let hidden = Tensor::ones([1], (Kind::Float, device)).set_requires_grad(true);
        Ok(Broken {
            vs,
            proj,
            unused,
            hidden,
            config,
            calls: 0,
        })
    }
}

impl Backbone for Broken {
    fn feature_dim(&self) -> i64 {
        if self.config.fault == Fault::PanicInFeatureDim {
            panic!("broken: feature_dim panics on purpose");
        }
        self.config.feature_dim
    }

    fn forward(&mut self, video: &Tensor, _train: bool) -> Result<Tensor, BackboneError> {
        if let Fault::HangAfter(n) = self.config.fault {
            if self.calls >= n {
                eprintln!("broken: forward call {} hangs", self.calls + 1);
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        let video = match self.config.fault {
            Fault::ReadsMemoryOrder => {
                let size = video.size();
                let (c, h, w) = (size[2], size[3], size[4]);
                let strides = [size[1] * c * h * w, c * h * w, h * w, w, 1];
                video.f_as_strided(size.as_slice(), strides, 0)?
            }
            _ => video.shallow_clone(),
        };
        // Per-frame mean colour (B, T, 3) → (B, T, D).
        let colour = video.f_mean_dim([3, 4].as_slice(), false, Kind::Float)?;
        let features = self.proj.forward(&colour);
        self.calls += 1;
        Ok(match self.config.fault {
            Fault::None => features,
            Fault::WrongShape => features.mean_dim(1, false, Kind::Float),
            Fault::Panic => features.matmul(&Tensor::zeros([5, 7], (Kind::Float, video.device()))),
            Fault::DeadParameter => features + &self.unused * 0.0,
            Fault::HiddenParameter => features * &self.hidden,
            Fault::NanOnBlank => {
                let spread = video
                    .f_std_dim([1, 2, 3, 4].as_slice(), false, false)?
                    .view([-1, 1, 1]);
                // spread / spread, written so: 1 with contrast, 0/0 on a blank clip.
                features * spread.f_div(&spread)?
            }
            Fault::NanAfter(n) if self.calls > n => features * f64::NAN,
            Fault::NanAfter(_)
            | Fault::PanicInFeatureDim
            | Fault::PanicInVarStore
            | Fault::HangAfter(_)
            | Fault::ReadsMemoryOrder => features,
        })
    }

    fn var_store(&self) -> &nn::VarStore {
        if self.config.fault == Fault::PanicInVarStore {
            panic!("broken: var_store panics on purpose");
        }
        &self.vs
    }
}

export_backbone_module!(Broken::build);

#[no_mangle]
pub extern "C" fn trajhost_plugin_stamp() -> PluginStamp {
    let mut stamp = PluginStamp::current(c_str!("broken"), c_str!("0.0.1"));
    match std::env::var("TRAJHOST_BROKEN_STAMP").as_deref() {
        Ok("old-api") => stamp.api_version -= 1,
        Ok("other-libtorch") => stamp.fingerprint = c_str!("tch 0.25 / libtorch 2.12.0").as_ptr(),
        Ok("bad-magic") => stamp.magic = !STAMP_MAGIC,
        _ => {}
    }
    stamp
}
