//! The plugin boundary: loading, refusing, calling, and sharing tensors with plugins.

mod common;

use common::{assert_contains_all, plugin, plugin_check, snapshot_settings, text, trajhost};
use tch::{Device, Kind, Tensor};
use trajhost::plugin::Plugin;

/// The template plugin's default model, loaded through the ABI.
fn template_model() -> trajhost::plugin::PluginBackbone {
    Plugin::load(&plugin("template"))
        .unwrap()
        .build("", Device::Cpu)
        .unwrap()
}

/// The message of the `broken` plugin built with `fault`, run forward on a random `shape`.
fn broken_forward_error(fault: &str, shape: &[i64]) -> String {
    Plugin::load(&plugin("broken"))
        .unwrap()
        .build(&format!("(fault: {fault})"), Device::Cpu)
        .unwrap()
        .forward(&video(shape), false)
        .unwrap_err()
        .to_string()
}

fn video(shape: &[i64]) -> Tensor {
    Tensor::rand(shape, (Kind::Float, Device::Cpu))
}

#[test]
fn two_plugins_in_one_process_stay_distinct() {
    let template = Plugin::load(&plugin("template")).unwrap();
    let broken = Plugin::load(&plugin("broken")).unwrap();
    assert_eq!(template.name(), "template");
    assert_eq!(broken.name(), "broken");
    let a = template.build("(feature_dim: 24)", Device::Cpu).unwrap();
    let b = broken.build("(feature_dim: 5)", Device::Cpu).unwrap();
    assert_eq!((a.feature_dim(), b.feature_dim()), (24, 5));
    // Loading the first path again still gives the first plugin, not a cached other one.
    assert_eq!(
        Plugin::load(&plugin("template")).unwrap().name(),
        "template"
    );
}

#[test]
fn a_wrong_input_shape_is_an_error_naming_plugin_and_shape_and_the_host_lives_on() {
    let mut model = template_model();
    let err = model
        .forward(&video(&[2, 16, 64, 64]), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin 'template'") && err.contains("[2, 16, 64, 64]"),
        "{err}"
    );
    // One channel where the stem expects three: libtorch itself raises inside the plugin.
    let err = model
        .forward(&video(&[2, 4, 1, 64, 64]), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin 'template'") && err.contains("[2, 4, 1, 64, 64]"),
        "{err}"
    );
    let features = model.forward(&video(&[2, 4, 3, 64, 64]), false).unwrap();
    assert_eq!(features.size(), [2, 4, 64]);
}

#[test]
fn a_panic_inside_a_plugin_comes_back_as_an_error() {
    let err = broken_forward_error("Panic", &[1, 2, 3, 8, 8]);
    assert!(
        err.contains("plugin 'broken'") && err.contains("panicked"),
        "{err}"
    );
    assert!(err.contains("cannot be multiplied"), "{err}");
    assert!(!err.contains("frame #"), "the C++ backtrace is cut: {err}");
}

/// Issue 11, item 18: `feature_dim`, `parameters` and `buffers` return no error through the
/// ABI; a panic behind them aborted the host. Now it is an error of `build`.
#[test]
fn a_panic_in_feature_dim_or_var_store_is_an_error_and_the_host_lives_on() {
    let plugin = Plugin::load(&plugin("broken")).unwrap();
    for (fault, needle) in [
        ("PanicInFeatureDim", "feature_dim panics on purpose"),
        ("PanicInVarStore", "var_store panics on purpose"),
    ] {
        match plugin.build(&format!("(fault: {fault})"), Device::Cpu) {
            Ok(model) => {
                // Before the fix, these aborted the test process.
                let calls = (
                    model.feature_dim(),
                    model.parameters().len(),
                    model.buffers().len(),
                );
                panic!("{fault}: built, and the calls returned {calls:?}");
            }
            Err(e) => {
                let err = e.to_string();
                assert!(
                    err.contains("plugin 'broken'")
                        && err.contains("panicked")
                        && err.contains(needle),
                    "{fault}: {err}"
                );
            }
        }
    }
    let model = plugin.build("", Device::Cpu).unwrap();
    assert_eq!((model.feature_dim(), model.parameters().len()), (8, 3));
}

#[test]
fn a_wrong_output_shape_is_refused_by_the_host() {
    let err = broken_forward_error("WrongShape", &[2, 3, 3, 8, 8]);
    assert_contains_all(&err, &["returned features of shape [2, 8]", "[2, 3, 8]"]);
}

#[test]
fn a_bad_config_is_an_error_naming_the_plugin() {
    let template = Plugin::load(&plugin("template")).unwrap();
    let err = template
        .build("(chanels: 3)", Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert_contains_all(&err, &["plugin 'template'", "chanels"]);
}

#[test]
fn parameters_share_storage_and_receive_gradients_from_the_host() {
    let mut model = template_model();
    let x = video(&[2, 4, 3, 32, 32]);
    let before = model.forward(&x, false).unwrap();
    let (name, mut bias) = model
        .parameters()
        .into_iter()
        .find(|(n, _)| n == "head.bias")
        .unwrap();
    tch::no_grad(|| {
        let _ = bias.f_add_scalar_(1.0).unwrap();
    });
    let after = model.forward(&x, false).unwrap();
    let shift = (&after - &before).mean(Kind::Float).double_value(&[]);
    assert!(
        (shift - 1.0).abs() < 1e-5,
        "{name} edited by the host moves the output: {shift}"
    );

    model.forward(&x, true).unwrap().sum(Kind::Float).backward();
    for (name, p) in model.parameters() {
        assert!(p.grad().defined(), "{name} has a gradient");
    }
}

/// Resident memory in kB, from /proc.
fn resident_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ten_thousand_forward_calls_do_not_grow_resident_memory() {
    // Resident memory is the whole process's, and this binary's other tests run on other
    // threads: the calls are counted in a process of their own (this test, run again alone).
    const ALONE: &str = "TRAJHOST_TEST_RSS_ALONE";
    if std::env::var_os(ALONE).is_none() {
        let name = "ten_thousand_forward_calls_do_not_grow_resident_memory";
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let shown = text(&output);
        assert!(output.status.success(), "{shown}");
        assert!(
            shown.contains("1 passed"),
            "the test did not run alone: {shown}"
        );
        return;
    }
    let mut model = template_model();
    let x = video(&[1, 2, 3, 8, 8]);
    let call = |model: &mut trajhost::plugin::PluginBackbone| {
        let features = tch::no_grad(|| model.forward(&x, false)).unwrap();
        let _ = model.parameters();
        features
    };
    for _ in 0..500 {
        let _ = call(&mut model); // warm up libtorch's allocator caches
    }
    let start = resident_kb();
    for _ in 0..10_000 {
        let _ = call(&mut model);
    }
    let grown = resident_kb() - start;
    // A leaked handle per call would cost ≥ 10,000 × (tensor + at::Tensor) ≫ 4 MB.
    assert!(
        grown < 4_096,
        "resident memory grew by {grown} kB over 10,000 calls"
    );
}

#[test]
fn incompatible_plugins_are_refused_with_expected_and_found() {
    let broken = plugin("broken");
    let broken = broken.to_str().unwrap();
    let version = trajhost_plugin_api::PLUGIN_API_VERSION;
    let old_api = format!(
        "built for plugin-api version {}, but this host expects version {version}",
        version - 1
    );
    let cases = [
        ("old-api", old_api.as_str()),
        (
            "other-libtorch",
            "built against tch 0.25 / libtorch 2.12.0, but this host uses tch 0.26 / libtorch",
        ),
        (
            "bad-magic",
            "is not a trajhost plugin: its stamp is malformed",
        ),
    ];
    for (forgery, expected) in cases {
        let out = trajhost(
            &["plugin", "info", broken],
            &[("TRAJHOST_BROKEN_STAMP", forgery)],
        );
        assert!(!out.status.success(), "{forgery} is refused");
        assert!(text(&out).contains(expected), "{forgery}: {}", text(&out));
    }
}

#[test]
fn files_that_are_not_plugins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let not_elf = dir.path().join("libnotes.so");
    std::fs::write(&not_elf, "just text").unwrap();
    let no_stamp = common::workspace().join(".libtorch/lib/libc10.so");
    let cases = [
        (
            not_elf.to_str().unwrap().to_string(),
            "is not a trajhost plugin: not an ELF shared library",
        ),
        (
            no_stamp.to_str().unwrap().to_string(),
            "exports no `trajhost_plugin_stamp`",
        ),
        (
            "missing/libghost.so".to_string(),
            "plugin file not found: missing/libghost.so",
        ),
        ("ghost".to_string(), "no plugin named 'ghost'"),
    ];
    for (path, expected) in cases {
        let out = trajhost(&["plugin", "info", &path], &[]);
        assert!(!out.status.success(), "{path} is refused");
        assert!(text(&out).contains(expected), "{path}: {}", text(&out));
    }
}

#[test]
fn plugin_check_passes_the_template_and_fails_a_wrong_output_shape() {
    let (passed, report) = plugin_check("template", "");
    assert!(passed && report.contains("all 9 checks passed"), "{report}");
    let (passed, report) = plugin_check("broken", "(fault: WrongShape)");
    assert!(!passed && report.contains("FAIL output shape"), "{report}");
    let (passed, report) = plugin_check("broken", "(fault: DeadParameter)");
    assert!(
        !passed && report.contains("no gradient reaches unused"),
        "{report}"
    );
}

#[test]
fn template_parameters_snapshot() {
    let mut model = template_model();
    let mut listing = String::new();
    for (name, t) in model.parameters() {
        listing += &format!("param  {name:<24} {:?}\n", t.size());
    }
    for (name, t) in model.buffers() {
        listing += &format!("buffer {name:<24} {:?}\n", t.size());
    }
    listing += &format!("total parameters: {}\n", model.parameter_count());
    let features = tch::no_grad(|| model.forward(&video(&[2, 16, 3, 64, 64]), false)).unwrap();
    listing += &format!("features for (2, 16, 3, 64, 64): {:?}\n", features.size());
    snapshot_settings().bind(|| insta::assert_snapshot!("template_parameters", listing));
}
