//! `trajhost compare`: one report over many run folders — a table of the measured numbers, the
//! plan's success checklist, combined training curves, confusion matrices and gate decisions —
//! as Markdown or JSON.

use crate::atomic::write_atomic;
use crate::gate::GateDecision;
use crate::rundir::{self, run_name};
use crate::train::curves::{draw_panels, Panel};
use crate::train::metrics::{Baselines, CLASS_NAMES};
use crate::train::outputs::{read_metrics, EpochRecord, FinalMetrics, StopReason};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The original plan's success criteria, on each run's test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub validation_min_accuracy: f64,
    pub validation_max_mse: f64,
    pub final_min_accuracy: f64,
    pub final_max_mse: f64,
}

impl Default for Checklist {
    fn default() -> Self {
        Checklist {
            validation_min_accuracy: 0.70,
            validation_max_mse: 0.1,
            final_min_accuracy: 0.90,
            final_max_mse: 0.05,
        }
    }
}

/// One criterion for one run; `passed` is None while its phase has not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub measured: Option<f64>,
    pub passed: Option<bool>,
}

/// The numbers of one run: those of its latest finished phase (`final` over `validation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub phase: String,
    pub epochs_trained: usize,
    pub stop_reason: StopReason,
    pub test_accuracy: f64,
    pub per_class_accuracy: [f64; 4],
    pub confusion: [[u64; 4]; 4],
    pub test_mse: f64,
    pub mse_per_axis: [f64; 3],
    pub baselines: Baselines,
    pub wall_seconds: f64,
    pub train_videos_per_second: f64,
    pub parameter_count: i64,
    pub checkpoint_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub name: String,
    pub plugin: Option<String>,
    /// `PROGRESS.txt`'s status (training, interrupted, finished), if any.
    pub status: Option<String>,
    pub summary: Option<RunSummary>,
    pub checklist: Vec<Criterion>,
    pub gate: Option<GateDecision>,
    /// Epochs recorded in metrics.jsonl.
    pub epochs_recorded: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub classes: Vec<String>,
    pub checklist: Checklist,
    pub runs: Vec<RunReport>,
    /// Run folders that could not be read (a damaged metrics file), left out of `runs`.
    #[serde(default)]
    pub unreadable: Vec<Unreadable>,
    /// The combined training-curves PNG, relative to the report's folder.
    pub curves_png: Option<String>,
}

/// A run folder left out of the report, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    pub name: String,
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

/// Reads the runs' folders into a report (no curves yet). A folder that cannot be read is
/// listed in `unreadable` with the reason, and the others are reported.
pub fn build_report(
    runs: &[PathBuf],
    checklist: &Checklist,
) -> Result<(Report, Vec<Vec<EpochRecord>>)> {
    let mut reports = Vec::new();
    let mut histories = Vec::new();
    let mut unreadable = Vec::new();
    for dir in runs {
        match read_run(dir, checklist) {
            Ok((report, history)) => {
                reports.push(report);
                histories.push(history);
            }
            Err(e) => unreadable.push(Unreadable {
                name: run_name(dir),
                path: dir.clone(),
                reason: format!("{e:#}"),
            }),
        }
    }
    Ok((
        Report {
            classes: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            checklist: checklist.clone(),
            runs: reports,
            unreadable,
            curves_png: None,
        },
        histories,
    ))
}

/// One run folder's row, checklist and history.
fn read_run(dir: &Path, checklist: &Checklist) -> Result<(RunReport, Vec<EpochRecord>)> {
    let validation = rundir::validation_metrics(dir)?;
    let full = rundir::final_metrics(dir)?;
    let history = read_metrics(dir)?;
    let latest = full.as_ref().or(validation.as_ref());
    let criterion =
        |name: String, value: Option<f64>, ok: fn(f64, f64) -> bool, bound: f64| Criterion {
            name,
            measured: value,
            passed: value.map(|v| ok(v, bound)),
        };
    let above = |v: f64, b: f64| v > b;
    let below = |v: f64, b: f64| v < b;
    let c = checklist;
    let checks = vec![
        criterion(
            format!(
                "validation accuracy > {}",
                percent(c.validation_min_accuracy)
            ),
            validation.as_ref().map(|m| m.test.accuracy),
            above,
            c.validation_min_accuracy,
        ),
        criterion(
            format!("validation MSE < {}", c.validation_max_mse),
            validation.as_ref().map(|m| m.test.mse),
            below,
            c.validation_max_mse,
        ),
        criterion(
            format!("final accuracy > {}", percent(c.final_min_accuracy)),
            full.as_ref().map(|m| m.test.accuracy),
            above,
            c.final_min_accuracy,
        ),
        criterion(
            format!("final MSE < {}", c.final_max_mse),
            full.as_ref().map(|m| m.test.mse),
            below,
            c.final_max_mse,
        ),
    ];
    // training / interrupted / finished / failed, as the monitor sees it.
    let status = crate::monitor::read_status(
        dir,
        crate::train::outputs::unix_now(),
        std::time::Duration::from_secs(120),
    )
    .status;
    let report = RunReport {
        name: run_name(dir),
        plugin: latest.map(|m| m.plugin.clone()),
        status: (status != "waiting").then_some(status),
        summary: latest.map(summary),
        checklist: checks,
        gate: rundir::read_json(&dir.join(rundir::GATE))?,
        epochs_recorded: history.len(),
    };
    Ok((report, history))
}

fn summary(m: &FinalMetrics) -> RunSummary {
    RunSummary {
        phase: m.phase.clone(),
        epochs_trained: m.epochs_trained,
        stop_reason: m.stop_reason,
        test_accuracy: m.test.accuracy,
        per_class_accuracy: m.test.per_class_accuracy,
        confusion: m.test.confusion,
        test_mse: m.test.mse,
        mse_per_axis: m.test.mse_per_axis,
        baselines: m.baselines.clone(),
        wall_seconds: m.wall_seconds,
        train_videos_per_second: m.train_videos_per_second,
        parameter_count: m.parameter_count,
        checkpoint_bytes: m.checkpoint_bytes,
    }
}

/// Validation loss, accuracy and MSE of every run against epoch, one line per run.
pub fn draw_combined_curves(
    names: &[String],
    histories: &[Vec<EpochRecord>],
    path: &Path,
) -> Result<()> {
    let series = |pick: fn(&EpochRecord) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        names
            .iter()
            .zip(histories)
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, h)| {
                (
                    n.clone(),
                    h.iter().map(|r| (r.epoch as f64, pick(r))).collect(),
                )
            })
            .collect()
    };
    draw_panels(
        &[
            Panel {
                title: "validation loss",
                series: series(|r| r.val.loss),
            },
            Panel {
                title: "validation accuracy",
                series: series(|r| r.val.accuracy),
            },
            Panel {
                title: "validation prediction MSE",
                series: series(|r| r.val.mse),
            },
        ],
        path,
    )
}

/// `trajhost compare`: reads the runs, writes the report (and the curves PNG beside it, unless
/// `out` is a device or FIFO) or prints it when `out` is None.
pub fn run(paths: &[PathBuf], out: Option<&Path>, format: Format) -> Result<()> {
    let runs = rundir::expand_run_dirs(paths);
    if runs.is_empty() {
        bail!(
            "no run folders among {} (a run folder holds PROGRESS.txt, metrics.jsonl or a metrics JSON)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (mut report, histories) = build_report(&runs, &Checklist::default())?;
    if !report.unreadable.is_empty() {
        let reasons: Vec<String> = report
            .unreadable
            .iter()
            .map(|u| format!("{}: {}", u.path.display(), u.reason))
            .collect();
        if report.runs.is_empty() {
            bail!("no run folder could be read: {}", reasons.join("; "));
        }
        eprintln!(
            "warning: {} run folder(s) could not be read and are listed at the end of the report: {}",
            reasons.len(),
            reasons.join("; ")
        );
    }
    // A device or FIFO (`--out /dev/null`) gets the report in place and nothing beside it.
    let beside_out = match out {
        Some(out) => matches!(crate::atomic::target(out)?, crate::atomic::Target::File(_)),
        None => false,
    };
    if let (Some(out), true) = (out, beside_out) {
        if histories.iter().any(|h| !h.is_empty()) {
            let stem = out
                .file_stem()
                .map_or("comparison".into(), |s| s.to_string_lossy().into_owned());
            let file = format!("{stem}_curves.png");
            let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir {
                std::fs::create_dir_all(dir)?;
            }
            let png = dir.map_or(PathBuf::from(&file), |d| d.join(&file));
            let names: Vec<String> = report.runs.iter().map(|r| r.name.clone()).collect();
            draw_combined_curves(&names, &histories, &png)?;
            report.curves_png = Some(file);
        }
    }
    let text = match format {
        Format::Markdown => render_markdown(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    match out {
        Some(out) => {
            write_atomic(out, text.as_bytes())?;
            eprintln!("wrote {} ({} runs)", out.display(), report.runs.len());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn percent(x: f64) -> String {
    let p = 100.0 * x;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn pct1(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

pub fn format_seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn format_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn mark(c: &Criterion, show: fn(f64) -> String) -> String {
    match (c.passed, c.measured) {
        (Some(true), Some(v)) => format!("✅ {}", show(v)),
        (Some(false), Some(v)) => format!("❌ {}", show(v)),
        _ => "— not run".into(),
    }
}

pub fn render_markdown(report: &Report) -> String {
    let mut md = String::new();
    let classes = &report.classes;
    md += "# Backbone comparison\n\n";
    let _ = writeln!(
        md,
        "{} runs. Accuracy and MSE are on the test split after each run's latest finished phase \
         (`full` when it ran, else `validation`); MSE is the prediction error of the ball's \
         future 3-D position. Baselines: predicting the training set's mean position, \
         extrapolating the true last two positions at constant velocity, and the curve-fit \
         limit (the true class's curve fitted to the true input positions: about as low as \
         a model can get).\n",
        report.runs.len()
    );
    md += "| run | plugin | phase | epochs | accuracy |";
    for c in classes {
        let _ = write!(md, " {c} |");
    }
    md += " MSE | mean-position MSE | constant-velocity MSE | curve-fit limit MSE | training time | videos/s | parameters | checkpoint |\n";
    md += &"|---".repeat(13 + classes.len());
    md += "|\n";
    for run in &report.runs {
        let _ = write!(md, "| {} |", run.name);
        match &run.summary {
            Some(s) => {
                let _ = write!(
                    md,
                    " {} | {} | {}{} | {} |",
                    run.plugin.as_deref().unwrap_or("?"),
                    s.phase,
                    s.epochs_trained,
                    match s.stop_reason {
                        StopReason::Completed => "",
                        StopReason::EarlyStopping => " (early stop)",
                        StopReason::TimeBudget => " (time budget)",
                    },
                    pct1(s.test_accuracy)
                );
                for a in s.per_class_accuracy.iter().take(classes.len()) {
                    let _ = write!(md, " {} |", pct1(*a));
                }
                let _ = writeln!(
                    md,
                    " {:.4} | {:.4} | {:.4} | {} | {} | {:.1} | {} | {} |",
                    s.test_mse,
                    s.baselines.mean_position_mse,
                    s.baselines.constant_velocity_mse,
                    s.baselines
                        .curve_fit_mse
                        .map_or("—".to_string(), |m| format!("{m:.5}")),
                    format_seconds(s.wall_seconds),
                    s.train_videos_per_second,
                    thousands(s.parameter_count),
                    format_bytes(s.checkpoint_bytes)
                );
            }
            None => {
                let status = run.status.as_deref().unwrap_or("not started");
                let _ = write!(
                    md,
                    " — | {status}, no results yet | {} recorded | — |",
                    run.epochs_recorded
                );
                md += &" — |".repeat(classes.len() + 8);
                md += "\n";
            }
        }
    }
    if let Some(chance) = report
        .runs
        .iter()
        .find_map(|r| r.summary.as_ref().map(|s| s.baselines.chance_accuracy))
    {
        let _ = writeln!(md, "\nChance accuracy: {}.", pct1(chance));
    }

    md += "\n## Success checklist (the original plan)\n\n";
    md +=
        "Measured on each run's test split after the validation phase and after the full run.\n\n";
    md += "| run |";
    let names: Vec<&str> = report
        .runs
        .first()
        .map(|r| r.checklist.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    for n in &names {
        let _ = write!(md, " {n} |");
    }
    md += " gate |\n";
    md += &"|---".repeat(names.len() + 2);
    md += "|\n";
    for run in &report.runs {
        let _ = write!(md, "| {} |", run.name);
        for c in &run.checklist {
            let show: fn(f64) -> String = if c.name.contains("accuracy") {
                pct1
            } else {
                |v| format!("{v:.4}")
            };
            let _ = write!(md, " {} |", mark(c, show));
        }
        let gate = match &run.gate {
            Some(g) if g.passed => "passed",
            Some(_) => "stopped",
            None => "—",
        };
        let _ = writeln!(md, " {gate} |");
    }

    if let Some(png) = &report.curves_png {
        md += "\n## Training curves\n\n";
        let _ = writeln!(md, "![validation curves of every run]({png})");
    }

    md += "\n## Confusion matrices (test split; rows: true class, columns: predicted)\n";
    for run in &report.runs {
        let Some(s) = &run.summary else { continue };
        let _ = writeln!(md, "\n### {}\n", run.name);
        md += "| true \\ predicted |";
        for c in classes {
            let _ = write!(md, " {c} |");
        }
        md += "\n";
        md += &"|---".repeat(classes.len() + 1);
        md += "|\n";
        for (class, row) in classes.iter().zip(&s.confusion) {
            let _ = write!(md, "| {class} |");
            for n in row.iter().take(classes.len()) {
                let _ = write!(md, " {n} |");
            }
            md += "\n";
        }
    }

    if report.runs.iter().any(|r| r.gate.is_some()) {
        md += "\n## Gate decisions (validation → full run)\n";
        for run in &report.runs {
            let Some(g) = &run.gate else { continue };
            let _ = writeln!(
                md,
                "\n### {}: {}\n",
                run.name,
                if g.passed {
                    "passed, continues to the full run"
                } else {
                    "stopped after validation"
                }
            );
            for r in &g.reasons {
                let _ = writeln!(md, "- {r}");
            }
        }
    }
    if !report.unreadable.is_empty() {
        md += "\n## Unreadable run folders\n\n";
        md += "Left out of the tables above:\n\n";
        for u in &report.unreadable {
            let _ = writeln!(md, "- {} (`{}`): {}", u.name, u.path.display(), u.reason);
        }
    }
    md
}
