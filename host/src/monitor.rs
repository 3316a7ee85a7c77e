//! `trajhost monitor RESULTS`: every run in a results folder at a glance — phase, status, an
//! epoch gauge, the latest validation metrics, small curves, the ETA, and how long ago the run
//! last wrote to its `run.log` (training runs write a heartbeat every 30 s, so a run silent for
//! longer than `--stale-after` has most likely died and is flagged).
//!
//! It reads only the files runs write (`PROGRESS.txt`, `run.log`, `metrics.jsonl`, the metrics
//! JSONs, `gate.json`, `sweep_outcome.json`), so it works on a folder synced from elsewhere.
//! `--once` prints a plain-text snapshot; otherwise a ratatui dashboard refreshes until `q`.

use crate::gate::GateDecision;
use crate::rundir::{self, run_name};
use crate::sweep::runner::{RunOutcome, Status};
use crate::train::outputs::{read_metrics, utc_timestamp};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the monitor knows of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub name: String,
    pub phase: Option<String>,
    /// training, interrupted, finished, failed, or "waiting" when nothing was written yet.
    pub status: String,
    pub epoch: Option<(usize, usize)>,
    /// 0..=1
    pub fraction: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_mse: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_loss_curve: Vec<f64>,
    pub val_accuracy_curve: Vec<f64>,
    pub eta: Option<String>,
    /// Seconds since the last line of `run.log`.
    pub heartbeat_age: Option<u64>,
    /// Training, yet silent for longer than the stale limit.
    pub stale: bool,
    pub gate: Option<bool>,
    /// Why the last sweep attempt failed (its last output line).
    pub failure: Option<String>,
}

/// Parses PROGRESS.txt's `epoch: 3/10 (30.0%)`.
fn parse_epoch(text: &str) -> Option<((usize, usize), f64)> {
    let (counts, rest) = text.split_once(' ').unwrap_or((text, ""));
    let (done, total) = counts.split_once('/')?;
    let epoch: (usize, usize) = (done.trim().parse().ok()?, total.trim().parse().ok()?);
    let percent = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .map_or_else(|| epoch.0 as f64 / epoch.1.max(1) as f64, |p| p / 100.0);
    Some((epoch, percent.clamp(0.0, 1.0)))
}

pub fn read_status(dir: &Path, now: u64, stale_after: Duration) -> RunStatus {
    let progress = rundir::read_progress(dir);
    let records = read_metrics(dir).unwrap_or_default();
    let last = records.last();
    let last_log = rundir::last_log_time(&dir.join("run.log"));
    let heartbeat_age = last_log.map(|t| now.saturating_sub(t));
    let outcome: Option<RunOutcome> = rundir::read_json(&dir.join(rundir::OUTCOME)).ok().flatten();
    // A failure recorded after the run's last log line is the latest word on it.
    let failure = outcome
        .filter(|o| o.status == Status::Failed)
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
    let mut status = progress
        .get("status")
        .cloned()
        .unwrap_or_else(|| "waiting".into());
    if failure.is_some() {
        status = "failed".into();
    }
    let stale =
        status == "training" && heartbeat_age.is_some_and(|age| age > stale_after.as_secs());
    let epoch = progress.get("epoch").and_then(|e| parse_epoch(e));
    let gate: Option<GateDecision> = rundir::read_json(&dir.join(rundir::GATE)).ok().flatten();
    RunStatus {
        name: run_name(dir),
        phase: progress
            .get("phase")
            .cloned()
            .or_else(|| last.map(|r| r.phase.clone())),
        status,
        epoch: epoch.map(|e| e.0),
        fraction: epoch.map(|e| e.1),
        val_accuracy: last.map(|r| r.val.accuracy),
        val_mse: last.map(|r| r.val.mse),
        val_loss: last.map(|r| r.val.loss),
        val_loss_curve: records.iter().map(|r| r.val.loss).collect(),
        val_accuracy_curve: records.iter().map(|r| r.val.accuracy).collect(),
        eta: progress.get("eta").filter(|e| e.as_str() != "-").cloned(),
        heartbeat_age,
        stale,
        gate: gate.map(|g| g.passed),
        failure,
    }
}

/// Every run folder in `root` (or `root` itself when it is one).
pub fn scan(root: &Path, now: u64, stale_after: Duration) -> Vec<RunStatus> {
    rundir::expand_run_dirs(&[root.to_path_buf()])
        .iter()
        .map(|d| read_status(d, now, stale_after))
        .collect()
}

pub fn format_age(seconds: u64) -> String {
    match seconds {
        s if s < 90 => format!("{s} s ago"),
        s if s < 5400 => format!("{} min ago", s / 60),
        s if s < 3 * 86_400 => format!("{:.1} h ago", s as f64 / 3600.0),
        s => format!("{} days ago", s / 86_400),
    }
}

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
struct MetricCells {
    accuracy: String,
    mse: String,
    loss: String,
    eta: String,
    heartbeat: String,
}

impl MetricCells {
    fn of(r: &RunStatus) -> Self {
        let dash = || "-".to_string();
        MetricCells {
            accuracy: r
                .val_accuracy
                .map_or_else(dash, |a| format!("{:.1}%", 100.0 * a)),
            mse: r.val_mse.map_or_else(dash, |m| format!("{m:.4}")),
            loss: r.val_loss.map_or_else(dash, |l| format!("{l:.4}")),
            eta: match (&r.eta, r.status.as_str()) {
                (Some(eta), "training") => eta.clone(),
                _ => dash(),
            },
            heartbeat: r.heartbeat_age.map_or_else(dash, format_age),
        }
    }
}

fn status_label(r: &RunStatus) -> String {
    let mut s = if r.stale {
        "STALE".to_string()
    } else {
        r.status.clone()
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
                r.heartbeat_age.map_or_else(|| "never".into(), format_age)
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

pub struct MonitorOptions {
    pub root: PathBuf,
    pub once: bool,
    pub interval: Duration,
    pub stale_after: Duration,
    /// Pretend it is this Unix time (for reproducible snapshots).
    pub now: Option<u64>,
}

pub fn run(options: &MonitorOptions) -> Result<()> {
    let now = || options.now.unwrap_or_else(crate::train::outputs::unix_now);
    if options.once {
        let runs = scan(&options.root, now(), options.stale_after);
        print!(
            "{}",
            render_text(&options.root, &runs, now(), options.stale_after)
        );
        return Ok(());
    }
    tui::run(options, &now)
}

mod tui {
    use super::*;
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::layout::{Constraint, Layout, Rect};
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline};
    use ratatui::Frame;
    use std::time::Instant;

    pub fn run(options: &MonitorOptions, now: &dyn Fn() -> u64) -> Result<()> {
        let mut terminal = ratatui::init();
        let result = (|| -> Result<()> {
            let mut runs = scan(&options.root, now(), options.stale_after);
            let mut refreshed = Instant::now();
            loop {
                terminal.draw(|f| draw(f, &options.root, &runs, now()))?;
                let wait = options.interval.saturating_sub(refreshed.elapsed());
                if event::poll(wait.min(Duration::from_millis(250)))? {
                    if let Event::Key(key) = event::read()? {
                        let ctrl_c = key.code == KeyCode::Char('c')
                            && key.modifiers.contains(KeyModifiers::CONTROL);
                        if key.kind == KeyEventKind::Press
                            && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c)
                        {
                            return Ok(());
                        }
                        if key.code == KeyCode::Char('r') {
                            refreshed = Instant::now() - options.interval;
                        }
                    }
                }
                if refreshed.elapsed() >= options.interval {
                    runs = scan(&options.root, now(), options.stale_after);
                    refreshed = Instant::now();
                }
            }
        })();
        ratatui::restore();
        result
    }

    fn color(r: &RunStatus) -> Color {
        if r.stale || r.status == "failed" {
            Color::Red
        } else {
            match r.status.as_str() {
                "finished" => Color::Green,
                "training" => Color::Cyan,
                "interrupted" => Color::Yellow,
                _ => Color::Gray,
            }
        }
    }

    pub(super) fn draw(frame: &mut Frame, root: &Path, runs: &[RunStatus], now: u64) {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        frame.render_widget(
            Paragraph::new(format!(
                "trajhost monitor: {} — {} runs — {} UTC",
                root.display(),
                runs.len(),
                utc_timestamp(now)
            ))
            .style(Style::default().add_modifier(Modifier::BOLD)),
            header,
        );
        frame.render_widget(
            Paragraph::new("q: quit   r: refresh now").style(Style::default().fg(Color::DarkGray)),
            footer,
        );
        if runs.is_empty() {
            frame.render_widget(Paragraph::new("no run folders yet"), body);
            return;
        }
        let rows = Layout::vertical(runs.iter().map(|_| Constraint::Length(5))).split(body);
        for (r, area) in runs.iter().zip(rows.iter()) {
            draw_run(frame, r, *area);
        }
    }

    fn draw_run(frame: &mut Frame, r: &RunStatus, area: Rect) {
        let title = Line::from(vec![
            Span::styled(
                format!(" {} ", r.name),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{} ", r.phase.as_deref().unwrap_or("-"))),
            Span::styled(
                format!("{} ", status_label(r)),
                Style::default().fg(color(r)),
            ),
        ]);
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [left, right] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(30)]).areas(inner);
        let [gauge, text, _] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(left);
        let fraction = r.fraction.unwrap_or(0.0);
        frame.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(color(r)))
                .ratio(fraction.clamp(0.0, 1.0))
                .label(format!(
                    "epoch {} ({:.1}%)",
                    r.epoch.map_or("-".into(), |(e, n)| format!("{e}/{n}")),
                    100.0 * fraction
                )),
            gauge,
        );
        let cells = MetricCells::of(r);
        let mut line = format!(
            "val acc {}  mse {}  loss {}  ETA {}  heartbeat {}",
            cells.accuracy, cells.mse, cells.loss, cells.eta, cells.heartbeat
        );
        if let Some(f) = &r.failure {
            line = format!("failed: {f}");
        }
        frame.render_widget(
            Paragraph::new(line).style(Style::default().fg(if r.failure.is_some() || r.stale {
                Color::Red
            } else {
                Color::Reset
            })),
            text,
        );
        // Validation loss, scaled to 0..=100 (higher bar = higher loss).
        let (lo, hi) = r
            .val_loss_curve
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let data: Vec<u64> = r
            .val_loss_curve
            .iter()
            .map(|&v| {
                if hi > lo {
                    (1.0 + 99.0 * (v - lo) / (hi - lo)) as u64
                } else {
                    50
                }
            })
            .collect();
        let skip = data.len().saturating_sub(right.width as usize);
        frame.render_widget(
            Sparkline::default()
                .block(Block::new().title("val loss"))
                .data(&data[skip..])
                .max(100)
                .style(Style::default().fg(Color::Magenta)),
            right,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    fn status(name: &str, state: &str, stale: bool) -> RunStatus {
        RunStatus {
            name: name.into(),
            phase: Some("validation".into()),
            status: state.into(),
            epoch: Some((4, 10)),
            fraction: Some(0.35),
            val_accuracy: Some(0.5),
            val_mse: Some(0.12),
            val_loss: Some(0.7),
            val_loss_curve: vec![1.0, 0.8, 0.7],
            val_accuracy_curve: vec![0.3, 0.4, 0.5],
            eta: Some("6.5 min".into()),
            heartbeat_age: Some(if stale { 1500 } else { 12 }),
            stale,
            gate: None,
            failure: None,
        }
    }

    #[test]
    fn the_dashboard_draws_every_run_with_its_gauge_and_flags_stale_ones() {
        let mut terminal = ratatui::Terminal::new(TestBackend::new(110, 14)).unwrap();
        let runs = [
            status("magvit", "training", false),
            status("i3d", "training", true),
        ];
        terminal
            .draw(|f| tui::draw(f, Path::new("results"), &runs, 1_800_000_000))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let text: String = (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect();
        for needle in [
            "magvit",
            "i3d",
            "STALE",
            "epoch 4/10 (35.0%)",
            "ETA 6.5 min",
            "12 s ago",
            "val loss",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }

    #[test]
    fn epochs_and_sparklines() {
        assert_eq!(parse_epoch("3/10 (30.0%)"), Some(((3, 10), 0.3)));
        assert_eq!(parse_epoch("garbage"), None);
        assert_eq!(sparkline(&[3.0, 2.0, 1.0], 10), "█▅▁");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 2), "▁█");
    }
}
