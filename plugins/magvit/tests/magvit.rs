//! The magvit backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use magvit::{Config, Magvit};
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

fn build(config: &str) -> Magvit {
    tch::manual_seed(0);
    match Magvit::build(config, Device::Cpu) {
        Ok(model) => model,
        Err(e) => panic!("building {config:?}: {}", e.0),
    }
}

fn build_error(config: &str) -> String {
    match Magvit::build(config, Device::Cpu) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(e) => e.0,
    }
}

fn listing(model: &mut Magvit, inputs: &[(i64, i64)]) -> String {
    trajhost_plugin_api::devkit::describe(model, inputs)
}

#[test]
fn cpu_preset_parameters_and_shapes() {
    let mut model = build("");
    let text = listing(&mut model, &[(2, 16), (4, 32)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("magvit_cpu_parameters", text));
}

#[test]
fn reference_preset_parameters_and_shapes() {
    let mut model = build("(preset: \"reference\")");
    let text = listing(&mut model, &[(2, 16)]);
    snapshot_settings().bind(|| insta::assert_snapshot!("magvit_reference_parameters", text));
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
    assert!(err.contains("invalid magvit config"), "{err}");
    assert!(err.contains("wdith"), "{err}");
}

#[test]
fn an_unknown_preset_is_an_error_naming_plugin_and_field() {
    let err = build_error("(preset: \"gpu\")");
    assert!(err.contains("invalid magvit config"), "{err}");
    assert!(err.contains("preset") && err.contains("gpu"), "{err}");
    assert!(
        err.contains("\"cpu\"") && err.contains("\"reference\""),
        "{err}"
    );
}

#[test]
fn a_bad_value_is_an_error_naming_plugin_and_field() {
    let err = build_error("(groups: Some(5))");
    assert!(err.contains("invalid magvit config"), "{err}");
    assert!(err.contains("`groups`"), "{err}");
}

#[test]
fn a_ron_syntax_error_names_the_plugin() {
    let err = build_error("(preset: ");
    assert!(err.contains("invalid magvit config"), "{err}");
}

#[test]
fn causal_and_temporally_downsampled_variants_keep_t() {
    for config in [
        "(causal: Some(true))",
        "(causal: Some(true), channel_multipliers: Some([1, 2, 2]), temporal_downsample: Some([true, true]))",
        "(channel_multipliers: Some([1, 2, 2]), temporal_downsample: Some([true, true]))",
    ] {
        let mut model = build(config);
        for t in [1, 5, 8] {
            let video = Tensor::rand([2, t, 3, 64, 64], (Kind::Float, Device::Cpu));
            let out = tch::no_grad(|| model.forward(&video, true)).unwrap();
            assert_eq!(out.size(), [2, t, 32], "{config}, T = {t}");
        }
    }
}

#[test]
fn knobs_override_the_preset() {
    let c =
        Config::from_ron("(preset: \"cpu\", filters: Some(8), embedding_dim: Some(16))").unwrap();
    assert_eq!((c.filters, c.embedding_dim, c.groups), (8, 16, 4));
    // A new level count without temporal flags downsamples space only.
    let c = Config::from_ron("(channel_multipliers: Some([1, 2, 4]))").unwrap();
    assert_eq!(c.temporal_downsample, vec![false, false]);
    let err = build_error("(temporal_downsample: Some([true, true]))");
    assert!(
        err.contains("invalid magvit config") && err.contains("`temporal_downsample`"),
        "{err}"
    );
}
