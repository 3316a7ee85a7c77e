//! The transformer backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;
use transformer::Config;

trajhost_plugin_api::preset_backbone_tests! {
    transformer::Transformer, reference, snapshots = "../../snapshots",
    bad_value = ("(heads: Some(5))", "heads")
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
