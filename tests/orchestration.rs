//! Sweeps, the validate-then-train pipeline, the gate, the comparison report, the monitor and
//! keepalive, end to end through the real binary on a tiny dataset and crafted run folders.

mod common;

use common::{
    args, assert_contains_all, final_metrics, snapshot_settings, split_metrics, succeeds, text,
    tiny_dataset, tiny_train_config, trajhost,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use trajhost::clock::utc_timestamp;
use trajhost::config::GateConfig;
use trajhost::gate::decide;
use trajhost::rundir::gate::GateDecision;
use trajhost::rundir::metrics::{read_history, EpochRecord, FinalMetrics, StopReason};
use trajhost::rundir::outcome::Status;
use trajhost::sweep::runner::SweepReport;
use trajhost::train::checkpoint;

/// The shipped configs cut down: 2 validation epochs, then the full phase to 3.
fn tiny_configs(dir: &Path) -> (PathBuf, PathBuf) {
    let validation = tiny_train_config("validation.ron", 2);
    let full = tiny_train_config("full.ron", 3);
    let paths = (dir.join("validation.ron"), dir.join("full.ron"));
    std::fs::write(&paths.0, ron::ser::to_string(&validation).unwrap()).unwrap();
    std::fs::write(&paths.1, ron::ser::to_string(&full).unwrap()).unwrap();
    paths
}

/// A sweep config over `runs` = (name, plugin, backbone).
fn sweep_config(dir: &Path, runs: &[(&str, &str, &str)], gate: &str) -> PathBuf {
    let (validation, full) = tiny_configs(dir);
    let runs: Vec<String> = runs
        .iter()
        .map(|(n, p, b)| format!("(name: {n:?}, plugin: {p:?}, backbone: Some({b:?}))"))
        .collect();
    let text = format!(
        "(data: {:?}, results: {:?}, validation_config: {:?}, full_config: {:?}, threads: Some(2), device: \"cpu\", gate: {gate}, runs: [{}])",
        tiny_dataset(),
        dir.join("results"),
        validation,
        full,
        runs.join(", ")
    );
    let path = dir.join("sweep.ron");
    std::fs::write(&path, text).unwrap();
    path
}

const TEMPLATE: &str = "(channels: 8, feature_dim: 16)";

/// The gate most sweeps here use: a tiny run passes it.
const USUAL_GATE: &str = "(min_accuracy: 0.7, max_mse: 0.1, require_val_loss_improving: true)";

/// A sweep of small template runs called `names`, behind the usual gate.
fn template_sweep(dir: &Path, names: &[&str]) -> PathBuf {
    let runs: Vec<(&str, &str, &str)> = names.iter().map(|n| (*n, "template", TEMPLATE)).collect();
    sweep_config(dir, &runs, USUAL_GATE)
}

fn run(args: &[impl AsRef<str>]) -> (bool, String) {
    let output = trajhost(args, &[]);
    (output.status.success(), text(&output))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_sweep_trains_runs_in_parallel_a_failing_run_does_not_stop_the_others_and_reruns_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_config(
        dir.path(),
        &[
            ("alpha", "template", TEMPLATE),
            ("nan", "broken", "(fault: NanAfter(0))"),
            ("beta", "template", TEMPLATE),
        ],
        USUAL_GATE,
    );
    let results = dir.path().join("results");
    let config = config.to_str().unwrap();
    let (ok, out) = run(&["sweep", config]);
    assert!(!ok, "a failed run makes the sweep exit non-zero:\n{out}");
    assert!(out.contains("nan failed (exit code 1)"), "{out}");
    assert!(
        out.contains("plugin 'broken' returned NaN or Inf features"),
        "the reason is shown:\n{out}"
    );
    let report: SweepReport = read_json(&results.join("sweep.json"));
    let statuses: Vec<(&str, Status)> = report
        .runs
        .iter()
        .map(|r| (r.name.as_str(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("alpha", Status::Finished),
            ("nan", Status::Failed),
            ("beta", Status::Finished)
        ]
    );
    // All three at once, 2 cores between them: at least one each.
    assert_eq!((report.parallel, report.threads), (3, 2));
    assert!(report.runs.iter().all(|r| r.threads == 1));
    for name in ["alpha", "beta"] {
        let metrics: FinalMetrics = read_json(&results.join(name).join("validation_metrics.json"));
        assert_eq!((metrics.run.as_str(), metrics.epochs_trained), (name, 2));
        assert!(results.join(name).join("train.out").is_file());
    }
    // The runs overlapped in time: each started before the other finished.
    let span = |name: &str| {
        let log = std::fs::read_to_string(results.join(name).join("run.log")).unwrap();
        let times: Vec<u64> = log
            .lines()
            .filter_map(|l| trajhost::clock::parse_utc_timestamp(l.get(1..20)?))
            .collect();
        (times[0], *times.last().unwrap())
    };
    let (a, b) = (span("alpha"), span("beta"));
    assert!(
        a.0 <= b.1 && b.0 <= a.1,
        "alpha {a:?} and beta {b:?} overlap"
    );

    // Again: finished runs are skipped; an unfinished one resumes from its checkpoint.
    std::fs::remove_file(results.join("alpha/validation_metrics.json")).unwrap();
    let (ok, out) = run(&["sweep", config]);
    assert!(!ok, "{out}");
    let report: SweepReport = read_json(&results.join("sweep.json"));
    let statuses: Vec<Status> = report.runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Status::Finished, Status::Failed, Status::Skipped]
    );
    let log = std::fs::read_to_string(results.join("alpha/run.log")).unwrap();
    assert!(log.contains("resuming from"), "{log}");
    assert!(log.contains("epoch-0002"), "{log}");
    assert_eq!(read_history(&results.join("alpha")).unwrap().len(), 2);

    // --only picks one run and leaves sweep.json alone.
    let (ok, out) = run(&["sweep", config, "--only", "beta"]);
    assert!(ok, "{out}");
    assert!(out.contains("skipped"), "{out}");
    let (ok, out) = run(&["sweep", config, "--only", "gamma"]);
    assert!(!ok && out.contains("no run named \"gamma\""), "{out}");
}

/// A sweep with `seeds` trains each run once per seed; `compare` pools them into means with
/// intervals and says which differences the seeds support.
#[test]
fn a_seeded_sweep_trains_every_seed_and_compare_pools_them() {
    let dir = tempfile::tempdir().unwrap();
    let narrow = "(channels: 4, feature_dim: 8)";
    let config = sweep_config(
        dir.path(),
        &[
            ("wide", "template", TEMPLATE),
            ("narrow", "template", narrow),
        ],
        USUAL_GATE,
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("runs: [", "seeds: [1, 2, 3], runs: ["),
    )
    .unwrap();
    let (ok, out) = run(&args!["sweep", config]);
    assert!(ok, "{out}");
    let results = dir.path().join("results");
    let report = results.join("comparison.md");
    let (ok, out) = run(&args!["compare", results, "--out", report]);
    assert!(ok, "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    for seed in 1..=3 {
        let metrics: trajhost::rundir::metrics::FinalMetrics =
            read_json(&results.join(format!("wide-seed{seed}/validation_metrics.json")));
        assert_eq!(metrics.seed, Some(seed));
    }
    let verdicts = md
        .lines()
        // Groups come in the runs' order: narrow-seed1 sorts first.
        .filter(|l| l.starts_with("- narrow − wide, "))
        .filter(|l| l.ends_with("**supported**") || l.ends_with("not supported by these seeds"))
        .count();
    assert_eq!(verdicts, 2, "accuracy and MSE, each with a verdict:\n{md}");
    let rows = [
        "## Over seeds",
        "| wide | template | validation | 1, 2, 3 |",
        "| narrow | template | validation | 1, 2, 3 |",
    ];
    assert_contains_all(&md, &rows);
}

#[test]
fn the_pipeline_gates_then_continues_only_passing_runs_in_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let pipeline_with = |gate: &str| {
        let config = sweep_config(dir.path(), &[("alpha", "template", TEMPLATE)], gate);
        run(&args!["pipeline", config])
    };
    // Nobody reaches 100% accuracy on 2 epochs of a tiny set: the gate stops the run.
    let (ok, out) =
        pipeline_with("(min_accuracy: 1.0, max_mse: 100.0, require_val_loss_improving: false)");
    assert!(ok, "a gate stop is not a failure:\n{out}");
    let gate: GateDecision = read_json(&results.join("alpha/gate.json"));
    assert!(!gate.passed);
    assert!(
        gate.reasons[0].starts_with("fail: validation accuracy"),
        "{:?}",
        gate.reasons
    );
    assert!(!results.join("alpha/final_metrics.json").exists());
    let pipeline: serde_json::Value = read_json(&results.join("pipeline.json"));
    assert!(pipeline["full"].is_null(), "{pipeline}");

    // A lenient gate: phase 1 is skipped (it finished), phase 2 resumes from epoch 2.
    let (ok, out) = pipeline_with(
        "(min_accuracy: -1.0, max_mse: 100.0, require_val_loss_improving: true, improving_window: 2)",
    );
    assert!(ok, "{out}");
    assert!(out.contains("phase 2 (full)"), "{out}");
    let gate: GateDecision = read_json(&results.join("alpha/gate.json"));
    assert!(gate.passed, "{:?}", gate.reasons);
    let full: FinalMetrics = read_json(&results.join("alpha/final_metrics.json"));
    assert_eq!((full.phase.as_str(), full.epochs_trained), ("full", 3));
    let phases: Vec<(usize, String)> = read_history(&results.join("alpha"))
        .unwrap()
        .into_iter()
        .map(|r| (r.epoch, r.phase))
        .collect();
    assert_eq!(
        phases,
        [
            (1, "validation".into()),
            (2, "validation".into()),
            (3, "full".into())
        ]
    );
    let log = std::fs::read_to_string(results.join("alpha/run.log")).unwrap();
    assert!(log.contains("epoch-0002.json at epoch 2"), "{log}");
    assert!(checkpoint::newest(&results.join("alpha"))
        .unwrap()
        .ends_with("epoch-0003.json"));
}

fn history(losses: &[f64]) -> Vec<EpochRecord> {
    losses
        .iter()
        .enumerate()
        .map(|(i, &l)| EpochRecord {
            epoch: i + 1,
            phase: "validation".into(),
            lr: 1e-3,
            train: split_metrics(0.5 + 0.04 * i as f64, 0.1, l * 0.9),
            val: split_metrics(0.45 + 0.04 * i as f64, 0.12, l),
            elapsed_seconds: 10.0 * (i + 1) as f64,
            train_videos_per_second: 100.0,
        })
        .collect()
}

#[test]
fn the_gate_decides_from_accuracy_mse_and_the_validation_loss_trend() {
    let config = GateConfig::default();
    let falling = history(&[1.0, 0.8, 0.7, 0.6, 0.55]);
    let good = final_metrics("a", "validation", 0.80, 0.05, 5);
    let d = decide(&config, &good, &falling);
    assert!(d.passed, "{:?}", d.reasons);
    assert_eq!(d.reasons.len(), 3);
    assert!(d.reasons.iter().all(|r| r.starts_with("pass:")));

    // val accuracy is test + 0.01 in these crafted metrics.
    let weak = final_metrics("a", "validation", 0.68, 0.05, 5);
    let d = decide(&config, &weak, &falling);
    assert!(!d.passed);
    assert_eq!(
        d.reasons[0],
        "fail: validation accuracy 69.0% is not above 70.0%"
    );
    let blurry = final_metrics("a", "validation", 0.80, 0.2, 5);
    let d = decide(&config, &blurry, &falling);
    assert!(!d.passed && d.reasons[1].starts_with("fail: validation prediction MSE 0.2200"));

    // Best at epoch 2, then worse for the last 3: no longer improving.
    let rising = history(&[1.0, 0.5, 0.6, 0.62, 0.61]);
    let d = decide(&config, &good, &rising);
    assert!(!d.passed);
    assert!(
        d.reasons[2]
            .starts_with("fail: validation loss no longer improving: best 0.5000 at epoch 2"),
        "{}",
        d.reasons[2]
    );
    // Level within 1% of the best counts as still improving...
    let level = history(&[1.0, 0.5, 0.503, 0.504, 0.502]);
    assert!(decide(&config, &good, &level).passed);
    // ...and the check can be switched off.
    let relaxed = GateConfig {
        require_val_loss_improving: false,
        ..GateConfig::default()
    };
    let d = decide(&relaxed, &good, &rising);
    assert!(d.passed && d.reasons.len() == 2);
    assert!(!decide(&config, &good, &[]).passed, "no history, no trend");
}

/// A crafted run folder with metrics, optionally a final phase (accuracy, MSE, why it ended)
/// and a gate decision.
fn crafted_run(root: &Path, name: &str, acc: f64, mse: f64, full: Option<(f64, f64, StopReason)>) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |file: &str, value: &dyn erased::Json| {
        std::fs::write(dir.join(file), value.json()).unwrap();
    };
    write(
        "validation_metrics.json",
        &final_metrics(name, "validation", acc, mse, 10),
    );
    let mut records = history(&[1.0, 0.8, 0.7, 0.65, 0.6]);
    if let Some((acc, mse, stop_reason)) = full {
        write(
            "final_metrics.json",
            &FinalMetrics {
                stop_reason,
                ..final_metrics(name, "full", acc, mse, 50)
            },
        );
        records.extend(history(&[0.5, 0.45]).into_iter().map(|mut r| {
            r.epoch += 5;
            r.phase = "full".into();
            r
        }));
    }
    let lines: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let metrics = final_metrics(name, "validation", acc, mse, 10);
    let decision = decide(&GateConfig::default(), &metrics, &records[..5]);
    write("gate.json", &decision);
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap()
        }
    }
}

#[test]
fn the_comparison_report_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    crafted_run(&results, "i3d", 0.62, 0.14, None);
    let magvit_full = (0.94, 0.031, StopReason::TimeBudget);
    crafted_run(&results, "magvit", 0.83, 0.06, Some(magvit_full));
    let slowfast_full = (0.88, 0.052, StopReason::EarlyStopping);
    crafted_run(&results, "slowfast", 0.78, 0.08, Some(slowfast_full));
    // A run still in its first epoch has a row too.
    std::fs::create_dir_all(results.join("transformer")).unwrap();
    std::fs::write(
        results.join("transformer/PROGRESS.txt"),
        "run: transformer\nphase: validation\nstatus: training\n",
    )
    .unwrap();
    std::fs::write(results.join("sweep.json"), "{}").unwrap();
    let out = results.join("comparison.md");
    let mut args = vec!["compare".to_string()];
    for entry in std::fs::read_dir(&results).unwrap() {
        args.push(entry.unwrap().path().display().to_string());
    }
    args.extend(["--out".into(), out.display().to_string()]);
    let (ok, log) = run(&args);
    assert!(ok, "{log}");
    let markdown = std::fs::read_to_string(&out).unwrap();
    let png = std::fs::read(results.join("comparison_curves.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    snapshot_settings().bind(|| insta::assert_snapshot!("comparison_report", markdown));

    let (ok, json) = run(&args!["compare", results, "--format", "json"]);
    assert!(ok, "{json}");
    let report: trajhost::compare::Report = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = report.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["i3d", "magvit", "slowfast", "transformer"]);
    let magvit = &report.runs[1];
    let ticks: Vec<Option<bool>> = magvit.checklist.iter().map(|c| c.passed).collect();
    assert_eq!(ticks, [Some(true), Some(true), Some(true), Some(true)]);
    let i3d: Vec<Option<bool>> = report.runs[0].checklist.iter().map(|c| c.passed).collect();
    assert_eq!(i3d, [Some(false), Some(false), None, None]);
}

#[test]
fn monitor_once_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let now = 1_800_000_000u64;
    let progress = |name: &str, status: &str, epoch: &str, eta: &str| {
        format!(
            "run: {name}\nphase: validation\nstatus: {status}\nepoch: {epoch}\nstep: 3/7\nclassification_accuracy: -\nprediction_mse: -\ntotal_loss: -\nelapsed: 1.0 min\neta: {eta}\nlast_update: {} UTC\n",
            utc_timestamp(now - 40)
        )
    };
    let make =
        |name: &str, status: &str, epoch: &str, eta: &str, silent_for: u64, epochs: &[f64]| {
            let d = results.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("PROGRESS.txt"), progress(name, status, epoch, eta)).unwrap();
            std::fs::write(
                d.join("run.log"),
                format!(
                    "[{}] start: plugin 'template'\n[{}] heartbeat: epoch 4/10 step 3/7\n",
                    utc_timestamp(now - 600),
                    utc_timestamp(now - silent_for)
                ),
            )
            .unwrap();
            let lines: String = history(epochs)
                .iter()
                .map(|r| serde_json::to_string(r).unwrap() + "\n")
                .collect();
            std::fs::write(d.join("metrics.jsonl"), lines).unwrap();
        };
    make(
        "magvit",
        "training",
        "4/10 (35.0%)",
        "6.5 min",
        12,
        &[1.0, 0.8, 0.7],
    );
    make("i3d", "training", "2/10 (12.5%)", "20.0 min", 1500, &[1.2]);
    make(
        "slowfast",
        "finished",
        "10/10 (100.0%)",
        "-",
        3600,
        &[1.0, 0.7, 0.5, 0.45],
    );
    std::fs::write(
        results.join("slowfast/gate.json"),
        serde_json::to_string(&decide(
            &GateConfig::default(),
            &final_metrics("slowfast", "validation", 0.8, 0.05, 4),
            &history(&[1.0, 0.7, 0.5, 0.45]),
        ))
        .unwrap(),
    )
    .unwrap();
    make("transformer", "training", "1/10 (0.0%)", "-", 300, &[]);
    std::fs::write(
        results.join("transformer/sweep_outcome.json"),
        serde_json::json!({
            "name": "transformer", "plugin": "transformer", "phase": "validation",
            "status": "failed", "exit": "exit code 1",
            "reason": "error: training stopped: the loss became NaN at step 1",
            "threads": 1, "seconds": 3.0, "output": "results/transformer/train.out",
            "finished_unix": now - 290
        })
        .to_string(),
    )
    .unwrap();
    let once = |columns: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trajhost"));
        command
            .args(["monitor", "results", "--once", "--now", &utc_timestamp(now)])
            .current_dir(dir.path())
            .env_remove("COLUMNS");
        if let Some(columns) = columns {
            command.env("COLUMNS", columns);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    // Not a terminal and no COLUMNS: 80 characters.
    let snapshot = once(None);
    assert!(
        snapshot.lines().all(|l| l.chars().count() <= 80),
        "{snapshot}"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("monitor_once", snapshot));
    let wide = once(Some("200"));
    assert_contains_all(&wide, &["PHASE", "PROGRESS", "VAL LOSS", "LAST HEARTBEAT"]);
    let narrow = once(Some("50"));
    assert!(narrow.lines().all(|l| l.chars().count() <= 50), "{narrow}");
}

fn keepalive(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trajhost"));
    c.arg("keepalive").args(args);
    c
}

#[test]
fn keepalive_streams_output_beats_and_passes_the_exit_code_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/keepalive.log");
    let output = keepalive(&[
        "--every",
        "100ms",
        "--log",
        log.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo hello; sleep 0.45; echo bye >&2; exit 3",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bye") && stderr.contains("heartbeat: running for"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let beats = log.lines().filter(|l| l.contains("] heartbeat:")).count();
    assert!(
        (2..=6).contains(&beats),
        "{beats} heartbeats in 0.45 s:\n{log}"
    );
    assert!(log.contains("hello\n") && log.contains("bye\n"), "{log}");
    assert!(log.contains("exit code 3"), "{log}");
    assert!(
        log.lines()
            .all(|l| !l.contains("heartbeat") || l.starts_with('[')),
        "heartbeats carry run.log's timestamps:\n{log}"
    );

    let ok = keepalive(&["--every", "1s", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn keepalive_says_when_its_log_cannot_be_written_and_refuses_a_flood_of_beats() {
    let output = keepalive(&["--log", "/dev/full", "--", "echo", "hello"])
        .output()
        .unwrap();
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cannot write the log /dev/full"),
        "{message}"
    );
    assert!(
        message.contains("hello"),
        "the command still ran: {message}"
    );
    let output = keepalive(&["--every", "1ns", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("--every 1ns is too short"),
        "{}",
        text(&output)
    );
}

fn alive(pid: i32) -> bool {
    // A zombie (no reaper in some containers) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Whether process `pid` is gone within `limit`, looking every 20 ms.
fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn keepalive_forwards_signals_and_cleans_up_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let child = keepalive(&["--every", "1s", "--grace", "2s", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let grandchild: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(alive(grandchild));
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no SIGKILL wait needed"
    );
    assert_eq!(output.status.code(), Some(128 + 15), "{}", text(&output));
    assert!(
        gone_within(grandchild, Duration::from_secs(3)),
        "the command's child {grandchild} was left running"
    );
}

#[test]
fn sweep_emits_a_slurm_job_array() {
    let dir = tempfile::tempdir().unwrap();
    let config = template_sweep(dir.path(), &["alpha", "beta"]);
    let script = dir.path().join("job.slurm");
    let (ok, out) = run(&args![
        "pipeline",
        config,
        "--emit",
        "slurm",
        "--emit-out",
        script,
        "--sbatch=--time=12:00:00"
    ]);
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&script).unwrap();
    for needle in [
        "#SBATCH --array=0-1",
        // threads: Some(2) split between the two runs, as the sweep runner splits it.
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --time=12:00:00",
        // B: signals the batch shell, which `exec` made trajhost; without it only job steps
        // (there are none) get the SIGTERM, and trajhost is killed without a checkpoint.
        "#SBATCH --signal=B:TERM@120",
        "runs=(alpha beta)",
        "pipeline",
        "--only \"$run\"",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(dir.path().join("results/slurm").is_dir());
    let status = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "the script parses");
}

/// A sweep of one template run `name` whose validation phase trains `epochs` epochs without
/// early stopping, a time budget or the cosine decay: a run that is still training when a
/// test stops it.
fn long_run_sweep(dir: &Path, name: &str, epochs: usize) -> PathBuf {
    let config = template_sweep(dir, &[name]);
    let mut long = tiny_train_config("validation.ron", epochs);
    (long.cosine, long.early_stopping, long.time_budget_minutes) = (false, None, None);
    std::fs::write(
        dir.join("validation.ron"),
        ron::ser::to_string(&long).unwrap(),
    )
    .unwrap();
    config
}

/// A task stopped by the time limit's SIGTERM (Slurm sends it to the batch shell, which the
/// script `exec`s into trajhost) checkpoints and exits 75, not 0: Slurm records the task as
/// failed rather than completed, and the log names the checkpoint it wrote.
#[test]
fn an_interrupted_slurm_task_checkpoints_and_does_not_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let config = long_run_sweep(dir.path(), "alpha", 200);
    let script = dir.path().join("job.slurm");
    let (config, out) = (config.to_str().unwrap(), script.to_str().unwrap());
    succeeds(&["sweep", config, "--emit", "slurm", "--emit-out", out]);
    let task = Command::new("bash")
        .arg(&script)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_CPUS_PER_TASK", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = dir.path().join("results/alpha");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join("checkpoints/epoch-0001.json").exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 2 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(task.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let finished = task.wait_with_output().unwrap();
    assert_eq!(
        finished.status.code(),
        Some(75),
        "the task's exit status: {}",
        text(&finished)
    );
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("interrupted after"))
        .unwrap_or_else(|| panic!("no interruption in the log:\n{log}"));
    let named = line
        .split("(checkpoint ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no checkpoint named: {line}"));
    assert!(run.join("checkpoints").join(named).is_file(), "{line}");
    let meta = checkpoint::load(&run.join("checkpoints").join(named))
        .unwrap()
        .meta;
    assert!(
        line.contains(&format!(
            "after {} epochs and {} steps",
            meta.epoch, meta.step_in_epoch
        )),
        "{line} vs {meta:?}"
    );
    let outcome: serde_json::Value = read_json(&run.join("sweep_outcome.json"));
    assert_eq!(outcome["status"], "interrupted", "{outcome}");
}

#[test]
fn slurm_tasks_ask_for_the_cores_a_run_would_get_and_the_submit_hint_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let config = template_sweep(dir.path(), &["alpha", "beta"]);
    // No `threads`: all of this machine's cores, split between the two runs (a fixed count
    // could ask a small node for more cores than it has, and never start).
    let ron = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, ron.replace("threads: Some(2)", "threads: None")).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    let script = dir.path().join("my job's script.slurm");
    let emit = |extra: &[&str]| {
        let mut args = vec![
            "sweep",
            config.to_str().unwrap(),
            "--emit",
            "slurm",
            "--emit-out",
            script.to_str().unwrap(),
        ];
        args.extend(extra);
        let hint = succeeds(&args);
        (hint, std::fs::read_to_string(&script).unwrap())
    };
    let (hint, job) = emit(&[]);
    let cpus = format!("#SBATCH --cpus-per-task={}\n", (cores / 2).max(1));
    assert!(job.contains(&cpus), "{cpus} missing:\n{job}");
    let (_, job) = emit(&["--threads", "8", "--max-parallel", "1"]);
    assert!(job.contains("#SBATCH --cpus-per-task=8\n"), "{job}");

    // The hint's command, run by a shell with `sbatch` replaced, names the script.
    let command = hint
        .split("submit it with: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no hint: {hint}"))
        .trim();
    let echoed = Command::new("bash")
        .arg("-c")
        .arg(format!("sbatch() {{ printf %s \"$1\"; }}; {command}"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout),
        script.to_str().unwrap(),
        "{hint}"
    );
}

/// The pid written in `run`'s lock file once a process holds it, waiting up to a minute.
fn lock_pid(run: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pid = std::fs::read_to_string(run.join(".lock"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if let Some(pid) = pid.filter(|p| alive(*p)) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no trainer locked {}",
            run.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_sweep_leaves_no_trainer_behind_and_a_rerun_leaves_a_live_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough to be killed while it trains.
    let config = long_run_sweep(dir.path(), "long", 10_000);
    let run_dir = dir.path().join("results/long");
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .args(["sweep", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let trainer = lock_pid(&run_dir);
    assert_ne!(trainer, sweep.id() as i32);
    // Training, not already stopping on its own.
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(trainer));
    sweep.kill().unwrap();
    sweep.wait().unwrap();
    assert!(
        gone_within(trainer, Duration::from_secs(60)),
        "the trainer (pid {trainer}) outlived its killed sweep by a minute"
    );

    // A run folder another process holds: the re-run says so, does not fail it, touches
    // nothing in it.
    let lock = trajhost::atomic::FolderLock::acquire(&run_dir).unwrap();
    let outcome_before = std::fs::read(run_dir.join("sweep_outcome.json")).ok();
    let (ok, out) = run(&args!["sweep", config]);
    drop(lock);
    assert!(!ok, "a run not trained is not a success:\n{out}");
    assert!(out.contains("in use by another trajhost process"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
    let report: SweepReport = read_json(&dir.path().join("results/sweep.json"));
    assert_eq!(report.runs[0].status, Status::Busy);
    assert_eq!(
        std::fs::read(run_dir.join("sweep_outcome.json")).ok(),
        outcome_before
    );
}
