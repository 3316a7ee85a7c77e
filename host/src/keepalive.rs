//! `trajhost keepalive [--every 30s] [--log FILE] -- CMD ...`: runs CMD, streams its output
//! (to the terminal and the log), writes a heartbeat line every interval (so an SSH session or
//! a batch system sees life, and a reader of the log can tell a hung job from a busy one),
//! forwards SIGINT/SIGTERM/SIGHUP to CMD, exits with CMD's exit code (128 + N when a signal N
//! ended it), and cleans up whatever CMD left running.
//!
//! CMD runs in a process group of its own; a signal is forwarded to the whole group, and when
//! CMD exits any process of the group still alive gets SIGTERM, then SIGKILL after `grace`.

use crate::clock::{unix_now, utc_timestamp};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `trajhost keepalive`'s arguments.
#[derive(Debug, clap::Args)]
pub struct KeepaliveArgs {
    /// Heartbeat interval (e.g. 30s, 5m, 200ms).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Also append the output and heartbeats to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// How long the command gets to exit after a forwarded signal before SIGKILL.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The shortest heartbeat interval: more often only floods the log.
const MIN_EVERY: Duration = Duration::from_millis(100);

/// The last signal received and not yet forwarded (0 = none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    PENDING.store(signal, Ordering::SeqCst);
}

fn install_handlers() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { signal::sigaction(s, &action) }.context("installing a signal handler")?;
    }
    Ok(())
}

/// The `--log` file; the first write that fails (a full disk, `/dev/full`) is reported at once
/// and keepalive then exits non-zero, so an incomplete log is never taken for a whole one.
struct LogFile {
    file: File,
    path: PathBuf,
    failed: bool,
}

type Log = Arc<Mutex<Option<LogFile>>>;

fn log_bytes(log: &Log, bytes: &[u8]) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    let Some(log) = log.as_mut() else { return };
    if let Err(e) = log.file.write_all(bytes) {
        if !log.failed {
            eprintln!(
                "keepalive: warning: cannot write the log {}: {e}; the command goes on, keepalive will exit non-zero",
                log.path.display()
            );
        }
        log.failed = true;
    }
}

fn log_line(log: &Log, line: &str) {
    log_bytes(
        log,
        format!("[{}] {line}\n", utc_timestamp(unix_now())).as_bytes(),
    );
}

/// Copies one of CMD's streams, line by line, to ours and to the log.
fn pump(
    stream: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    log: Log,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let _ = to.write_all(&line);
            let _ = to.flush();
            log_bytes(&log, &line);
            line.clear();
        }
    })
}

fn group_alive(pgid: Pid) -> bool {
    signal::killpg(pgid, None).is_ok()
}

/// Runs the command; returns the exit code to exit with.
pub fn run(options: &KeepaliveArgs) -> Result<i32> {
    let Some((program, args)) = options.command.split_first() else {
        bail!("no command given: trajhost keepalive [--every 30s] [--log FILE] -- CMD ...");
    };
    if options.every < MIN_EVERY {
        bail!(
            "--every {} is too short: at most ten heartbeats a second ({} or more)",
            humantime::format_duration(options.every),
            humantime::format_duration(MIN_EVERY)
        );
    }
    let file = match &options.log {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            Some(LogFile {
                file,
                path: path.clone(),
                failed: false,
            })
        }
        None => None,
    };
    let log: Log = Arc::new(Mutex::new(file));
    let shown = options.command.join(" ");
    install_handlers()?;
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let pgid = Pid::from_raw(child.id() as i32);
    log_line(
        &log,
        &format!("keepalive: started pid {}: {shown}", child.id()),
    );
    let pumps = [
        pump(
            child.stdout.take().expect("piped"),
            std::io::stdout(),
            log.clone(),
        ),
        pump(
            child.stderr.take().expect("piped"),
            std::io::stderr(),
            log.clone(),
        ),
    ];

    let started = Instant::now();
    let mut last_beat = Instant::now();
    let mut kill_at: Option<Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            let sig = Signal::try_from(pending).unwrap_or(Signal::SIGTERM);
            log_line(&log, &format!("keepalive: forwarding {sig} to {shown}"));
            let _ = signal::killpg(pgid, sig);
            kill_at.get_or_insert(Instant::now() + options.grace);
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) {
            log_line(
                &log,
                &format!(
                    "keepalive: still running {} s after the signal; SIGKILL",
                    options.grace.as_secs()
                ),
            );
            let _ = signal::killpg(pgid, Signal::SIGKILL);
            kill_at = None;
        }
        if last_beat.elapsed() >= options.every {
            last_beat = Instant::now();
            let line = format!(
                "heartbeat: running for {}: {shown}",
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
            );
            log_line(&log, &line);
            eprintln!("[{}] {line}", utc_timestamp(unix_now()));
        }
        std::thread::sleep(Duration::from_millis(20).min(options.every));
    };

    // Whatever CMD started and left behind goes too.
    if group_alive(pgid) {
        let _ = signal::killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + options.grace;
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if group_alive(pgid) {
            let _ = signal::killpg(pgid, Signal::SIGKILL);
        }
        log_line(&log, "keepalive: stopped the processes CMD left running");
    }
    for p in pumps {
        let _ = p.join();
    }
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    log_line(
        &log,
        &format!(
            "keepalive: {shown} ended ({}) after {}; exit code {code}",
            match status.signal() {
                Some(s) => format!("signal {s}"),
                None => format!("exit code {code}"),
            },
            humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
        ),
    );
    let log_failed = log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|l| l.failed);
    if log_failed && code == 0 {
        eprintln!(
            "keepalive: the command succeeded, but its log is incomplete (see the warning above)"
        );
        return Ok(1);
    }
    Ok(code)
}
