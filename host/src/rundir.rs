//! Reading run folders (`results/<run>/`) the way other tools see them: only through the files
//! a run writes, so the readers work on a folder synced from another machine.

use crate::train::outputs::FinalMetrics;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const VALIDATION_METRICS: &str = "validation_metrics.json";
pub const FINAL_METRICS: &str = "final_metrics.json";
pub const GATE: &str = "gate.json";
pub const OUTCOME: &str = "sweep_outcome.json";

/// Whether `dir` looks like a run folder: it has any of the files a run writes.
pub fn is_run_dir(dir: &Path) -> bool {
    dir.is_dir()
        && [
            "PROGRESS.txt",
            "metrics.jsonl",
            VALIDATION_METRICS,
            FINAL_METRICS,
            "run.log",
            OUTCOME,
        ]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Run folders among `paths`: a run folder is taken as is, another folder is searched one level
/// down (so `results/` and `results/*` both work); files and other entries are skipped.
/// Sorted by path, duplicates removed.
pub fn expand_run_dirs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if is_run_dir(path) {
            found.push(path.clone());
        } else if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                found.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| is_run_dir(p)),
                );
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A run's name: its folder's name.
pub fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn validation_metrics(dir: &Path) -> Result<Option<FinalMetrics>> {
    read_json(&dir.join(VALIDATION_METRICS))
}

pub fn final_metrics(dir: &Path) -> Result<Option<FinalMetrics>> {
    read_json(&dir.join(FINAL_METRICS))
}

/// `PROGRESS.txt` as key → value (empty when missing).
pub fn read_progress(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join("PROGRESS.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The timestamp of the last `[YYYY-MM-DD HH:MM:SS] ...` line of a log, as Unix seconds.
pub fn last_log_time(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let stamp = l.strip_prefix('[')?.get(..19)?;
        parse_utc_timestamp(stamp)
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC; an optional trailing ` UTC` is ignored) to Unix seconds.
pub fn parse_utc_timestamp(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches("UTC").trim();
    let (date, time) = text.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `outputs::utc_timestamp`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::outputs::utc_timestamp;

    #[test]
    fn timestamps_round_trip() {
        for t in [0, 951_782_400, 1_795_700_000, 4_102_444_799] {
            assert_eq!(parse_utc_timestamp(&utc_timestamp(t)), Some(t));
        }
        assert_eq!(
            parse_utc_timestamp("2026-11-26 13:33:20 UTC"),
            Some(1_795_700_000)
        );
        assert_eq!(parse_utc_timestamp("yesterday"), None);
    }
}
