//! The import rules of docs/architecture.md, checked on the source: readers of run folders do
//! not import the training engine, and the lower layers import nothing above them.

use std::path::{Path, PathBuf};

/// A module's files, in the host (`host/src`) or in `trajhost-runs` (`runs/src`), whose
/// modules the host re-exports under the same names.
fn sources(under: &str) -> Vec<PathBuf> {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = [host.join("src"), host.join("../runs/src")]
        .into_iter()
        .map(|src| src.join(under))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no module {under} in host/src or runs/src"));
    if root.is_file() {
        return vec![root];
    }
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Every `crate::<module>` a file names, outside comments.
fn imports(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // `trajhost_crate::` and the like are other crates.
            let before = code[..i].chars().next_back();
            if !module.is_empty() && !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                found.push(module);
            }
        }
    }
    found
}

fn assert_imports_none_of(modules: &[&str], forbidden: &[&str]) {
    let mut violations = Vec::new();
    for module in modules {
        for file in sources(module) {
            for import in imports(&file) {
                if forbidden.contains(&import.as_str()) {
                    violations.push(format!("{} imports crate::{import}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn readers_of_run_folders_do_not_import_the_training_engine() {
    assert_imports_none_of(
        &[
            "compare",
            "monitor",
            "sweep",
            "gate.rs",
            "pipeline.rs",
            "keepalive.rs",
            "serve",
        ],
        &["train"],
    );
}

#[test]
fn the_run_folder_protocol_and_the_configs_sit_below_everything_that_uses_them() {
    let above = [
        "train", "compare", "monitor", "sweep", "gate", "pipeline", "cli", "plugin", "curves",
        "serve",
    ];
    assert_imports_none_of(&["rundir"], &above);
    assert_imports_none_of(&["config", "clock.rs", "format.rs", "stop.rs"], &{
        let mut all = above.to_vec();
        all.push("rundir");
        all
    });
}

/// `trajhost-runs` links no libtorch (so `trajhost-serve` starts small): nothing in it names
/// tch or the plugin API, and its manifest does not depend on them.
#[test]
fn the_run_folder_crate_needs_no_libtorch() {
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runs");
    let manifest = std::fs::read_to_string(runs.join("Cargo.toml")).unwrap();
    for crate_name in ["tch", "torch-sys", "trajhost-plugin-api", "trajhost-build"] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(crate_name)),
            "runs/Cargo.toml depends on {crate_name}"
        );
    }
    for module in [
        "clock.rs",
        "format.rs",
        "config",
        "gate.rs",
        "rundir",
        "curves.rs",
        "monitor",
        "compare",
        "serve",
    ] {
        for file in sources(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains("tch::"), "{} names tch", file.display());
        }
    }
}

/// The dataset crate in layers — the spec (classes, limits, looks, the config), then
/// trajectories, the shifted test sets' configs, cameras and the pipeline's shape, rendering and storage, samples, the manifest
/// and the resource check, then generating, loading, checking and showing, and the CLI — each
/// module importing only from layers below its own (docs/architecture.md).
#[test]
fn the_dataset_crate_imports_only_downwards() {
    const LAYERS: &[&[&str]] = &[
        &["class", "limits", "appearance", "progress"],
        &["config"],
        &["trajectory", "split", "error", "pipeline", "shifts"],
        &["camera", "stream"],
        &["render", "shard", "validity"],
        &["sample"],
        &["manifest", "resources"],
        &["loader", "generate"],
        &["check", "export", "preview"],
        &["cli"],
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dataset/src");
    let layer_of = |module: &str| LAYERS.iter().position(|l| l.contains(&module));
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let file = entry.unwrap().path();
        let Some(module) = file.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if file.extension().is_none_or(|e| e != "rs") || module == "lib" {
            continue;
        }
        let own =
            layer_of(module).unwrap_or_else(|| panic!("{module}.rs has no layer in this test"));
        for import in imports(&file) {
            match layer_of(&import) {
                Some(layer) if layer < own => {}
                _ => violations.push(format!("{module} (layer {own}) imports crate::{import}")),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_rule_checker_sees_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "use crate::train::x;\n// crate::monitor in a comment\nlet a = trajhost_crate::y; f(crate::rundir::z);\n",
    )
    .unwrap();
    assert_eq!(imports(&file), ["train", "rundir"]);
}
