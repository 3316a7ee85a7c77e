//! The magvit backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use magvit::Config;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;

trajhost_plugin_api::preset_backbone_tests! {
    magvit::Magvit, reference, snapshots = "../../snapshots",
    bad_value = ("(groups: Some(5))", "groups")
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
