//! What a third party writing a backbone meets: the conformance kit's verdicts, `plugin info`,
//! plugin lookup, and `trajhost plugin new` scaffolding a crate that builds, tests, passes
//! `plugin check` and trains outside this repository.

mod common;

use common::{text, trajhost};

#[test]
fn a_trainable_tensor_outside_the_var_store_fails_the_kit() {
    let out = trajhost(
        &[
            "plugin",
            "check",
            "broken",
            "--config",
            "(fault: HiddenParameter)",
        ],
        &[],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("FAIL hidden parameters") && report.contains("outside the VarStore"),
        "{report}"
    );
    // (`broken` always holds an unused parameter, so its gradient check fails as well.)
    assert!(report.contains("2 of 8 checks failed"), "{report}");
}

#[test]
fn checks_that_need_the_output_shape_are_skipped_when_it_is_wrong() {
    let out = trajhost(
        &[
            "plugin",
            "check",
            "broken",
            "--config",
            "(fault: WrongShape)",
        ],
        &[],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert_eq!(
        report.matches("returned features of shape").count(),
        1,
        "the shape error is reported once: {report}"
    );
    assert!(report.contains("FAIL output shape"), "{report}");
    assert!(report.contains("skip finite output"), "{report}");
    assert!(
        report.contains("1 of 8 checks failed, 6 skipped"),
        "{report}"
    );
}

#[test]
fn plugin_info_reports_the_output_shape_of_a_probe_forward() {
    let out = trajhost(
        &[
            "plugin",
            "info",
            "template",
            "--config",
            "(feature_dim: 24)",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("output       [2, 16, 24] for input [2, 16, 3, 64, 64]"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_directory_is_not_a_plugin_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("r2plus1d");
    std::fs::create_dir(&folder).unwrap();
    let out = trajhost(&["plugin", "info", folder.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is a directory, not a plugin file"),
        "{}",
        text(&out)
    );
    // A bare name that is also a folder where trajhost runs: both are said.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .args(["plugin", "info", "r2plus1d"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("r2plus1d is a directory, not a plugin file")
            && said.contains("no plugin named 'r2plus1d'"),
        "{said}"
    );
}
