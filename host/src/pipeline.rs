//! `trajhost pipeline`: validate first, then train.
//!
//! Phase 1 sweeps every run with the validation config; the gate (`crate::gate`) then judges
//! each finished run and writes `<run>/gate.json`; phase 2 sweeps only the runs that passed,
//! with the full config, each resuming from its newest checkpoint — the end of phase 1 — in the
//! same run folder, so `metrics.jsonl` and the curves continue. `<results>/pipeline.json`
//! records both phases and the gate's decisions. Re-running the pipeline skips what finished
//! and resumes what did not.

use crate::atomic::write_json;
use crate::config::Phase;
use crate::config::{SweepConfig, TrainConfig};
use crate::gate;
use crate::rundir::gate::{self as gate_file, GateDecision};
use crate::rundir::metrics;
use crate::rundir::outcome::Status;
use crate::stop;
use crate::sweep::runner::finished;
use crate::sweep::{run_sweep, SweepOptions, SweepReport};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    pub validation: SweepReport,
    /// The gate's decision for every run that finished phase 1.
    pub gates: Vec<GateDecision>,
    /// None when no run passed, or the pipeline was interrupted.
    pub full: Option<SweepReport>,
}

impl PipelineReport {
    pub fn failed(&self) -> usize {
        self.validation.failed().len() + self.full.as_ref().map_or(0, |f| f.failed().len())
    }

    /// Runs left resumable by an interruption, in either phase.
    pub fn interrupted(&self) -> usize {
        self.validation.interrupted() + self.full.as_ref().map_or(0, |f| f.interrupted())
    }

    pub fn render(&self) -> String {
        let mut text = String::from("phase 1 (validation):\n");
        text += &self.validation.render();
        text += "\ngate:\n";
        if self.gates.is_empty() {
            text += "  no run finished phase 1\n";
        }
        for g in &self.gates {
            text += &format!(
                "  {:<14} {}\n",
                g.run,
                if g.passed { "passed" } else { "stopped" }
            );
            for r in &g.reasons {
                text += &format!("      {r}\n");
            }
        }
        match &self.full {
            Some(full) => {
                text += "\nphase 2 (full):\n";
                text += &full.render();
            }
            None => text += "\nphase 2 (full): nothing to run\n",
        }
        text
    }
}

pub struct PipelineOptions {
    pub threads: Option<usize>,
    pub max_parallel: Option<usize>,
    pub only: Vec<String>,
    pub exe: PathBuf,
    pub config_path: PathBuf,
}

/// Judges a run folder after its validation phase and writes `gate.json` there.
pub fn judge(
    sweep: &SweepConfig,
    validation: &TrainConfig,
    dir: &Path,
) -> Result<Option<GateDecision>> {
    let Some(metrics) = metrics::read_phase(dir, &validation.phase)? else {
        return Ok(None);
    };
    // Only phase 1's epochs: after phase 2 the file goes on with the full run's.
    let history: Vec<_> = metrics::read_history(dir)?
        .into_iter()
        .filter(|r| r.phase == validation.phase && r.epoch <= metrics.epochs_trained)
        .collect();
    let decision = gate::decide(&sweep.gate, &metrics, &history);
    gate_file::write(dir, &decision)
        .with_context(|| format!("writing the gate's decision for {}", dir.display()))?;
    Ok(Some(decision))
}

pub fn run_pipeline(sweep: &SweepConfig, options: &PipelineOptions) -> Result<PipelineReport> {
    let validation_config = TrainConfig::load(&sweep.validation_config)?;
    let sweep_options = |phase, only: Vec<String>| SweepOptions {
        phase,
        threads: options.threads,
        max_parallel: options.max_parallel,
        only,
        exe: options.exe.clone(),
        config_path: options.config_path.clone(),
        summary: None,
    };
    let validation = run_sweep(
        sweep,
        &sweep_options(Phase::Validation, options.only.clone()),
    )?;
    let mut report = PipelineReport {
        validation,
        gates: Vec::new(),
        full: None,
    };
    let summary = options
        .only
        .is_empty()
        .then(|| sweep.results.join(crate::config::sweep::PIPELINE_SUMMARY));
    let save = |report: &PipelineReport| -> Result<()> {
        if let Some(path) = &summary {
            write_json(path, report)?;
        }
        Ok(())
    };
    if stop::requested() {
        save(&report)?;
        return Ok(report);
    }
    for run in &report.validation.runs {
        if !matches!(run.status, Status::Finished | Status::Skipped) {
            continue;
        }
        let dir = sweep.run_dir(&run.name);
        if !finished(&dir, &validation_config) {
            continue;
        }
        if let Some(decision) = judge(sweep, &validation_config, &dir)? {
            eprintln!(
                "[gate] {}: {}{}",
                run.name,
                if decision.passed {
                    "passed"
                } else {
                    "stopped after validation"
                },
                decision
                    .reasons
                    .iter()
                    .filter(|r| r.starts_with("fail"))
                    .map(|r| format!("; {r}"))
                    .collect::<String>()
            );
            report.gates.push(decision);
        }
    }
    let passed: Vec<String> = report
        .gates
        .iter()
        .filter(|g| g.passed)
        .map(|g| g.run.clone())
        .collect();
    save(&report)?;
    if !passed.is_empty() {
        report.full = Some(run_sweep(sweep, &sweep_options(Phase::Full, passed))?);
    }
    save(&report)?;
    Ok(report)
}
