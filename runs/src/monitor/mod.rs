//! `trajhost monitor RESULTS`: every run in a results folder at a glance — phase, status, an
//! epoch gauge, the latest validation metrics, small curves, the ETA, and how long ago the run
//! last wrote to its `run.log` (training runs write a heartbeat every 30 s, so a run silent for
//! longer than `--stale-after` has most likely died and is flagged).
//!
//! It reads only the files runs write, through `rundir` (`read`), so it works on a folder
//! synced from elsewhere. `--once` prints a plain-text snapshot (`text`); otherwise a ratatui
//! dashboard (`tui`) refreshes until `q`.

pub mod read;
pub mod text;
pub mod tui;

pub use read::{read_status, scan, RunStatus};

use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// `trajhost monitor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// A results folder (or one run folder).
    #[arg(default_value = "results")]
    pub root: PathBuf,
    /// Print one plain-text snapshot and exit (for pipes and SSH sessions), as wide as
    /// `COLUMNS`, else the terminal, else 80 characters.
    #[arg(long)]
    pub once: bool,
    /// Refresh interval of the dashboard.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Flag a training run whose run.log has been silent for longer than this.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub stale_after: Duration,
    /// Pretend the time is this UTC `YYYY-MM-DD HH:MM:SS` (for reproducible output).
    #[arg(long, hide = true, value_parser = parse_now)]
    pub now: Option<u64>,
}

fn parse_now(text: &str) -> Result<u64, String> {
    crate::clock::parse_utc_timestamp(text)
        .ok_or_else(|| format!("{text:?} is not a `YYYY-MM-DD HH:MM:SS` time"))
}

pub fn run(options: &MonitorArgs) -> Result<()> {
    let now = || options.now.unwrap_or_else(crate::clock::unix_now);
    if options.once {
        let runs = scan(&options.root, now(), options.stale_after);
        print!(
            "{}",
            text::render_text(
                &options.root,
                &runs,
                now(),
                options.stale_after,
                text::output_width()
            )
        );
        return Ok(());
    }
    tui::run(options, &now)
}

#[cfg(test)]
mod tests {
    use super::text::sparkline;
    use super::*;
    use crate::rundir::progress::RunState;
    use ratatui::backend::TestBackend;
    use std::path::Path;

    fn status(name: &str, state: RunState, stale: bool) -> RunStatus {
        RunStatus {
            name: name.into(),
            phase: Some("validation".into()),
            state,
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
            status("magvit", RunState::Training, false),
            status("i3d", RunState::Training, true),
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

    fn screen(width: u16, height: u16, runs: &[RunStatus]) -> Vec<String> {
        let mut terminal = ratatui::Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|f| tui::draw(f, Path::new("results"), runs, 1_800_000_000))
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    /// 80×24 with six runs: every run keeps a line of whole fields (none cut mid-word), and
    /// with twelve the ones that do not fit are named rather than dropped.
    #[test]
    fn a_small_terminal_drops_fields_and_boxes_never_words() {
        let six: Vec<RunStatus> = (0..6)
            .map(|i| status(&format!("run{i}"), RunState::Training, false))
            .collect();
        let lines = screen(80, 24, &six);
        let metrics: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("val acc 50.0%"))
            .collect();
        assert_eq!(metrics.len(), 6, "{lines:#?}");
        let whole = [
            "epoch 4/10 (35.0%)",
            "val acc 50.0%",
            "mse 0.1200",
            "heartbeat 12 s ago",
            "ETA 6.5 min",
            "loss 0.7000",
        ];
        for line in metrics {
            let inside = line.trim_matches(|c: char| c == '│' || c == ' ');
            for field in inside.split("  ").filter(|f| !f.trim().is_empty()) {
                assert!(whole.contains(&field.trim()), "{field:?} cut in {line}");
            }
            assert!(
                inside.starts_with("epoch 4/10") && inside.contains("heartbeat"),
                "{line}"
            );
        }
        let twelve: Vec<RunStatus> = (0..12)
            .map(|i| status(&format!("run{i}"), RunState::Training, false))
            .collect();
        let text = screen(80, 24, &twelve).join("\n");
        assert!(
            text.contains("run0") && text.contains("more: run"),
            "{text}"
        );
        assert!(text.contains("run11"), "the last run is named: {text}");
    }

    /// `--once` at any width: no line wider, the table drops whole columns (the run, its status
    /// and its epoch stay), the curves split onto two lines, the notes wrap.
    #[test]
    fn the_text_snapshot_fits_the_width() {
        let runs = [
            status("magvit", RunState::Training, false),
            status("a-run-with-a-very-long-name", RunState::Training, true),
        ];
        let stale = Duration::from_secs(120);
        let narrowest = text::render_text(Path::new("results"), &runs, 1_800_000_000, stale, 30);
        assert!(
            narrowest.lines().all(|l| l.chars().count() <= 30),
            "{narrowest}"
        );
        for width in [40, 60, 80, 100, 144, 200] {
            let text = text::render_text(Path::new("results"), &runs, 1_800_000_000, stale, width);
            for line in text.lines() {
                assert!(line.chars().count() <= width, "{width}: {line:?}\n{text}");
            }
            for needle in [
                "RUN",
                "STATUS",
                "magvit",
                "STALE",
                "has it died?",
                "accuracy",
            ] {
                assert!(text.contains(needle), "{width}: {needle} missing\n{text}");
            }
        }
        let wide = text::render_text(Path::new("results"), &runs, 1_800_000_000, stale, 144);
        for header in ["PHASE", "PROGRESS", "VAL LOSS", "LAST HEARTBEAT"] {
            assert!(wide.contains(header), "{header}\n{wide}");
        }
        let narrow = text::render_text(Path::new("results"), &runs, 1_800_000_000, stale, 80);
        assert!(!narrow.contains("PROGRESS"), "{narrow}");
        assert!(narrow.contains("VAL MSE"), "{narrow}");
    }

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[3.0, 2.0, 1.0], 10), "█▅▁");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 2), "▁█");
    }
}
