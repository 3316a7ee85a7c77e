//! The monitor's words: the plain-text snapshot of `--once`, and the cells and labels the
//! dashboard shares with it.

use super::read::RunStatus;
use crate::clock::utc_timestamp;
use crate::format::age;
use crate::rundir::progress::RunState;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// A one-line chart of `values` (`▁▂▃▄▅▆▇█`), the last `width` points.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let values = &values[values.len().saturating_sub(width)..];
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    values
        .iter()
        .map(|&v| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            BARS[((t * 7.0).round() as usize).min(7)]
        })
        .collect()
}

/// A run's latest metrics as display text (`-` where unknown), for both views.
pub(super) struct MetricCells {
    pub accuracy: String,
    pub mse: String,
    pub loss: String,
    pub eta: String,
    pub heartbeat: String,
}

impl MetricCells {
    pub fn of(r: &RunStatus) -> Self {
        let dash = || "-".to_string();
        MetricCells {
            accuracy: r
                .val_accuracy
                .map_or_else(dash, |a| format!("{:.1}%", 100.0 * a)),
            mse: r.val_mse.map_or_else(dash, |m| format!("{m:.4}")),
            loss: r.val_loss.map_or_else(dash, |l| format!("{l:.4}")),
            eta: match (&r.eta, r.state) {
                (Some(eta), RunState::Training) => eta.clone(),
                _ => dash(),
            },
            heartbeat: r.heartbeat_age.map_or_else(dash, age),
        }
    }
}

pub(super) fn status_label(r: &RunStatus) -> String {
    let mut s = if r.stale {
        "STALE".to_string()
    } else {
        r.state.to_string()
    };
    if let Some(passed) = r.gate {
        s += if passed { " (gate ✓)" } else { " (gate ✗)" };
    }
    s
}

fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// The plain-text snapshot of `--once`.
pub fn render_text(root: &Path, runs: &[RunStatus], now: u64, stale_after: Duration) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "trajhost monitor: {} ({} runs) at {} UTC\n",
        root.display(),
        runs.len(),
        utc_timestamp(now)
    );
    if runs.is_empty() {
        t += "no run folders yet\n";
        return t;
    }
    let dash = || "-".to_string();
    let _ = writeln!(
        t,
        "{:<14} {:<11} {:<18} {:>7}  {:<28} {:>8} {:>8} {:>8}  {:<10} LAST HEARTBEAT",
        "RUN", "PHASE", "STATUS", "EPOCH", "PROGRESS", "VAL ACC", "VAL MSE", "VAL LOSS", "ETA",
    );
    for r in runs {
        let cells = MetricCells::of(r);
        let _ = writeln!(
            t,
            "{:<14} {:<11} {:<18} {:>7}  {:<28} {:>8} {:>8} {:>8}  {:<10} {}",
            r.name,
            r.phase.clone().unwrap_or_else(dash),
            status_label(r),
            r.epoch.map_or_else(dash, |(e, n)| format!("{e}/{n}")),
            r.fraction
                .map_or_else(dash, |f| format!("{} {:>5.1}%", bar(f, 20), 100.0 * f)),
            cells.accuracy,
            cells.mse,
            cells.loss,
            cells.eta,
            cells.heartbeat,
        );
    }
    let curves: Vec<&RunStatus> = runs
        .iter()
        .filter(|r| !r.val_loss_curve.is_empty())
        .collect();
    if !curves.is_empty() {
        t += "\nvalidation curves (per epoch, oldest first)\n";
        for r in curves {
            let (first, last) = (r.val_loss_curve[0], *r.val_loss_curve.last().unwrap());
            let (a0, a1) = (
                r.val_accuracy_curve[0],
                *r.val_accuracy_curve.last().unwrap(),
            );
            let _ = writeln!(
                t,
                "  {:<14} loss {:<24} {first:.3} → {last:.3}   accuracy {:<24} {:.1}% → {:.1}%",
                r.name,
                sparkline(&r.val_loss_curve, 24),
                sparkline(&r.val_accuracy_curve, 24),
                100.0 * a0,
                100.0 * a1
            );
        }
    }
    let mut notes = String::new();
    for r in runs {
        if r.stale {
            let _ = writeln!(
                notes,
                "  ! {}: status says training, but run.log is silent for longer than {} (last line {}): has it died?",
                r.name,
                humantime::format_duration(stale_after),
                r.heartbeat_age.map_or_else(|| "never".into(), age)
            );
        }
        if let Some(f) = &r.failure {
            let _ = writeln!(notes, "  ! {}: failed ({f})", r.name);
        }
    }
    if !notes.is_empty() {
        t += "\n";
        t += &notes;
    }
    t
}
