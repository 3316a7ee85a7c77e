//! Nothing a user types can destroy a run (issue 11): special files as `--out`, file modes,
//! reusing, locking and resuming run folders, damaged checkpoints, bad numbers. Through the
//! real binary, on the tiny dataset and the template plugin.

mod common;

use common::{
    args, assert_clean_failure, assert_contains_all, copy, edit_checkpoints, fails,
    never_improving, plugin, set_intrinsic, succeeds, text, tiny_dataset, tiny_train_config,
    train_args, train_cli, trajhost, workspace,
};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use trajhost::train::{self, TrainConfig, TrainOptions, TrainOutcome};

fn write_config(dir: &Path, name: &str, config: &TrainConfig) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, ron::ser::to_string(config).unwrap()).unwrap();
    path
}

/// The tiny validation config: 2 epochs, a checkpoint after each, all kept.
fn two_epochs() -> TrainConfig {
    let mut config = tiny_train_config("validation.ron", 2);
    config.keep_checkpoints = 5;
    config
}

/// One finished 2-epoch run (made through the binary under umask 022), shared; tests that
/// change a run work on a copy.
fn finished_run() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), "two.ron", &two_epochs());
        let output = train_cli("template", &config, &dir.path().join("run"), &[]);
        assert!(output.status.success(), "{}", text(&output));
        dir
    })
    .path()
}

/// A copy of the shared finished run (`run/`) and its config (`two.ron`) in a new folder; the
/// folder and the run in it.
fn copy_of_finished_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for entry in ["run", "two.ron"] {
        copy(&finished_run().join(entry), dir.path());
    }
    let run = dir.path().join("run");
    (dir, run)
}

/// Resumes the copy of the finished run in `dir` for a third epoch, which must be refused,
/// naming every needle.
fn refused_resume(dir: &Path, needles: &[&str]) {
    let (run, config) = (dir.join("run"), dir.join("two.ron"));
    let output = train_cli(
        "template",
        &config,
        &run,
        &["--resume", "auto", "--epochs", "3"],
    );
    assert_clean_failure(&output, needles);
}

/// A copy of the shared tiny dataset at `to`, for tests that change or guard it.
fn copy_of_tiny_dataset(to: &Path) {
    copy(tiny_dataset(), to);
}

/// Every file under `dir` (relative path → bytes), but run.log and the lock.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("run.log") && !path.ends_with(".lock") {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                found.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A reader of a FIFO that does not block, so a writer can open it.
fn fifo_reader(path: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

fn read_available(file: &mut std::fs::File) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// Item 1: `--out` on a device, a FIFO, a directory.

#[test]
fn compare_out_on_a_device_or_fifo_writes_in_place_and_nothing_beside_it() {
    let run = finished_run().join("run");
    let run = run.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A private twin of /dev/null (char 1:3) where this runs as root; harmless to write to.
    let null = dir.path().join("null");
    let c = std::ffi::CString::new(null.as_os_str().as_encoded_bytes()).unwrap();
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made == 0 {
        succeeds(&args!["compare", run, "--out", null]);
        let kind = std::fs::metadata(&null).unwrap().file_type();
        assert!(kind.is_char_device(), "{null:?} is no longer a device");
        assert!(!dir.path().join("null_curves.png").exists());
    } else {
        eprintln!("mknod needs root; the character-device case is skipped");
    }

    let pipe = dir.path().join("pipe");
    mkfifo(&pipe);
    let mut reader = fifo_reader(&pipe);
    succeeds(&args!["compare", run, "--out", pipe]);
    assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
    assert!(read_available(&mut reader).contains("| run"));
    assert!(!dir.path().join("pipe_curves.png").exists());

    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    fails(
        &args!["compare", run, "--out", sub],
        &[sub.to_str().unwrap(), "directory"],
    );
    assert!(sub.is_dir() && std::fs::read_dir(&sub).unwrap().count() == 0);
    assert!(!dir.path().join("sub_curves.png").exists());

    // A regular path: the report and its curves beside it, readable by everyone.
    let report = dir.path().join("report.md");
    succeeds(&args!["compare", run, "--out", report]);
    assert_eq!(mode(&report), 0o644);
    assert_eq!(mode(&dir.path().join("report_curves.png")), 0o644);
}

#[test]
fn data_preview_out_on_a_fifo_writes_no_contact_sheet_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe");
    mkfifo(&pipe);
    // Drains the GIF as it comes (more than a pipe holds).
    let reading = pipe.clone();
    let reader = std::thread::spawn(move || std::fs::read(reading).unwrap().len());
    succeeds(&args!["data", "preview", tiny_dataset(), "--out", pipe]);
    assert!(reader.join().unwrap() > 0, "the GIF went through the pipe");
    assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
    assert!(
        !dir.path().join("pipe.png").exists(),
        "a sheet beside a FIFO"
    );
}

#[test]
fn sweep_emit_out_keeps_a_fifo_and_a_script_gets_an_executable_mode() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "v.ron", &two_epochs());
    let sweep = dir.path().join("sweep.ron");
    std::fs::write(
        &sweep,
        format!(
            "(data: {:?}, results: {:?}, validation_config: {config:?}, full_config: {config:?}, runs: [(name: \"a\", plugin: \"template\")])",
            tiny_dataset(),
            dir.path().join("results"),
        ),
    )
    .unwrap();
    let sweep = sweep.to_str().unwrap();
    let pipe = dir.path().join("pipe");
    mkfifo(&pipe);
    let mut reader = fifo_reader(&pipe);
    let emit = |out: &Path| {
        let out = out.to_str().unwrap();
        succeeds(&["sweep", sweep, "--emit", "slurm", "--emit-out", out]);
    };
    emit(&pipe);
    let meta = std::fs::metadata(&pipe).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
    assert_eq!(meta.permissions().mode() & 0o777, 0o644, "the FIFO's mode");
    assert!(read_available(&mut reader).contains("#SBATCH"));

    let script = dir.path().join("job.slurm");
    emit(&script);
    assert_eq!(mode(&script), 0o755);
}

// Item 15: modes.

#[test]
fn every_file_of_a_run_is_readable_by_group_and_others() {
    let run = finished_run().join("run");
    let mut stack = vec![run.clone()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o644, "{}", path.display());
                checked += 1;
            }
        }
    }
    for file in [
        "PROGRESS.txt",
        "metrics.jsonl",
        "validation_metrics.json",
        "training_curves.png",
        "checkpoints/best.json",
        "checkpoints/best.safetensors",
        "checkpoints/epoch-0002.json",
        "checkpoints/epoch-0002.safetensors",
    ] {
        assert!(run.join(file).is_file(), "{file}");
    }
    assert!(checked >= 8);
}

#[test]
fn a_generated_dataset_is_readable_by_group_and_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = workspace().join("configs/data.ron");
    let output = generate(&config, &data, &["--samples", "16"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut checked = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o644, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "manifest, progress and a shard");
}

// Item 2: a folder holding a run is not silently replaced.

#[test]
fn train_refuses_a_folder_holding_a_run_unless_resume_or_overwrite() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    let before = contents(&run);
    let output = train_cli("template", &config, &run, &[]);
    assert_clean_failure(
        &output,
        &[run.to_str().unwrap(), "--resume auto", "--overwrite"],
    );
    assert_eq!(contents(&run), before, "the refused run changed the folder");

    // A file as --out: refused, untouched.
    let file = run.join("metrics.jsonl");
    let output = train_cli("template", &config, &file, &["--overwrite"]);
    assert_clean_failure(&output, &[file.to_str().unwrap(), "not a folder"]);
    assert_eq!(contents(&run), before);

    let output = train_cli(
        "template",
        &config,
        &run,
        &["--overwrite", "--resume", "auto"],
    );
    assert_clean_failure(&output, &["--overwrite"]);

    // --overwrite starts over: no metrics, checkpoints or log of the old run remain.
    let output = train_cli("template", &config, &run, &["--overwrite", "--epochs", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1, "{metrics}");
    assert!(!run.join("checkpoints/epoch-0002.json").exists());
    assert!(run.join("checkpoints/epoch-0001.json").exists());
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert_eq!(log.matches("] start:").count(), 1, "{log}");
}

// Item 3: one process per run folder.

#[test]
fn a_train_into_a_locked_folder_names_the_holder_and_touches_nothing() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    let before = contents(&run);
    // Hold the lock as another trajhost would.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(run.join(".lock"))
        .unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    std::fs::write(run.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    let pid = format!("pid {}", std::process::id());
    for extra in [&["--resume", "auto"][..], &["--overwrite"][..]] {
        let output = train_cli("template", &config, &run, extra);
        assert_clean_failure(&output, &[run.to_str().unwrap(), &pid]);
        assert_eq!(contents(&run), before, "{extra:?} changed a locked folder");
    }
    drop(lock);
}

// Item 4: a finished run stays finished.

#[test]
fn a_finished_run_resumed_says_so_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Early stopping: nothing improves by 1e9, so epoch 2 is the last.
    let mut early = two_epochs();
    early.epochs = 6;
    early.early_stopping = never_improving(1);
    // A time budget that runs out in the first epoch.
    let mut budget = two_epochs();
    budget.epochs = 6;
    budget.time_budget_minutes = Some(0.0001);
    for (name, config, epochs) in [("early", early, 2), ("budget", budget, 1)] {
        let config = write_config(dir.path(), &format!("{name}.ron"), &config);
        let run = dir.path().join(name);
        let output = train_cli("template", &config, &run, &[]);
        assert!(output.status.success(), "{}", text(&output));
        let before = contents(&run);
        let output = train_cli("template", &config, &run, &["--resume", "auto"]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("already finished"),
            "{}",
            text(&output)
        );
        assert_eq!(contents(&run), before, "{name}: resuming changed the run");
        let last = format!("checkpoints/epoch-{epochs:04}.json");
        assert!(run.join(last).exists(), "{name}");
    }

    // Killed after the last checkpoint, before the final metrics: resuming only evaluates.
    let run = dir.path().join("early");
    let original = std::fs::read(run.join("validation_metrics.json")).unwrap();
    std::fs::remove_file(run.join("validation_metrics.json")).unwrap();
    let metrics = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let output = train_cli(
        "template",
        &dir.path().join("early.ron"),
        &run,
        &["--resume", "auto"],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), metrics);
    assert!(!run.join("checkpoints/epoch-0003.json").exists());
    let parse =
        |b: &[u8]| serde_json::from_slice::<trajhost::rundir::metrics::FinalMetrics>(b).unwrap();
    let (old, new) = (
        parse(&original),
        parse(&std::fs::read(run.join("validation_metrics.json")).unwrap()),
    );
    assert_eq!(new.epochs_trained, 2);
    assert_eq!(
        new.stop_reason,
        trajhost::rundir::metrics::StopReason::EarlyStopping
    );
    assert_eq!(new.test.accuracy, old.test.accuracy);
    assert!((new.test.mse - old.test.mse).abs() < 1e-9);
    assert_eq!(new.val, old.val);
}

// Item 5: resume from the newest checkpoint that is whole.

/// Overwrites the start of a safetensors header (its JSON) with garbage, keeping the size.
fn damage_header(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[8..24].copy_from_slice(b"garbage garbage!");
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn resume_auto_skips_a_damaged_newest_checkpoint_for_an_older_good_one() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    std::fs::remove_file(run.join("validation_metrics.json")).unwrap();
    damage_header(&run.join("checkpoints/epoch-0002.safetensors"));
    let output = train_cli("template", &config, &run, &["--resume", "auto"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("epoch-0002"), "{}", text(&output));
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("epoch-0001.json at epoch 1"), "{log}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    assert!(run.join("validation_metrics.json").exists());
}

#[test]
fn resume_auto_refuses_when_no_checkpoint_is_readable_naming_each() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    std::fs::write(run.join("checkpoints/epoch-0001.json"), "{ truncated").unwrap();
    damage_header(&run.join("checkpoints/epoch-0002.safetensors"));
    let before = contents(&run);
    let output = train_cli("template", &config, &run, &["--resume", "auto"]);
    assert_clean_failure(&output, &["epoch-0001.json", "epoch-0002"]);
    assert_eq!(contents(&run), before, "a refused resume changed the run");
}

/// `dir/run`: the tiny two-epoch run (in-process), interrupted after `steps` steps.
fn interrupted_run(dir: &Path, steps: i64) -> PathBuf {
    let run = dir.join("run");
    let outcome = train::train(TrainOptions {
        plugin: plugin("template"),
        data: tiny_dataset().to_path_buf(),
        config: two_epochs(),
        out: run.clone(),
        resume: None,
        overwrite: false,
        device: tch::Device::Cpu,
        stop_after_steps: Some(steps),
        accept_plugin_change: false,
    })
    .unwrap();
    assert!(matches!(outcome, TrainOutcome::Interrupted { .. }));
    run
}

// Item 6: a different batch size cannot continue a partial epoch.

#[test]
fn a_different_batch_size_cannot_resume_mid_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let run = interrupted_run(dir.path(), 3);
    let before = contents(&run);
    let mut bigger = two_epochs();
    bigger.batch_size = 16;
    let config = write_config(dir.path(), "bigger.ron", &bigger);
    let output = train_cli("template", &config, &run, &["--resume", "auto"]);
    assert_clean_failure(&output, &["batch_size", "8", "16", "epoch-0000-step-0003"]);
    assert_eq!(contents(&run), before);
}

// Item 10: a checkpoint without a head tensor.

#[test]
fn a_checkpoint_missing_a_head_tensor_is_an_error_naming_it() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    let json = run.join("checkpoints/epoch-0001.json");
    let tensors = run.join("checkpoints/epoch-0001.safetensors");
    let mut saved = tch::Tensor::read_safetensors(&tensors).unwrap();
    let missing = saved
        .iter()
        .map(|(n, _)| n.clone())
        .find(|n| n.starts_with("heads."))
        .unwrap();
    saved.retain(|(n, _)| *n != missing);
    tch::Tensor::write_safetensors(&saved, &tensors).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let bytes = std::fs::read(&tensors).unwrap();
    meta["tensors_bytes"] = bytes.len().into();
    meta["tensors_sha256"] = trajhost_dataset::shard::sha256_hex(&bytes).into();
    std::fs::write(&json, serde_json::to_vec(&meta).unwrap()).unwrap();
    let output = train_cli(
        "template",
        &config,
        &run,
        &["--resume", json.to_str().unwrap()],
    );
    assert_clean_failure(&output, &["epoch-0001", &missing]);
}

/// A dataset from someone else whose shard gives a sample a K that is no lens (its hash
/// recorded, so the shard loads): training refuses it naming the dataset, the sample and its
/// intrinsics, before a NaN depth reaches the loss.
#[test]
fn a_dataset_sample_whose_intrinsics_are_no_lens_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_of_tiny_dataset(&data);
    let manifest_path = data.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let shard = data.join(manifest["shards"][0]["file"].as_str().unwrap());
    // Sample 3's principal point cx at 0: every focal length ÷ 0.
    set_intrinsic(&shard, 3, 2, 0.0);
    let bytes = std::fs::read(&shard).unwrap();
    manifest["shards"][0]["sha256"] = trajhost_dataset::shard::sha256_hex(&bytes).into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let config = write_config(dir.path(), "two.ron", &two_epochs());
    let mut args = train_args("template", &config, &dir.path().join("run"), &[]);
    let at = args.iter().position(|a| a == "--data").unwrap();
    args[at + 1] = data.display().to_string();
    fails(&args, &["data", "sample 3", "intrinsics"]);
}

// Item 19: temp files of a killed write.

#[test]
fn stray_temp_files_are_removed_when_a_run_starts() {
    let (dir, run) = copy_of_finished_run();
    let config = dir.path().join("two.ron");
    let strays = [
        ".tmpAbC123",
        "checkpoints/.tmpXyZ789.safetensors",
        "checkpoints/.epoch-0003.safetensors.tmp",
        "training_curves.tmp.png",
    ];
    for stray in strays {
        std::fs::write(run.join(stray), "half a file").unwrap();
    }
    let output = train_cli("template", &config, &run, &["--resume", "auto"]);
    assert!(output.status.success(), "{}", text(&output));
    for stray in strays {
        assert!(!run.join(stray).exists(), "{stray} is still there");
    }
}

#[test]
fn a_metrics_line_cut_short_by_a_kill_does_not_block_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    // Stopped in epoch 2, with epoch 1's line written...
    let run = interrupted_run(dir.path(), 9);
    // ...and then killed half-way through appending the next one (or out of disk there).
    let metrics = run.join("metrics.jsonl");
    let whole = std::fs::read_to_string(&metrics).unwrap();
    let line = whole.lines().next().unwrap();
    std::fs::write(&metrics, format!("{whole}{}", &line[..line.len() / 2])).unwrap();
    let config = write_config(dir.path(), "two.ron", &two_epochs());
    let output = train_cli("template", &config, &run, &["--resume", "auto"]);
    assert!(output.status.success(), "{}", text(&output));
    let epochs: Vec<usize> = trajhost::rundir::metrics::read_history(&run)
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, [1, 2]);
}

#[test]
fn fifos_named_like_run_files_do_not_hang_the_readers() {
    // One at a time, so that the folder still reads as a run through its other files.
    for file in [
        "PROGRESS.txt",
        "metrics.jsonl",
        "validation_metrics.json",
        "run.log",
    ] {
        let (dir, run) = copy_of_finished_run();
        std::fs::remove_file(run.join(file)).unwrap();
        mkfifo(&run.join(file));
        let run = run.to_str().unwrap();
        let results = dir.path().to_str().unwrap();
        for args in [vec!["monitor", results, "--once"], vec!["compare", run]] {
            // Nobody writes into the FIFO: a reader that opens it blocking waits forever.
            let mut child = Command::new(env!("CARGO_BIN_EXE_trajhost"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("`trajhost {}` hangs on a FIFO named {file}", args.join(" "));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let output = child.wait_with_output().unwrap();
            if !output.status.success() {
                assert_clean_failure(&output, &[file]);
            }
        }
    }
}

// Item 7: thread counts.

#[test]
fn impossible_thread_counts_are_refused_with_a_message() {
    for threads in ["0", "-1", "100000", "many"] {
        fails(
            &[
                "train",
                "--plugin",
                "template",
                "--data",
                "nowhere",
                "--out",
                "nowhere",
                &format!("--threads={threads}"),
            ],
            &["--threads"],
        );
        for command in ["sweep", "pipeline"] {
            fails(
                &[command, "nowhere.ron", &format!("--threads={threads}")],
                &["--threads"],
            );
        }
    }
}

// Item 8: plugin files that are not whole ELF libraries for this machine.

/// `plugin info` of `bytes` written to `<dir>/<name>`.
fn plugin_info_of(dir: &Path, name: &str, bytes: &[u8]) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    trajhost(&args!["plugin", "info", path], &[])
}

#[test]
fn a_truncated_foreign_or_non_elf_plugin_is_refused_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    let library = std::fs::read(plugin("template")).unwrap();

    // Cut short, as an interrupted copy leaves it: dlopen died of SIGBUS.
    let output = plugin_info_of(dir.path(), "truncated.so", &library[..100_000]);
    assert_clean_failure(&output, &["truncated.so", "truncated"]);

    let output = plugin_info_of(dir.path(), "text.so", b"#!/bin/sh\necho not a library\n");
    assert_clean_failure(&output, &["text.so", "not an ELF"]);

    // Another architecture (e_machine, 2 bytes at 18): was "No such file or directory".
    let (other, other_name) = if cfg!(target_arch = "aarch64") {
        (62u16, "x86_64")
    } else {
        (183u16, "aarch64")
    };
    let mut foreign = library.clone();
    foreign[18..20].copy_from_slice(&other.to_le_bytes());
    let output = plugin_info_of(dir.path(), "foreign.so", &foreign);
    assert_clean_failure(&output, &["foreign.so", other_name, std::env::consts::ARCH]);

    // 32-bit (EI_CLASS at 4).
    let mut narrow = library.clone();
    narrow[4] = 1;
    let output = plugin_info_of(dir.path(), "narrow.so", &narrow);
    assert_clean_failure(&output, &["narrow.so", "32-bit"]);

    // A segment said to reach past the end of the file (the first program header's p_filesz).
    let mut long_segment = library.clone();
    let phoff = u64::from_le_bytes(library[32..40].try_into().unwrap()) as usize;
    let past_end = (library.len() as u64 * 2).to_le_bytes();
    long_segment[phoff + 32..phoff + 40].copy_from_slice(&past_end);
    let output = plugin_info_of(dir.path(), "long_segment.so", &long_segment);
    assert_clean_failure(&output, &["long_segment.so", "segment", "past the end"]);
}

// Item 9: sizes beyond the machine.

/// configs/data.ron with each `(from, to)` replaced, written to `<dir>/data.ron`.
fn data_config(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(workspace().join("configs/data.ron")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    let path = dir.join("data.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn generate(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "data",
        "generate",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    trajhost(&args, &[])
}

#[test]
fn data_generate_into_a_file_or_a_device_is_refused_as_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_config(dir.path(), &[]);
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let dangling = dir.path().join("gone");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    for out in [file.as_path(), Path::new("/dev/null"), dangling.as_path()] {
        let output = generate(&config, out, &["--samples", "10"]);
        let message = assert_clean_failure(&output, &[out.to_str().unwrap(), "not a folder"]);
        assert!(
            !message.contains("needs"),
            "said what it needs first: {message}"
        );
        assert!(!message.contains("os error"), "{message}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

#[test]
fn a_dataset_too_big_for_memory_or_disk_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    // Videos of 10^7 frames, 123 GB each (aborted on allocation once): past the clip limit.
    let config = data_config(dir.path(), &[("frames: 32,", "frames: 10000000,")]);
    let output = generate(&config, &out, &[]);
    assert_clean_failure(&output, &["data.ron:9", "frames", "1..=1024"]);
    // One shard of a billion videos: its labels alone are terabytes.
    let config = data_config(
        dir.path(),
        &[(
            "checkpoint_interval: 2000,",
            "checkpoint_interval: 1000000000,",
        )],
    );
    let output = generate(&config, &out, &["--samples", "1000000000"]);
    assert_clean_failure(&output, &["memory", "checkpoint_interval"]);
    // 10^12 videos of 400 kB: looped silently counting splits. The refusal names the folder,
    // the exact bytes needed and the bytes free.
    let config = data_config(dir.path(), &[]);
    let output = generate(&config, &out, &["--samples", "1000000000000"]);
    let cfg = trajhost_dataset::DataConfig {
        samples: 1_000_000_000_000,
        ..trajhost_dataset::DataConfig::default_config()
    };
    let needed = trajhost_dataset::resources::dataset_bytes(&cfg).unwrap();
    assert_clean_failure(
        &output,
        &[
            "disk",
            &out.display().to_string(),
            "samples",
            &format!("({needed} bytes)"),
            "bytes) is free",
        ],
    );
    // 2^62 frames: the sizes overflow 64 bits.
    let config = data_config(
        dir.path(),
        &[("frames: 32,", "frames: 4611686018427387904,")],
    );
    let output = generate(&config, &out, &[]);
    assert_clean_failure(&output, &["frames"]);
    // Nothing was written.
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(left.iter().all(|&n| n == 0), "{left:?}");
}

#[test]
fn a_million_workers_are_capped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let config = data_config(dir.path(), &[("workers: 4,", "workers: 1000000,")]);
    let output = generate(&config, &out, &["--samples", "8"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("workers"), "{}", text(&output));
    let output = generate(
        &config,
        &dir.path().join("again"),
        &["--samples", "8", "--workers", "1000000"],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("--workers"), "{}", text(&output));
}

// Item 12: `data check` and `train` agree about an edited manifest.

#[test]
fn data_check_and_train_both_refuse_a_manifest_missing_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_of_tiny_dataset(&data);
    let mut manifest = trajhost_dataset::Manifest::load(&data).unwrap();
    manifest.shards.remove(1);
    manifest.save(&data).unwrap();

    fails(
        &args!["data", "check", data],
        &["shard 1 is shard-00002.safetensors"],
    );
    let config = write_config(dir.path(), "two.ron", &two_epochs());
    let mut args = train_args("template", &config, &dir.path().join("run"), &[]);
    let at = args.iter().position(|a| a == "--data").unwrap() + 1;
    args[at] = data.display().to_string();
    fails(
        &args,
        &["manifest.json", "shard 1 is shard-00002.safetensors"],
    );
}

// Item 13: one unreadable run folder does not hide the others.

#[test]
fn compare_reports_the_readable_runs_and_lists_an_unreadable_one_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    for name in ["good", "bad_final", "bad_history"] {
        copy(&finished_run().join("run"), &results.join(name));
    }
    std::fs::write(
        results.join("bad_final/final_metrics.json"),
        "{\"phase\": \"fu",
    )
    .unwrap();
    std::fs::write(
        results.join("bad_history/metrics.jsonl"),
        "{\"epoch\": 1, \"va\n",
    )
    .unwrap();
    let root = results.to_str().unwrap();

    let output = trajhost(&["compare", root], &[]);
    assert!(output.status.success(), "{}", text(&output));
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(markdown.contains("| good | template |"), "{markdown}");
    assert!(markdown.contains("Unreadable run folders"), "{markdown}");
    assert_contains_all(
        &markdown,
        &[
            "bad_final",
            "final_metrics.json",
            "bad_history",
            "metrics.jsonl:1",
        ],
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 run folder(s) could not be read"));

    let json = succeeds(&["compare", root, "--format", "json"]);
    let report: trajhost::compare::Report = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = report.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["good"]);
    let unreadable: Vec<(&str, bool)> = report
        .unreadable
        .iter()
        .map(|u| (u.name.as_str(), u.reason.contains("metrics")))
        .collect();
    assert_eq!(unreadable, [("bad_final", true), ("bad_history", true)]);

    // With nothing readable there is no report, and the reasons are the error.
    fails(
        &args!["compare", results.join("bad_final")],
        &["bad_final", "final_metrics.json"],
    );
}

// A run folder from someone else: the plugin it names is a name, never a file to open.

/// `dir/file` built from the C `source` as a shared library.
fn shared_library(dir: &Path, file: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{file}.c"));
    std::fs::write(&c, source).unwrap();
    let library = dir.join(file);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&c)
        .status()
        .expect("a C compiler (cc) builds the test's library");
    assert!(status.success());
    library
}

/// A shared library whose initialiser writes `marker`: proof that it was opened.
fn library_that_reports_loading(dir: &Path, marker: &Path) -> PathBuf {
    let source = format!(
        "#include <stdio.h>\n__attribute__((constructor)) static void ran(void) {{ FILE *f = fopen({:?}, \"w\"); if (f) {{ fputs(\"ran\", f); fclose(f); }} }}\n",
        marker.to_str().unwrap()
    );
    shared_library(dir, "epoch-0002.so", &source)
}

#[test]
fn a_plugin_whose_stamp_is_data_is_refused_without_calling_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = shared_library(
        dir.path(),
        "libdata.so",
        "const char trajhost_plugin_stamp[64] = {1};\n",
    );
    fails(
        &args!["plugin", "info", data],
        &["libdata.so", "trajhost_plugin_stamp", "not a function"],
    );
    let none = shared_library(dir.path(), "libnone.so", "int other(void) { return 0; }\n");
    fails(
        &args!["plugin", "info", none],
        &["libnone.so", "exports no `trajhost_plugin_stamp`"],
    );
}

#[test]
fn a_plugin_path_recorded_in_a_run_folder_is_never_opened() {
    let (dir, run) = copy_of_finished_run();
    let marker = dir.path().join("opened");
    let library = library_that_reports_loading(&run.join("checkpoints"), &marker);
    let relative = library.strip_prefix(dir.path()).unwrap().to_str().unwrap();
    for recorded in [library.to_str().unwrap(), relative, "epoch-0002"] {
        // The bare name is looked up in the plugin folders only, not beside the checkpoint.
        edit_checkpoints(&run, |meta| meta["plugin"]["name"] = recorded.into());
        for command in [
            vec!["eval", "--run", run.to_str().unwrap()],
            vec!["predict", "--run", run.to_str().unwrap(), "clip.gif"],
        ] {
            let output = Command::new(env!("CARGO_BIN_EXE_trajhost"))
                .args(&command)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert_clean_failure(&output, &[recorded, "--plugin"]);
            assert!(!marker.exists(), "{command:?} opened {recorded}");
        }
    }
}

#[test]
fn another_build_of_the_plugin_is_refused_unless_accepted() {
    let (dir, run) = copy_of_finished_run();
    edit_checkpoints(&run, |meta| {
        meta["plugin"]["sha256"] = "0".repeat(64).into()
    });
    let run_arg = run.to_str().unwrap();
    fails(
        &["eval", "--run", run_arg],
        &["another build", "--accept-plugin-change", "0000"],
    );
    refused_resume(dir.path(), &["another build", "--accept-plugin-change"]);
    succeeds(&["eval", "--run", run_arg, "--accept-plugin-change"]);
}

#[test]
fn a_checkpoint_changed_after_it_was_written_is_refused_by_its_hash() {
    let (_dir, run) = copy_of_finished_run();
    let tensors = run.join("checkpoints/epoch-0002.safetensors");
    let mut bytes = std::fs::read(&tensors).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4096].fill(0xFF);
    std::fs::write(&tensors, &bytes).unwrap();
    let run_arg = run.to_str().unwrap();
    for command in [
        vec!["eval", "--run", run_arg],
        vec!["predict", "--run", run_arg, "clip.gif"],
    ] {
        fails(&command, &["epoch-0002", "damaged", "sha256"]);
    }
}

#[test]
fn a_checkpoint_whose_weights_give_nan_fails_eval_naming_plugin_and_checkpoint() {
    let (_dir, run) = copy_of_finished_run();
    let tensors = run.join("checkpoints/epoch-0002.safetensors");
    // Weights that are NaN but intact on disk: the checksum matches, the outputs cannot.
    let mut saved = tch::Tensor::read_safetensors(&tensors).unwrap();
    for (name, tensor) in saved.iter_mut() {
        if name.starts_with("heads.") {
            let _ = tensor.fill_(f64::NAN);
        }
    }
    tch::Tensor::write_safetensors(&saved, &tensors).unwrap();
    let bytes = std::fs::read(&tensors).unwrap();
    edit_checkpoints(&run, |meta| {
        if meta["tensors_file"] == "epoch-0002.safetensors" {
            meta["tensors_bytes"] = bytes.len().into();
            meta["tensors_sha256"] = trajhost_dataset::shard::sha256_hex(&bytes).into();
        }
    });
    fails(
        &args!["eval", "--run", run],
        &["template", "epoch-0002", "not finite"],
    );
}

#[test]
fn a_checkpoint_tensors_file_is_a_name_beside_it_never_a_path() {
    let (_dir, run) = copy_of_finished_run();
    for (file, bytes) in [("/dev/zero", 0), ("../../two.ron", 0), ("../run.log", 0)] {
        edit_checkpoints(&run, |meta| {
            meta["tensors_file"] = file.into();
            meta["tensors_bytes"] = bytes.into();
        });
        fails(&args!["eval", "--run", run], &[file]);
    }
}

/// A checkpoint's config is checked as a config file is: one asking for a billion looks of the
/// fovea (a loop per frame) or a negative learning rate is refused, naming the checkpoint and
/// field.
#[test]
fn a_checkpoint_whose_config_no_config_file_could_hold_is_refused() {
    let (_dir, run) = copy_of_finished_run();
    for (field, value, needle) in [
        (
            "fovea_passes",
            serde_json::json!(1_000_000_000u64),
            "1 to 4",
        ),
        ("lr", serde_json::json!(-1.0), "positive"),
    ] {
        edit_checkpoints(&run, |meta| {
            meta["config"]["position_head"] = "fovea".into();
            meta["config"]["fovea_passes"] = 1.into();
            meta["config"][field] = value.clone();
        });
        let run = run.to_str().unwrap();
        for command in [
            vec!["eval", "--run", run],
            vec!["predict", "--run", run, "clip.gif"],
        ] {
            fails(&command, &["epoch-0002", field, needle]);
        }
    }
}

// One rule for every output flag: nothing a command reads is written over.

#[test]
fn no_output_flag_writes_over_what_its_command_reads() {
    let (dir, run) = copy_of_finished_run();
    let data = dir.path().join("data");
    copy_of_tiny_dataset(&data);
    let clip = dir.path().join("clip.gif");
    std::fs::write(&clip, b"GIF89a").unwrap();
    let both = dir.path().join("x.json");
    let (before_run, before_data) = (contents(&run), contents(&data));
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let eval = |extra: &[String]| {
        let mut args = vec![
            "eval".into(),
            "--run".into(),
            path(&run),
            "--data".into(),
            path(&data),
        ];
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (
            eval(&["--predictions".into(), path(&data.join("manifest.json"))]),
            &["--predictions", "manifest.json", "is inside --data"],
        ),
        (
            eval(&[
                "--out".into(),
                path(&run.join("checkpoints/epoch-0002.json")),
            ]),
            &["--out", "epoch-0002.json", "the run folder"],
        ),
        (
            eval(&["--predictions".into(), path(&run.join("metrics.jsonl"))]),
            &["--predictions", "metrics.jsonl", "the run folder"],
        ),
        (
            eval(&[
                "--out".into(),
                path(&both),
                "--predictions".into(),
                path(&both),
            ]),
            &["--predictions", "--out", "same file"],
        ),
        (
            vec![
                "compare".into(),
                path(&run),
                "--out".into(),
                path(&run.join("metrics.jsonl")),
            ],
            &["--out", "metrics.jsonl", "run folder"],
        ),
        (
            vec![
                "predict".into(),
                "--run".into(),
                path(&run),
                path(&clip),
                "--overlay".into(),
                path(&clip),
            ],
            &["--overlay", "clip.gif", "is VIDEO"],
        ),
        (
            [
                "data",
                "export",
                &path(&data),
                "--index",
                "0",
                "--out",
                &path(&data.join("manifest.json")),
            ]
            .map(String::from)
            .to_vec(),
            &["--out", "manifest.json", "the dataset"],
        ),
        (
            [
                "data",
                "preview",
                &path(&data),
                "--out",
                &path(&data.join("preview.gif")),
            ]
            .map(String::from)
            .to_vec(),
            &["--out", "preview.gif", "the dataset"],
        ),
    ];
    for (args, needles) in cases {
        fails(&args, needles);
    }
    assert_eq!(contents(&run), before_run);
    assert_eq!(contents(&data), before_data);
    assert!(!both.exists());
}

/// A checkpoint whose `config.backbone` asks for a far larger model than its tensors: the
/// build is refused within a memory bound set by the recorded tensors, not carried out (here
/// 1.7 GB of convolution weights; a width of 10^5 asked for 19 GB before).
#[test]
fn a_checkpoint_asking_for_a_huge_backbone_is_refused_without_building_it() {
    let (_dir, run) = copy_of_finished_run();
    edit_checkpoints(&run, |meta| {
        meta["config"]["backbone"] = "(channels: 4000, feature_dim: 16)".into();
    });
    let start = std::time::Instant::now();
    let message = fails(
        &args!["eval", "--run", run],
        &["config.backbone", "(channels: 4000"],
    );
    assert!(message.contains("MiB"), "{message}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{message}"
    );
}

#[test]
fn eval_refuses_special_recorded_and_non_utf8_paths_before_the_work() {
    use std::os::unix::ffi::OsStrExt;
    let (dir, run) = copy_of_finished_run();
    let fifo = dir.path().join("epoch.json");
    mkfifo(&fifo);
    fails(
        &args!["eval", "--run", run, "--checkpoint", fifo],
        &["epoch.json", "is not a regular file"],
    );

    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"run-\xff"));
    std::fs::rename(&run, &odd).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_trajhost"))
        .arg("eval")
        .arg("--run")
        .arg(&odd)
        .output()
        .unwrap();
    assert_clean_failure(&output, &["--run", "is not valid UTF-8"]);
    std::fs::rename(&odd, &run).unwrap();

    // A checkpoint naming another file as its data config: refused unread, nothing echoed.
    edit_checkpoints(&run, |meta| meta["data"] = "procedural:/etc/passwd".into());
    let message = fails(
        &args!["eval", "--run", run],
        &["procedural:/etc/passwd", "must be a .ron file", "--data"],
    );
    assert!(!message.contains("root"), "{message}");
}

#[test]
fn a_config_that_is_a_device_or_fifo_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.ron");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.path().join("fifo.ron");
    mkfifo(&fifo);
    for config in [&zero, &fifo] {
        let spec = format!("procedural:{}", config.display());
        let out = dir.path().join("run");
        fails(
            &args!["train", "--plugin", "template", "--data", &spec, "--out", out],
            &[config.to_str().unwrap(), "not a regular file"],
        );
        let output = train_cli("template", config, &out, &[]);
        assert_clean_failure(&output, &[config.to_str().unwrap(), "not a regular file"]);
    }
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::symlink("/dev/zero", data.join("manifest.json")).unwrap();
    fails(
        &args!["data", "check", data],
        &["manifest.json", "not a regular file"],
    );
}

#[test]
fn a_run_that_fails_says_so_in_its_progress_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "two.ron", &two_epochs());
    let out = dir.path().join("run");
    let args = train_args(
        "broken",
        &config,
        &out,
        &["--backbone", "(fault: NanAfter(0))"],
    );
    fails(&args, &["NaN"]);
    let progress = std::fs::read_to_string(out.join("PROGRESS.txt")).unwrap();
    assert!(progress.contains("status: failed\n"), "{progress}");
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    assert!(log.contains("failed: "), "{log}");
}

#[test]
fn a_bad_appearance_range_is_refused_naming_field_line_and_column_and_nothing_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(workspace().join("configs/data-randomised.ron")).unwrap();
    let out = dir.path().join("data");
    for (from, to, needle) in [
        (
            "blur: (0.0, 0.6)",
            "blur: (0.6, 0.0)",
            "`appearance.blur`: (0.6, 0) is inverted",
        ),
        (
            "ambient: (0.35, 0.75)",
            "ambient: (NaN, 0.75)",
            "`appearance.ambient`",
        ),
        (
            "camera_distance: (1.0, 1.25)",
            "camera_distance: (0.2, 1.25)",
            "`appearance.camera_distance`",
        ),
        (
            "training_pixel_noise: Some((0.0, 0.08))",
            "training_pixel_noise: Some((0.0, 0.5))",
            "`appearance.training_pixel_noise`: (0, 0.5) must lie within 0..=0.1",
        ),
        (
            "training_focal_scale: Some((0.8, 1.0))",
            "training_focal_scale: Some((0.2, 1.0))",
            "`appearance.training_focal_scale`: (0.2, 1) must lie within 0.3..=1",
        ),
        (
            "training_ball_stripes: Some((0.0, 0.8))",
            "training_ball_stripes: Some((0.8, 0.0))",
            "`appearance.training_ball_stripes`: (0.8, 0) is inverted",
        ),
        (
            "training_ball_stripes: Some((0.0, 0.8))",
            "training_ball_stripes: Some((0.0, 0.8)), training_ball_value: Some((0.0, 1.0))",
            "`appearance.training_ball_value`: (0, 1) must lie within 0.05..=1",
        ),
        (
            "shading: [shaded]",
            "shading: []",
            "`appearance.shading`: is empty",
        ),
        (
            "ground_patterns: [grid, noise, plain]",
            "ground_patterns: [stripes]",
            "`stripes`",
        ),
    ] {
        assert!(shipped.contains(from), "{from}");
        let config = dir.path().join("data.ron");
        std::fs::write(&config, shipped.replace(from, to)).unwrap();
        let line = shipped.lines().position(|l| l.contains(from)).unwrap() + 1;
        let output = generate(&config, &out, &[]);
        assert_clean_failure(&output, &[&format!("data.ron:{line}:"), needle]);
        assert!(!out.exists(), "{to}: something was generated");
    }
}

#[test]
fn special_or_huge_run_files_are_refused_not_waited_on_or_read_whole() {
    let (dir, run) = copy_of_finished_run();
    let progress = run.join("PROGRESS.txt");
    std::fs::remove_file(&progress).unwrap();
    mkfifo(&progress);
    refused_resume(dir.path(), &["PROGRESS.txt", "is a FIFO"]);
    std::fs::remove_file(&progress).unwrap();
    std::fs::remove_file(run.join("validation_metrics.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", run.join("validation_metrics.json")).unwrap();
    refused_resume(dir.path(), &["validation_metrics.json", "is a device"]);
    std::fs::remove_file(run.join("validation_metrics.json")).unwrap();
    // A sparse 4 GiB metrics file: refused by size, never read into memory.
    let metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))
        .unwrap();
    metrics.set_len(4 << 30).unwrap();
    let output = trajhost(&args!["compare", run], &[]);
    assert!(text(&output).contains("metrics.jsonl"), "{}", text(&output));
    assert!(text(&output).contains("more than the"), "{}", text(&output));
    fails(
        &["plugin", "info", "/dev/zero"],
        &["/dev/zero", "not a regular file"],
    );
}

#[test]
fn data_preview_replaces_its_outputs_and_bounds_the_samples_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_of_tiny_dataset(&data);
    let before = contents(&data);
    // Hard links to dataset files: replaced by the preview, never written through.
    let shard = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .unwrap();
    std::fs::hard_link(&shard, dir.path().join("x.gif")).unwrap();
    std::fs::hard_link(data.join("manifest.json"), dir.path().join("x.png")).unwrap();
    let gif = dir.path().join("x.gif");
    succeeds(&args!["data", "preview", data, "--out", gif]);
    assert_eq!(contents(&data), before);
    fails(
        &args![
            "data",
            "preview",
            data,
            "--out",
            gif,
            "--per-class",
            "1000000000"
        ],
        &["--per-class 1000000000", "at most"],
    );
}

#[test]
fn a_checkpoint_claiming_a_step_past_the_epoch_is_refused_on_resume() {
    let (dir, run) = copy_of_finished_run();
    edit_checkpoints(&run, |meta| {
        meta["step_in_epoch"] = 1_000_000_000_000u64.into()
    });
    refused_resume(dir.path(), &["step_in_epoch 1000000000000", "batches"]);
}

#[test]
fn a_checkpoint_listing_a_tensor_the_model_lacks_names_it() {
    let (_dir, run) = copy_of_finished_run();
    edit_checkpoints(&run, |meta| {
        meta["model_tensors"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!(["evil", [1]]))
    });
    fails(&args!["eval", "--run", run], &["epoch-0002", "'evil'"]);
}

/// A data config edited at the path a run recorded is other data: `eval` no longer takes it
/// for the run's own (its test split would silently be another), its shifts cannot replace the
/// run's table, and the run does not resume on it.
#[test]
fn data_changed_since_training_is_not_taken_for_the_runs_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_config(
        dir.path(),
        &[
            ("samples: 10000", "samples: 64"),
            ("frames: 32", "frames: 8"),
            ("width: 64", "width: 32"),
            ("height: 64", "height: 32"),
            ("checkpoint_interval: 2000", "checkpoint_interval: 16"),
        ],
    );
    let spec = format!("procedural:{}", config.display());
    let train_config = write_config(
        dir.path(),
        "one.ron",
        &tiny_train_config("validation.ron", 1),
    );
    let run = dir.path().join("run");
    // `trajhost <command> <fixed> <extra>`, every argument a string.
    let command = |fixed: &[&str], extra: &[&str]| -> Vec<String> {
        fixed.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let (run_arg, config_arg) = (
        run.display().to_string(),
        train_config.display().to_string(),
    );
    let train = |extra: &[&str]| {
        let fixed = [
            "train",
            "--plugin",
            "template",
            "--device",
            "cpu",
            "--threads",
            "1",
        ];
        let fixed = [
            &fixed[..],
            &["--data", &spec, "--config", &config_arg, "--out", &run_arg],
        ];
        command(&fixed.concat(), extra)
    };
    let eval = |extra: &[&str]| command(&["eval", "--run", &run_arg, "--threads", "1"], extra);
    succeeds(&train(&[]));
    succeeds(&eval(&[]));

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("pixel_noise: 0.0,"));
    std::fs::write(
        &config,
        text.replace("pixel_noise: 0.0,", "pixel_noise: 0.05,"),
    )
    .unwrap();
    fails(
        &eval(&[]),
        &[
            config.to_str().unwrap(),
            "has changed since this run trained on it",
            "--data",
        ],
    );
    succeeds(&eval(&["--data", &spec]));
    fails(
        &eval(&["--data", &spec, "--shifts"]),
        &["as it was then", "--shifts-out"],
    );
    assert!(!run.join("robustness.json").exists());

    // Resuming it would go on training on other data: refused, the run untouched.
    let before = contents(&run);
    fails(
        &train(&["--resume", "auto", "--epochs", "2"]),
        &[config.to_str().unwrap(), "has changed since checkpoint"],
    );
    assert_eq!(contents(&run), before);
}
