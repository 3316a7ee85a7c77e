//! What a third party writing a backbone meets: the conformance kit's verdicts, `plugin info`,
//! plugin lookup, and `trajhost plugin new` scaffolding a crate that builds, tests, passes
//! `plugin check` and trains outside this repository.

mod common;

use common::{
    args, assert_clean_failure, assert_contains_all, fails, plugin_check, succeeds, text,
    tiny_dataset, tiny_train_config, train_args, workspace,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// `plugin check broken` with `fault`: it must fail, its report naming every needle.
fn kit_fails(fault: &str, needles: &[&str]) -> String {
    let (passed, report) = plugin_check("broken", &format!("(fault: {fault})"));
    assert!(!passed, "{report}");
    assert_contains_all(&report, needles);
    report
}

#[test]
fn a_trainable_tensor_outside_the_var_store_fails_the_kit() {
    // (`broken` always holds an unused parameter, so its gradient check fails as well.)
    let needles = [
        "FAIL hidden parameters",
        "outside the VarStore",
        "2 of 9 checks failed",
    ];
    kit_fails("HiddenParameter", &needles);
}

#[test]
fn a_backbone_that_reads_memory_instead_of_values_fails_the_kit() {
    kit_fails(
        "ReadsMemoryOrder",
        &["FAIL any memory layout", "reshape, not view"],
    );
}

/// The kit probes with the values the host feeds (the range [-2, 2]), blank frames included: a
/// backbone that divides by its clip's spread (NaN on a blank clip) fails, naming the clip.
#[test]
fn a_backbone_that_breaks_on_a_blank_clip_fails_the_kit_naming_the_clip() {
    kit_fails(
        "NanOnBlank",
        &["FAIL finite output", "a black clip", "[-2, 2]"],
    );
}

#[test]
fn checks_that_need_the_output_shape_are_skipped_when_it_is_wrong() {
    let needles = [
        "FAIL output shape",
        "skip finite output",
        "1 of 9 checks failed, 7 skipped",
    ];
    let report = kit_fails("WrongShape", &needles);
    let reported = report.matches("returned features of shape").count();
    assert_eq!(reported, 1, "the shape error is reported once: {report}");
}

#[test]
fn plugin_info_reports_the_output_shape_of_a_probe_forward() {
    let info = succeeds(&[
        "plugin",
        "info",
        "template",
        "--config",
        "(feature_dim: 24)",
    ]);
    let shapes = [
        "output       [2, 16, 24] for input [2, 16, 3, 64, 64]",
        "input        (B, T, C, H, W), channel-major memory",
    ];
    assert_contains_all(&info, &shapes);
    let speed = info
        .lines()
        .find(|l| l.starts_with("speed"))
        .unwrap_or_else(|| panic!("no speed line: {info}"));
    let rate = |what: &str| -> f64 {
        speed
            .split(what)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what} rate in {speed}"))
    };
    assert!(
        rate("training ") > 0.0 && rate("inference ") > 0.0,
        "{speed}"
    );
}

#[test]
fn a_directory_is_not_a_plugin_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("r2plus1d");
    std::fs::create_dir(&folder).unwrap();
    let args = ["plugin", "info", folder.to_str().unwrap()];
    fails(&args, &["is a directory, not a plugin file"]);
    // A bare name that is also a folder where trajhost runs: both are said.
    let out = Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .args(["plugin", "info", "r2plus1d"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let needles = [
        "r2plus1d is a directory, not a plugin file",
        "no plugin named 'r2plus1d'",
    ];
    assert_clean_failure(&out, &needles);
}

/// The target folder the workspace builds into (where this test's trajhost binary lives).
fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_trajhost"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// `cargo ARGS --release --offline` in `dir`, sharing the workspace's target folder and its
/// settings, so that tch and torch-sys (minutes to compile) are reused, not rebuilt: the same
/// LIBTORCH string (torch-sys rebuilds when it changes) and the workspace's release profile.
fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(args)
        .args(["--release", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", workspace_target())
        .env("LIBTORCH", workspace().join(".libtorch"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
        .output()
        .expect("cargo runs")
}

/// Issue 17's proof: a third party's crate, scaffolded outside the workspace, builds, passes
/// its own `cargo test` (the conformance kit), `trajhost plugin check`, and trains.
#[test]
fn a_scaffolded_plugin_builds_tests_checks_and_trains_outside_the_workspace() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().starts_with(workspace()));
    let krate = dir.path().join("kitnet");
    succeeds(&args!["plugin", "new", "kitnet", "--out", krate]);
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("pub struct Kitnet") && lib.contains("TODO"),
        "{lib}"
    );
    // Its .libtorch is the libtorch this trajhost runs on.
    assert_eq!(
        krate.join(".libtorch").canonicalize().unwrap(),
        workspace().join(".libtorch").canonicalize().unwrap()
    );

    let build = cargo(&krate, &["build"]);
    assert!(build.status.success(), "{}", text(&build));
    let built = Instant::now();
    let test = cargo(&krate, &["test"]);
    assert!(test.status.success(), "{}", text(&test));
    assert!(
        text(&test).contains("passes_the_conformance_kit ... ok"),
        "{}",
        text(&test)
    );
    let tested = Instant::now();

    let plugin = workspace_target().join("release/libkitnet.so");
    let report = succeeds(&args!["plugin", "check", plugin]);
    assert_contains_all(
        &report,
        &["conformance of plugin 'kitnet'", "all 9 checks passed"],
    );

    // Two training steps: one epoch, the training split in two batches.
    let dataset = trajhost_dataset::Dataset::open(tiny_dataset()).unwrap();
    let videos = dataset.indices(trajhost_dataset::Split::Train).len();
    let mut config = tiny_train_config("validation.ron", 1);
    config.batch_size = videos.div_ceil(2);
    let config_file = dir.path().join("two-steps.ron");
    std::fs::write(&config_file, ron::ser::to_string(&config).unwrap()).unwrap();
    let run = dir.path().join("run");
    succeeds(&train_args(
        plugin.to_str().unwrap(),
        &config_file,
        &run,
        &[],
    ));
    let checkpoint = std::fs::read_to_string(run.join("checkpoints/epoch-0001.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&checkpoint).unwrap();
    assert_eq!(meta["global_step"], 2, "{checkpoint}");
    assert_eq!(meta["plugin"]["name"], "kitnet", "{checkpoint}");
    let names = meta["model_tensors"].to_string();
    assert!(
        names.contains("backbone") && names.contains("stem_bn.running_mean"),
        "{names}"
    );
    eprintln!(
        "scaffolded plugin: build {:.1} s, cargo test {:.1} s, whole test {:.1} s",
        (built - started).as_secs_f64(),
        (tested - built).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
