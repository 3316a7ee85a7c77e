//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A built plugin; `scripts/build` (run by `scripts/test`) places them.
pub fn plugin(name: &str) -> PathBuf {
    let path = workspace().join("plugins").join(format!("lib{name}.so"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build first",
        path.display()
    );
    path
}

/// Runs the trajhost binary with `args` and extra environment variables.
pub fn trajhost(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trajhost"));
    command.args(args).current_dir(workspace());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("trajhost runs")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// insta settings that keep every snapshot in the workspace's `snapshots/` folder.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(workspace().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// A dataset generated from `config` into a new temp folder (two workers).
pub fn generated(config: &trajhost_dataset::DataConfig) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = trajhost_dataset::GenerateOptions {
        workers: 2,
        force: false,
    };
    trajhost_dataset::generate(config, dir.path(), &options).unwrap();
    dir
}

/// One tiny dataset per test binary: 64 videos of 8 frames at 32×32.
pub fn tiny_dataset() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| generated(&trajhost_dataset::DataConfig::tiny()))
        .path()
}

/// `trajhost train` arguments: `plugin` on the tiny dataset, CPU, one thread, `config` into
/// `out`, then `extra`.
pub fn train_args(plugin: &str, config: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--plugin",
        plugin,
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--data".into(),
        tiny_dataset().display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A shipped training config (`configs/<name>`) cut down for the tiny dataset: `epochs`,
/// batches of 8, at most 3 warm-up steps, a checkpoint every epoch, a small template backbone.
pub fn tiny_train_config(name: &str, epochs: usize) -> trajhost::train::TrainConfig {
    let text = std::fs::read_to_string(workspace().join("configs").join(name)).unwrap();
    let mut config = trajhost::train::TrainConfig::parse(&text, name).unwrap();
    config.epochs = epochs;
    config.batch_size = 8;
    config.warmup_steps = config.warmup_steps.min(3);
    config.checkpoint_interval = 1;
    config.backbone = "(channels: 8, feature_dim: 16)".into();
    config
}

/// Early stopping on a metric that never improves enough (min_delta 1e9): the first epoch is the
/// best, and the run stops `patience` epochs later.
pub fn never_improving(patience: usize) -> Option<trajhost::config::EarlyStoppingConfig> {
    Some(trajhost::config::EarlyStoppingConfig {
        metric: trajhost::config::Metric::ValLoss,
        patience,
        min_delta: 1e9,
    })
}
