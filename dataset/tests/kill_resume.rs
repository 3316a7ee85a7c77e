//! Resume after a real SIGKILL of the generator process: the finished folder must be byte for
//! byte what an uninterrupted run writes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trajhost_dataset::shard::read_shard;
use trajhost_dataset::DEFAULT_CONFIG_RON;

const BIN: &str = env!("CARGO_BIN_EXE_trajhost-data");

/// 12 shards of 100 samples: long enough (about a second) to be killed part-way.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let text = DEFAULT_CONFIG_RON
        .replace("samples: 10000", "samples: 1200")
        .replace("frames: 32", "frames: 16")
        .replace("width: 64", "width: 48")
        .replace("height: 64", "height: 48")
        .replace("checkpoint_interval: 2000", "checkpoint_interval: 100");
    let path = dir.join("data.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn generate(config: &Path, out: &Path, workers: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["generate", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--workers", workers])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn shard_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    v.sort();
    v
}

#[test]
fn killed_generation_resumes_to_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let (killed, clean) = (tmp.path().join("killed"), tmp.path().join("clean"));

    let mut child = generate(&config, &killed, "1").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !killed.join("shard-00000.safetensors").exists() {
        assert!(Instant::now() < deadline, "no shard appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "generator exited early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let manifest = std::fs::read_to_string(killed.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"complete\": false"),
        "the generator finished before it was killed; the workload is too small"
    );
    let partial = shard_files(&killed);
    assert!(
        partial.len() < 12,
        "{} shards present after the kill",
        partial.len()
    );
    // A shard is either complete or absent: every file present reads back whole.
    for path in &partial {
        read_shard(path).unwrap_or_else(|e| panic!("partial shard after kill: {e}"));
    }

    assert!(generate(&config, &killed, "2").status().unwrap().success());
    assert!(generate(&config, &clean, "2").status().unwrap().success());

    let (a, b) = (shard_files(&killed), shard_files(&clean));
    assert_eq!(a.len(), 12);
    assert_eq!(
        a.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        b.iter().map(|p| p.file_name()).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
    let read = |d: &Path| std::fs::read(d.join("manifest.json")).unwrap();
    assert_eq!(read(&killed), read(&clean));
    // No temp files survive the resumed run.
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cli_reports_config_errors_and_failed_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.ron");
    std::fs::write(&bad, DEFAULT_CONFIG_RON.replace("frames: 32", "frames: 0")).unwrap();
    let out = Command::new(BIN)
        .args(["generate", "--config"])
        .arg(&bad)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.ron:9:5") && err.contains("`frames`"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("check")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "check of a folder without a manifest must fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));
}

#[test]
fn generate_says_up_front_how_much_disk_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let out = tmp.path().join("data");
    let output = Command::new(BIN)
        .args(["generate", "--samples", "250", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let mut cfg = trajhost_dataset::DataConfig::from_file(&config).unwrap();
    cfg.samples = 250;
    let needed = trajhost_dataset::resources::dataset_bytes(&cfg).unwrap();
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("250 samples; generating needs")
            && first.contains(&format!("({needed} bytes) of disk"))
            && first.contains("free on the disk of"),
        "{err}"
    );
    // What it said is what it wrote, up to the room left for each of the 3 shard headers.
    let written: u64 = shard_files(&out)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        written <= needed && needed - written <= 3 * 4096,
        "{written} {needed}"
    );
}
