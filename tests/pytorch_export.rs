//! `trajhost export` → the `trajhost` Python package: each built-in backbone, trained briefly
//! through the binary and exported, loads `strict=True` in PyTorch and scores what `trajhost
//! eval` scores (accuracy exactly, MSE within 1e-6) on clips each seen through a lens of its own,
//! with the package installed by `pip` from the repository. Bad exports are refused, naming what
//! is wrong, and overwrite nothing. Every model of the package runs on the device it is moved to.
//!
//! Needs the plugins built and the cached torch venv (`scripts/test` makes both).

mod common;

use common::python::venv_python;
use common::{
    args, fails, set_intrinsic, succeeds, text, tiny_dataset, tiny_train_config, train_args,
    workspace,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use trajhost::config::{Background, Colour, PositionHead};
use trajhost::eval::EvalReport;

/// (plugin, its configuration for 32×32 clips, position head, background, colour): each head,
/// background and colour, with a channel-major (I3D, MAGVIT) and a time-major (Transformer)
/// backbone; MAGVIT's is configs/quality.ron's.
type Recipe = (PositionHead, Background, Colour);
const BACKBONES: [(&str, &str, Recipe); 4] = [
    (
        "i3d",
        "(preset: \"cpu\")",
        (PositionHead::Pinhole, Background::Keep, Colour::HueFree),
    ),
    (
        "slowfast",
        "",
        (PositionHead::Direct, Background::Keep, Colour::Rgb),
    ),
    // The Transformer's position embedding is sized for its image: an override to carry over.
    (
        "transformer",
        "(preset: \"cpu\", image_size: Some(32))",
        (
            PositionHead::Pinhole,
            Background::SubtractMedian,
            Colour::Rgb,
        ),
    ),
    (
        "magvit",
        "(preset: \"cpu\", embedding_dim: Some(16))",
        (
            PositionHead::Fovea,
            Background::SubtractMedian,
            Colour::HueFree,
        ),
    ),
];

/// `plugin` trained one epoch on the tiny dataset into `dir/<plugin>`.
fn train(dir: &Path, plugin: &str, backbone: &str, recipe: Recipe) -> PathBuf {
    let (head, background, colour) = recipe;
    let mut config = tiny_train_config("validation.ron", 1);
    config.backbone = backbone.into();
    config.position_head = head;
    // A fovea looks twice and averages with the mirror image in inference, as
    // configs/quality.ron's: the package must too.
    if head == PositionHead::Fovea {
        config.fovea_passes = 2;
        config.mirror_average = true;
    }
    config.background = background;
    config.colour = colour;
    let config_path = dir.join(format!("{plugin}.ron"));
    std::fs::write(&config_path, ron::ser::to_string(&config).unwrap()).unwrap();
    let run = dir.join(plugin);
    let args = train_args(plugin, &config_path, &run, &[]);
    succeeds(&args);
    run
}

/// `pip install` of `python/` into a folder of its own, as a user installs it (no network: the
/// venv's setuptools builds it). From a copy: setuptools leaves `build/` beside the sources.
fn installed_package(into: &Path) -> PathBuf {
    let source = into.join("python");
    std::fs::create_dir_all(source.join("trajhost")).unwrap();
    let package = workspace().join("python");
    std::fs::copy(
        package.join("pyproject.toml"),
        source.join("pyproject.toml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(package.join("trajhost")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            let name = path.file_name().unwrap();
            std::fs::copy(&path, source.join("trajhost").join(name)).unwrap();
        }
    }
    let target = into.join("site");
    let output = Command::new(venv_python())
        .args(["-m", "pip", "install", "--quiet", "--no-deps"])
        .args(["--no-build-isolation", "--target"])
        .arg(&target)
        .arg(&source)
        .output()
        .unwrap();
    assert!(output.status.success(), "pip install: {}", text(&output));
    assert!(target.join("trajhost/backbones.py").is_file());
    target
}

/// The tiny dataset's clips, each through a lens of its own (`focal_scale`), so that a pinhole
/// head must read every sample's intrinsics, in PyTorch as in the host.
fn lens_per_sample_dataset() -> tempfile::TempDir {
    let mut config = trajhost_dataset::DataConfig::tiny();
    let mut appearance = trajhost_dataset::appearance::AppearanceConfig::classic();
    appearance.focal_scale = (0.5, 1.0);
    config.appearance = Some(appearance);
    common::generated(&config)
}

#[test]
fn every_backbone_exported_to_pytorch_scores_what_eval_scores() {
    let dir = tempfile::tempdir().unwrap();
    let site = installed_package(dir.path());
    let data = lens_per_sample_dataset();
    let mut expected = Vec::new();
    for (plugin, backbone, recipe) in BACKBONES {
        let run = train(dir.path(), plugin, backbone, recipe);
        let report = dir.path().join(format!("{plugin}-eval.json"));
        succeeds(&args![
            "eval",
            "--run",
            run,
            "--data",
            data.path(),
            "--split",
            "all",
            "--threads",
            "1",
            "--out",
            report
        ]);
        let report: EvalReport = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let export = dir.path().join(format!("{plugin}-export"));
        let (run, out) = (run.to_str().unwrap(), export.to_str().unwrap());
        succeeds(&["export", "--run", run, "--out", out]);
        expected.push((plugin, export, report.metrics));
    }
    // What the README tells a PyTorch user to write.
    let script = "import json, sys, torch, trajhost\n\
        torch.set_num_threads(1)\n\
        data, out = sys.argv[1], {}\n\
        for export in sys.argv[2:]:\n\
        \x20   model, info = trajhost.load(export)\n\
        \x20   split = trajhost.Split(data, 'all', info['predict_future'])\n\
        \x20   out[info['backbone']] = trajhost.evaluate(model, split, info['batch_size'])\n\
        print(json.dumps(out))\n";
    let output = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .arg(data.path())
        .args(expected.iter().map(|(_, export, _)| export))
        .env("PYTHONPATH", &site)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let scored: Value = serde_json::from_slice(&output.stdout).unwrap();
    for (plugin, _, metrics) in &expected {
        let pytorch = &scored[plugin];
        assert_eq!(pytorch["samples"], metrics.samples, "{plugin}");
        assert_eq!(
            pytorch["accuracy"].as_f64().unwrap(),
            metrics.accuracy,
            "{plugin}: {pytorch} vs {metrics:?}"
        );
        let mse = pytorch["mse"].as_f64().unwrap();
        assert!(
            (mse - metrics.mse).abs() < 1e-6,
            "{plugin}: PyTorch MSE {mse}, trajhost {}",
            metrics.mse
        );
    }
}

/// A model moved to a device runs there, training too: no tensor the package makes stays on the
/// CPU (it did in SlowFast's time fusion, which then failed on CUDA), and the lenses a `Split`
/// holds on the CPU follow the video. Run on PyTorch's `meta` device, which needs no GPU; an op
/// given tensors on two devices is reported like CUDA's error.
#[test]
fn every_pytorch_model_runs_on_the_device_it_was_moved_to() {
    let script = "\
        import torch\n\
        from torch.utils._python_dispatch import TorchDispatchMode\n\
        from torch.utils._pytree import tree_flatten\n\
        from trajhost.backbones import BACKBONES, build_backbone\n\
        from trajhost.heads import UnifiedModel\n\
        class MixedDevices(TorchDispatchMode):\n\
        \x20   def __init__(self):\n\
        \x20       super().__init__()\n\
        \x20       self.mixed = set()\n\
        \x20   def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n\
        \x20       flat, _ = tree_flatten((args, kwargs or {}))\n\
        \x20       if len({t.device for t in flat if isinstance(t, torch.Tensor) and t.dim() > 0}) > 1:\n\
        \x20           self.mixed.add(str(func))\n\
        \x20       return func(*args, **(kwargs or {}))\n\
        for name in sorted(BACKBONES):\n\
        \x20   model = UnifiedModel(build_backbone(name), 32, 'pinhole').to('meta')\n\
        \x20   with MixedDevices() as mode:\n\
        \x20       lenses = torch.full((2, 2), 2.1, dtype=torch.float64)  # Split.focal's rows, on the CPU\n\
        \x20       logits, position, track = model(torch.empty(2, 32, 3, 64, 64, device='meta'), lenses)\n\
        \x20       (logits.sum() + position.sum() + track.sum()).backward()\n\
        \x20   assert not mode.mixed, f'{name}: {sorted(mode.mixed)} given tensors on two devices'\n\
        \x20   print(name, tuple(position.shape), position.device)\n";
    let output = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", workspace().join("python"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let lines = String::from_utf8_lossy(&output.stdout).into_owned();
    for name in ["i3d", "magvit", "slowfast", "transformer"] {
        assert!(lines.contains(&format!("{name} (2, 3) meta")), "{lines}");
    }
}

/// A dataset folder from someone else: the package reads only the shard files inside it, and a
/// manifest naming any other file is refused, naming it.
#[test]
fn the_package_reads_no_file_a_manifest_names_outside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = copy_of_tiny_dataset(dir.path());
    let manifest = data.join("manifest.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    json["shards"][0]["file"] = "../secret.safetensors".into();
    std::fs::write(&manifest, json.to_string()).unwrap();
    let message = split_refused(&data);
    assert!(
        message.contains("'../secret.safetensors'") && message.contains("not a file name"),
        "{message}"
    );
}

/// The tiny dataset copied into `dir/data`, to damage.
fn copy_of_tiny_dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    for entry in std::fs::read_dir(tiny_dataset()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
    }
    data
}

/// `trajhost.Split(data, 'all')` fails; what it said.
fn split_refused(data: &Path) -> String {
    let output = Command::new(venv_python())
        .args([
            "-c",
            "import sys, trajhost; trajhost.Split(sys.argv[1], 'all')",
        ])
        .arg(data)
        .env("PYTHONPATH", workspace().join("python"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    text(&output)
}

/// A shard whose sample has a K that is no lens (a principal point at 0, so every focal length
/// infinite) is refused naming the file and the sample, as the host refuses it.
#[test]
fn the_package_refuses_a_sample_whose_intrinsics_are_no_lens() {
    let dir = tempfile::tempdir().unwrap();
    let data = copy_of_tiny_dataset(dir.path());
    // Sample 2's principal point cx at 0.
    set_intrinsic(&data.join("shard-00000.safetensors"), 2, 2, 0.0);
    let message = split_refused(&data);
    assert!(
        message.contains("shard-00000.safetensors")
            && message.contains("sample 2's intrinsics are no pinhole lens"),
        "{message}"
    );
}

#[test]
fn exports_of_nothing_or_onto_something_are_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "magvit",
        "",
        (PositionHead::Direct, Background::Keep, Colour::Rgb),
    );
    let run_arg = run.to_str().unwrap();

    // A folder that already holds something is left as it was.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let refused = |run: &str, out: &Path, needles: &[&str]| {
        fails(&args!["export", "--run", run, "--out", out], needles)
    };
    refused(run_arg, &busy, &["busy", "not empty"]);
    assert_eq!(
        std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
        "mine"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "mine").unwrap();
    refused(run_arg, &file, &["not a folder"]);

    // Into the run folder itself.
    let inside = run.join("export");
    refused(run_arg, &inside, &["run folder"]);
    assert!(!inside.exists());

    // A folder with no checkpoint, and a run of a backbone the package does not have.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("out");
    refused(empty.to_str().unwrap(), &out, &["no complete checkpoint"]);
    let template = common::trained_template_run(1);
    let template_run = template.path().join("run");
    refused(template_run.to_str().unwrap(), &out, &["'template'", "i3d"]);
    assert!(!out.exists());

    // An empty folder is fine, and holds exactly the two files, nothing temporary beside it.
    let empty_out = dir.path().join("empty-out");
    std::fs::create_dir(&empty_out).unwrap();
    succeeds(&args!["export", "--run", run_arg, "--out", empty_out]);
    let mut names: Vec<String> = std::fs::read_dir(&empty_out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["model.json", "model.safetensors"]);
    let stray = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".export-")
        })
        .count();
    assert_eq!(stray, 0);
    let info: Value =
        serde_json::from_slice(&std::fs::read(empty_out.join("model.json")).unwrap()).unwrap();
    assert_eq!(info["backbone"], "magvit");
    assert_eq!(info["frames"], 8);
    assert_eq!(info["epoch"], 1);
    assert_eq!(info["background"], "keep");

    // A model.json from someone else naming a background the package does not know is refused,
    // naming the file and the value, before any model is built.
    let mut unknown = info.clone();
    unknown["background"] = "sideways".into();
    std::fs::write(
        empty_out.join("model.json"),
        serde_json::to_vec(&unknown).unwrap(),
    )
    .unwrap();
    let output = Command::new(venv_python())
        .arg("-c")
        .arg(
            "import sys, trajhost
try:
    trajhost.load(sys.argv[1])
except ValueError as e:
    print(e)
",
        )
        .arg(&empty_out)
        .env("PYTHONPATH", workspace().join("python"))
        .output()
        .unwrap();
    let said = text(&output);
    assert!(
        said.contains("model.json") && said.contains("'sideways'"),
        "{said}"
    );
}
