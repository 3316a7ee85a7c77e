//! `configs/sweep.ron`: what a sweep (and the validate-then-train pipeline) trains.

use super::{GateConfig, MAX_THREADS};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use trajhost_config::Invalid;

/// What a sweep (`sweep.json`) and a pipeline (`pipeline.json`) write in `results`, beside
/// the run folders, and their Slurm scripts: no run may be named like them.
pub const SWEEP_SUMMARY: &str = "sweep.json";
pub const PIPELINE_SUMMARY: &str = "pipeline.json";
/// With `--emit slurm`: the scripts and their log folder.
const SUMMARY_FILES: [&str; 5] = [
    SWEEP_SUMMARY,
    PIPELINE_SUMMARY,
    "sweep.slurm",
    "pipeline.slurm",
    "slurm",
];

/// Which of a sweep's two training configs a run was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The sweep's `validation_config`.
    Validation,
    /// The sweep's `full_config`, continuing each run from its newest checkpoint.
    Full,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// The dataset folder (relative paths are relative to the working directory).
    pub data: PathBuf,
    /// Each run writes `<results>/<name>/`; the sweep writes `<results>/sweep.json`.
    pub results: PathBuf,
    /// Phase 1's training config (and the only one of `trajhost sweep`).
    pub validation_config: PathBuf,
    /// Phase 2's training config; `epochs` there counts from the start of the run.
    pub full_config: PathBuf,
    /// Cores for the whole sweep, split evenly between the runs under way (at least 1 each);
    /// None = all the cores of the machine.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Most runs at once; None = all of them.
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// `--device` of every run.
    #[serde(default = "default_device")]
    pub device: String,
    #[serde(default)]
    pub gate: GateConfig,
    /// Train every run once per seed, as `<name>-seed<N>` (`compare` then reports each
    /// backbone's mean and interval over its seeds); empty = each run once, with its config's
    /// seed. Loading expands the runs, so this is empty afterwards.
    #[serde(default)]
    pub seeds: Vec<u64>,
    pub runs: Vec<RunSpec>,
}

fn default_device() -> String {
    "auto".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The run folder's name under `results`.
    pub name: String,
    /// A plugin name (`magvit` = plugins/libmagvit.so) or path.
    pub plugin: String,
    /// The backbone's RON configuration; None = the training config's `backbone`.
    #[serde(default)]
    pub backbone: Option<String>,
    /// The seed (`train --seed`); None = the training config's.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl SweepConfig {
    pub fn load(path: &Path) -> Result<Self> {
        super::load(path, Self::check).map(Self::expanded)
    }

    /// Parses RON; errors carry `source:line:column` and name the field.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        super::parse(text, source, Self::check).map(Self::expanded)
    }

    /// With `seeds`, each run once per seed, named `<name>-seed<N>`; `seeds` is then empty, so
    /// a sweep written back (sweep.json) and read again is not expanded twice.
    fn expanded(mut self) -> Self {
        let seeds = std::mem::take(&mut self.seeds);
        if !seeds.is_empty() {
            self.runs = self
                .runs
                .iter()
                .flat_map(|run| {
                    seeds.iter().map(move |&seed| RunSpec {
                        name: format!("{}-seed{seed}", run.name),
                        seed: Some(seed),
                        ..run.clone()
                    })
                })
                .collect();
        }
        self
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.runs.is_empty() {
            return Err(Invalid::new("runs", "is empty: nothing to train"));
        }
        if !self.seeds.is_empty() && self.runs.iter().any(|r| r.seed.is_some()) {
            return Err(Invalid::new(
                "runs.seed",
                "give the sweep's `seeds` or a run's own `seed`, not both",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for run in &self.clone().expanded().runs {
            let ok = !run.name.is_empty()
                && run
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !run.name.starts_with('.');
            if !ok {
                return Err(Invalid::new(
                    "runs.name",
                    format!(
                        "{:?} must be a plain folder name (letters, digits, - _ .)",
                        run.name
                    ),
                ));
            }
            if SUMMARY_FILES.contains(&run.name.as_str()) {
                return Err(Invalid::new(
                    "runs.name",
                    format!(
                        "{:?} is the name of a file the sweep writes in `results` ({}): choose another",
                        run.name,
                        SUMMARY_FILES.join(", ")
                    ),
                ));
            }
            if !names.insert(&run.name) {
                return Err(Invalid::new(
                    "runs.name",
                    format!("{:?} appears twice", run.name),
                ));
            }
        }
        if matches!(self.threads, Some(t) if t == 0 || t > MAX_THREADS) {
            return Err(Invalid::new(
                "threads",
                format!("must be 1 to {MAX_THREADS} when set"),
            ));
        }
        if self.max_parallel == Some(0) {
            return Err(Invalid::new("max_parallel", "must be at least 1 when set"));
        }
        let g = &self.gate;
        // Below 0 disables the check (accuracy is never negative).
        if g.min_accuracy.is_nan() || g.min_accuracy > 1.0 {
            return Err(Invalid::new(
                "gate.min_accuracy",
                "must be at most 1 (a fraction, e.g. 0.7)",
            ));
        }
        if g.max_mse.is_nan() || g.max_mse <= 0.0 {
            return Err(Invalid::new("gate.max_mse", "must be above 0"));
        }
        if g.improving_tolerance.is_nan() || g.improving_tolerance < 0.0 {
            return Err(Invalid::new(
                "gate.improving_tolerance",
                "must be 0 or more",
            ));
        }
        Ok(())
    }

    /// The runs named in `only` (all when empty); an unknown name is an error.
    pub fn select(&self, only: &[String]) -> Result<Vec<RunSpec>> {
        for name in only {
            if !self.runs.iter().any(|r| &r.name == name) {
                let known: Vec<&str> = self.runs.iter().map(|r| r.name.as_str()).collect();
                bail!(
                    "no run named {name:?} in the sweep (runs: {})",
                    known.join(", ")
                );
            }
        }
        Ok(self
            .runs
            .iter()
            .filter(|r| only.is_empty() || only.contains(&r.name))
            .cloned()
            .collect())
    }

    /// The training config of a phase.
    pub fn config_for(&self, phase: Phase) -> &Path {
        match phase {
            Phase::Validation => &self.validation_config,
            Phase::Full => &self.full_config,
        }
    }

    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.results.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWEEP: &str = include_str!("../../../configs/sweep.ron");
    const DEMO: &str = include_str!("../../../configs/sweep-demo.ron");

    #[test]
    fn shipped_sweeps_parse_with_the_plan_thresholds() {
        for text in [SWEEP, DEMO] {
            let s = SweepConfig::parse(text, "sweep.ron").unwrap();
            let names: Vec<&str> = s.runs.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["magvit", "i3d", "slowfast", "transformer"]);
            assert_eq!((s.gate.min_accuracy, s.gate.max_mse), (0.70, 0.1));
            assert!(s.gate.require_val_loss_improving);
        }
    }

    #[test]
    fn the_quality_bar_runs_one_backbone_at_a_time_and_its_old_pairing_is_kept() {
        let parse = |text, name| SweepConfig::parse(text, name).unwrap();
        let alone = parse(include_str!("../../../configs/sweep-quality.ron"), "q.ron");
        let paired = parse(
            include_str!("../../../configs/sweep-quality-one-core.ron"),
            "q1.ron",
        );
        // Two threads for the one run under way, against two runs with one thread each.
        assert_eq!((alone.threads, alone.max_parallel), (Some(2), Some(1)));
        assert_eq!((paired.threads, paired.max_parallel), (Some(2), Some(2)));
        let same_runs = SweepConfig {
            results: alone.results.clone(),
            max_parallel: alone.max_parallel,
            ..paired.clone()
        };
        assert_eq!(same_runs, alone, "only the pairing and the folder differ");
        assert_ne!(paired.results, alone.results);
    }

    #[test]
    fn seeds_expand_every_run_once_per_seed_and_collisions_are_refused() {
        let text = DEMO.replace("runs: [", "seeds: [1, 2],\n    runs: [");
        let s = SweepConfig::parse(&text, "s.ron").unwrap();
        let names: Vec<&str> = s.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(&names[..3], ["magvit-seed1", "magvit-seed2", "i3d-seed1"]);
        assert_eq!(names.len(), 8);
        assert_eq!(s.runs[1].seed, Some(2));
        assert_eq!(s.runs[1].plugin, "magvit");
        assert!(
            s.seeds.is_empty(),
            "expanded once: written back, it is not expanded again"
        );
        let again: SweepConfig =
            SweepConfig::parse(&ron::ser::to_string(&s).unwrap(), "again").unwrap();
        assert_eq!(again.runs.len(), 8);

        let twice = DEMO.replace("runs: [", "seeds: [1, 1],\n    runs: [");
        let err = SweepConfig::parse(&twice, "s.ron").unwrap_err();
        assert!(
            format!("{err:#}").contains("\"magvit-seed1\" appears twice"),
            "{err:#}"
        );
        let both = text.replace(
            "backbone: Some(\"(preset: \\\"cpu\\\")\")),\n        (name: \"i3d\"",
            "backbone: None, seed: Some(5)),\n        (name: \"i3d\"",
        );
        assert_ne!(both, text);
        let err = SweepConfig::parse(&both, "s.ron").unwrap_err();
        assert!(format!("{err:#}").contains("not both"), "{err:#}");
    }

    #[test]
    fn unknown_fields_are_named_with_line_and_column() {
        let text = SWEEP.replace("max_parallel:", "max_paralel:");
        assert_ne!(text, SWEEP);
        let err = SweepConfig::parse(&text, "s.ron").unwrap_err().to_string();
        let line = SWEEP
            .lines()
            .position(|l| l.contains("max_parallel:"))
            .unwrap()
            + 1;
        assert!(err.contains("max_paralel"), "{err}");
        assert!(err.starts_with(&format!("s.ron:{line}:")), "{err}");
    }

    #[test]
    fn impossible_thread_counts_are_refused() {
        for threads in ["Some(0)", "Some(100000)"] {
            let text = SWEEP.replace("threads: None", &format!("threads: {threads}"));
            assert_ne!(text, SWEEP);
            let err = format!("{:#}", SweepConfig::parse(&text, "s.ron").unwrap_err());
            assert!(err.contains("`threads`"), "{err}");
        }
    }

    #[test]
    fn duplicate_and_unsafe_names_are_refused() {
        for own in SUMMARY_FILES {
            let text = SWEEP.replace("name: \"i3d\"", &format!("name: {own:?}"));
            let err = format!("{:#}", SweepConfig::parse(&text, "s.ron").unwrap_err());
            assert!(err.contains("a file the sweep writes"), "{err}");
        }
        let text = SWEEP.replace("name: \"i3d\"", "name: \"magvit\"");
        let err = format!("{:#}", SweepConfig::parse(&text, "s.ron").unwrap_err());
        assert!(err.contains("appears twice"), "{err}");
        let text = SWEEP.replace("name: \"i3d\"", "name: \"../i3d\"");
        let err = format!("{:#}", SweepConfig::parse(&text, "s.ron").unwrap_err());
        assert!(err.contains("`runs.name`"), "{err}");
    }
}
