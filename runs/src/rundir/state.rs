//! A run's state as its folder tells it: `PROGRESS.txt`'s status, unless the sweep recorded a
//! failure of the run's process after the run's last log line (a crashed trainer cannot say so
//! itself).

use super::progress::{self, RunState};
use super::{log, outcome};

pub struct Observed {
    pub state: RunState,
    /// Why the last sweep attempt failed: its exit and last error line.
    pub failure: Option<String>,
    /// Unix time of the last line of `run.log` (a heartbeat comes every 30 s while training).
    pub last_log: Option<u64>,
}

pub fn observe(dir: &std::path::Path) -> Observed {
    let last_log = log::last_line_time(dir);
    let failure = outcome::read(dir)
        .ok()
        .flatten()
        .filter(|o| o.status == outcome::Status::Failed)
        // A failure recorded after the run's last log line is the latest word on it.
        .filter(|o| last_log.is_none_or(|t| t <= o.finished_unix + 5))
        .map(|o| {
            let reason = o.reason.unwrap_or_default();
            let line = reason
                .lines()
                .rev()
                .find(|l| l.contains("error"))
                .or_else(|| reason.lines().last())
                .unwrap_or("")
                .trim()
                .to_string();
            format!("{}: {line}", o.exit.unwrap_or_default())
        });
    let state = match failure {
        Some(_) => RunState::Failed,
        None => progress::read(dir).state.unwrap_or(RunState::Waiting),
    };
    Observed {
        state,
        failure,
        last_log,
    }
}
