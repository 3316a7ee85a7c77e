//! When training stops: early stopping on a validation metric (which also decides the `best`
//! checkpoint), the time budget, the last epoch. Pure decisions over numbers; the trainer acts.

use crate::config::{Metric, TrainConfig};
use crate::rundir::metrics::{SplitMetrics, StopReason};
use serde::{Deserialize, Serialize};

/// Early stopping's memory, carried across resumes in every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingState {
    pub best: Option<f64>,
    pub best_epoch: usize,
    pub epochs_without_improvement: usize,
}

/// The metric a run follows: its early-stopping metric, else the validation loss (so `best`
/// is kept even without early stopping).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watch {
    pub metric: Metric,
    pub min_delta: f64,
}

impl Watch {
    pub fn of(config: &TrainConfig) -> Self {
        match &config.early_stopping {
            Some(es) => Watch {
                metric: es.metric,
                min_delta: es.min_delta,
            },
            None => Watch {
                metric: Metric::ValLoss,
                min_delta: 0.0,
            },
        }
    }

    pub fn value(self, val: &SplitMetrics) -> f64 {
        match self.metric {
            Metric::ValLoss => val.loss,
            Metric::ValAccuracy => val.accuracy,
            Metric::ValMse => val.mse,
        }
    }

    /// Records epoch `epoch`'s validation scores; returns whether they are the best so far.
    pub fn update(self, state: &mut EarlyStoppingState, val: &SplitMetrics, epoch: usize) -> bool {
        let value = self.value(val);
        let improved = match state.best {
            None => true,
            Some(best) if self.metric.maximise() => value > best + self.min_delta,
            Some(best) => value < best - self.min_delta,
        };
        if improved {
            state.best = Some(value);
            state.best_epoch = epoch;
            state.epochs_without_improvement = 0;
        } else {
            state.epochs_without_improvement += 1;
        }
        improved
    }
}

/// Whether training stops after epoch `epoch`, and why; None = train on.
pub fn after_epoch(
    config: &TrainConfig,
    state: &EarlyStoppingState,
    epoch: usize,
    over_budget: bool,
) -> Option<StopReason> {
    let patience_over = config
        .early_stopping
        .as_ref()
        .is_some_and(|es| state.epochs_without_improvement >= es.patience);
    if over_budget {
        Some(StopReason::TimeBudget)
    } else if patience_over {
        Some(StopReason::EarlyStopping)
    } else if epoch >= config.epochs {
        Some(StopReason::Completed)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(loss: f64, accuracy: f64) -> SplitMetrics {
        SplitMetrics {
            samples: 1,
            loss,
            classification_loss: 0.0,
            prediction_loss: 0.0,
            tracking_loss: 0.0,
            accuracy,
            per_class_accuracy: [0.0; 4],
            confusion: [[0; 4]; 4],
            mse: 0.0,
            mse_per_axis: [0.0; 3],
        }
    }

    #[test]
    fn a_watch_follows_its_metric_in_its_direction() {
        let loss = Watch {
            metric: Metric::ValLoss,
            min_delta: 0.1,
        };
        let mut state = EarlyStoppingState::default();
        assert!(loss.update(&mut state, &scores(1.0, 0.0), 1));
        assert!(
            !loss.update(&mut state, &scores(0.95, 0.0), 2),
            "within min_delta"
        );
        assert!(loss.update(&mut state, &scores(0.8, 0.0), 3));
        assert_eq!((state.best, state.best_epoch), (Some(0.8), 3));
        let accuracy = Watch {
            metric: Metric::ValAccuracy,
            min_delta: 0.0,
        };
        let mut state = EarlyStoppingState::default();
        assert!(accuracy.update(&mut state, &scores(1.0, 0.5), 1));
        assert!(!accuracy.update(&mut state, &scores(0.1, 0.4), 2));
        assert_eq!(state.epochs_without_improvement, 1);
    }
}
