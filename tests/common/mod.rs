//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod python;

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

/// A command-line argument: a string, or a path (the tests' paths are UTF-8).
pub trait Arg {
    fn arg(&self) -> String;
}

impl Arg for str {
    fn arg(&self) -> String {
        self.to_string()
    }
}

impl Arg for String {
    fn arg(&self) -> String {
        self.clone()
    }
}

impl Arg for Path {
    fn arg(&self) -> String {
        self.to_str().expect("a UTF-8 path").to_string()
    }
}

impl Arg for PathBuf {
    fn arg(&self) -> String {
        self.as_path().arg()
    }
}

impl<T: Arg + ?Sized> Arg for &T {
    fn arg(&self) -> String {
        (**self).arg()
    }
}

/// `args!["eval", "--run", run]`: command-line arguments from strings and paths alike.
#[allow(unused_macros)]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        [$($crate::common::Arg::arg(&$arg)),*]
    };
}
#[allow(unused_imports)]
pub(crate) use args;

/// Runs the trajhost binary with `args` and extra environment variables, in the workspace,
/// under umask 022 (the usual one, whatever the test runner's is: file modes are checked).
pub fn trajhost(args: &[impl AsRef<str>], env: &[(&str, &str)]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_trajhost"));
    command
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(workspace());
    for (k, v) in env {
        command.env(k, v);
    }
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    command.output().expect("trajhost runs")
}

/// `trajhost train` with `plugin`, the tiny dataset, `config`, `--out out` and `extra`.
#[allow(dead_code)]
pub fn train_cli(plugin: &str, config: &Path, out: &Path, extra: &[&str]) -> Output {
    trajhost(&train_args(plugin, config, out, extra), &[])
}

/// Runs `trajhost args`, which must succeed; its standard output.
pub fn succeeds(args: &[impl AsRef<str>]) -> String {
    let output = trajhost(args, &[]);
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `trajhost args`, which must be refused cleanly, naming every needle
/// ([`assert_clean_failure`]); the message.
pub fn fails(args: &[impl AsRef<str>], needles: &[&str]) -> String {
    assert_clean_failure(&trajhost(args, &[]), needles)
}

/// Judges a refused command: an ordinary exit code (no signal, no panic) and a message holding
/// every needle (the file, the field, the reason); returns the message.
#[allow(dead_code)]
pub fn assert_clean_failure(output: &Output, needles: &[&str]) -> String {
    let message = text(output);
    let code = output.status.code();
    assert!(
        matches!(code, Some(c) if (1..128).contains(&c)),
        "exit {:?}: {message}",
        output.status
    );
    assert!(!message.contains("panicked"), "{message}");
    assert_contains_all(&message, needles);
    message
}

/// `trajhost plugin check plugin --config config` (no `--config` when empty): whether every
/// check passed, and the report.
#[allow(dead_code)]
pub fn plugin_check(plugin: &str, config: &str) -> (bool, String) {
    let mut args = vec!["plugin", "check", plugin];
    if !config.is_empty() {
        args.extend(["--config", config]);
    }
    let out = trajhost(&args, &[]);
    (out.status.success(), text(&out))
}

/// Copies `from` (a file or a folder, with its modes) to `to` (`cp -a`: into `to` when it is a
/// folder).
pub fn copy(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Asserts that `text` holds every needle, naming the first one missing.
pub fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing: {text}");
    }
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

/// Overwrites entry `entry` (row-major) of sample `sample`'s 3×3 K in the shard file `shard`,
/// in place: a damaged camera for tests of untrusted datasets.
pub fn set_intrinsic(shard: &Path, sample: usize, entry: usize, value: f32) {
    let mut bytes = std::fs::read(shard).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = 8 + n + header["intrinsics"]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = start + 36 * sample + 4 * entry;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(shard, bytes).unwrap();
}

/// Every checkpoint JSON of `run`, as JSON values, handed to `change` and written back: a run
/// folder from someone else.
pub fn edit_checkpoints(run: &Path, change: impl Fn(&mut serde_json::Value)) {
    for entry in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let mut meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            change(&mut meta);
            std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
        }
    }
}

/// Sets this process's soft and hard `resource` limit (a `libc::RLIMIT_*`) to `value`: for a
/// `Command::pre_exec`, between fork and exec (setrlimit is async-signal-safe).
pub fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: a plain system call on a value on the stack.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

/// A folder holding `run/`: the template plugin trained `epochs` epochs on the tiny dataset
/// through the binary (shared by the tests of one binary behind a `OnceLock`).
pub fn trained_template_run(epochs: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    train_template(dir.path(), &tiny_train_config("validation.ron", epochs));
    dir
}

/// Trains the template backbone on the tiny dataset with `config` into `<dir>/run` (the config
/// written to `<dir>/train.ron`) and returns that folder.
pub fn train_template(dir: &Path, config: &trajhost::train::TrainConfig) -> PathBuf {
    let config_path = dir.join("train.ron");
    std::fs::write(&config_path, ron::ser::to_string(config).unwrap()).unwrap();
    let run = dir.join("run");
    let template = plugin("template").display().to_string();
    succeeds(&train_args(&template, &config_path, &run, &[]));
    run
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

// ---- run folders made by hand (for the readers: monitor, compare, serve) ----

/// One split's metrics: `accuracy`, `mse` and `loss` as given, the rest derived from them.
pub fn split_metrics(
    accuracy: f64,
    mse: f64,
    loss: f64,
) -> trajhost::rundir::metrics::SplitMetrics {
    trajhost::rundir::metrics::SplitMetrics {
        samples: 100,
        loss,
        classification_loss: loss / 2.0,
        prediction_loss: loss / 2.0,
        tracking_loss: loss / 4.0,
        accuracy,
        per_class_accuracy: [accuracy, accuracy - 0.05, accuracy + 0.05, accuracy],
        confusion: [[20, 3, 1, 1], [2, 19, 2, 2], [0, 1, 23, 1], [1, 2, 0, 22]],
        mse,
        mse_per_axis: [mse, mse * 0.5, mse * 1.5],
    }
}

/// Epoch `epoch`'s record, validation at `val_accuracy` (training 5 points above).
pub fn epoch_record(
    epoch: usize,
    phase: &str,
    val_accuracy: f64,
) -> trajhost::rundir::metrics::EpochRecord {
    let loss = 1.0 / epoch as f64;
    trajhost::rundir::metrics::EpochRecord {
        epoch,
        phase: phase.into(),
        lr: 1e-3,
        train: split_metrics(val_accuracy + 0.05, 0.1 / epoch as f64, loss * 0.9),
        val: split_metrics(val_accuracy, 0.12 / epoch as f64, loss),
        elapsed_seconds: 10.0 * epoch as f64,
        train_videos_per_second: 100.0,
    }
}

/// metrics.jsonl's text for `records`.
pub fn jsonl(records: &[trajhost::rundir::metrics::EpochRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

/// A finished phase's metrics file (`final_metrics.json` unless `phase` is validation).
pub fn final_metrics(
    run: &str,
    phase: &str,
    accuracy: f64,
    mse: f64,
    epochs: usize,
) -> trajhost::rundir::metrics::FinalMetrics {
    trajhost::rundir::metrics::FinalMetrics {
        run: run.into(),
        phase: phase.into(),
        plugin: "template".into(),
        epochs_trained: epochs,
        stop_reason: trajhost::rundir::metrics::StopReason::Completed,
        test: split_metrics(accuracy, mse, 0.5),
        val: split_metrics(accuracy + 0.01, mse * 1.1, 0.55),
        baselines: trajhost::rundir::metrics::Baselines {
            mean_position_mse: 0.21,
            constant_velocity_mse: 0.083,
            chance_accuracy: 0.25,
            curve_fit_mse: Some(0.00056),
            curve_fit_mse_per_class: Some([0.0004, 0.0005, 0.0009, 0.0005]),
        },
        wall_seconds: 95.0 * epochs as f64,
        train_videos_per_second: 123.45,
        parameter_count: 1_234_567,
        checkpoint_bytes: 9_876_543,
        data: None,
        seed: None,
        setup: None,
    }
}

/// PROGRESS.txt as the trainer writes it.
pub fn progress_text(run: &str, phase: &str, status: &str, epoch: &str, eta: &str) -> String {
    format!(
        "run: {run}\nphase: {phase}\nstatus: {status}\nepoch: {epoch}\nstep: 3/7\nclassification_accuracy: -\nprediction_mse: -\ntotal_loss: -\nelapsed: 1.0 min\neta: {eta}\nlast_update: 2026-01-01 00:00:00 UTC\n"
    )
}

// ---- `trajhost serve` and plain HTTP ----

/// A `trajhost serve` child, listening where it printed; killed when dropped.
pub struct Served {
    child: std::process::Child,
    /// Its stdout, kept open so that what it prints later does not meet a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    /// `127.0.0.1:PORT` (a wildcard address it bound is reached through loopback).
    pub addr: String,
}

impl Served {
    /// Starts `trajhost serve root --addr addr extra...` with `env` and waits for its address.
    pub fn start(root: &Path, addr: &str, extra: &[&str], env: &[(&str, &str)]) -> Served {
        use std::io::BufRead;
        let mut command = Command::new(env!("CARGO_BIN_EXE_trajhost"));
        command
            .arg("serve")
            .arg(root)
            .args(["--addr", addr])
            .args(extra)
            .env_remove("TRAJHOST_SERVE_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("trajhost serve starts");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        if line.is_empty() {
            let output = child.wait_with_output().unwrap();
            panic!("trajhost serve did not start: {}", text(&output));
        }
        // `serving ROOT at http://HOST:PORT/...`
        let start = line.find("http://").expect("an address") + "http://".len();
        let bound = &line[start..start + line[start..].find('/').unwrap()];
        let port = bound.rsplit_once(':').unwrap().1;
        Served {
            child,
            _stdout: stdout,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, headers (names lower-cased), body.
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `method target` sent as written (no client normalises the path), HTTP/1.0 so the answer
/// ends with the connection; `Host` is `addr` unless `headers` names one.
pub fn http(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Http {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{method} {target} HTTP/1.0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_string(),
    }
}

pub fn get(addr: &str, target: &str) -> Http {
    http(addr, "GET", target, &[])
}

// ---- headless Chromium, driven over the DevTools protocol on a pipe ----

/// Chromium's binary: `$CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// One headless Chromium with one page. `--remote-debugging-pipe`: the browser reads DevTools
/// commands on fd 3 and writes answers on fd 4, each a JSON text ended by a NUL byte — no
/// WebSocket client needed.
pub struct Browser {
    child: std::process::Child,
    commands: std::fs::File,
    answers: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(exe: &Path) -> Browser {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        let pipe = || {
            let mut fds = [0; 2];
            // Close-on-exec: no other child (the server under test) inherits them.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            (fds[0], fds[1])
        };
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new(exe);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-pipe",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        unsafe {
            command.pre_exec(move || {
                // Copies above 10 first, so that dup2 onto 3 and 4 never meets its own source.
                let (a, b) = (
                    libc::fcntl(browser_reads, libc::F_DUPFD, 10),
                    libc::fcntl(browser_writes, libc::F_DUPFD, 10),
                );
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        unsafe {
            libc::close(browser_reads);
            libc::close(browser_writes);
        }
        let (send, answers) = std::sync::mpsc::channel();
        let mut from = unsafe { std::fs::File::from_raw_fd(we_read) };
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buffer = [0u8; 65536];
            while let Ok(n @ 1..) = from.read(&mut buffer) {
                pending.extend_from_slice(&buffer[..n]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(value) = serde_json::from_slice(&message[..end]) {
                        if send.send(value).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            commands: unsafe { std::fs::File::from_raw_fd(we_write) },
            answers,
            next_id: 0,
            session: None,
            _profile: profile,
        }
    }

    /// Sends a DevTools command (to the page once one is open) and waits for its answer.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::Write;
        self.next_id += 1;
        let id = self.next_id;
        let mut message = serde_json::json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let answer = self
                .answers
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url` in a new page; later calls go to that page.
    pub fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached = self.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// A screenshot of the element `selector` (scrolled into view first), decoded.
    pub fn screenshot(&mut self, selector: &str) -> image::RgbaImage {
        use base64::Engine;
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.scrollIntoView(); \
             const r = e.getBoundingClientRect(); \
             return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; }})()"
        ));
        let [x, y, width, height] = [0, 1, 2, 3].map(|i| rect[i].as_f64().unwrap());
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png",
                "clip": { "x": x, "y": y, "width": width, "height": height, "scale": 1 } }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        image::load_from_memory(&png).unwrap().to_rgba8()
    }

    /// Evaluates `expression` every 100 ms until `done` accepts its value; the last value.
    pub fn wait_for(
        &mut self,
        expression: &str,
        within: std::time::Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let value = self.eval(expression);
            if done(&value) || std::time::Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
