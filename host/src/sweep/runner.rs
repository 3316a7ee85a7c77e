//! Runs a sweep: one `trajhost train` child process per run, all at once (or `max_parallel` at
//! a time), each with its share of the cores and its output in `<run>/train.out`.
//!
//! A run whose metrics JSON for the phase already exists is skipped; any other resumes from
//! its newest checkpoint (`--resume auto`). A run that fails is reported and the others go on.
//! Ctrl-C / SIGTERM reach every child (each checkpoints and exits), and no new run starts.

use crate::atomic::write_json;
use crate::clock::{unix_now, utc_timestamp};
use crate::config::Phase;
use crate::config::{DataSpec, RunSpec, SweepConfig, TrainConfig};
use crate::format;
use crate::rundir::metrics;
use crate::rundir::outcome::{self, RunOutcome, Status};
use crate::rundir::TRAIN_OUTPUT;
use crate::stop;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `<results>/sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub phase: Phase,
    pub config: PathBuf,
    pub threads: usize,
    pub parallel: usize,
    pub runs: Vec<RunOutcome>,
}

impl SweepReport {
    pub fn failed(&self) -> Vec<&RunOutcome> {
        self.runs
            .iter()
            .filter(|r| r.status == Status::Failed)
            .collect()
    }

    /// Runs stopped (or never started) because the sweep was interrupted: resumable.
    pub fn interrupted(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.status == Status::Interrupted)
            .count()
    }

    /// A line per run, then one per failure with its reason.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for r in &self.runs {
            let status = r.status.describe();
            text += &format!(
                "  {:<14} {:<11} {status}{}\n",
                r.name,
                r.plugin,
                if r.status == Status::Finished || r.status == Status::Failed {
                    format!(" after {}", format::seconds(r.seconds))
                } else {
                    String::new()
                }
            );
        }
        for r in self.failed() {
            text += &format!(
                "\n{} failed ({}); output in {}:\n{}\n",
                r.name,
                r.exit.as_deref().unwrap_or("?"),
                r.output.display(),
                r.reason.as_deref().unwrap_or("").trim_end()
            );
        }
        text
    }
}

pub struct SweepOptions {
    pub phase: Phase,
    /// Overrides the config's `threads`.
    pub threads: Option<usize>,
    /// Overrides the config's `max_parallel`.
    pub max_parallel: Option<usize>,
    /// Only these runs (all when empty).
    pub only: Vec<String>,
    /// Where to write the sweep's summary (`<results>/sweep.json`); None = nowhere, as for a
    /// sweep of selected runs (other machines may be writing theirs). Each run's
    /// `sweep_outcome.json` is written regardless.
    pub summary: Option<PathBuf>,
    /// The `trajhost` binary to run (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// Where `sweep.json` points back to.
    pub config_path: PathBuf,
}

/// Whether `dir` already holds this phase's metrics.
pub fn finished(dir: &Path, config: &TrainConfig) -> bool {
    matches!(metrics::read_phase(dir, &config.phase), Ok(Some(_)))
}

struct Running {
    spec: RunSpec,
    child: Child,
    started: Instant,
    output: PathBuf,
    /// Where this attempt's output starts in `output`.
    output_offset: u64,
    threads: usize,
    signalled: bool,
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How a sweep shares its cores: `threads` (`--threads`, else the config's, else this
/// machine's cores) split evenly between the runs under way, at most `max_parallel` of
/// `runs`. Returns (total threads, runs at a time, threads per run).
pub fn thread_share(
    threads: Option<usize>,
    max_parallel: Option<usize>,
    runs: usize,
) -> (usize, usize, usize) {
    let total = threads.unwrap_or_else(available_cores).max(1);
    let parallel = max_parallel.unwrap_or(usize::MAX).min(runs).max(1);
    (total, parallel, (total / parallel).max(1))
}

pub fn run_sweep(sweep: &SweepConfig, options: &SweepOptions) -> Result<SweepReport> {
    let config_path = sweep.config_for(options.phase);
    let train_config = TrainConfig::load(config_path)?;
    // Checked before any run starts: the folder exists, or the data config reads and checks.
    match DataSpec::parse(&sweep.data) {
        DataSpec::Stored(dir) if !dir.is_dir() => bail!(
            "the sweep's data folder {} does not exist (make it with `trajhost data generate --out {}`)",
            dir.display(),
            dir.display()
        ),
        DataSpec::Procedural(Some(config)) => {
            trajhost_dataset::DataConfig::from_file(&config)?;
        }
        _ => {}
    }
    std::fs::create_dir_all(&sweep.results)
        .with_context(|| format!("creating {}", sweep.results.display()))?;
    stop::install_handler();

    let selected = sweep.select(&options.only)?;
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    let mut queue = VecDeque::new();
    for spec in selected {
        let dir = sweep.run_dir(&spec.name);
        if finished(&dir, &train_config) {
            eprintln!(
                "[sweep] {}: {} already exists, skipped",
                spec.name,
                dir.join(metrics::final_metrics_file(&train_config.phase))
                    .display()
            );
            outcomes.push(outcome(&spec, options.phase, Status::Skipped, &dir, 0, 0.0));
        } else {
            queue.push_back(spec);
        }
    }
    let (total_threads, parallel, threads) = thread_share(
        options.threads.or(sweep.threads),
        options.max_parallel.or(sweep.max_parallel),
        queue.len(),
    );
    let mut report = SweepReport {
        phase: options.phase,
        config: options.config_path.clone(),
        threads: total_threads,
        parallel,
        runs: outcomes,
    };
    let write_summary = |report: &SweepReport| -> Result<()> {
        if let Some(path) = &options.summary {
            write_json(path, report)?;
        }
        Ok(())
    };
    if !queue.is_empty() {
        eprintln!(
            "[sweep] {} phase: {} runs, {parallel} at a time, {threads} threads each",
            train_config.phase,
            queue.len()
        );
    }

    let mut running: Vec<Running> = Vec::new();
    loop {
        while running.len() < parallel && !stop::requested() {
            let Some(spec) = queue.pop_front() else { break };
            let dir = sweep.run_dir(&spec.name);
            if let Some(holder) = crate::atomic::lock_holder(&dir) {
                // A run still training (a killed sweep's child finishing its checkpoint, or
                // a train started by hand): not a failure, and not this sweep's to touch.
                let mut o = outcome(&spec, options.phase, Status::Busy, &dir, threads, 0.0);
                o.reason = Some(format!(
                    "{} is in use by another trajhost process ({holder}); left alone, re-run the sweep when it has ended",
                    dir.display()
                ));
                eprintln!(
                    "[sweep] {}: {}",
                    spec.name,
                    o.reason.as_deref().unwrap_or("")
                );
                report.runs.push(o);
                write_summary(&report)?;
                continue;
            }
            match start(sweep, options, config_path, &spec, threads) {
                Ok(r) => running.push(r),
                Err(e) => {
                    let dir = sweep.run_dir(&spec.name);
                    let mut o = outcome(&spec, options.phase, Status::Failed, &dir, threads, 0.0);
                    o.reason = Some(format!("{e:#}"));
                    eprintln!("[sweep] {} FAILED to start: {e:#}", spec.name);
                    record(&dir, &o);
                    report.runs.push(o);
                    write_summary(&report)?;
                }
            }
        }
        if stop::requested() {
            for r in running.iter_mut().filter(|r| !r.signalled) {
                // The child checkpoints and exits with `INTERRUPTED_EXIT_CODE` (the terminal
                // may have signalled it too).
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(r.child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                r.signalled = true;
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].child.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let r = running.swap_remove(i);
                    let o = finish(sweep, options.phase, &train_config, r, status);
                    report.runs.push(o);
                    write_summary(&report)?;
                }
            }
        }
        if running.is_empty() && (queue.is_empty() || stop::requested()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for spec in queue {
        let dir = sweep.run_dir(&spec.name);
        let mut o = outcome(
            &spec,
            options.phase,
            Status::Interrupted,
            &dir,
            threads,
            0.0,
        );
        o.reason = Some("not started: the sweep was interrupted".into());
        report.runs.push(o);
    }
    // Report in the config's order.
    let order: Vec<&str> = sweep.runs.iter().map(|r| r.name.as_str()).collect();
    report
        .runs
        .sort_by_key(|r| order.iter().position(|n| *n == r.name));
    write_summary(&report)?;
    Ok(report)
}

fn outcome(
    spec: &RunSpec,
    phase: Phase,
    status: Status,
    dir: &Path,
    threads: usize,
    seconds: f64,
) -> RunOutcome {
    RunOutcome {
        name: spec.name.clone(),
        plugin: spec.plugin.clone(),
        phase,
        status,
        exit: None,
        reason: None,
        threads,
        seconds,
        output: dir.join(TRAIN_OUTPUT),
        finished_unix: unix_now(),
    }
}

fn record(dir: &Path, outcome: &RunOutcome) {
    if let Err(e) = outcome::write(dir, outcome) {
        eprintln!(
            "[sweep] {}: could not record its outcome: {e:#}",
            outcome.name
        );
    }
}

fn start(
    sweep: &SweepConfig,
    options: &SweepOptions,
    config_path: &Path,
    spec: &RunSpec,
    threads: usize,
) -> Result<Running> {
    let dir = sweep.run_dir(&spec.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Every attempt and phase appends to the same file, after a header line.
    let output = dir.join(TRAIN_OUTPUT);
    let mut out = trajhost_fs::open_append(&output)?;
    let output_offset = out.metadata()?.len();
    {
        use std::io::Write;
        writeln!(
            out,
            "=== [{}] trajhost sweep: {} with {} ({} threads)",
            utc_timestamp(unix_now()),
            spec.name,
            config_path.display(),
            threads
        )?;
    }
    let err = out.try_clone()?;
    let mut command = Command::new(&options.exe);
    command
        .arg("train")
        .arg("--plugin")
        .arg(&spec.plugin)
        .arg("--data")
        .arg(&sweep.data)
        .arg("--config")
        .arg(config_path)
        .arg("--out")
        .arg(&dir)
        .args(["--resume", "auto", "--threads", &threads.to_string()])
        .args(["--device", &sweep.device]);
    if let Some(backbone) = &spec.backbone {
        command.arg("--backbone").arg(backbone);
    }
    if let Some(seed) = spec.seed {
        command.arg("--seed").arg(seed.to_string());
    }
    let sweep_pid = std::process::id() as i32;
    // SAFETY: prctl, getppid and kill are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // The child is told to checkpoint and stop when the sweep dies, kill -9 included,
            // instead of training on as an orphan that a re-run would race.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != sweep_pid {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            Ok(())
        });
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("running {}", options.exe.display()))?;
    eprintln!(
        "[sweep] {}: started (pid {}, {threads} threads), output in {}",
        spec.name,
        child.id(),
        output.display()
    );
    Ok(Running {
        spec: spec.clone(),
        child,
        started: Instant::now(),
        output,
        output_offset,
        threads,
        signalled: false,
    })
}

fn finish(
    sweep: &SweepConfig,
    phase: Phase,
    config: &TrainConfig,
    r: Running,
    status: std::process::ExitStatus,
) -> RunOutcome {
    use std::os::unix::process::ExitStatusExt;
    let dir = sweep.run_dir(&r.spec.name);
    let seconds = r.started.elapsed().as_secs_f64();
    let exit = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown exit".into(),
    };
    let resumable = status.code() == Some(i32::from(crate::stop::INTERRUPTED_EXIT_CODE));
    let state = if !status.success() && !resumable {
        Status::Failed
    } else if finished(&dir, config) {
        Status::Finished
    } else {
        Status::Interrupted
    };
    let mut o = outcome(&r.spec, phase, state, &dir, r.threads, seconds);
    o.exit = Some(exit.clone());
    o.output = r.output.clone();
    match state {
        Status::Failed => {
            let reason = last_lines(&r.output, r.output_offset, 6);
            eprintln!(
                "[sweep] {}: FAILED ({exit}) after {}:\n{}",
                r.spec.name,
                format::seconds(seconds),
                indent(&reason)
            );
            o.reason = Some(reason);
        }
        Status::Interrupted => {
            o.reason = Some("interrupted; re-run the sweep to resume".into());
            eprintln!("[sweep] {}: interrupted after checkpointing", r.spec.name);
        }
        _ => eprintln!(
            "[sweep] {}: finished in {}",
            r.spec.name,
            format::seconds(seconds)
        ),
    }
    record(&dir, &o);
    o
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` non-empty lines of a file from byte `offset` on (progress-bar carriage
/// returns resolved).
pub fn last_lines(path: &Path, offset: u64, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(b.get(offset as usize..).unwrap_or_default()).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
