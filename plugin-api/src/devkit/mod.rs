//! Tools for backbone authors' own tests and measurements, shared so that every plugin crate
//! (ours and third parties') describes, times and checks its model the same way.

pub mod conformance;

pub use conformance::assert_conformance;

use crate::Backbone;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Every parameter and buffer with its shape, the parameter count, `D`, and the feature shape
/// for each `(B, T)` in `inputs` (eval mode, 64×64 frames): the text plugin snapshots hold.
pub fn describe(model: &mut dyn Backbone, inputs: &[(i64, i64)]) -> String {
    let mut vars: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
    // Parameters first, then buffers, each sorted by name.
    vars.sort_by(|a, b| (!a.1.requires_grad(), &a.0).cmp(&(!b.1.requires_grad(), &b.0)));
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::new();
    let mut total = 0;
    for (name, t) in &vars {
        let kind = if t.requires_grad() {
            total += t.numel();
            "param "
        } else {
            "buffer"
        };
        text += &format!("{kind} {name:<width$} {:?}\n", t.size());
    }
    text += &format!("total parameters: {total}\n");
    text += &format!("feature_dim: {}\n", model.feature_dim());
    for &(b, t) in inputs {
        tch::manual_seed(1);
        let video = Tensor::rand([b, t, 3, 64, 64], (Kind::Float, Device::Cpu));
        let shape = match tch::no_grad(|| model.forward(&video, false)) {
            Ok(out) => format!("{:?}", out.size()),
            Err(e) => format!("error: {}", e.0),
        };
        text += &format!("features for ({b}, {t}, 3, 64, 64): {shape}\n");
    }
    text
}

/// What [`videos_per_second`] times: a backbone on either side of the ABI (the host's
/// `plugin info` times a loaded plugin with the same steps as a plugin's own example).
pub trait Timed {
    type Error;
    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, Self::Error>;
    fn zero_grad(&mut self);
}

impl Timed for dyn Backbone + '_ {
    type Error = crate::BackboneError;
    fn forward(&mut self, video: &Tensor, train: bool) -> Result<Tensor, Self::Error> {
        Backbone::forward(self, video, train)
    }
    fn zero_grad(&mut self) {
        for mut p in self.var_store().trainable_variables() {
            p.zero_grad();
        }
    }
}

/// Throughput in videos/s on `video` (a batch), averaged over `batches` after one warm-up
/// batch of each: `(training: forward + backward of a plain loss, inference: forward only)`.
pub fn videos_per_second<M: Timed + ?Sized>(
    model: &mut M,
    video: &Tensor,
    batches: usize,
) -> Result<(f64, f64), M::Error> {
    let mut step = |train: bool| -> Result<(), M::Error> {
        if train {
            model
                .forward(video, true)?
                .square()
                .mean(Kind::Float)
                .backward();
            model.zero_grad();
        } else {
            let _ = tch::no_grad(|| model.forward(video, false))?;
        }
        Ok(())
    };
    let mut rates = [0.0; 2];
    for (rate, train) in rates.iter_mut().zip([true, false]) {
        step(train)?;
        let start = Instant::now();
        for _ in 0..batches {
            step(train)?;
        }
        *rate = (video.size()[0] as usize * batches) as f64 / start.elapsed().as_secs_f64();
    }
    Ok((rates[0], rates[1]))
}

/// The body of a plugin's `examples/throughput.rs`:
/// `cargo run --release -p NAME --example NAME_throughput -- [config] [batches]`, two threads
/// unless `THREADS` says otherwise.
pub fn throughput_main<B: Backbone>(
    name: &str,
    build: crate::backbone::BuildFn<B>,
) -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_default();
    let batches: usize = args
        .next()
        .map_or(Ok(5), |n| n.parse())
        .map_err(|e| format!("batches: {e}"))?;
    let threads = std::env::var("THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let mut model = build(&config, Device::Cpu).map_err(|e| e.0)?;
    let count: i64 = model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let video = Tensor::rand([32, 32, 3, 64, 64], (Kind::Float, Device::Cpu));
    let model: &mut dyn Backbone = &mut model;
    let (train, infer) = videos_per_second(model, &video, batches).map_err(|e| e.0)?;
    println!(
        "{name} {config:?}: {count} parameters, {threads} threads; training (forward + backward) {train:.1} videos/s, \
         forward only {infer:.1} videos/s (batches of 32 × (32, 3, 64, 64))"
    );
    Ok(())
}

/// The test every plugin crate should have: the conformance kit — the checks of
/// `trajhost plugin check` — on the backbone built in-process from the empty config (its
/// defaults) and from each further config given. In `tests/conformance.rs`:
///
/// ```ignore
/// trajhost_plugin_api::conformance_test!(mynet::MyNet::build);
/// trajhost_plugin_api::conformance_test!(mynet::MyNet::build, "(channels: 8)");
/// ```
///
/// It fails with the kit's whole report, naming each failed check and why.
#[macro_export]
macro_rules! conformance_test {
    ($build:path $(, $config:expr)* $(,)?) => {
        #[test]
        fn passes_the_conformance_kit() {
            for config in ["" $(, $config)*] {
                $crate::devkit::assert_conformance(env!("CARGO_PKG_NAME"), $build, config);
            }
        }
    };
}

/// The tests every backbone with presets shares, for its `tests/<name>.rs` (which needs
/// `insta` as a dev-dependency): a parameter/shape snapshot of the `cpu` preset, an empty
/// config meaning `cpu`, and config errors that name the plugin and the field. It also
/// defines `build(config)` and `build_error(config)` for the crate's own further tests.
/// Pair it with [`conformance_test!`](crate::conformance_test).
///
/// ```ignore
/// preset_backbone_tests!(mynet::MyNet);
/// preset_backbone_tests! {
///     i3d::I3d, reference, snapshots = "../../snapshots", bad_value = ("(width: 0)", "width")
/// }
/// ```
///
/// The plugin's name is its crate's (as in its config errors) and the config its
/// `Network::Config`.
/// * `reference`: the plugin also has a `reference` preset (`Config::reference()`): snapshot
///   it too, and check that it is parsed and listed in the unknown-preset error;
/// * `snapshots = DIR`: where the `.snap` files live, relative to the crate's folder
///   (default: `snapshots/` inside the crate);
/// * `bad_value = (TEXT, FIELD)`: a config the plugin must refuse, naming the plugin and FIELD.
///
/// `Config` must offer `cpu()` (and `reference()` with `reference`), as `backbone_config!`'s
/// presets do.
#[macro_export]
macro_rules! preset_backbone_tests {
    (
        $model:ty, reference
        $(, snapshots = $dir:expr)? $(, bad_value = ($text:expr, $field:literal))? $(,)?
    ) => {
        $crate::preset_backbone_tests!(@cpu $model, [$($dir)?], [$($text, $field)?]);
        $crate::__reference_preset_tests!();
    };
    (
        $model:ty $(, snapshots = $dir:expr)? $(, bad_value = ($text:expr, $field:literal))? $(,)?
    ) => {
        $crate::preset_backbone_tests!(@cpu $model, [$($dir)?], [$($text, $field)?]);
    };
    (@cpu $model:ty, [$($dir:expr)?], [$($text:expr, $field:literal)?]) => {
        /// The config type the tests parse.
        type PresetConfig = <$model as $crate::network::Network>::Config;

        $(
            #[test]
            fn a_bad_value_is_an_error_naming_plugin_and_field() {
                let err = build_error($text);
                assert!(err.contains(concat!("invalid ", env!("CARGO_PKG_NAME"), " config")), "{err}");
                assert!(err.contains(concat!("`", $field, "`")), "{err}");
            }
        )?

        fn snapshot_settings() -> ::insta::Settings {
            let crate_dir = ::std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            #[allow(unused_mut)]
            let mut dir = crate_dir.join("snapshots");
            $(dir = crate_dir.join($dir);)?
            let mut settings = ::insta::Settings::clone_current();
            settings.set_snapshot_path(dir);
            settings.set_prepend_module_to_snapshot(false);
            settings
        }

        /// Builds with seed 0, panicking with the plugin's message on error.
        fn build(config: &str) -> $crate::network::Built<$model> {
            $crate::tch::manual_seed(0);
            match $crate::network::build::<$model>(env!("CARGO_PKG_NAME"), config, $crate::tch::Device::Cpu) {
                Ok(model) => model,
                Err(e) => panic!("building {config:?}: {}", e.0),
            }
        }

        /// The plugin's message for a config it must refuse.
        fn build_error(config: &str) -> String {
            match $crate::network::build::<$model>(env!("CARGO_PKG_NAME"), config, $crate::tch::Device::Cpu) {
                Ok(_) => panic!("{config:?} was accepted"),
                Err(e) => e.0,
            }
        }

        #[test]
        fn cpu_preset_parameters_and_shapes() {
            let text = $crate::devkit::describe(&mut build(""), &[(2, 16), (4, 32)]);
            snapshot_settings()
                .bind(|| ::insta::assert_snapshot!(concat!(env!("CARGO_PKG_NAME"), "_cpu_parameters"), text));
        }

        #[test]
        fn an_empty_config_is_the_cpu_preset() {
            assert_eq!(PresetConfig::from_ron("").unwrap(), PresetConfig::cpu());
            assert_eq!(PresetConfig::from_ron("  ").unwrap(), PresetConfig::cpu());
            assert_eq!(
                PresetConfig::from_ron("(preset: \"cpu\")").unwrap(),
                PresetConfig::cpu()
            );
        }

        #[test]
        fn an_unknown_field_is_an_error_naming_plugin_and_field() {
            let err = build_error("(preset: \"cpu\", wdith: Some(3))");
            assert!(err.contains(concat!("invalid ", env!("CARGO_PKG_NAME"), " config")), "{err}");
            assert!(err.contains("wdith"), "{err}");
        }

        #[test]
        fn an_unknown_preset_is_an_error_naming_plugin_and_field() {
            let err = build_error("(preset: \"gpu\")");
            assert!(err.contains(concat!("invalid ", env!("CARGO_PKG_NAME"), " config")), "{err}");
            assert!(err.contains("preset") && err.contains("gpu"), "{err}");
            assert!(err.contains("\"cpu\""), "{err}");
        }

        #[test]
        fn a_ron_syntax_error_names_the_plugin() {
            let err = build_error("(preset: ");
            assert!(err.contains(concat!("invalid ", env!("CARGO_PKG_NAME"), " config")), "{err}");
        }
    };
}

/// The `reference` half of [`preset_backbone_tests!`](crate::preset_backbone_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __reference_preset_tests {
    () => {
        #[test]
        fn reference_preset_parameters_and_shapes() {
            let text = $crate::devkit::describe(&mut build("(preset: \"reference\")"), &[(2, 16)]);
            snapshot_settings().bind(|| {
                ::insta::assert_snapshot!(
                    concat!(env!("CARGO_PKG_NAME"), "_reference_parameters"),
                    text
                )
            });
        }

        #[test]
        fn the_reference_preset_is_parsed_and_listed() {
            assert_eq!(
                PresetConfig::from_ron("(preset: \"reference\")").unwrap(),
                PresetConfig::reference()
            );
            assert_ne!(PresetConfig::cpu(), PresetConfig::reference());
            assert!(build_error("(preset: \"gpu\")").contains("\"reference\""));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackboneError;
    use tch::nn::{self, Module, VarStore};

    /// Per-frame mean colour through one linear layer.
    struct Tiny {
        vs: VarStore,
        proj: nn::Linear,
    }

    impl Backbone for Tiny {
        fn feature_dim(&self) -> i64 {
            2
        }
        fn forward(&mut self, video: &Tensor, _train: bool) -> Result<Tensor, BackboneError> {
            Ok(self
                .proj
                .forward(&video.f_mean_dim([3, 4].as_slice(), false, Kind::Float)?))
        }
        fn var_store(&self) -> &VarStore {
            &self.vs
        }
    }

    fn tiny() -> Tiny {
        let vs = VarStore::new(Device::Cpu);
        let proj = nn::linear(vs.root() / "proj", 3, 2, Default::default());
        let _ = vs.root().zeros_no_train("running", &[1]);
        Tiny { vs, proj }
    }

    #[test]
    fn describe_lists_parameters_then_buffers_and_feature_shapes() {
        let text = describe(&mut tiny(), &[(2, 4)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "param  proj.bias   [2]");
        assert_eq!(lines[1], "param  proj.weight [2, 3]");
        assert_eq!(lines[2], "buffer running     [1]");
        assert_eq!(lines[3], "total parameters: 8");
        assert_eq!(lines[4], "feature_dim: 2");
        assert_eq!(lines[5], "features for (2, 4, 3, 64, 64): [2, 4, 2]");
    }

    #[test]
    fn throughput_reports_positive_rates() {
        let video = Tensor::rand([2, 32, 3, 64, 64], (Kind::Float, Device::Cpu));
        let mut model = tiny();
        let model: &mut dyn Backbone = &mut model;
        let (train, infer) = videos_per_second(model, &video, 1).unwrap();
        assert!(train > 0.0 && infer > 0.0, "{train} {infer}");
    }
}
