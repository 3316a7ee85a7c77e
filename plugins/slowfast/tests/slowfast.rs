//! The slowfast backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use slowfast::{Config, SlowFast};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;

fn snapshot_settings() -> insta::Settings {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(workspace.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn build(config: &str) -> SlowFast {
    tch::manual_seed(0);
    match SlowFast::build(config, Device::Cpu) {
        Ok(model) => model,
        Err(e) => panic!("building {config:?}: {}", e.0),
    }
}

fn build_error(config: &str) -> String {
    match SlowFast::build(config, Device::Cpu) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(e) => e.0,
    }
}

fn listing(model: &mut SlowFast, inputs: &[(i64, i64)]) -> String {
    trajhost_plugin_api::devkit::describe(model, inputs)
}

#[test]
fn cpu_preset_parameters_and_shapes() {
    let mut model = build("");
    let text = listing(&mut model, &[(2, 16), (4, 32)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("slowfast_cpu_parameters", text));
}

#[test]
fn reference_preset_parameters_and_shapes() {
    let mut model = build("(preset: \"reference\")");
    let text = listing(&mut model, &[(2, 16)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("slowfast_reference_parameters", text));
}

#[test]
fn an_empty_config_is_the_cpu_preset_and_knobs_override_it() {
    assert_eq!(Config::from_ron("").unwrap(), Config::cpu());
    assert_eq!(Config::from_ron("  ").unwrap(), Config::cpu());
    assert_eq!(
        Config::from_ron("(preset: \"cpu\")").unwrap(),
        Config::cpu()
    );
    assert_eq!(
        Config::from_ron("(preset: \"reference\")").unwrap(),
        Config::reference()
    );
    assert_ne!(Config::cpu(), Config::reference());
}

#[test]
fn an_unknown_field_is_an_error_naming_plugin_and_field() {
    let err = build_error("(preset: \"cpu\", wdith: Some(3))");
    assert!(err.contains("invalid slowfast config"), "{err}");
    assert!(err.contains("wdith"), "{err}");
}

#[test]
fn an_unknown_preset_is_an_error_naming_plugin_and_field() {
    let err = build_error("(preset: \"gpu\")");
    assert!(err.contains("invalid slowfast config"), "{err}");
    assert!(err.contains("preset") && err.contains("gpu"), "{err}");
    assert!(
        err.contains("\"cpu\"") && err.contains("\"reference\""),
        "{err}"
    );
}

#[test]
fn a_bad_value_is_an_error_naming_plugin_and_field() {
    let err = build_error("(depths: Some([1, 1, 1]))");
    assert!(err.contains("invalid slowfast config"), "{err}");
    assert!(err.contains("`depths`"), "{err}");
}

#[test]
fn a_ron_syntax_error_names_the_plugin() {
    let err = build_error("(preset: ");
    assert!(err.contains("invalid slowfast config"), "{err}");
}

#[test]
fn frame_counts_not_divisible_by_alpha_keep_t() {
    let mut model = build("");
    let d = model.feature_dim();
    // Slow's width (res5 output) followed by Fast's.
    assert_eq!(d, 4 * 8 * 8 + 4 * 8 * 8 / 4);
    for t in [1, 3, 6, 10] {
        let video = Tensor::rand([2, t, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| model.forward(&video, true)).unwrap();
        assert_eq!(out.size(), [2, t, d]);
    }
}

#[test]
fn knobs_override_the_preset() {
    let c =
        Config::from_ron("(preset: \"cpu\", alpha: Some(2), depths: Some([1, 2, 1, 1]))").unwrap();
    assert_eq!(
        (c.alpha, c.depths.clone(), c.width),
        (2, vec![1, 2, 1, 1], 8)
    );
    let err = build_error("(width: Some(2), beta_inv: Some(4))");
    assert!(
        err.contains("invalid slowfast config") && err.contains("`beta_inv`"),
        "{err}"
    );
}
