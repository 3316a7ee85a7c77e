//! `run.log`: timestamped lines appended by the trainer, with a heartbeat every 30 s while the
//! process lives, so a watcher (monitor, keepalive) can tell a long epoch from a dead run.

use super::RUN_LOG;
use crate::clock::{parse_utc_timestamp, unix_now, utc_timestamp};
use anyhow::{Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
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
/// Read through [`tail`]: monitors and the dashboard ask every few seconds.
pub fn last_line_time(dir: &Path) -> Option<u64> {
    let text = tail(dir, 64).ok()??;
    text.lines().rev().find_map(|l| {
        let stamp = l.strip_prefix('[')?.get(..19)?;
        parse_utc_timestamp(stamp)
    })
}

/// The last `lines` lines of a run's `run.log` (None when it does not exist). Only the file's
/// last 256 KiB are read: a week-long run's log can be large, and a tail is all a viewer wants.
pub fn tail(dir: &Path, lines: usize) -> Result<Option<String>> {
    const WINDOW: u64 = 256 * 1024;
    let path = dir.join(RUN_LOG);
    let Some(mut file) = super::open_regular(&path)? else {
        return Ok(None);
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(WINDOW)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    // A window that starts mid-file starts mid-line: drop that partial first line.
    let skip = usize::from(start > 0 && all.len() > 1);
    let kept = &all[skip.max(all.len().saturating_sub(lines))..];
    Ok(Some(kept.iter().map(|l| format!("{l}\n")).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(tail(dir.path(), 3).unwrap(), None);
        let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join(RUN_LOG), text).unwrap();
        assert_eq!(
            tail(dir.path(), 2).unwrap().as_deref(),
            Some("line 9\nline 10\n")
        );
        assert_eq!(tail(dir.path(), 100).unwrap().unwrap().lines().count(), 10);
        // A log larger than the window: whole lines only.
        let big: String = (0..40_000).map(|i| format!("heartbeat {i}\n")).collect();
        std::fs::write(dir.path().join(RUN_LOG), big).unwrap();
        let all = tail(dir.path(), usize::MAX).unwrap().unwrap();
        assert!(all.starts_with("heartbeat "), "{}", &all[..40]);
        assert!(all.ends_with("heartbeat 39999\n"));
    }
}
