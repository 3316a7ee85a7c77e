//! The PyTorch models (the `trajhost` package, `python/trajhost/backbones.py`, `heads.py`) must be the same
//! models as the plugins' `cpu` presets and the host's heads: equal parameter counts and equal
//! parameter shapes (as multisets), equal feature widths, `(B, T, D)` outputs, and the same
//! function: with every parameter set from its shape alone, the same input gives the same
//! features (exactly, in practice; the tolerance is a few ulps — a wrong norm epsilon shows).
//!
//! Needs the plugins built (`scripts/build`, which `scripts/test` runs first) and the cached
//! torch venv (`scripts/setup-torch`, which `scripts/test` runs too); without the venv these
//! tests fail, saying how to make one: a parity check that passes without running proves nothing.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[path = "../../tests/common/python.rs"]
mod python;
use python::venv_python;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn json_of(command: &mut Command) -> Value {
    let out = command.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).expect("valid JSON")
}

/// `trajhost-bench <command>` and `measure.py <command>`, each one JSON line, on one thread.
fn both_sides(command: &str) -> (Value, Value) {
    let python = venv_python();
    let run = |program: &mut Command| {
        json_of(
            program
                .arg(command)
                .env("OMP_NUM_THREADS", "1")
                .current_dir(root()),
        )
    };
    let rust = run(&mut Command::new(env!("CARGO_BIN_EXE_trajhost-bench")));
    let py = run(Command::new(python).arg(root().join("bench/python/measure.py")));
    (rust, py)
}

#[test]
fn pytorch_models_have_the_plugins_parameters() {
    let (rust, py) = both_sides("params");
    for name in ["i3d", "slowfast", "transformer", "magvit"] {
        let (r, p) = (&rust[name], &py[name]);
        for key in [
            "feature_dim",
            "backbone",
            "heads",
            "total",
            "backbone_shapes",
            "head_shapes",
        ] {
            assert_eq!(
                r[key], p[key],
                "{name}: `{key}` differs (trajhost vs PyTorch)"
            );
        }
        let d = r["feature_dim"].as_i64().unwrap();
        assert_eq!(
            p["output_shape"],
            serde_json::json!([1, 32, d]),
            "{name}: the PyTorch backbone must keep one feature per frame"
        );
        // Heads: tracker Linear(D, 3), frame_code Linear(D, 8), trajectory Linear(32·11, 128)
        // and Linear(128, 128), classifier Linear(D + 128, 4), predictor Linear(128, 3).
        assert_eq!(r["heads"].as_i64().unwrap(), 15 * d + 62_610);
    }
}

#[test]
fn pytorch_models_compute_the_plugins_function() {
    let (rust, py) = both_sides("forward-check");
    for name in ["i3d", "slowfast", "transformer", "magvit"] {
        assert_eq!(
            rust[name]["shape"], py[name]["shape"],
            "{name}: output shape"
        );
        let values = |v: &Value| -> Vec<f64> {
            v["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (r, p) = (values(&rust[name]), values(&py[name]));
        let scale = r.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let diff = r
            .iter()
            .zip(&p)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 2e-6 * scale,
            "{name}: the PyTorch model computes another function (max |Δ| = {diff:e}, max |f| = {scale})"
        );
    }
}

/// The pinhole head's lift (`host/src/train/pinhole.rs`) and its mirror in `heads.py` give the
/// same label coordinates for the same image positions and sizes, through two lenses.
#[test]
fn the_pinhole_lift_is_the_same_in_pytorch() {
    use tch::{Kind, Tensor};
    use trajhost::train::pinhole::{lift, Lens};
    let image = [
        0.3f32, -0.2, 0.1, -0.9, 0.5, -0.4, 0.0, 0.0, 0.0, 0.7, 0.7, 5.0,
    ];
    for lens in [Lens::from_fov(50.0, 64, 64), Lens::from_fov(80.0, 48, 32)] {
        let rust = lift(
            &Tensor::from_slice(&image).view([1, 4, 3]),
            &Lens::table(&[lens]),
        );
        let rust = Vec::<f64>::try_from(rust.to_kind(Kind::Double).flatten(0, -1)).unwrap();
        let script = format!(
            "import json, sys, torch\nsys.path.insert(0, 'python')\nfrom trajhost.heads import lift\nimage = torch.tensor({image:?}).view(4, 3)\nprint(json.dumps({{'lifted': lift(image, ({}, {})).flatten().tolist()}}))",
            lens.focal_x, lens.focal_y
        );
        let py = json_of(
            Command::new(venv_python())
                .args(["-c", &script])
                .current_dir(root()),
        );
        let py: Vec<f64> = serde_json::from_value(py["lifted"].clone()).unwrap();
        assert_eq!(py.len(), rust.len());
        for (a, b) in rust.iter().zip(&py) {
            assert!((a - b).abs() < 1e-5 * (1.0 + a.abs()), "{rust:?} vs {py:?}");
        }
    }
}

/// TensorBoard's own reader (the `tensorboard` package in the cached venv) reads what the
/// host's event writer writes: scalars, an image and the run's settings on the HParams tab.
#[test]
fn tensorboard_reads_our_event_files() {
    use trajhost::train::tensorboard::{EventWriter, HParam};
    let dir = tempfile::tempdir().unwrap();
    let mut events = EventWriter::create(dir.path()).unwrap();
    events
        .hparams(&[
            ("lr".into(), HParam::Number(0.002)),
            ("plugin".into(), HParam::Text("i3d".into())),
        ])
        .unwrap();
    for step in 1..=3 {
        events
            .scalar("val/accuracy", step, 0.25 * step as f64)
            .unwrap();
        events.scalar("val/mse/z", step, 0.1).unwrap();
    }
    let mut png = Vec::new();
    image::RgbImage::from_pixel(5, 3, image::Rgb([10, 20, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    events.png("training_curves", 3, &png).unwrap();
    let script = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
acc.Reload()
scalars = {t: [(e.step, round(e.value, 6)) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
images = {t: [(e.step, e.width, e.height) for e in acc.Images(t)] for t in acc.Tags()["images"]}
data = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
info = plugin_data_pb2.HParamsPluginData.FromString(data).session_start_info
hparams = {k: (v.number_value if v.HasField("number_value") else v.string_value) for k, v in info.hparams.items()}
print(json.dumps({"scalars": scalars, "images": images, "hparams": hparams}))
"#;
    let read = json_of(
        Command::new(venv_python())
            .args(["-c", script])
            .arg(dir.path()),
    );
    assert_eq!(
        read["scalars"]["val/accuracy"],
        serde_json::json!([[1, 0.25], [2, 0.5], [3, 0.75]]),
        "{read}"
    );
    assert_eq!(
        read["images"]["training_curves"],
        serde_json::json!([[3, 5, 3]]),
        "{read}"
    );
    assert_eq!(read["hparams"]["lr"], serde_json::json!(0.002), "{read}");
    assert_eq!(
        read["hparams"]["plugin"],
        serde_json::json!("i3d"),
        "{read}"
    );
}
