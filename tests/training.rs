//! The training engine end to end on a tiny generated dataset and the template plugin.

mod common;

use common::{
    assert_contains_all, generated, never_improving, plugin, snapshot_settings, succeeds, text,
    tiny_dataset, tiny_train_config, train_args, train_cli, workspace,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};
use trajhost::rundir::metrics::StopReason;
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
        accept_plugin_change: false,
    }
}

/// `train::train`, one at a time in this test process ([`drawing_randomly`]).
fn train_in_process(options: TrainOptions) -> anyhow::Result<TrainOutcome> {
    drawing_randomly(|| train::train(options))
}

/// `work` alone among this process's tests that draw from libtorch's random generator: it is
/// global, so a training that seeds it while another test draws from it (to initialise a model,
/// or for random input) changes the training's weights — and the tests that compare two runs'
/// weights would fail now and then.
fn drawing_randomly<T>(work: impl FnOnce() -> T) -> T {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    work()
}

/// A finished run's `validation_metrics.json`.
fn validation_metrics(run: &Path) -> trajhost::rundir::metrics::FinalMetrics {
    serde_json::from_slice(&std::fs::read(run.join("validation_metrics.json")).unwrap()).unwrap()
}

/// Trains with `options`, which must fail naming every needle; the error and its causes.
fn training_fails(options: TrainOptions, needles: &[&str]) -> String {
    let err = train_in_process(options).expect_err("training fails");
    let message = format!("{err:#}");
    assert_contains_all(&message, needles);
    message
}

/// Trains `config` into `run`: the epochs trained and why the run stopped.
fn trained_until_stop(run: &Path, config: TrainConfig) -> (usize, StopReason) {
    train_in_process(options(run, config)).unwrap();
    let final_metrics = validation_metrics(run);
    (final_metrics.epochs_trained, final_metrics.stop_reason)
}

fn tensors(checkpoint: &Path) -> HashMap<String, Tensor> {
    checkpoint::load(checkpoint).unwrap().tensors
}

fn final_checkpoint(run: &Path) -> PathBuf {
    run.join("checkpoints/epoch-0003.json")
}

#[test]
fn an_interrupted_and_resumed_run_ends_with_the_same_weights() {
    resumes_exactly(tiny_dataset(), tiny_config());
}

/// The pinhole position head (image position and size, lifted through the lens), the fovea
/// (the same, corrected at full resolution), the subtracted background and hue-free colour
/// train, checkpoint and resume like the defaults, and a run records what it was built with.
#[test]
fn a_run_of_another_head_or_input_resumes_exactly_and_records_it() {
    use trajhost::config::{Background, Colour, PositionHead};
    let pinhole = TrainConfig {
        position_head: PositionHead::Pinhole,
        ..tiny_config()
    };
    let fovea = TrainConfig {
        position_head: PositionHead::Fovea,
        fovea_passes: 2,
        ..tiny_config()
    };
    let subtracted = TrainConfig {
        background: Background::SubtractMedian,
        ..tiny_config()
    };
    let hue_free = TrainConfig {
        colour: Colour::HueFree,
        ..tiny_config()
    };
    for (config, named) in [
        (pinhole, "position_head Pinhole"),
        (fovea, "position_head Fovea"),
        (subtracted, "background SubtractMedian"),
        (hue_free, "colour hue_free"),
    ] {
        let run = resumes_exactly(tiny_dataset(), config.clone());
        let meta = checkpoint::load(&final_checkpoint(run.path()))
            .unwrap()
            .meta;
        let recorded = (
            meta.config.position_head,
            meta.config.fovea_passes,
            meta.config.background,
            meta.config.colour,
        );
        let asked = (
            config.position_head,
            config.fovea_passes,
            config.background,
            config.colour,
        );
        assert_eq!(recorded, asked, "{named}");
        // Resuming it with the defaults would give its tensors another meaning: refused.
        let Err(err) = train_in_process(TrainOptions {
            resume: Some(Resume::Auto),
            data: tiny_dataset().to_path_buf(),
            config: TrainConfig {
                epochs: 4,
                ..tiny_config()
            },
            ..options(run.path(), tiny_config())
        }) else {
            panic!("resumed without {named}")
        };
        assert!(format!("{err:#}").contains(named), "{err:#}");
    }
}

/// The tiny dataset's config, to render on the fly.
fn procedural_tiny(dir: &Path) -> PathBuf {
    let config = dir.join("tiny-data.ron");
    let mut text = trajhost_dataset::DEFAULT_CONFIG_RON.to_string();
    for (from, to) in [
        ("samples: 10000", "samples: 64"),
        ("frames: 32", "frames: 8"),
        ("width: 64", "width: 32"),
        ("height: 64", "height: 32"),
        ("checkpoint_interval: 2000", "checkpoint_interval: 16"),
        ("workers: 4", "workers: 2"),
    ] {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    let parsed = trajhost_dataset::DataConfig::from_ron(&text, "tiny").unwrap();
    assert_eq!(
        parsed,
        trajhost_dataset::DataConfig::tiny(),
        "the tiny dataset's config"
    );
    std::fs::write(&config, text).unwrap();
    PathBuf::from(format!("procedural:{}", config.display()))
}

#[test]
fn an_interrupted_and_resumed_procedural_run_ends_with_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    resumes_exactly(&procedural_tiny(dir.path()), tiny_config());
}

/// A PyTorch network (torchvision's mc3_18, random init), saved by the Python package's recipe,
/// passes the conformance kit, trains through the `torchscript` plugin and resumes exactly.
#[test]
fn a_torchvision_network_trains_through_the_torchscript_plugin_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("mc3_18.pt");
    let saved = std::process::Command::new(common::python::venv_python())
        .args([
            "-c",
            "import sys, trajhost.torchscript as ts\nts.save(ts.video_backbone('mc3_18'), sys.argv[1])",
        ])
        .arg(&module)
        .env("PYTHONPATH", workspace().join("python"))
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", text(&saved));
    let backbone = format!("(module: {:?})", module.to_str().unwrap());
    let report = succeeds(&["plugin", "check", "torchscript", "--config", &backbone]);
    assert!(report.contains("all 9 checks passed"), "{report}");
    let mut config = tiny_config();
    config.backbone = backbone;
    resumes_exactly_with(plugin("torchscript"), tiny_dataset(), config);
}

/// Trains straight through, and again interrupted mid-epoch and resumed: the same weights.
/// Returns the straight run.
fn resumes_exactly(data: &Path, config: TrainConfig) -> tempfile::TempDir {
    resumes_exactly_with(plugin("template"), data, config)
}

/// [`resumes_exactly`] with the plugin file `plugin`.
fn resumes_exactly_with(plugin: PathBuf, data: &Path, config: TrainConfig) -> tempfile::TempDir {
    tch::set_num_threads(1);
    let options = |out: &Path| TrainOptions {
        plugin: plugin.clone(),
        data: data.to_path_buf(),
        ..options(out, config.clone())
    };
    let straight = tempfile::tempdir().unwrap();
    let outcome = train_in_process(options(straight.path())).unwrap();
    assert!(matches!(outcome, TrainOutcome::Finished { .. }));

    let resumed = tempfile::tempdir().unwrap();
    // About 51 training videos in batches of 8: step 8 lies inside epoch 2.
    let first = train_in_process(TrainOptions {
        stop_after_steps: Some(8),
        accept_plugin_change: false,
        ..options(resumed.path())
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
    let second = train_in_process(TrainOptions {
        resume: Some(Resume::Auto),
        ..options(resumed.path())
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
    straight
}

#[test]
fn procedural_val_and_test_are_the_stored_videos_byte_for_byte_and_the_run_says_where_it_trained() {
    use trajhost::train::data::Videos;
    use trajhost::train::source::DataSource;
    let dir = tempfile::tempdir().unwrap();
    let spec = procedural_tiny(dir.path());
    let source = DataSource::parse(&spec).unwrap();
    let procedural = source.load(5, None).unwrap();
    let stored = DataSource::Stored(tiny_dataset().to_path_buf())
        .load(5, None)
        .unwrap();
    for (name, a, b) in [
        ("val", &procedural.val, &stored.val),
        ("test", &procedural.test, &stored.test),
    ] {
        assert!(a.all_videos().equal(&b.all_videos()), "{name} videos");
        assert!(
            a.target.equal(&b.target) && a.labels.equal(&b.labels),
            "{name} labels"
        );
    }
    assert!(procedural.train.target.equal(&stored.train.target));
    for (name, split) in [
        ("train", &procedural.train),
        ("val", &procedural.val),
        ("test", &procedural.test),
    ] {
        let held = match &split.videos {
            Videos::Held(t) => t.size()[0],
            Videos::Rendered(_) => 0,
        };
        assert_eq!(held, 0, "no {name} videos held in memory");
    }

    let run = dir.path().join("run");
    train_in_process(TrainOptions {
        data: spec,
        ..options(&run, tiny_config())
    })
    .unwrap();
    let data = validation_metrics(&run).data.unwrap();
    assert!(
        data.procedural && data.source.starts_with("procedural:/"),
        "{data:?}"
    );
    // 3 epochs of the stored split's size, every video a new one.
    assert_eq!(data.training_videos, 3 * stored.train.len() as u64);
    let stored_run = dir.path().join("stored");
    train_in_process(options(&stored_run, tiny_config())).unwrap();
    let stored_data = validation_metrics(&stored_run).data.unwrap();
    assert!(!stored_data.procedural);
    assert_eq!(stored_data.training_videos, stored.train.len() as u64);
}

#[test]
fn a_run_leaves_every_output_file_parseable() {
    let run = tempfile::tempdir().unwrap();
    train_in_process(options(run.path(), tiny_config())).unwrap();
    let dir = run.path();
    let progress = std::fs::read_to_string(dir.join("PROGRESS.txt")).unwrap();
    assert_contains_all(
        &progress,
        &[
            "run:",
            "phase: validation",
            "epoch: 3/3 (100.0%)",
            "classification_accuracy:",
            "prediction_mse:",
            "total_loss:",
            "elapsed:",
            "eta:",
            "last_update:",
        ],
    );
    let records = trajhost::rundir::metrics::read_history(dir).unwrap();
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
    // Every number of metrics.jsonl: per split, losses by term, accuracy per class, MSE per
    // axis; then lr, speed and time.
    let tags: std::collections::BTreeSet<&str> =
        scalars.iter().map(|(t, _, _)| t.as_str()).collect();
    for tag in [
        "train/loss/tracking",
        "val/loss/classification",
        "val/accuracy/helical",
        "val/mse/z",
        "train/mse/x",
        "lr",
        "speed/train_videos_per_second",
    ] {
        assert!(tags.contains(tag), "{tag} missing: {tags:?}");
    }
    assert!(tags.len() >= 29, "{} tags: {tags:?}", tags.len());
    assert!(
        !tags
            .iter()
            .any(|t| t.starts_with("_hparams_") || *t == "training_curves"),
        "only scalars: {tags:?}"
    );
    let bytes = std::fs::read(&events).unwrap();
    let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(holds(b"_hparams_/session_start_info") && holds(b"position_head"));
    assert!(holds(b"val/confusion") && holds(b"test/confusion") && holds(b"\x89PNG"));
    // The learning rate of every optimiser step, 1, 2, ...
    let steps: Vec<i64> = scalars
        .iter()
        .filter(|(t, _, _)| t == "lr/step")
        .map(|(_, s, _)| *s)
        .collect();
    assert!(
        steps.len() > 3 && steps.iter().copied().eq(1..=steps.len() as i64),
        "{steps:?}"
    );
    // The run's end: test metrics and baselines at the last epoch.
    let at_end: Vec<&(String, i64, f32)> = scalars
        .iter()
        .filter(|(t, _, _)| t == "test/accuracy" || t == "baselines/mean_position_mse")
        .collect();
    assert_eq!(at_end.len(), 2, "{at_end:?}");
    assert!(at_end.iter().all(|(_, step, _)| *step == 3), "{at_end:?}");
    assert!(
        (f64::from(at_end[0].2) - final_metrics.test.accuracy).abs() < 1e-6,
        "{at_end:?}"
    );
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
    train_in_process(options(run.path(), config)).unwrap();
    let mut summary = String::new();
    for r in trajhost::rundir::metrics::read_history(run.path()).unwrap() {
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
    train_in_process(options(run.path(), config.clone())).unwrap();
    let saved = run.path().join("checkpoints/epoch-0001.json");

    let other = tempfile::tempdir().unwrap();
    let mut wider = config.clone();
    wider.backbone = "(channels: 12, feature_dim: 16)".into();
    let wider = TrainOptions {
        resume: Some(Resume::Path(saved.clone())),
        ..options(other.path(), wider)
    };
    training_fails(
        wider,
        &["does not fit this model's architecture", "backbone config"],
    );

    // Clips of another length: the trajectory head's input differs, and the message says why.
    let longer = generated(&trajhost_dataset::DataConfig {
        frames: 12,
        ..trajhost_dataset::DataConfig::tiny()
    });
    let longer = TrainOptions {
        data: longer.path().to_path_buf(),
        resume: Some(Resume::Path(saved.clone())),
        ..options(other.path(), config.clone())
    };
    training_fails(longer, &["heads.trajectory_in", "`frames`"]);

    let mut broken = config;
    broken.backbone = String::new();
    let broken = TrainOptions {
        plugin: plugin("broken"),
        resume: Some(Resume::Path(saved)),
        ..options(other.path(), broken)
    };
    training_fails(broken, &["was made for plugin 'template'"]);
}

/// Without `--config`, `train` uses the shipped validation config from any folder (it looked
/// for `configs/validation.ron` under the current one).
#[test]
fn train_without_a_config_works_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .current_dir(dir.path())
        .args(["train", "--plugin"])
        .arg(plugin("template"))
        .arg("--data")
        .arg(tiny_dataset())
        .args(["--out", "run", "--epochs", "1", "--threads", "1"])
        .args(["--backbone", "(channels: 8, feature_dim: 16)"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let meta = checkpoint::load(&dir.path().join("run/checkpoints/epoch-0001.json"))
        .unwrap()
        .meta;
    let shipped = TrainConfig::load(&common::workspace().join("configs/validation.ron")).unwrap();
    assert_eq!(
        (meta.config.lr, meta.config.batch_size),
        (shipped.lr, shipped.batch_size)
    );
}

#[test]
fn a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint() {
    let run = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    // 7 training calls and 1 validation call per epoch: the 10th call is epoch 2's second
    // step, step 9.
    config.backbone = "(fault: NanAfter(9))".into();
    let options = TrainOptions {
        plugin: plugin("broken"),
        ..options(run.path(), config)
    };
    // The features went wrong first, so the plugin is named, not the loss.
    let needles = [
        "the backbone plugin 'broken' returned NaN or Inf features",
        "at step 9",
        "epoch-0001.json",
    ];
    training_fails(options, &needles);
    assert!(checkpoint::load(&run.path().join("checkpoints/epoch-0001.json")).is_ok());
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Child(Option<std::process::Child>);

impl Child {
    fn inner(&mut self) -> &mut std::process::Child {
        self.0.as_mut().unwrap()
    }

    fn signal(&mut self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.inner().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_train(plugin: &str, config: &Path, out: &Path) -> Child {
    Child(Some(
        std::process::Command::new(env!("CARGO_BIN_EXE_trajhost"))
            .args(train_args(plugin, config, out, &[]))
            .current_dir(workspace())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

/// The checkpoint files (JSON) of a run, by name.
fn checkpoint_names(run: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_same_tensors(a: &Path, b: &Path) {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(
        a.keys().collect::<std::collections::BTreeSet<_>>(),
        b.keys().collect::<std::collections::BTreeSet<_>>()
    );
    for (name, t) in &a {
        let diff = (t - &b[name]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{name} differs by {diff}");
    }
}

/// Signals a long `trajhost train` once it has finished an epoch; it must write a new step
/// checkpoint (not merely leave the epoch's) and exit 75 (interrupted, resumable), and resuming to the end of the next
/// epoch must give the weights of a run that was never interrupted.
fn signal_checkpoints_and_resume_matches_a_straight_run(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = dir.path().join("long.ron");
    let mut long = tiny_config();
    long.epochs = 200;
    // The learning rate then does not depend on `epochs`, which the resume below shortens.
    long.cosine = false;
    long.early_stopping = None;
    std::fs::write(&config, ron::ser::to_string(&long).unwrap()).unwrap();
    let mut child = spawn_train("template", &config, &out);
    let first = out.join("checkpoints/epoch-0001.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !first.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = checkpoint_names(&out);
    child.signal(name);
    let finished = child.wait_with_output();
    assert_eq!(
        finished.status.code(),
        Some(75),
        "exit 75 after SIG{name}: {}",
        text(&finished)
    );
    let said = text(&finished);
    let written = said
        .split("interrupted; checkpoint written: ")
        .nth(1)
        .and_then(|rest| rest.split(" (resume").next())
        .unwrap_or_else(|| panic!("no checkpoint named: {said}"));
    let written = PathBuf::from(written);
    let file = written.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !before.contains(&file),
        "{file} existed before the signal: {before:?}"
    );
    assert!(file.contains("-step-"), "a step checkpoint: {file}");
    assert!(checkpoint_names(&out).contains(&file));
    let meta = checkpoint::load(&written).unwrap().meta;
    assert!(meta.step_in_epoch > 0 && meta.epoch < 200, "{meta:?}");

    // Resume to the end of the interrupted epoch; the command line shortens the run.
    let epochs = (meta.epoch + 1).to_string();
    let done = train_cli(
        "template",
        &config,
        &out,
        &["--resume", "auto", "--epochs", &epochs],
    );
    assert!(done.status.success(), "{}", text(&done));
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    // Resumed from that step (a fresh start would also end with the straight run's weights).
    let resumed = format!(
        "resuming from {} at epoch {} step {}",
        written.display(),
        meta.epoch,
        meta.step_in_epoch
    );
    assert!(log.contains(&resumed), "{resumed}: {log}");
    let records = trajhost::rundir::metrics::read_history(&out).unwrap();
    assert_eq!(records.len(), meta.epoch + 1, "one metrics line per epoch");
    assert!(out.join("validation_metrics.json").exists());

    let straight = dir.path().join("straight");
    let done = train_cli("template", &config, &straight, &["--epochs", &epochs]);
    assert!(done.status.success(), "{}", text(&done));
    let last = format!("checkpoints/epoch-{:04}.json", meta.epoch + 1);
    assert_same_tensors(&out.join(&last), &straight.join(&last));
    assert_eq!(
        validation_metrics(&out).epochs_trained,
        validation_metrics(&straight).epochs_trained
    );
}

#[test]
fn ctrl_c_through_the_real_binary_checkpoints_and_resume_matches_a_straight_run() {
    signal_checkpoints_and_resume_matches_a_straight_run("INT");
}

#[test]
fn sigterm_through_the_real_binary_checkpoints_and_resume_matches_a_straight_run() {
    signal_checkpoints_and_resume_matches_a_straight_run("TERM");
}

#[test]
fn early_stopping_holds_across_a_resume() {
    let mut config = tiny_config();
    config.epochs = 10;
    // Nothing improves by 1e9: the best is epoch 1, and two epochs without improvement stop
    // the run after epoch 3, however it was interrupted on the way.
    config.early_stopping = never_improving(2);
    let straight = tempfile::tempdir().unwrap();
    let expected = trained_until_stop(straight.path(), config.clone());
    assert_eq!(expected, (3, StopReason::EarlyStopping));
    // 7 steps an epoch: step 10 is inside epoch 2, step 14 ends it, step 17 is inside epoch 3.
    for stops in [vec![10], vec![14], vec![10, 17]] {
        let run = tempfile::tempdir().unwrap();
        let mut resume = None;
        for &step in &stops {
            let outcome = train_in_process(TrainOptions {
                stop_after_steps: Some(step),
                accept_plugin_change: false,
                resume,
                ..options(run.path(), config.clone())
            })
            .unwrap();
            assert!(
                matches!(outcome, TrainOutcome::Interrupted { .. }),
                "{stops:?}"
            );
            resume = Some(Resume::Auto);
        }
        let outcome = train_in_process(TrainOptions {
            resume: Some(Resume::Auto),
            ..options(run.path(), config.clone())
        })
        .unwrap();
        assert!(
            matches!(outcome, TrainOutcome::Finished { .. }),
            "{stops:?}"
        );
        let got = validation_metrics(run.path());
        let got = (got.epochs_trained, got.stop_reason);
        assert_eq!(got, expected, "interrupted at steps {stops:?}");
        let epochs = trajhost::rundir::metrics::read_history(run.path()).unwrap();
        assert_eq!(epochs.len(), 3, "{stops:?}");
    }
}

/// kill -9 while the final test evaluation runs: after one epoch's training and validation
/// batches, the broken plugin's `HangAfter(n)` hangs in the next forward call, the first of
/// the test evaluation, and says so on stderr, so the kill lands there every time. Resuming
/// only redoes the evaluation: the weights and the epoch's metrics stay as they were.
#[test]
fn kill_9_during_the_final_evaluation_then_resume_only_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = dir.path().join("one.ron");
    let mut one = tiny_config();
    one.epochs = 1;
    let dataset = trajhost_dataset::Dataset::open(tiny_dataset()).unwrap();
    let batches = |split| dataset.indices(split).len().div_ceil(one.batch_size);
    let before_test =
        batches(trajhost_dataset::Split::Train) + batches(trajhost_dataset::Split::Val);
    one.backbone = format!("(fault: HangAfter({before_test}))");
    std::fs::write(&config, ron::ser::to_string(&one).unwrap()).unwrap();
    let mut child = spawn_train("broken", &config, &out);
    let stderr = child.inner().stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("hangs") {
            break;
        }
    }
    let hang = format!("broken: forward call {} hangs", before_test + 1);
    assert!(seen.contains(&hang), "{hang}: {seen}");
    child.signal("KILL");
    let status = child.wait_with_output().status;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!out.join("validation_metrics.json").exists());
    let checkpoint = out.join("checkpoints/epoch-0001.json");
    let before = std::fs::read(checkpoint.with_extension("safetensors")).unwrap();
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();

    // The resumed process counts forward calls from 0: it does not hang.
    let done = train_cli("broken", &config, &out, &["--resume", "auto"]);
    assert!(done.status.success(), "{}", text(&done));
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    assert!(
        log.contains("only the final evaluation is missing"),
        "{log}"
    );
    let finished = validation_metrics(&out);
    assert_eq!(finished.epochs_trained, 1);
    assert_eq!(
        std::fs::read(checkpoint.with_extension("safetensors")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(),
        metrics
    );
}

/// Early stopping and a time budget each end a run, checkpointed and evaluated, and say which.
#[test]
fn early_stopping_or_a_time_budget_ends_the_run_and_says_so() {
    // Nothing improves by 1e9, so the epoch after the first best is one too many.
    let early = TrainConfig {
        epochs: 5,
        early_stopping: never_improving(1),
        ..tiny_config()
    };
    // A budget that runs out in the first epoch.
    let budget = TrainConfig {
        epochs: 50,
        time_budget_minutes: Some(0.0001),
        ..tiny_config()
    };
    let cases = [
        (early, (2, StopReason::EarlyStopping)),
        (budget, (1, StopReason::TimeBudget)),
    ];
    for (config, expected) in cases {
        let run = tempfile::tempdir().unwrap();
        assert_eq!(trained_until_stop(run.path(), config), expected);
        let last = format!("checkpoints/epoch-{:04}.json", expected.0);
        assert!(run.path().join(&last).exists(), "{last} of {expected:?}");
    }
}

/// The template backbone (8 channels, 16 features) under `head`, for clips of 4 frames, input
/// kept as it is (its background and its colour).
fn small_model(head: trajhost::config::PositionHead) -> trajhost::train::model::UnifiedModel {
    let backbone = trajhost::plugin::Plugin::load(&plugin("template"))
        .unwrap()
        .build("(channels: 8, feature_dim: 16)", Device::Cpu)
        .unwrap();
    let keep = (
        trajhost::config::Background::Keep,
        trajhost::config::Colour::Rgb,
    );
    trajhost::train::model::UnifiedModel::new(backbone, 4, head, keep, Device::Cpu)
}

/// The fovea reads where the backbone's tracker points and passes no gradient back through
/// where it looked, so that tracker is trained on the true track as well: one training step's
/// loss reaches both the tracker and the fovea's correction.
#[test]
fn a_training_step_reaches_the_fovea_and_the_tracker_it_corrects() {
    drawing_randomly(a_training_step_reaches_the_fovea_and_the_tracker)
}

fn a_training_step_reaches_the_fovea_and_the_tracker() {
    use trajhost::config::{LossWeights, PositionHead};
    use trajhost::train::data::Batch;
    use trajhost::train::loss::compute_loss;
    use trajhost::train::pinhole::Lens;
    let mut model = small_model(PositionHead::Fovea);
    let float = (tch::Kind::Float, Device::Cpu);
    let lenses = Lens::table(&[Lens::from_fov(50.0, 32, 32); 2]);
    let batch = Batch {
        videos: Tensor::randn([2, 4, 3, 32, 32], float),
        labels: Tensor::from_slice(&[0i64, 1]),
        target: Tensor::randn([2, 3], float) * 0.3,
        track: Tensor::randn([2, 4, 3], float) * 0.3,
        lenses: lenses.shallow_clone(),
    };
    let outputs = model.forward(&batch.videos, &lenses, true).unwrap();
    let weights = LossWeights {
        classification: 1.0,
        prediction: 10.0,
        tracking: 10.0,
    };
    compute_loss(&outputs, &batch, weights).total.backward();
    let gradient = |name: &str| {
        let (_, tensor) = model
            .parameters()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        f64::try_from(tensor.grad().abs().sum(tch::Kind::Float)).unwrap()
    };
    for name in ["heads.tracker.weight", "heads.fovea_out.weight"] {
        assert!(gradient(name) > 0.0, "{name} gets no gradient");
    }
}

/// `fovea_passes` is an inference setting: a fovea that has learned something (its last layer
/// no longer zero) moves a second look's answer away from the first's in inference, while a
/// training step looks once whatever it says.
#[test]
fn the_fovea_looks_again_in_inference_only() {
    drawing_randomly(the_fovea_looks_again_in_inference_only_drawn)
}

fn the_fovea_looks_again_in_inference_only_drawn() {
    use trajhost::config::PositionHead;
    use trajhost::train::pinhole::Lens;
    let mut model = small_model(PositionHead::Fovea);
    let mut last_layer = model.heads.variables()["fovea_out.weight"].shallow_clone();
    tch::no_grad(|| last_layer.copy_(&(Tensor::randn_like(&last_layer) * 0.1)));
    let video = Tensor::randn([2, 4, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let lenses = Lens::table(&[Lens::from_fov(50.0, 32, 32); 2]);
    let mut track = |passes: usize, train: bool| {
        model.fovea_passes = passes;
        tch::no_grad(|| model.forward(&video, &lenses, train).unwrap().track)
    };
    let (once, twice) = (track(1, false), track(2, false));
    assert!(!twice.allclose(&once, 1e-4, 1e-5, false), "{once} {twice}");
    assert!(track(2, true).allclose(&track(1, true), 0.0, 0.0, false));
}

/// Mirror averaging (`eval --mirror-average`) makes the model mirror-symmetric: a clip's
/// left-right mirror image gets the clip's answer mirrored (x negated, the rest equal), with
/// either position head; the plain model, untrained, is not symmetric, so the averaging is what
/// makes it so.
#[test]
fn a_mirror_averaged_model_answers_a_mirrored_clip_with_the_mirrored_answer() {
    drawing_randomly(a_mirror_averaged_model_is_mirror_symmetric)
}

fn a_mirror_averaged_model_is_mirror_symmetric() {
    use trajhost::config::PositionHead;
    use trajhost::train::model::{Outputs, UnifiedModel};
    use trajhost::train::pinhole::Lens;
    let video = Tensor::randn([2, 4, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let mirror_image = video.flip([-1]);
    let lenses = Lens::table(&[Lens::from_fov(50.0, 32, 32), Lens::from_fov(40.0, 32, 32)]);
    let negate_x = Tensor::from_slice(&[-1.0f32, 1.0, 1.0]);
    let symmetric = |a: &Outputs, b: &Outputs| {
        b.logits.allclose(&a.logits, 1e-5, 1e-6, false)
            && b.position
                .allclose(&(&a.position * &negate_x), 1e-5, 1e-6, false)
            && b.track.allclose(&(&a.track * &negate_x), 1e-5, 1e-6, false)
    };
    for head in [
        PositionHead::Direct,
        PositionHead::Pinhole,
        PositionHead::Fovea,
    ] {
        let mut model = small_model(head);
        let answers = |model: &mut UnifiedModel| {
            tch::no_grad(|| {
                let a = model.forward(&video, &lenses, false).unwrap();
                let b = model.forward(&mirror_image, &lenses, false).unwrap();
                (a, b)
            })
        };
        let (a, b) = answers(&mut model);
        assert!(
            !symmetric(&a, &b),
            "{head:?}: the plain model is not symmetric"
        );
        model.mirror_average = true;
        let (a, b) = answers(&mut model);
        assert!(symmetric(&a, &b), "{head:?}: the averaged model is");
    }
}
