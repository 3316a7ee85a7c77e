//! Using a trained run: `eval` on its own and on other data, `--shifts`, and `predict` on the
//! files people have (a GIF exported from a shard, a preview GIF, a `.npy`, a shard sample) —
//! all through the real binary on one tiny run trained once for this file.

mod common;

use common::{args, fails, succeeds, text, tiny_dataset, trained_template_run, trajhost};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use trajhost::eval::{EvalReport, SamplePrediction};
use trajhost::rundir::metrics::FinalMetrics;

/// The template trained for 2 epochs on the tiny dataset.
fn run() -> &'static Path {
    static RUN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RUN.get_or_init(|| trained_template_run(2)).path()
}

fn run_dir() -> PathBuf {
    run().join("run")
}

/// `eval --run <the run>` with `extra`, as arguments for [`succeeds`] or [`fails`].
fn eval(extra: &[&str]) -> Vec<String> {
    let run = run_dir().to_str().unwrap().to_string();
    ["eval", "--run", &run]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
}

/// `predict --run <run> <video>` with `extra`, as arguments for [`succeeds`] or [`fails`].
fn predict(run: &Path, video: &Path, extra: &[&str]) -> Vec<String> {
    let (run, video) = (run.to_str().unwrap(), video.to_str().unwrap());
    ["predict", "--run", run, video]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
}

/// `predict --json` of the tiny dataset's sample 2 with `run`'s model.
fn predicted_sample(run: &Path, extra: &[&str]) -> serde_json::Value {
    let shard = tiny_dataset().join("shard-00000.safetensors");
    let extra = [&["--sample", "2", "--json"], extra].concat();
    serde_json::from_str(&succeeds(&predict(run, &shard, &extra))).unwrap()
}

#[test]
fn eval_on_the_runs_own_test_split_reproduces_its_final_metrics_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval.json");
    let run = run_dir();
    // The dataset comes from the checkpoint; `last` is the default.
    // As the run trained: float sums depend on the thread count.
    succeeds(&eval(&["--out", out.to_str().unwrap(), "--threads", "1"]));
    let report: EvalReport = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let written: FinalMetrics =
        serde_json::from_slice(&std::fs::read(run.join("validation_metrics.json")).unwrap())
            .unwrap();
    assert_eq!(report.metrics, written.test);
    assert_eq!(report.baselines, written.baselines);
    assert_eq!(report.epoch, 2);
}

/// `--mirror-average` runs the model on each clip and on its mirror image and averages the
/// answers: the report says so, and its numbers are not the plain model's. The run's own
/// robustness table stays the plain model's: shifted sets scored that way need a file of their
/// own.
#[test]
fn eval_mirror_average_is_reported_and_kept_out_of_the_runs_robustness_table() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, mirrored) = (
        dir.path().join("plain.json"),
        dir.path().join("mirrored.json"),
    );
    succeeds(&eval(&["--out", plain.to_str().unwrap()]));
    let printed = succeeds(&eval(&[
        "--out",
        mirrored.to_str().unwrap(),
        "--mirror-average",
    ]));
    assert!(printed.contains("mirror-averaged"), "{printed}");
    let read = |path: &Path| -> EvalReport {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let (plain, mirrored) = (read(&plain), read(&mirrored));
    assert!(!plain.mirror_averaged && mirrored.mirror_averaged);
    assert_ne!(plain.metrics.mse, mirrored.metrics.mse);
    let needles = ["--mirror-average", "--shifts-out", "robustness.json"];
    fails(&eval(&["--shifts", "--mirror-average"]), &needles);
    assert!(
        !run_dir().join("robustness.json").exists(),
        "refused before the work"
    );
}

/// A run whose config says `mirror_average: true` is the averaged model everywhere but in its
/// training steps: its final metrics are mirror-averaged, and `eval` and `predict` answer that
/// way unasked and reproduce them exactly; `--no-mirror-average` scores the plain model, and not
/// into the run's own robustness table.
#[test]
fn a_mirror_averaged_run_is_scored_averaged_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny_train_config("validation.ron", 2);
    config.mirror_average = true;
    let mirror_run = common::train_template(dir.path(), &config);
    let written: FinalMetrics =
        serde_json::from_slice(&std::fs::read(mirror_run.join("validation_metrics.json")).unwrap())
            .unwrap();
    let run = mirror_run.to_str().unwrap();
    let report = |extra: &[&str]| -> (EvalReport, String) {
        let out = dir.path().join("eval.json");
        let mut command = vec!["eval", "--run", run, "--threads", "1"];
        command.extend_from_slice(&["--out", out.to_str().unwrap()]);
        command.extend_from_slice(extra);
        let printed = succeeds(&command);
        let report = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        (report, printed)
    };
    let (own, printed) = report(&[]);
    assert!(own.mirror_averaged, "the run's own setting");
    assert!(printed.contains("mirror-averaged"), "{printed}");
    assert_eq!(
        own.metrics, written.test,
        "eval reproduces the final metrics"
    );
    let (plain, printed) = report(&["--no-mirror-average"]);
    assert!(!plain.mirror_averaged && !printed.contains("mirror-averaged"));
    assert_ne!(plain.metrics.mse, own.metrics.mse);
    fails(
        &["eval", "--run", run, "--shifts", "--no-mirror-average"],
        &["--no-mirror-average", "--shifts-out", "robustness.json"],
    );
    fails(
        &[
            "eval",
            "--run",
            run,
            "--mirror-average",
            "--no-mirror-average",
        ],
        &["--mirror-average", "--no-mirror-average"],
    );
    let answer = |extra: &[&str]| predicted_sample(&mirror_run, extra);
    let (averaged, plain) = (answer(&[]), answer(&["--no-mirror-average"]));
    assert_eq!(averaged["mirror_averaged"], true);
    assert_eq!(plain["mirror_averaged"], false);
    assert_ne!(averaged["position"], plain["position"]);
}

#[test]
fn eval_reads_other_data_and_refuses_clips_of_another_shape_naming_both() {
    let other_seed = common::generated(&trajhost_dataset::DataConfig {
        seed: 7,
        ..trajhost_dataset::DataConfig::tiny()
    });
    let data = other_seed.path().to_str().unwrap();
    let printed = succeeds(&eval(&["--data", data, "--split", "all"]));
    assert!(printed.contains("64 videos"), "{printed}");
    let longer = common::generated(&trajhost_dataset::DataConfig {
        frames: 12,
        ..trajhost_dataset::DataConfig::tiny()
    });
    fails(
        &eval(&["--data", longer.path().to_str().unwrap()]),
        &["12 frames of 32×32", "reads 8 frames of 32×32"],
    );
    fails(
        &["eval", "--run", "/nonexistent/run"],
        &["/nonexistent/run"],
    );
}

#[test]
fn predict_on_a_gif_exported_from_a_test_shard_matches_eval_for_that_sample() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let predictions = dir.path().join("p.jsonl");
    succeeds(&eval(&["--predictions", predictions.to_str().unwrap()]));
    let text = std::fs::read_to_string(&predictions).unwrap();
    let first: SamplePrediction = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let data = tiny_dataset().to_str().unwrap();
    for ext in ["gif", "npy"] {
        let video = dir.path().join(format!("sample.{ext}"));
        let index = first.index.to_string();
        succeeds(&args![
            "data", "export", data, "--index", &index, "--out", video
        ]);
        let json = succeeds(&predict(&run, &video, &["--json"]));
        let got: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(got["class"], first.class.as_str(), "{ext}");
        for axis in 0..3 {
            let p = got["position"][axis].as_f64().unwrap();
            assert!(
                (p - first.position[axis]).abs() < 1e-6,
                "{ext}: axis {axis}: {p} vs {}",
                first.position[axis]
            );
        }
        assert_eq!(got["adjustments"].as_array().unwrap().len(), 0, "{ext}");
    }
}

#[test]
fn predict_reads_a_preview_gif_and_a_shard_sample_and_draws_an_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let preview = dir.path().join("preview.gif");
    succeeds(&args!["data", "preview", tiny_dataset(), "--out", preview]);
    let output = trajhost(&args!["predict", "--run", run, preview], &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("resized"), "{}", text(&output));

    let shard = tiny_dataset().join("shard-00000.safetensors");
    let overlay = dir.path().join("overlay.gif");
    let printed = succeeds(&predict(
        &run,
        &shard,
        &["--sample", "2", "--overlay", overlay.to_str().unwrap()],
    ));
    assert!(printed.contains("truth"), "{printed}");
    overlay_shows_the_markers_in_their_colours(&run, &shard, &overlay);
    let sample_999 = predict(&run, &shard, &["--sample", "999"]);
    fails(&sample_999, &["--sample 999", "16 samples"]);
    fails(&args!["predict", "--run", run, "/dev/null"], &["/dev/null"]);
}

/// Every frame of the overlay holds the documented colours exactly: red at the predicted
/// position's pixel, green on the true position's +, a yellow path, and a white legend under
/// the clip.
fn overlay_shows_the_markers_in_their_colours(run: &Path, shard: &Path, overlay: &Path) {
    use image::AnimationDecoder;
    use trajhost::predict::overlay::{marker_pixel, GREEN, RED, SCALE, YELLOW};
    let json = succeeds(&predict(run, shard, &["--sample", "2", "--json"]));
    let said: serde_json::Value = serde_json::from_str(&json).unwrap();
    let position = |v: &serde_json::Value| -> [f64; 3] {
        let p: Vec<f64> = serde_json::from_value(v.clone()).unwrap();
        [p[0], p[1], p[2]]
    };
    let dataset = trajhost_dataset::Dataset::open(tiny_dataset()).unwrap();
    let k: [f32; 9] = dataset.load_shard(0).unwrap().intrinsics[2 * 9..3 * 9]
        .try_into()
        .unwrap();
    let config = &dataset.manifest.config;
    let clip = (config.width as u32, config.height as u32);
    let at = |p| marker_pixel(p, Some(k), clip, 50.0).expect("in front of the camera");
    let predicted = at(position(&said["position"]));
    let truth = at(position(&said["truth"]["position"]));
    let file = std::io::BufReader::new(std::fs::File::open(overlay).unwrap());
    let frames = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), config.frames);
    let inside = |(x, y): (i64, i64)| {
        (0..i64::from(clip.0 * SCALE)).contains(&x) && (0..i64::from(clip.1 * SCALE)).contains(&y)
    };
    for frame in &frames {
        let image = frame.buffer();
        let colour = |(x, y): (i64, i64)| {
            let p = image.get_pixel(x as u32, y as u32);
            [p[0], p[1], p[2]]
        };
        if inside(predicted) {
            assert_eq!(colour(predicted), RED.0, "at the prediction {predicted:?}");
        }
        let arms = [(7, 0), (-7, 0), (0, 7), (0, -7)].map(|(dx, dy)| (truth.0 + dx, truth.1 + dy));
        assert!(
            arms.iter().any(|&p| inside(p) && colour(p) == GREEN.0),
            "green around the truth {truth:?}"
        );
        let count = |c: [u8; 3]| image.pixels().filter(|p| [p[0], p[1], p[2]] == c).count();
        assert!(count(YELLOW.0) > 10, "the tracked path");
        let legend = image
            .enumerate_pixels()
            .filter(|(_, y, p)| *y >= clip.1 * SCALE && [p[0], p[1], p[2]] == [255, 255, 255])
            .count();
        assert!(legend > 50, "legend letters under the clip: {legend}");
    }
}

#[test]
fn shifts_write_robustness_json_reuse_their_sets_and_compare_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of the run, so this test's robustness.json does not meet the other tests.
    let run = dir.path().join("copy");
    common::copy(&run_dir(), &run);
    let cache = dir.path().join("shifts");
    let args = [
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--shifts",
        "--shift-samples",
        "24",
        "--shift-cache",
        cache.to_str().unwrap(),
    ];
    let printed = succeeds(&args);
    assert!(printed.contains("pixel_noise_0.1"), "{printed}");
    let robustness = trajhost::rundir::robustness::read(&run).unwrap().unwrap();
    let shifts: Vec<&str> = robustness.rows.iter().map(|r| r.shift.as_str()).collect();
    assert_eq!(
        shifts,
        [
            "none",
            "pixel_noise_0.05",
            "pixel_noise_0.1",
            "jitter_2x",
            "fov_narrow",
            "fov_wide",
            "camera",
            "camera_far",
            "style_blue_ball",
            "style_checker",
            "style_no_ground",
            "style_side_light",
            "style_motion_blur",
            "style_flat",
            "style_outlined"
        ]
    );
    let held_out: Vec<&str> = robustness
        .rows
        .iter()
        .filter(|r| r.held_out)
        .map(|r| r.shift.as_str())
        .collect();
    assert_eq!(held_out, shifts[7..]);
    assert!(robustness.rows.iter().all(|r| r.mse.is_finite()));
    assert_eq!(robustness.rows[0].accuracy_drop, 0.0);
    let sets = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(sets, 15);
    // A second run reuses the sets: the same numbers.
    succeeds(&args);
    let again = trajhost::rundir::robustness::read(&run).unwrap().unwrap();
    assert_eq!(again.rows, robustness.rows);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 15);

    let report = succeeds(&args!["compare", run]);
    assert!(
        report.contains("## Robustness")
            && report.contains("## Held-out styles")
            && report.contains("| copy |")
            && report.contains(&format!("drawn from `{}`", robustness.data.unwrap())),
        "{report}"
    );
}

/// `robustness.json` is the table of the run's own data: shifts of another dataset go to a file
/// of their own (`--shifts-out`), and every table says which data its sets were drawn from.
#[test]
fn shifts_of_other_data_never_replace_the_runs_own_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("copy");
    let other = dir.path().join("other-data");
    for (from, to) in [(run_dir(), &run), (tiny_dataset().to_path_buf(), &other)] {
        let copied = std::process::Command::new("cp")
            .args(["-r", from.to_str().unwrap(), to.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let shifts = |extra: &[&str]| -> Vec<String> {
        let cache = dir.path().join("shifts");
        let base = ["eval", "--run", run.to_str().unwrap(), "--shifts"];
        let samples = [
            "--shift-samples",
            "8",
            "--shift-cache",
            cache.to_str().unwrap(),
        ];
        base.iter()
            .chain(&samples)
            .chain(extra)
            .map(|a| a.to_string())
            .collect()
    };
    succeeds(&shifts(&[]));
    let own = std::fs::read(run.join("robustness.json")).unwrap();
    let recorded = trajhost::rundir::robustness::read(&run).unwrap().unwrap();
    let trained_on = std::path::absolute(tiny_dataset()).unwrap();
    assert_eq!(recorded.data.as_deref(), trained_on.to_str());

    // Another dataset without --shifts-out: refused before any set is generated.
    let needles = ["other-data", "robustness.json", "--shifts-out"];
    fails(&shifts(&["--data", other.to_str().unwrap()]), &needles);
    assert_eq!(std::fs::read(run.join("robustness.json")).unwrap(), own);

    // A folder is no file to write the table to: refused before the work too.
    let into_a_folder = shifts(&["--shifts-out", dir.path().to_str().unwrap()]);
    fails(&into_a_folder, &["--shifts-out", "is a directory"]);

    let elsewhere = dir.path().join("other-robustness.json");
    let data = other.to_str().unwrap();
    succeeds(&shifts(&[
        "--data",
        data,
        "--shifts-out",
        elsewhere.to_str().unwrap(),
    ]));
    let theirs: trajhost::rundir::robustness::Robustness =
        serde_json::from_slice(&std::fs::read(&elsewhere).unwrap()).unwrap();
    let other_abs = std::path::absolute(&other).unwrap();
    assert_eq!(theirs.data.as_deref(), other_abs.to_str());
    assert_eq!(std::fs::read(run.join("robustness.json")).unwrap(), own);
}

#[test]
fn a_run_records_its_validation_baselines_when_training_starts() {
    let baselines = trajhost::rundir::metrics::read_val_baselines(&run_dir())
        .unwrap()
        .expect("val_baselines.json");
    assert!(baselines.mean_position_mse.is_finite() && baselines.mean_position_mse > 0.0);
    assert!(baselines.constant_velocity_mse.is_finite());
    let limit = baselines.curve_fit_mse.expect("the curve-fit limit");
    assert!(limit < baselines.mean_position_mse, "{baselines:?}");
}

/// `predict --mirror-average`: the answer averaged with the mirror image's, and said so.
#[test]
fn predict_mirror_average_says_so_and_changes_the_answer() {
    let run = run_dir();
    let shard = tiny_dataset().join("shard-00000.safetensors");
    let answer = |extra: &[&str]| predicted_sample(&run, extra);
    let (plain, mirrored) = (answer(&[]), answer(&["--mirror-average"]));
    assert_eq!(plain["mirror_averaged"], false);
    assert_eq!(mirrored["mirror_averaged"], true);
    assert_ne!(plain["position"], mirrored["position"]);
    let printed = succeeds(&predict(
        &run,
        &shard,
        &["--sample", "2", "--mirror-average"],
    ));
    assert!(
        printed.contains("averaged with the mirror image's answer"),
        "{printed}"
    );
}

/// `--fovea-passes N` scores a fovea run with N looks instead of its own: the report says so and
/// its numbers are not the run's; the run's own robustness table is not written that way, and a
/// run without a fovea, 0 or more than 4 looks are refused naming the flag.
#[test]
fn eval_fovea_passes_rescores_a_fovea_run_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny_train_config("validation.ron", 2);
    config.position_head = trajhost::config::PositionHead::Fovea;
    let fovea_run = common::train_template(dir.path(), &config);
    let report = |extra: &[&str]| -> EvalReport {
        let out = dir.path().join("eval.json");
        let (run, out_arg) = (fovea_run.to_str().unwrap(), out.to_str().unwrap());
        let mut command = vec!["eval", "--run", run, "--threads", "1", "--out", out_arg];
        command.extend_from_slice(extra);
        let printed = succeeds(&command);
        if !extra.is_empty() {
            assert!(printed.contains("3 fovea looks"), "{printed}");
        }
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
    };
    let (own, three) = (report(&[]), report(&["--fovea-passes", "3"]));
    assert_eq!((own.fovea_passes, three.fovea_passes), (None, Some(3)));
    assert_ne!(own.metrics.mse, three.metrics.mse);
    let fovea_run = fovea_run.to_str().unwrap();
    fails(
        &[
            "eval",
            "--run",
            fovea_run,
            "--shifts",
            "--fovea-passes",
            "3",
        ],
        &["--fovea-passes", "robustness.json", "--shifts-out"],
    );
    for passes in ["0", "5"] {
        fails(
            &["eval", "--run", fovea_run, "--fovea-passes", passes],
            &["--fovea-passes", "1 to 4"],
        );
    }
    fails(
        &eval(&["--fovea-passes", "2"]),
        &["--fovea-passes", "only the fovea"],
    );
}
