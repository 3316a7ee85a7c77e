//! The Python package's second renderer of docs/dataset.md's spec (`trajhost.spec_renderer`,
//! issue 24's transfer test) writes a dataset that `trajhost data check` passes: its labels are
//! the spec's classes in the spec's frame (each trajectory fits its class's family), every ball
//! lies inside the image where its labels and intrinsics project it, and the pixel under each
//! ball centre is the ball's colour — the renderer's pixels and labels agree by trajhost's own
//! checks, so a model's score on it measures the model, not a mismatch.
//!
//! Needs the cached torch venv (`scripts/test` makes it).

#[path = "../../tests/common/python.rs"]
mod python;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_trajhost-data");

fn render(out: &Path, extra: &[&str]) -> std::process::Output {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python");
    Command::new(python::venv_python())
        .args(["-m", "trajhost.spec_renderer", "--out"])
        .arg(out)
        .args(extra)
        .env("PYTHONPATH", package)
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_second_renderers_videos_pass_data_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spec");
    // Two of each class.
    let rendered = render(&out, &["--samples", "8", "--seed", "3"]);
    assert!(rendered.status.success(), "{}", text(&rendered));
    let checked = Command::new(BIN).arg("check").arg(&out).output().unwrap();
    let report = text(&checked);
    assert!(checked.status.success(), "{report}");
    assert!(
        report.contains("checked 8 samples in 1 shards: all checks passed"),
        "{report}"
    );
    // An existing folder is refused, and left as it was.
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    let again = render(&out, &["--samples", "4"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists"), "{}", text(&again));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
}
