//! The i3d backbone through its rlib: parameter listings and output shapes (insta
//! snapshots in the workspace's `snapshots/`), and configuration errors.

use i3d::{Config, I3d};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::network::Built;
use trajhost_plugin_api::Backbone;

trajhost_plugin_api::preset_backbone_tests! {
    i3d::I3d, reference, snapshots = "../../snapshots",
    bad_value = ("(width: Some(0))", "width")
}

#[test]
fn knobs_scale_the_width_and_feature_dim() {
    assert_eq!(
        build("(preset: \"cpu\", width: Some(16))").feature_dim(),
        256
    );
    let c = Config::from_ron("(blocks: Some([2, 5, 2]), stem_kernel: Some([1, 4, 4]))").unwrap();
    assert_eq!((*c.blocks, *c.stem_kernel), ([2, 5, 2], [1, 4, 4]));
    let err = build_error("(stem_kernel: Some([4, 4]))");
    assert!(
        err.contains("invalid i3d config") && err.contains("`stem_kernel`"),
        "{err}"
    );
}

#[test]
fn odd_frame_counts_keep_t_with_temporal_strides() {
    let mut model = build("(temporal_strides: Some(true))");
    for t in [1, 5, 13] {
        let video = Tensor::rand([1, t, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| model.forward(&video, false)).unwrap();
        assert_eq!(out.size(), [1, t, 128]);
    }
}

/// A file in the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        let name = format!("i3d-test-{}-{tag}.safetensors", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }

    fn config(&self) -> String {
        format!(
            "(preset: \"cpu\", pretrained: Some({:?}))",
            self.0.display().to_string()
        )
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A trained-looking state: seed-dependent weights and moved running statistics.
fn state(seed: i64) -> (Built<I3d>, Vec<(String, Tensor)>) {
    tch::manual_seed(seed);
    let mut model = i3d::build("", Device::Cpu).unwrap();
    let video = Tensor::rand([2, 4, 3, 64, 64], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| model.forward(&video, true)).unwrap();
    let mut vars: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    (model, vars)
}

#[test]
fn pretrained_weights_round_trip() {
    let (mut original, vars) = state(3);
    let file = TempFile::new("good");
    Tensor::write_safetensors(&vars, &file.0).unwrap();
    tch::manual_seed(4);
    let mut loaded = i3d::build(&file.config(), Device::Cpu).unwrap();
    let loaded_vars = loaded.var_store().variables();
    for (name, t) in &vars {
        let diff = (t - &loaded_vars[name]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "{name} differs");
        // Loading keeps parameters trainable and buffers not.
        assert_eq!(
            t.requires_grad(),
            loaded_vars[name].requires_grad(),
            "{name}"
        );
    }
    let video = Tensor::rand([2, 8, 3, 64, 64], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| original.forward(&video, false)).unwrap();
    let b = tch::no_grad(|| loaded.forward(&video, false)).unwrap();
    assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
}

#[test]
fn pretrained_weights_of_the_wrong_shape_are_a_clear_error() {
    let (_, mut vars) = state(5);
    let file = TempFile::new("shape");
    let slot = vars
        .iter()
        .position(|(n, _)| n == "conv3d_1a.conv3d.weight")
        .unwrap();
    vars[slot].1 = Tensor::zeros([8, 3, 7, 7, 7], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&vars, &file.0).unwrap();
    let err = build_error(&file.config());
    assert!(err.contains("i3d pretrained weights"), "{err}");
    assert!(err.contains(&file.0.display().to_string()), "{err}");
    assert!(
        err.contains("`conv3d_1a.conv3d.weight`")
            && err.contains("[8, 3, 7, 7, 7] in the file")
            && err.contains("[8, 3, 3, 8, 8] in the model"),
        "{err}"
    );
}

#[test]
fn pretrained_weights_with_a_missing_name_are_a_clear_error() {
    let (_, mut vars) = state(6);
    let file = TempFile::new("missing");
    vars.retain(|(n, _)| n != "mixed_5c.b1b.bn.running_var");
    Tensor::write_safetensors(&vars, &file.0).unwrap();
    let err = build_error(&file.config());
    assert!(err.contains("i3d pretrained weights"), "{err}");
    assert!(
        err.contains("1 tensor(s) missing from the file: mixed_5c.b1b.bn.running_var"),
        "{err}"
    );
}

#[test]
fn pretrained_weights_with_an_unknown_name_are_a_clear_error() {
    let (_, mut vars) = state(7);
    let file = TempFile::new("extra");
    vars.push((
        "logits.conv3d.weight".into(),
        Tensor::zeros([4], (Kind::Float, Device::Cpu)),
    ));
    Tensor::write_safetensors(&vars, &file.0).unwrap();
    let err = build_error(&file.config());
    assert!(
        err.contains("not in the model: logits.conv3d.weight"),
        "{err}"
    );
}

#[test]
fn a_missing_pretrained_file_is_a_clear_error() {
    let file = TempFile::new("absent");
    let err = build_error(&file.config());
    assert!(
        err.contains("i3d pretrained weights") && err.contains("cannot read"),
        "{err}"
    );
}
