//! The training engine end to end on a tiny generated dataset and the template plugin.

mod common;

use common::{
    plugin, snapshot_settings, text, tiny_dataset, tiny_train_config, trajhost, workspace,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};
use trajhost::train::{self, checkpoint, Resume, TrainConfig, TrainOptions, TrainOutcome};

fn tiny_config() -> TrainConfig {
    tiny_train_config("validation.ron", 3)
}

fn options(out: &Path, config: TrainConfig) -> TrainOptions {
    TrainOptions {
        plugin: plugin("template"),
        data: tiny_dataset().to_path_buf(),
        config,
        out: out.to_path_buf(),
        resume: None,
        overwrite: false,
        device: Device::Cpu,
        stop_after_steps: None,
    }
}

/// A finished run's `validation_metrics.json`.
fn validation_metrics(run: &Path) -> train::outputs::FinalMetrics {
    serde_json::from_slice(&std::fs::read(run.join("validation_metrics.json")).unwrap()).unwrap()
}

fn tensors(checkpoint: &Path) -> HashMap<String, Tensor> {
    checkpoint::load(checkpoint).unwrap().tensors
}

fn final_checkpoint(run: &Path) -> PathBuf {
    run.join("checkpoints/epoch-0003.json")
}

#[test]
fn an_interrupted_and_resumed_run_ends_with_the_same_weights() {
    tch::set_num_threads(1);
    let straight = tempfile::tempdir().unwrap();
    let outcome = train::train(options(straight.path(), tiny_config())).unwrap();
    assert!(matches!(outcome, TrainOutcome::Finished { .. }));

    let resumed = tempfile::tempdir().unwrap();
    // About 51 training videos in batches of 8: step 8 lies inside epoch 2.
    let first = train::train(TrainOptions {
        stop_after_steps: Some(8),
        ..options(resumed.path(), tiny_config())
    })
    .unwrap();
    let TrainOutcome::Interrupted { checkpoint } = first else {
        panic!("the run stops early")
    };
    let name = checkpoint
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("epoch-0001-step-"), "{name}");
    let second = train::train(TrainOptions {
        resume: Some(Resume::Auto),
        ..options(resumed.path(), tiny_config())
    });
    assert!(matches!(second.unwrap(), TrainOutcome::Finished { .. }));

    let (a, b) = (
        tensors(&final_checkpoint(straight.path())),
        tensors(&final_checkpoint(resumed.path())),
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let diff = (t - &b[name]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{name} differs by {diff}");
    }
    let lines = |dir: &Path| {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        lines(resumed.path()),
        3,
        "one metrics line per epoch, none repeated"
    );
    assert_eq!(lines(straight.path()), 3);
}

#[test]
fn a_run_leaves_every_output_file_parseable() {
    let run = tempfile::tempdir().unwrap();
    train::train(options(run.path(), tiny_config())).unwrap();
    let dir = run.path();
    let progress = std::fs::read_to_string(dir.join("PROGRESS.txt")).unwrap();
    for field in [
        "run:",
        "phase: validation",
        "epoch: 3/3 (100.0%)",
        "classification_accuracy:",
        "prediction_mse:",
        "total_loss:",
        "elapsed:",
        "eta:",
        "last_update:",
    ] {
        assert!(
            progress.contains(field),
            "PROGRESS.txt lacks {field}:\n{progress}"
        );
    }
    let records = train::outputs::read_metrics(dir).unwrap();
    assert_eq!(
        records.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    assert!(
        log.contains("epoch 3/3") && log.contains("finished"),
        "{log}"
    );
    let final_metrics = validation_metrics(dir);
    assert_eq!(final_metrics.epochs_trained, 3);
    assert!(final_metrics.test.samples > 0 && final_metrics.parameter_count > 0);
    assert!(final_metrics.baselines.mean_position_mse > 0.0);
    assert!(checkpoint::load(&dir.join("checkpoints/best.json")).is_ok());
    let png = std::fs::read(dir.join("training_curves.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "training_curves.png is a PNG");
    let events = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("tfevents"))
        .unwrap();
    let scalars = train::tensorboard::read_scalars(&events).unwrap();
    let val_accuracy: Vec<i64> = scalars
        .iter()
        .filter(|(t, _, _)| t == "val/accuracy")
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(val_accuracy, [1, 2, 3]);
    // keep_checkpoints = 3 of the 3 epochs: all kept; nothing half-written lies around.
    let names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn metrics_of_a_fixed_tiny_run_snapshot() {
    tch::set_num_threads(1);
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config.epochs = 2;
    train::train(options(run.path(), config)).unwrap();
    let mut summary = String::new();
    for r in train::outputs::read_metrics(run.path()).unwrap() {
        summary += &format!(
            "epoch {}: train loss {:.2} acc {:.2} mse {:.3} | val loss {:.2} acc {:.2} mse {:.3}\n",
            r.epoch,
            r.train.loss,
            r.train.accuracy,
            r.train.mse,
            r.val.loss,
            r.val.accuracy,
            r.val.mse
        );
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("training_tiny_template_metrics", summary));
}

#[test]
fn a_checkpoint_of_another_plugin_or_architecture_is_refused() {
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config.epochs = 1;
    train::train(options(run.path(), config.clone())).unwrap();
    let saved = run.path().join("checkpoints/epoch-0001.json");

    let other = tempfile::tempdir().unwrap();
    let mut wider = config.clone();
    wider.backbone = "(channels: 12, feature_dim: 16)".into();
    let err = train::train(TrainOptions {
        resume: Some(Resume::Path(saved.clone())),
        ..options(other.path(), wider)
    })
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("does not fit this model's architecture"),
        "{err:#}"
    );

    let mut broken = config;
    broken.backbone = String::new();
    let err = train::train(TrainOptions {
        plugin: plugin("broken"),
        resume: Some(Resume::Path(saved)),
        ..options(other.path(), broken)
    })
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("was made for plugin 'template'"),
        "{err:#}"
    );
}

#[test]
fn a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint() {
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    // 7 training and 2 validation calls per epoch: the 10th call is the first of epoch 2.
    config.backbone = "(fault: NanAfter(9))".into();
    let err = train::train(TrainOptions {
        plugin: plugin("broken"),
        ..options(run.path(), config)
    })
    .err()
    .unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("loss became NaN at step 9"), "{message}");
    assert!(message.contains("epoch-0001.json"), "{message}");
    assert!(checkpoint::load(&run.path().join("checkpoints/epoch-0001.json")).is_ok());
}

#[test]
fn ctrl_c_through_the_real_binary_checkpoints_and_resume_finishes() {
    let run = tempfile::tempdir().unwrap();
    let out = run.path().join("run");
    let config = run.path().join("long.ron");
    let mut long = tiny_config();
    long.epochs = 200;
    std::fs::write(&config, ron::ser::to_string(&long).unwrap()).unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--plugin",
            "template",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--data",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(tiny_dataset().display().to_string());
        a.extend([
            "--config".into(),
            config.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .args(args(&[]))
        .current_dir(workspace())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it has trained an epoch, then interrupt it.
    let first = out.join("checkpoints/epoch-0001.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !first.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let finished = child.wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "exit 0 after Ctrl-C: {}",
        text(&finished)
    );
    assert!(
        text(&finished).contains("interrupted; checkpoint written"),
        "{}",
        text(&finished)
    );
    let newest = checkpoint::newest(&out).unwrap();
    let meta = checkpoint::load(&newest).unwrap().meta;
    assert!(meta.epoch >= 1 && meta.epoch < 200, "{meta:?}");

    // Resume and finish quickly: the config on the command line may shorten the run.
    let resumed_epochs = (meta.epoch + 1).to_string();
    let refs: Vec<String> = args(&["--resume", "auto", "--epochs", &resumed_epochs]);
    let refs: Vec<&str> = refs.iter().map(|s| s.as_str()).collect();
    let done = trajhost(&refs, &[]);
    assert!(done.status.success(), "{}", text(&done));
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    assert!(log.contains("resuming from"), "{log}");
    assert!(out.join("validation_metrics.json").exists());
}

#[test]
fn early_stopping_ends_the_run_and_says_so() {
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config.epochs = 5;
    // Nothing improves by 1e9, so the epoch after the first best is one too many.
    config.early_stopping = Some(train::config::EarlyStoppingConfig {
        metric: "val_loss".into(),
        patience: 1,
        min_delta: 1e9,
    });
    train::train(options(run.path(), config)).unwrap();
    let final_metrics = validation_metrics(run.path());
    assert_eq!(final_metrics.epochs_trained, 2);
    assert_eq!(
        final_metrics.stop_reason,
        train::outputs::StopReason::EarlyStopping
    );
}

#[test]
fn a_time_budget_ends_the_run_with_a_test_evaluation() {
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config.epochs = 50;
    config.time_budget_minutes = Some(0.0001);
    train::train(options(run.path(), config)).unwrap();
    let final_metrics = validation_metrics(run.path());
    assert_eq!(final_metrics.epochs_trained, 1);
    assert_eq!(
        final_metrics.stop_reason,
        train::outputs::StopReason::TimeBudget
    );
    assert!(run.path().join("checkpoints/epoch-0001.json").exists());
}
