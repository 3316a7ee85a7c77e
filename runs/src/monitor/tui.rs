//! The live dashboard (ratatui): a box per run with its gauge, metrics and loss curve.
use super::read::{scan, RunStatus};
use super::text::{cut, fit_fields, status_label, MetricCells};
use super::MonitorArgs;
use crate::clock::utc_timestamp;
use crate::rundir::progress::RunState;
use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline};
use ratatui::Frame;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

pub fn run(options: &MonitorArgs, now: &dyn Fn() -> u64) -> Result<()> {
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
    if r.stale {
        return Color::Red;
    }
    match r.state {
        RunState::Failed => Color::Red,
        RunState::Finished => Color::Green,
        RunState::Training => Color::Cyan,
        RunState::Interrupted => Color::Yellow,
        RunState::Waiting => Color::Gray,
    }
}

pub fn draw(frame: &mut Frame, root: &Path, runs: &[RunStatus], now: u64) {
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
    // Five rows a run when they fit, down to three (the gauge and the curve go first); runs that
    // still do not fit are counted on the last line rather than cut off unseen.
    let per_run = (body.height / runs.len() as u16).clamp(3, 5);
    let mut shown = (body.height / per_run) as usize;
    if shown < runs.len() {
        shown = shown.saturating_sub(1);
    }
    let mut rows: Vec<Constraint> = (0..shown).map(|_| Constraint::Length(per_run)).collect();
    rows.push(Constraint::Min(0));
    let areas = Layout::vertical(rows).split(body);
    for (r, area) in runs.iter().zip(areas.iter()) {
        draw_run(frame, r, *area);
    }
    if shown < runs.len() {
        let names: Vec<&str> = runs[shown..].iter().map(|r| r.name.as_str()).collect();
        let more = format!(
            "{} more: {} (a taller terminal, or monitor --once, shows them)",
            runs.len() - shown,
            names.join(", ")
        );
        let last = areas[shown];
        frame.render_widget(
            Paragraph::new(cut(&more, last.width as usize))
                .style(Style::default().fg(Color::Yellow)),
            last,
        );
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
    // The curve takes a third of the width, at most 30 columns, and only with room for a title
    // and a row of bars.
    let curve_width = match inner.height >= 2 && inner.width >= 40 {
        true => (inner.width / 3).min(30),
        false => 0,
    };
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(curve_width)]).areas(inner);
    let (gauge, text) = match left.height {
        0 => return,
        1 => (None, left),
        _ => {
            let [gauge, text, _] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Length(1),
                Constraint::Min(0),
            ])
            .areas(left);
            (Some(gauge), text)
        }
    };
    let fraction = r.fraction.unwrap_or(0.0);
    let epoch = format!(
        "epoch {} ({:.1}%)",
        r.epoch.map_or("-".into(), |(e, n)| format!("{e}/{n}")),
        100.0 * fraction
    );
    let cells = MetricCells::of(r);
    // Whole fields, the most telling first; a narrow box drops the last ones.
    let mut fields = vec![
        format!("val acc {}", cells.accuracy),
        format!("mse {}", cells.mse),
        format!("heartbeat {}", cells.heartbeat),
        format!("ETA {}", cells.eta),
        format!("loss {}", cells.loss),
    ];
    match gauge {
        Some(gauge) => frame.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(color(r)))
                .ratio(fraction.clamp(0.0, 1.0))
                .label(epoch),
            gauge,
        ),
        None => fields.insert(0, epoch),
    }
    let mut line = fit_fields(&fields, text.width as usize);
    if let Some(f) = &r.failure {
        line = cut(&format!("failed: {f}"), text.width as usize);
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
    if right.width == 0 {
        return;
    }
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
