//! The robustness suite: a model scored on the shifted test sets of its data
//! (`trajhost_dataset::shifts`: noise, jitter, other lenses, the other camera mode, a farther
//! camera, held-out appearance styles), each generated once and cached by its config, next to
//! the same-sized unshifted set.

use super::trained::Trained;
use super::{evaluate_on, SplitChoice};
use crate::rundir::robustness::{Robustness, ShiftResult};
use crate::train::source::DataSource;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use trajhost_dataset::generate::generate_shifted_sets;
use trajhost_dataset::shifts::SEED_SALT;
use trajhost_dataset::Manifest;

/// `data/10k` → `data/10k-shifts`; a procedural source's sets go to `data/procedural-shifts`.
pub fn default_cache(source: &DataSource) -> PathBuf {
    let data = match source {
        DataSource::Stored(dir) => dir,
        DataSource::Procedural { .. } => return PathBuf::from("data/procedural-shifts"),
    };
    let name = data
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().into_owned());
    data.with_file_name(format!("{name}-shifts"))
}

/// Generates (or reuses) every shifted set of `source`'s look and evaluates `trained` on each.
pub fn run(
    trained: &mut Trained,
    run: &Path,
    source: &DataSource,
    cache: &Path,
    samples: usize,
    device: tch::Device,
) -> Result<Robustness> {
    let base = match source {
        DataSource::Stored(dir) => {
            Manifest::load(dir)
                .with_context(|| format!("opening dataset {}", dir.display()))?
                .config
        }
        DataSource::Procedural { config, .. } => (**config).clone(),
    };
    let sets = generate_shifted_sets(&base, cache, samples, base.workers).with_context(|| {
        format!(
            "generating the shifted test sets in {} (--shift-cache chooses the folder)",
            cache.display()
        )
    })?;
    let mut rows: Vec<ShiftResult> = Vec::new();
    for (shift, dir) in sets {
        let source = DataSource::Stored(dir.clone());
        let report = evaluate_on(trained, run, &dir, &source, SplitChoice::Test, device, None)?;
        let (accuracy, mse) = (report.metrics.accuracy, report.metrics.mse);
        let (base_accuracy, base_mse) = rows
            .first()
            .map_or((accuracy, mse), |r| (r.accuracy, r.mse));
        eprintln!(
            "[shifts] {}: accuracy {:.1}%, MSE {mse:.4}",
            shift.name,
            100.0 * accuracy
        );
        rows.push(ShiftResult {
            shift: shift.name.into(),
            description: (shift.describe)(&base),
            data: dir,
            accuracy,
            mse,
            accuracy_drop: base_accuracy - accuracy,
            mse_ratio: mse / base_mse.max(f64::MIN_POSITIVE),
            held_out: shift.held_out,
        });
    }
    Ok(Robustness {
        run: crate::rundir::run_name(run),
        checkpoint: trained.checkpoint.clone(),
        epoch: trained.meta.epoch,
        samples,
        seed: base.seed ^ SEED_SALT,
        data: Some(source.spec()?.to_string_lossy().into_owned()),
        mirror_averaged: trained.model.mirror_average,
        fovea_passes: trained.fovea_passes_override(),
        rows,
    })
}

/// The robustness table as text.
pub fn render(r: &Robustness) -> String {
    let mirrored = if r.mirror_averaged {
        ", mirror-averaged"
    } else {
        ""
    };
    let looks = r
        .fovea_passes
        .map(|passes| format!(", {passes} fovea looks"))
        .unwrap_or_default();
    let mut text = format!(
        "robustness of {} (epoch {}{mirrored}{looks}), {} test videos per set, shifts of {}:\n",
        r.run,
        r.epoch,
        r.samples,
        r.data.as_deref().unwrap_or("the run's data")
    );
    let _ = writeln!(
        text,
        "  {:<18} {:>9} {:>9} {:>9} {:>9}  what changed",
        "shift", "accuracy", "drop", "MSE", "× MSE"
    );
    for row in &r.rows {
        let _ = writeln!(
            text,
            "  {:<18} {:>8.1}% {:>8.1}% {:>9.4} {:>8.2}×  {}",
            row.shift,
            100.0 * row.accuracy,
            100.0 * row.accuracy_drop,
            row.mse,
            row.mse_ratio,
            row.description
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_datasets_sets_go_beside_it() {
        assert_eq!(
            default_cache(&DataSource::Stored("data/10k".into())),
            Path::new("data/10k-shifts")
        );
    }
}
