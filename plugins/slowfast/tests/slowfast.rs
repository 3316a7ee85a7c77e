//! The slowfast backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use slowfast::Config;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::Backbone;

trajhost_plugin_api::preset_backbone_tests! {
    slowfast::SlowFast, reference, snapshots = "../../snapshots",
    bad_value = ("(depths: Some([1, 1, 1]))", "depths")
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
