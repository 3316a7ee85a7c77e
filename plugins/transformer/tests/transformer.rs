//! The transformer backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use std::path::PathBuf;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;
use transformer::{Config, Transformer};

fn snapshot_settings() -> insta::Settings {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(workspace.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn build(config: &str) -> Transformer {
    tch::manual_seed(0);
    match Transformer::build(config, Device::Cpu) {
        Ok(model) => model,
        Err(e) => panic!("building {config:?}: {}", e.0),
    }
}

fn build_error(config: &str) -> String {
    match Transformer::build(config, Device::Cpu) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(e) => e.0,
    }
}

fn listing(model: &mut Transformer, inputs: &[(i64, i64)]) -> String {
    trajhost_plugin_api::devkit::describe(model, inputs)
}

#[test]
fn cpu_preset_parameters_and_shapes() {
    let mut model = build("");
    let text = listing(&mut model, &[(2, 16), (4, 32)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("transformer_cpu_parameters", text));
}

#[test]
fn reference_preset_parameters_and_shapes() {
    let mut model = build("(preset: \"reference\")");
    let text = listing(&mut model, &[(2, 16)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("transformer_reference_parameters", text));
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
    assert!(err.contains("invalid transformer config"), "{err}");
    assert!(err.contains("wdith"), "{err}");
}

#[test]
fn an_unknown_preset_is_an_error_naming_plugin_and_field() {
    let err = build_error("(preset: \"gpu\")");
    assert!(err.contains("invalid transformer config"), "{err}");
    assert!(err.contains("preset") && err.contains("gpu"), "{err}");
    assert!(
        err.contains("\"cpu\"") && err.contains("\"reference\""),
        "{err}"
    );
}

#[test]
fn a_bad_value_is_an_error_naming_plugin_and_field() {
    let err = build_error("(heads: Some(5))");
    assert!(err.contains("invalid transformer config"), "{err}");
    assert!(err.contains("`heads`"), "{err}");
}

#[test]
fn a_ron_syntax_error_names_the_plugin() {
    let err = build_error("(preset: ");
    assert!(err.contains("invalid transformer config"), "{err}");
}

#[test]
fn frames_beyond_max_frames_or_of_another_size_are_errors() {
    let mut model = build("(max_frames: Some(8))");
    let ok = Tensor::rand([1, 8, 3, 64, 64], (Kind::Float, Device::Cpu));
    assert_eq!(model.forward(&ok, false).unwrap().size(), [1, 8, 48]);
    let long = Tensor::rand([1, 9, 3, 64, 64], (Kind::Float, Device::Cpu));
    let err = model.forward(&long, false).unwrap_err().0;
    assert!(err.contains("max_frames = 8"), "{err}");
    let small = Tensor::rand([1, 4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let err = model.forward(&small, false).unwrap_err().0;
    assert!(
        err.contains("32×32") && err.contains("image_size 64"),
        "{err}"
    );
}

#[test]
fn knobs_override_the_preset() {
    let c = Config::from_ron("(preset: \"cpu\", dim: Some(64), patch_size: Some(8))").unwrap();
    assert_eq!((c.dim, c.patch_size, c.depth), (64, 8, 2));
    assert_eq!(build("(dim: Some(64), heads: Some(4))").feature_dim(), 64);
    let err = build_error("(patch_size: Some(24))");
    assert!(
        err.contains("invalid transformer config") && err.contains("`patch_size`"),
        "{err}"
    );
}
