//! `trajhost compare`: one report over many run folders — a table of the measured numbers, the
//! plan's success checklist, combined training curves, confusion matrices and gate decisions —
//! as Markdown or JSON. `report` reads the folders, `markdown` renders.

pub mod markdown;
pub mod recipe;
pub mod report;
pub mod seeds;

pub use report::{Checklist, Criterion, Report, RunReport, Unreadable};

use crate::atomic::{self, write_atomic};
use crate::curves::draw_validation_comparison;
use crate::rundir;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Json,
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
    if let Some(out) = out {
        let inputs: Vec<_> = runs.iter().map(|r| ("run folder", r.as_path())).collect();
        let curves = curves_png(out);
        let outputs = [("--out", out), ("its curves", curves.as_path())];
        atomic::refuse_outputs_over_inputs(&outputs, &inputs)?;
    }
    let (mut report, histories) = report::build(&runs, &Checklist::default());
    warn_unreadable(&report)?;
    // A device or FIFO (`--out /dev/null`) gets the report in place and nothing beside it.
    let beside = match out {
        Some(out) => matches!(atomic::target(out)?, atomic::Target::File(_)),
        None => false,
    };
    if let (Some(out), true) = (out, beside) {
        if histories.iter().any(|h| !h.is_empty()) {
            let png = curves_png(out);
            if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let names: Vec<String> = report.runs.iter().map(|r| r.name.clone()).collect();
            draw_validation_comparison(&names, &histories, &png)?;
            report.curves_png = png.file_name().map(|f| f.to_string_lossy().into_owned());
        }
    }
    let text = match format {
        Format::Markdown => markdown::render(&report),
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

/// An error when no folder could be read; a warning naming each one that could not.
fn warn_unreadable(report: &Report) -> Result<()> {
    if report.unreadable.is_empty() {
        return Ok(());
    }
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
    Ok(())
}

/// `<stem>_curves.png` beside the report `out`.
fn curves_png(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or("comparison".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}_curves.png"))
}
