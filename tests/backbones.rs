//! The four paper backbones (i3d, slowfast, transformer, magvit) through the real plugin boundary.

mod common;

use common::{plugin, text, trajhost};
use tch::{Device, Kind, Tensor};
use trajhost::plugin::Plugin;

/// The paper backbones and their feature size `D` with the (default) cpu preset.
const BACKBONES: [(&str, i64); 4] = [
    ("i3d", 128),
    ("slowfast", 320),
    ("transformer", 48),
    ("magvit", 32),
];

fn passes_the_conformance_kit(name: &str) {
    plugin(name);
    let output = trajhost(&["plugin", "check", name], &[]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains(&format!("conformance of plugin '{name}'")),
        "{report}"
    );
    assert!(report.contains("all 9 checks passed"), "{report}");
}

#[test]
fn i3d_passes_the_conformance_kit() {
    passes_the_conformance_kit("i3d");
}

#[test]
fn slowfast_passes_the_conformance_kit() {
    passes_the_conformance_kit("slowfast");
}

#[test]
fn transformer_passes_the_conformance_kit() {
    passes_the_conformance_kit("transformer");
}

#[test]
fn magvit_passes_the_conformance_kit() {
    passes_the_conformance_kit("magvit");
}

#[test]
fn all_four_load_in_one_process_and_stay_distinct() {
    let plugins: Vec<Plugin> = BACKBONES
        .iter()
        .map(|(name, _)| Plugin::load(&plugin(name)).unwrap())
        .collect();
    tch::manual_seed(0);
    let video = Tensor::rand([2, 4, 3, 64, 64], (Kind::Float, Device::Cpu));
    for (loaded, (name, dim)) in plugins.iter().zip(BACKBONES) {
        assert_eq!(loaded.name(), name);
        let mut model = loaded.build("", Device::Cpu).unwrap();
        assert_eq!(model.feature_dim(), dim, "{name}");
        let features = tch::no_grad(|| model.forward(&video, false)).unwrap();
        assert_eq!(features.size(), [2, 4, dim], "{name}");
    }
    // Each plugin's own config parser answers for it.
    for (loaded, (name, _)) in plugins.iter().zip(BACKBONES) {
        let err = loaded
            .build("(preset: \"gpu\")", Device::Cpu)
            .err()
            .unwrap_or_else(|| panic!("{name} accepted preset gpu"));
        let err = format!("{err:#}");
        assert!(err.contains(&format!("invalid {name} config")), "{err}");
    }
}

#[test]
fn reference_presets_build_with_the_papers_feature_sizes() {
    for (name, dim) in [
        ("i3d", 1024),
        ("slowfast", 2304),
        ("transformer", 768),
        ("magvit", 256),
    ] {
        let model = Plugin::load(&plugin(name))
            .unwrap()
            .build("(preset: \"reference\")", Device::Cpu)
            .unwrap();
        assert_eq!(model.feature_dim(), dim, "{name}");
    }
}

/// The benchmark's lead for the conv backbones rests on their batches arriving channel-major;
/// the Transformer reads whole frames.
#[test]
fn the_conv_backbones_ask_for_channel_major_batches_and_the_transformer_for_time_major() {
    use trajhost_plugin_api::InputLayout;
    for (name, expected) in [
        ("i3d", InputLayout::ChannelMajor),
        ("slowfast", InputLayout::ChannelMajor),
        ("magvit", InputLayout::ChannelMajor),
        ("transformer", InputLayout::TimeMajor),
    ] {
        let plugin = Plugin::load(&plugin(name)).unwrap();
        let model = plugin.build("", Device::Cpu).unwrap();
        assert_eq!(model.input_layout(), expected, "{name}");
    }
}
