//! The monitor's words: the plain-text snapshot of `--once`, and the cells and labels the
//! dashboard shares with it.

use super::read::RunStatus;
use crate::clock::utc_timestamp;
use crate::format::age;
use crate::rundir::progress::RunState;
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

/// The terminal's width for `--once`: `COLUMNS` when set, else the terminal's own, else 80
/// (a pipe or a log file).
pub fn output_width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    let terminal = || {
        use std::io::IsTerminal;
        std::io::stdout()
            .is_terminal()
            .then(|| ratatui::crossterm::terminal::size().ok())
            .flatten()
            .map(|(w, _)| usize::from(w))
    };
    columns
        .or_else(terminal)
        .filter(|&w| w > 0)
        .unwrap_or(80)
        .max(MIN_WIDTH)
}

/// Narrower than this, nothing useful fits; lines are still cut to it.
const MIN_WIDTH: usize = 30;

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `width` characters, ending in `…` where it was cut.
pub(super) fn cut(text: &str, width: usize) -> String {
    if chars(text) <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    kept + "…"
}

/// Fields joined by two spaces, dropping whole fields from the end of `by_priority` (most
/// important first) until the line fits `width`; shown in `by_priority`'s order.
pub(super) fn fit_fields(by_priority: &[String], width: usize) -> String {
    let mut kept = by_priority.len();
    loop {
        let line = by_priority[..kept].join("  ");
        if chars(&line) <= width || kept <= 1 {
            return cut(&line, width);
        }
        kept -= 1;
    }
}

/// Words of `text` on lines of at most `width` characters, the first starting with `first`,
/// the rest indented as deep.
fn wrap(first: &str, text: &str, width: usize) -> String {
    let indent = " ".repeat(chars(first));
    let mut lines = vec![first.to_string()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        let fresh = chars(line) == chars(&indent);
        if !fresh && chars(line) + 1 + chars(word) > width {
            lines.push(indent.clone());
        }
        let line = lines.last_mut().expect("one line at least");
        if chars(line) > chars(&indent) {
            line.push(' ');
        }
        line.push_str(word);
    }
    // A word longer than the width (a path, say) is cut where the line ends.
    lines
        .iter()
        .map(|l| cut(l.trim_end(), width) + "\n")
        .collect()
}

/// One column of the `--once` table.
struct Column {
    header: &'static str,
    width: usize,
    right: bool,
    cell: fn(&RunStatus, &MetricCells) -> String,
}

/// The table's columns left to right, each with its rank: a narrow terminal drops the columns
/// of the highest ranks first.
const COLUMNS: [(usize, Column); 10] = [
    column(0, "RUN", 14, false, |r, _| r.name.clone()),
    column(7, "PHASE", 11, false, |r, _| {
        r.phase.clone().unwrap_or_else(|| "-".into())
    }),
    column(1, "STATUS", 18, false, |r, _| status_label(r)),
    column(2, "EPOCH", 7, true, |r, _| {
        r.epoch
            .map_or_else(|| "-".into(), |(e, n)| format!("{e}/{n}"))
    }),
    column(8, "PROGRESS", 28, false, |r, _| {
        r.fraction.map_or_else(
            || "-".into(),
            |f| format!("{} {:>5.1}%", bar(f, 20), 100.0 * f),
        )
    }),
    column(3, "VAL ACC", 8, true, |_, c| c.accuracy.clone()),
    column(4, "VAL MSE", 8, true, |_, c| c.mse.clone()),
    column(9, "VAL LOSS", 8, true, |_, c| c.loss.clone()),
    column(5, "ETA", 10, false, |_, c| c.eta.clone()),
    column(6, "LAST HEARTBEAT", 14, false, |_, c| c.heartbeat.clone()),
];

const fn column(
    rank: usize,
    header: &'static str,
    width: usize,
    right: bool,
    cell: fn(&RunStatus, &MetricCells) -> String,
) -> (usize, Column) {
    (
        rank,
        Column {
            header,
            width,
            right,
            cell,
        },
    )
}

/// The columns that fit `width`, left to right.
fn columns_for(width: usize) -> Vec<&'static Column> {
    let mut ranked: Vec<&(usize, Column)> = COLUMNS.iter().collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    let mut used = 0;
    let mut chosen = Vec::new();
    for (rank, column) in ranked {
        let needs = column.width + if used == 0 { 0 } else { 2 };
        if used + needs <= width || used == 0 {
            used += needs;
            chosen.push(*rank);
        }
    }
    COLUMNS
        .iter()
        .filter(|(rank, _)| chosen.contains(rank))
        .map(|(_, column)| column)
        .collect()
}

fn table_row(columns: &[&Column], cells: impl Fn(&Column) -> String) -> String {
    let row: Vec<String> = columns
        .iter()
        .map(|c| {
            let text = cut(&cells(c), c.width);
            match c.right {
                true => format!("{text:>w$}", w = c.width),
                false => format!("{text:<w$}", w = c.width),
            }
        })
        .collect();
    row.join("  ").trim_end().to_string() + "\n"
}

/// The plain-text snapshot of `--once`, no line wider than `width` characters.
pub fn render_text(
    root: &Path,
    runs: &[RunStatus],
    now: u64,
    stale_after: Duration,
    width: usize,
) -> String {
    let width = width.max(MIN_WIDTH);
    let mut t = String::new();
    let title = format!(
        "trajhost monitor: {} ({} runs) at {} UTC",
        root.display(),
        runs.len(),
        utc_timestamp(now)
    );
    t += &wrap("", &title, width);
    t += "\n";
    if runs.is_empty() {
        t += "no run folders yet\n";
        return t;
    }
    let columns = columns_for(width);
    t += &table_row(&columns, |c| c.header.to_string());
    for r in runs {
        let cells = MetricCells::of(r);
        t += &table_row(&columns, |c| (c.cell)(r, &cells));
    }
    let curves: Vec<&RunStatus> = runs
        .iter()
        .filter(|r| !r.val_loss_curve.is_empty())
        .collect();
    if !curves.is_empty() {
        t += "\n";
        t += &wrap("", "validation curves (per epoch, oldest first)", width);
        // Name, label, curve and end values on one line when they fit, else one line each.
        let name_width = curves
            .iter()
            .map(|r| chars(&r.name))
            .max()
            .unwrap_or(0)
            .min(14);
        for r in curves {
            let (first, last) = (r.val_loss_curve[0], *r.val_loss_curve.last().unwrap());
            let (a0, a1) = (
                r.val_accuracy_curve[0],
                *r.val_accuracy_curve.last().unwrap(),
            );
            let name = format!("  {:<name_width$}", cut(&r.name, name_width));
            let loss_ends = format!("{first:.3} → {last:.3}");
            let accuracy_ends = format!("{:.1}% → {:.1}%", 100.0 * a0, 100.0 * a1);
            // "  name loss <curve> a → b" fits with this much room for the curve.
            let room = width.saturating_sub(chars(&name) + 11 + 1 + chars(&accuracy_ends) + 1);
            let curve = room.clamp(4, 24);
            let loss = format!(
                "loss     {:<curve$} {loss_ends}",
                sparkline(&r.val_loss_curve, curve)
            );
            let accuracy = format!(
                "accuracy {:<curve$} {accuracy_ends}",
                sparkline(&r.val_accuracy_curve, curve)
            );
            let one_line = format!("{name} {loss}   {accuracy}");
            if chars(&one_line) <= width {
                t += &one_line;
                t += "\n";
            } else {
                t += &cut(&format!("{name} {loss}"), width);
                t += "\n";
                let blank = " ".repeat(chars(&name));
                t += &cut(&format!("{blank} {accuracy}"), width);
                t += "\n";
            }
        }
    }
    let mut notes = String::new();
    for r in runs {
        if r.stale {
            let note = format!(
                "{}: status says training, but run.log is silent for longer than {} (last line {}): has it died?",
                r.name,
                humantime::format_duration(stale_after),
                r.heartbeat_age.map_or_else(|| "never".into(), age)
            );
            notes += &wrap("  ! ", &note, width);
        }
        if let Some(f) = &r.failure {
            notes += &wrap("  ! ", &format!("{}: failed ({f})", r.name), width);
        }
    }
    if !notes.is_empty() {
        t += "\n";
        t += &notes;
    }
    t
}
