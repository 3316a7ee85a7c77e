//! `run.log`: timestamped lines appended by the trainer, with a heartbeat every 30 s while the
//! process lives, so a watcher (monitor, keepalive) can tell a long epoch from a dead run.

use super::RUN_LOG;
use crate::clock::{parse_utc_timestamp, unix_now, utc_timestamp};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// An open `run.log` and its heartbeat thread (stopped when dropped).
pub struct RunLog {
    file: Arc<Mutex<std::fs::File>>,
    /// What the heartbeat says the run is doing, e.g. `epoch 3/10 step 5/40`.
    status: Arc<Mutex<String>>,
    stop_heartbeat: Arc<AtomicBool>,
}

impl RunLog {
    /// Creates `dir` if needed and opens its `run.log` for appending.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(RUN_LOG);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let log = RunLog {
            file: Arc::new(Mutex::new(file)),
            status: Arc::new(Mutex::new("starting".into())),
            stop_heartbeat: Arc::new(AtomicBool::new(false)),
        };
        let (file, status, stop) = (
            log.file.clone(),
            log.status.clone(),
            log.stop_heartbeat.clone(),
        );
        std::thread::spawn(move || {
            let tick = Duration::from_millis(250);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= HEARTBEAT {
                    waited = Duration::ZERO;
                    let status = status.lock().unwrap().clone();
                    append(&file, &format!("heartbeat: {status}"));
                }
            }
        });
        Ok(log)
    }

    pub fn line(&self, line: &str) {
        append(&self.file, line);
    }

    pub fn set_status(&self, status: String) {
        *self.status.lock().unwrap() = status;
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.stop_heartbeat.store(true, Ordering::Relaxed);
    }
}

fn append(file: &Mutex<std::fs::File>, line: &str) {
    let mut file = file.lock().unwrap();
    let _ = writeln!(file, "[{}] {line}", utc_timestamp(unix_now()));
}

/// The time of the last `[YYYY-MM-DD HH:MM:SS] ...` line of a run's `run.log`, as Unix seconds.
pub fn last_line_time(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(RUN_LOG)).ok()?;
    text.lines().rev().find_map(|l| {
        let stamp = l.strip_prefix('[')?.get(..19)?;
        parse_utc_timestamp(stamp)
    })
}
