//! The training configuration (`configs/validation.ron`, `configs/full.ron`).

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use trajhost_config::Invalid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Shown in PROGRESS.txt and reports, e.g. "validation" or "full".
    pub phase: String,
    /// Total epochs of the run; a run resumed at epoch k trains epochs k+1 ..= epochs.
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    /// Linear warm-up length in optimiser steps, then cosine decay to `min_lr` if `cosine`.
    pub warmup_steps: usize,
    pub cosine: bool,
    pub min_lr: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Write a checkpoint every this many epochs (and at the end, and on Ctrl-C).
    pub checkpoint_interval: usize,
    /// How many periodic checkpoints to keep besides `best`.
    pub keep_checkpoints: usize,
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Loss weights; 0 disables a task.
    pub classification_weight: f64,
    pub prediction_weight: f64,
    /// Weight of the per-frame position loss (where the ball is in each input frame), which
    /// teaches every backbone to localise the ball; 0 (what a config without the field means,
    /// as before the loss existed) disables it.
    #[serde(default)]
    pub tracking_weight: f64,
    /// How the heads read positions (`model::UnifiedModel`): `direct` regresses label
    /// coordinates, `pinhole` reads the ball's image position and apparent size and lifts them
    /// through the lens. A config without the field means `direct`, as before it existed.
    #[serde(default)]
    pub position_head: PositionHead,
    /// With `position_head: fovea`: how many times the fovea looks in inference (validation,
    /// test, eval, predict), each look cut out around the last one's answer; training looks
    /// once. A config without the field means 1, as before it existed.
    #[serde(default = "one_look")]
    pub fovea_passes: usize,
    /// Validation, test, eval and predict average each answer with the model's answer for the
    /// clip's left-right mirror image, its x negated back (`mirror`): a second, partly
    /// independent reading of the ball for twice the inference; training steps read the clip
    /// alone. A config without the field means false, as before it existed.
    #[serde(default)]
    pub mirror_average: bool,
    /// What the backbone sees of each clip (`model_input`): `keep` the frames as they are, or
    /// `subtract_median`, each pixel's median over the clip taken out of every frame, so that
    /// only what moves (the ball and its shadow) is left. A config without the field means
    /// `keep`, as before it existed.
    #[serde(default)]
    pub background: Background,
    /// How the backbone sees each pixel's colour (`hue_free`): `rgb` as rendered, or
    /// `hue_free`, its brightness and its distance from grey without its hue, so that a ball of
    /// a hue never trained on looks like one that was. A config without the field means `rgb`,
    /// as before it existed.
    #[serde(default)]
    pub colour: Colour,
    /// Predict the ball's position this many frames after the last input frame.
    pub predict_future: usize,
    pub seed: u64,
    /// The backbone plugin's own RON configuration (e.g. `(preset: "cpu")`).
    pub backbone: String,
    /// Use only the first N training samples (for quick runs); None = all.
    pub max_train_samples: Option<usize>,
    /// Stop training after this many minutes (then validate, checkpoint and test as usual).
    #[serde(default)]
    pub time_budget_minutes: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// The validation metric watched: `"val_loss"`, `"val_accuracy"` or `"val_mse"`.
    pub metric: Metric,
    pub patience: usize,
    pub min_delta: f64,
}

/// A validation metric that early stopping (and the `best` checkpoint) follows. Written as
/// its name in quotes, as in configs from before the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Metric {
    ValLoss,
    ValAccuracy,
    ValMse,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::ValLoss, Metric::ValAccuracy, Metric::ValMse];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ValLoss => "val_loss",
            Metric::ValAccuracy => "val_accuracy",
            Metric::ValMse => "val_mse",
        }
    }

    /// Whether larger values are better.
    pub fn maximise(self) -> bool {
        self == Metric::ValAccuracy
    }
}

impl TryFrom<String> for Metric {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let known: Vec<String> = Metric::ALL
                    .iter()
                    .map(|m| format!("{:?}", m.name()))
                    .collect();
                format!(
                    "unknown metric {name:?}, expected one of {}",
                    known.join(", ")
                )
            })
    }
}

impl From<Metric> for String {
    fn from(metric: Metric) -> String {
        metric.name().into()
    }
}

/// How the model turns a frame's features into the ball's 3-D position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionHead {
    /// `Linear(D, 3)` straight to label coordinates.
    #[default]
    Direct,
    /// `Linear(D, 3)` to the ball's image position and log apparent radius, lifted to 3-D with
    /// the data's focal length: depth comes from size by construction.
    Pinhole,
    /// `Pinhole`, its estimate corrected by a small CNN that reads each input frame at full
    /// resolution around it (the host's `train::fovea`).
    Fovea,
}

/// The most `fovea_passes` a config may ask for: each costs a fovea's forward pass per frame,
/// and a third look measured no better than a second (docs/training.md, "Looking twice").
pub const MAX_FOVEA_PASSES: usize = 4;

fn one_look() -> usize {
    1
}

/// What the model's input keeps of the scene behind the ball.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    /// The standardised frames as rendered.
    #[default]
    Keep,
    /// Each pixel's median over the clip (a static camera's scene without the ball) taken out
    /// of every frame.
    SubtractMedian,
}

impl Background {
    /// As a config writes it.
    pub fn name(self) -> &'static str {
        match self {
            Background::Keep => "keep",
            Background::SubtractMedian => "subtract_median",
        }
    }
}

/// How the model's input carries each pixel's colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// The three channels as rendered.
    #[default]
    Rgb,
    /// Each pixel's (red, green, blue) as (its component along the grey axis, its distance from
    /// that axis, 0): what a rotation of hue leaves unchanged.
    HueFree,
}

impl Colour {
    /// As a config writes it.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Rgb => "rgb",
            Colour::HueFree => "hue_free",
        }
    }
}

/// How much each task's loss counts in the total; 0 disables a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub classification: f64,
    pub prediction: f64,
    /// The per-frame position loss of the tracker.
    pub tracking: f64,
}

impl LossWeights {
    pub const ALL_ONE: LossWeights = LossWeights {
        classification: 1.0,
        prediction: 1.0,
        tracking: 1.0,
    };
}

impl TrainConfig {
    pub fn load(path: &Path) -> Result<Self> {
        super::load(path, Self::check)
    }

    /// Parses RON; errors carry `source:line:column` and name the field.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        super::parse(text, source, Self::check)
    }

    /// Re-checks a config changed in code (by command-line overrides).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.check()
    }

    pub fn loss_weights(&self) -> LossWeights {
        LossWeights {
            classification: self.classification_weight,
            prediction: self.prediction_weight,
            tracking: self.tracking_weight,
        }
    }

    fn check(&self) -> Result<(), Invalid> {
        let positive = [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("checkpoint_interval", self.checkpoint_interval),
            ("keep_checkpoints", self.keep_checkpoints),
            ("predict_future", self.predict_future),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(Invalid::new(field, "must be at least 1"));
            }
        }
        if !(1..=MAX_FOVEA_PASSES).contains(&self.fovea_passes) {
            return Err(Invalid::new(
                "fovea_passes",
                format!("must be 1 to {MAX_FOVEA_PASSES}; got {}", self.fovea_passes),
            ));
        }
        if self.fovea_passes > 1 && self.position_head != PositionHead::Fovea {
            return Err(Invalid::new(
                "fovea_passes",
                format!(
                    "is {}, but `position_head` is {}: only the fovea looks again",
                    self.fovea_passes,
                    format!("{:?}", self.position_head).to_lowercase()
                ),
            ));
        }
        // Every float is finite (RON reads `NaN` and `inf`) and within its range.
        let number = |field: &str, value: f64, positive: bool| {
            let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
            let range = if positive { "positive" } else { "0 or more" };
            match ok {
                true => Ok(()),
                false => Err(Invalid::new(
                    field,
                    format!("must be a finite number, {range}; got {value}"),
                )),
            }
        };
        number("lr", self.lr, true)?;
        number("weight_decay", self.weight_decay, false)?;
        number("min_lr", self.min_lr, false)?;
        if self.min_lr > self.lr {
            return Err(Invalid::new(
                "min_lr",
                format!(
                    "{} is above `lr` ({}): the schedule decays to min_lr",
                    self.min_lr, self.lr
                ),
            ));
        }
        if let Some(clip) = self.grad_clip {
            number("grad_clip", clip, true)?;
        }
        number("classification_weight", self.classification_weight, false)?;
        number("prediction_weight", self.prediction_weight, false)?;
        number("tracking_weight", self.tracking_weight, false)?;
        if self.classification_weight == 0.0 && self.prediction_weight == 0.0 {
            return Err(Invalid::new(
                "classification_weight",
                "and `prediction_weight` are both 0: nothing to train",
            ));
        }
        if let Some(minutes) = self.time_budget_minutes {
            number("time_budget_minutes", minutes, true)?;
        }
        if let Some(es) = &self.early_stopping {
            number("early_stopping.min_delta", es.min_delta, false)?;
            if es.patience == 0 {
                return Err(Invalid::new(
                    "early_stopping.patience",
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDATION: &str = include_str!("../../../configs/validation.ron");
    const FULL: &str = include_str!("../../../configs/full.ron");

    #[test]
    fn shipped_configs_parse_with_the_seed_values() {
        let v = TrainConfig::parse(VALIDATION, "validation.ron").unwrap();
        assert_eq!(
            (v.epochs, v.batch_size, v.lr, v.checkpoint_interval),
            (10, 32, 1e-3, 2)
        );
        assert_eq!(v.early_stopping.unwrap().patience, 5);
        assert_eq!(
            (
                v.classification_weight,
                v.prediction_weight,
                v.tracking_weight,
                v.predict_future
            ),
            (1.0, 10.0, 10.0, 5)
        );
        let f = TrainConfig::parse(FULL, "full.ron").unwrap();
        assert_eq!((f.epochs, f.lr, f.checkpoint_interval), (50, 5e-4, 5));
    }

    #[test]
    fn the_position_head_is_direct_unless_a_config_says_pinhole() {
        let v = TrainConfig::parse(VALIDATION, "validation.ron").unwrap();
        assert!(!VALIDATION.contains("position_head"));
        assert_eq!(v.position_head, PositionHead::Direct);
        let text = VALIDATION.replace(
            "predict_future:",
            "position_head: pinhole,\n    predict_future:",
        );
        let p = TrainConfig::parse(&text, "p.ron").unwrap();
        assert_eq!(p.position_head, PositionHead::Pinhole);
        let text = VALIDATION.replace(
            "predict_future:",
            "position_head: pinhol,\n    predict_future:",
        );
        let err = format!("{:#}", TrainConfig::parse(&text, "p.ron").unwrap_err());
        assert!(err.contains("pinhol") && err.contains("pinhole"), "{err}");
    }

    /// The fovea looks once unless a config says more, and only the fovea looks again.
    #[test]
    fn fovea_passes_are_one_unless_a_fovea_config_asks_for_up_to_four() {
        assert_eq!(
            TrainConfig::parse(VALIDATION, "v.ron")
                .unwrap()
                .fovea_passes,
            1
        );
        let with = |head: &str, passes: &str| {
            let fields =
                format!("position_head: {head},\n    fovea_passes: {passes},\n    predict_future:");
            TrainConfig::parse(&VALIDATION.replace("predict_future:", &fields), "f.ron")
        };
        assert_eq!(with("fovea", "2").unwrap().fovea_passes, 2);
        assert_eq!(with("fovea", "4").unwrap().fovea_passes, 4);
        for (head, passes, needle) in [
            ("fovea", "0", "1 to 4"),
            ("fovea", "5", "1 to 4"),
            ("fovea", "99999999999999999999", "fovea_passes"),
            ("pinhole", "2", "`position_head` is pinhole: only the fovea"),
        ] {
            let err = format!("{:#}", with(head, passes).unwrap_err());
            assert!(
                err.contains("fovea_passes") && err.contains("f.ron") && err.contains(needle),
                "{head} {passes}: {err}"
            );
        }
    }

    /// Inference reads the clip alone unless a config asks for the mirror too; the shipped
    /// quality config does.
    #[test]
    fn mirror_averaging_is_off_unless_a_config_asks_for_it() {
        assert!(!VALIDATION.contains("mirror_average"));
        assert!(
            !TrainConfig::parse(VALIDATION, "v.ron")
                .unwrap()
                .mirror_average
        );
        let quality = include_str!("../../../configs/quality.ron");
        assert!(
            TrainConfig::parse(quality, "quality.ron")
                .unwrap()
                .mirror_average
        );
        let with = |value: &str| {
            let field = format!("mirror_average: {value},\n    predict_future:");
            TrainConfig::parse(&VALIDATION.replace("predict_future:", &field), "m.ron")
        };
        assert!(with("true").unwrap().mirror_average);
        let err = format!("{:#}", with("yes").unwrap_err());
        assert!(err.contains("m.ron") && err.contains("bool"), "{err}");
    }

    #[test]
    fn the_background_is_kept_unless_a_config_subtracts_it() {
        let v = TrainConfig::parse(VALIDATION, "validation.ron").unwrap();
        assert_eq!(v.background, Background::Keep);
        let with = |value: &str| {
            let field = format!("background: {value},\n    predict_future:");
            TrainConfig::parse(&VALIDATION.replace("predict_future:", &field), "b.ron")
        };
        assert_eq!(
            with("subtract_median").unwrap().background,
            Background::SubtractMedian
        );
        assert_eq!(with("keep").unwrap().background, Background::Keep);
        let err = format!("{:#}", with("subtract").unwrap_err());
        assert!(
            err.contains("subtract_median") && err.contains("b.ron"),
            "{err}"
        );
    }

    #[test]
    fn colour_is_rgb_unless_a_config_asks_for_hue_free() {
        let v = TrainConfig::parse(VALIDATION, "validation.ron").unwrap();
        assert_eq!(v.colour, Colour::Rgb);
        let with = |value: &str| {
            let field = format!("colour: {value},\n    predict_future:");
            TrainConfig::parse(&VALIDATION.replace("predict_future:", &field), "c.ron")
        };
        assert_eq!(with("hue_free").unwrap().colour, Colour::HueFree);
        assert_eq!(with("rgb").unwrap().colour, Colour::Rgb);
        let err = format!("{:#}", with("grey").unwrap_err());
        assert!(err.contains("hue_free") && err.contains("c.ron"), "{err}");
    }

    #[test]
    fn unknown_fields_are_named_with_line_and_column() {
        let text = VALIDATION.replace("batch_size:", "batch_sise:");
        let err = TrainConfig::parse(&text, "v.ron").unwrap_err().to_string();
        assert!(
            err.contains("batch_sise") && err.starts_with("v.ron:"),
            "{err}"
        );
        let line = VALIDATION
            .lines()
            .position(|l| l.contains("batch_size:"))
            .unwrap()
            + 1;
        assert!(err.contains(&format!("v.ron:{line}:")), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        for (from, to, field) in [
            ("epochs: 10", "epochs: 0", "epochs"),
            ("lr: 1e-3", "lr: -1.0", "lr"),
            ("lr: 1e-3", "lr: NaN", "lr"),
            ("weight_decay: 0.01", "weight_decay: NaN", "weight_decay"),
            ("weight_decay: 0.01", "weight_decay: inf", "weight_decay"),
            ("weight_decay: 0.01", "weight_decay: -0.1", "weight_decay"),
            ("min_lr: 1e-5", "min_lr: NaN", "min_lr"),
            ("min_lr: 1e-5", "min_lr: -inf", "min_lr"),
            ("min_lr: 1e-5", "min_lr: 0.1", "min_lr"),
            ("grad_clip: Some(1.0)", "grad_clip: Some(NaN)", "grad_clip"),
            ("grad_clip: Some(1.0)", "grad_clip: Some(inf)", "grad_clip"),
            ("grad_clip: Some(1.0)", "grad_clip: Some(0.0)", "grad_clip"),
            (
                "classification_weight: 1.0",
                "classification_weight: NaN",
                "classification_weight",
            ),
            (
                "classification_weight: 1.0",
                "classification_weight: -1.0",
                "classification_weight",
            ),
            (
                "prediction_weight: 10.0",
                "prediction_weight: inf",
                "prediction_weight",
            ),
            (
                "tracking_weight: 10.0",
                "tracking_weight: -1.0",
                "tracking_weight",
            ),
            (
                "min_delta: 0.0",
                "min_delta: NaN",
                "early_stopping.min_delta",
            ),
            (
                "min_delta: 0.0",
                "min_delta: inf",
                "early_stopping.min_delta",
            ),
            (
                "min_delta: 0.0",
                "min_delta: -0.5",
                "early_stopping.min_delta",
            ),
            ("patience: 5", "patience: 0", "early_stopping.patience"),
            (
                "time_budget_minutes: None",
                "time_budget_minutes: Some(NaN)",
                "time_budget_minutes",
            ),
            (
                "time_budget_minutes: None",
                "time_budget_minutes: Some(inf)",
                "time_budget_minutes",
            ),
            (
                "time_budget_minutes: None",
                "time_budget_minutes: Some(-1.0)",
                "time_budget_minutes",
            ),
            (
                "metric: \"val_loss\"",
                "metric: \"val_los\"",
                // Refused while parsing: the error names the field as written.
                "metric",
            ),
        ] {
            let text = VALIDATION.replace(from, to);
            assert_ne!(text, VALIDATION, "{from} is in the shipped config");
            let err = format!("{:#}", TrainConfig::parse(&text, "v.ron").unwrap_err());
            assert!(err.contains(&format!("`{field}`")), "{err}");
            // Where the field is written: `v.ron:<line>:<column>: ...`.
            let line = text.lines().position(|l| l.contains(to)).unwrap() + 1;
            assert!(err.starts_with(&format!("v.ron:{line}:")), "{err}");
        }
    }
}
