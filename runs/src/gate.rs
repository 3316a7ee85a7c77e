//! The gate between the validation phase and the full run: a pure decision over a run's
//! validation metrics and its per-epoch history.
//!
//! Checks (thresholds from the sweep config's `gate`):
//! - classification accuracy on the validation split > `min_accuracy`;
//! - prediction MSE on the validation split < `max_mse`;
//! - if `require_val_loss_improving`: the validation loss is still improving, which means the
//!   best validation loss so far was reached within the last `improving_window` epochs, or the
//!   best of those last epochs is within `improving_tolerance` (relative) of the best overall.
//!   A run that stopped early, or whose loss went flat or up for longer than the window, fails.
//!
//! The gate reads the validation split only, never the test split, so choosing which runs go
//! on leaks nothing of the test set into the decision.

use crate::config::GateConfig;
use crate::rundir::gate::GateDecision;
use crate::rundir::metrics::{EpochRecord, FinalMetrics};

/// Decides whether a run that finished its validation phase goes on to the full run.
pub fn decide(
    config: &GateConfig,
    metrics: &FinalMetrics,
    history: &[EpochRecord],
) -> GateDecision {
    let mut reasons = Vec::new();
    let mut passed = true;
    let mut check = |ok: bool, text: String| {
        passed &= ok;
        reasons.push(format!("{}: {text}", if ok { "pass" } else { "fail" }));
    };
    let (accuracy, mse) = (metrics.val.accuracy, metrics.val.mse);
    check(
        accuracy > config.min_accuracy,
        format!(
            "validation accuracy {:.1}% {} {:.1}%",
            100.0 * accuracy,
            if accuracy > config.min_accuracy {
                ">"
            } else {
                "is not above"
            },
            100.0 * config.min_accuracy
        ),
    );
    check(
        mse < config.max_mse,
        format!(
            "validation prediction MSE {mse:.4} {} {}",
            if mse < config.max_mse {
                "<"
            } else {
                "is not below"
            },
            config.max_mse
        ),
    );
    if config.require_val_loss_improving {
        let (ok, text) = val_loss_improving(config, history);
        check(ok, text);
    }
    GateDecision {
        run: metrics.run.clone(),
        passed,
        reasons,
        val_accuracy: accuracy,
        val_mse: mse,
        thresholds: config.clone(),
    }
}

fn val_loss_improving(config: &GateConfig, history: &[EpochRecord]) -> (bool, String) {
    let losses: Vec<(usize, f64)> = history
        .iter()
        .map(|r| (r.epoch, r.val.loss))
        .filter(|(_, l)| l.is_finite())
        .collect();
    let Some(&(best_epoch, best)) = losses.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        return (false, "no validation loss was recorded".into());
    };
    let window = config.improving_window.max(1);
    let recent = &losses[losses.len().saturating_sub(window)..];
    let last_epoch = losses.last().map_or(0, |l| l.0);
    let recent_best = recent.iter().map(|l| l.1).fold(f64::INFINITY, f64::min);
    if recent.iter().any(|&(e, _)| e == best_epoch) {
        return (
            true,
            format!(
                "validation loss still improving: best {best:.4} at epoch {best_epoch} of {last_epoch}, within the last {window} epochs"
            ),
        );
    }
    let gap = (recent_best - best) / best.abs().max(1e-12);
    if gap <= config.improving_tolerance {
        (
            true,
            format!(
                "validation loss level: best {best:.4} at epoch {best_epoch}; the last {window} epochs reach {recent_best:.4}, within {:.1}%",
                100.0 * config.improving_tolerance
            ),
        )
    } else {
        (
            false,
            format!(
                "validation loss no longer improving: best {best:.4} at epoch {best_epoch}, the last {window} epochs only {recent_best:.4} ({:+.1}%)",
                100.0 * gap
            ),
        )
    }
}
