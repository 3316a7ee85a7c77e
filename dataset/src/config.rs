//! Dataset configuration: parsed from RON, validated, with errors that name the field and,
//! when the config came from RON text, its line and column.

use std::path::Path;

use serde::{Deserialize, Serialize};
pub use trajhost_config::ConfigError;
use trajhost_config::{Invalid, Source};

use crate::appearance::AppearanceConfig;
use crate::class::Class;

/// The default configuration (the original plan's values), as shipped in `configs/data.ron`.
pub const DEFAULT_CONFIG_RON: &str = include_str!("../../configs/data.ron");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    pub noise_level: f64,
    pub random_rotation: bool,
    pub random_scale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

/// A validated configuration. Build it with [`DataConfig::from_ron`], [`DataConfig::default_config`]
/// or [`DataConfig::tiny`]; after changing fields by hand call [`DataConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub samples: usize,
    pub classes: Vec<Class>,
    pub frames: usize,
    pub horizon: usize,
    pub width: usize,
    pub height: usize,
    pub fps: f64,
    pub auto_camera: bool,
    pub fov_deg: f64,
    pub augmentation: Augmentation,
    pub pixel_noise: f64,
    pub checkpoint_interval: usize,
    pub workers: usize,
    pub seed: u64,
    pub split: SplitFractions,
    /// How samples look; None is the classic look (and leaves manifests as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance: Option<AppearanceConfig>,
}

/// The file format: counts are signed and classes are strings so that a negative count or an
/// unknown class is reported by [`validate`] with the field's name instead of a bare type error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    samples: i64,
    classes: Vec<String>,
    frames: i64,
    horizon: i64,
    width: i64,
    height: i64,
    fps: f64,
    auto_camera: bool,
    fov_deg: f64,
    augmentation: RawAugmentation,
    pixel_noise: f64,
    checkpoint_interval: i64,
    workers: i64,
    seed: u64,
    split: RawSplit,
    #[serde(default)]
    appearance: Option<AppearanceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAugmentation {
    noise_level: f64,
    random_rotation: bool,
    random_scale: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    train: f64,
    val: f64,
    test: f64,
}

impl RawConfig {
    /// Counts to `usize` and class names to [`Class`], naming the field that does not convert.
    fn into_config(self) -> Result<DataConfig, Invalid> {
        let count = |field: &str, value: i64| {
            usize::try_from(value)
                .map_err(|_| Invalid::new(field, format!("must not be negative, got {value}")))
        };
        let mut classes = Vec::with_capacity(self.classes.len());
        for (i, name) in self.classes.iter().enumerate() {
            let class = Class::from_name(name).ok_or_else(|| {
                Invalid::new(
                    format!("classes[{i}]"),
                    format!(
                        "unknown class {name:?}, expected one of {}",
                        Class::NAMES.join(", ")
                    ),
                )
            })?;
            classes.push(class);
        }
        Ok(DataConfig {
            samples: count("samples", self.samples)?,
            classes,
            frames: count("frames", self.frames)?,
            horizon: count("horizon", self.horizon)?,
            width: count("width", self.width)?,
            height: count("height", self.height)?,
            fps: self.fps,
            auto_camera: self.auto_camera,
            fov_deg: self.fov_deg,
            augmentation: Augmentation {
                noise_level: self.augmentation.noise_level,
                random_rotation: self.augmentation.random_rotation,
                random_scale: self.augmentation.random_scale,
            },
            pixel_noise: self.pixel_noise,
            checkpoint_interval: count("checkpoint_interval", self.checkpoint_interval)?,
            workers: count("workers", self.workers)?,
            seed: self.seed,
            split: SplitFractions {
                train: self.split.train,
                val: self.split.val,
                test: self.split.test,
            },
            appearance: self.appearance,
        })
    }
}

impl DataConfig {
    /// The embedded default config.
    pub fn default_config() -> Self {
        Self::from_ron(DEFAULT_CONFIG_RON, "<default configs/data.ron>")
            .expect("embedded config is valid")
    }

    /// A small config for tests: 64 samples, 8 frames of 32×32, shards of 16.
    pub fn tiny() -> Self {
        DataConfig {
            samples: 64,
            frames: 8,
            width: 32,
            height: 32,
            checkpoint_interval: 16,
            workers: 2,
            ..Self::default_config()
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = trajhost_config::read_file(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            field: "<file>".into(),
            line: None,
            column: None,
            message: e.to_string(),
        })?;
        Self::from_ron(&text, &path.display().to_string())
    }

    /// Parses and validates RON text; `source_name` (usually the path) prefixes every error.
    pub fn from_ron(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let source = Source::new(text, source_name);
        let raw: RawConfig = source.parse()?;
        let config = raw
            .into_config()
            .map_err(|invalid| source.locate(invalid))?;
        config.check().map_err(|invalid| source.locate(invalid))?;
        Ok(config)
    }

    /// Re-validates a config built or modified in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|invalid| invalid.unplaced("<config>"))
    }

    fn check(&self) -> Result<(), Invalid> {
        let positive = |field: &'static str, v: usize| {
            if v == 0 {
                Err(Invalid::new(field, "must be at least 1, got 0"))
            } else {
                Ok(())
            }
        };
        positive("samples", self.samples)?;
        positive("checkpoint_interval", self.checkpoint_interval)?;
        positive("workers", self.workers)?;
        // usize → i64 saturates: anything that large is refused by the limits anyway.
        let wide = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        crate::limits::check_clip(wide(self.frames), wide(self.height), wide(self.width))
            .and_then(|()| crate::limits::check_horizon(wide(self.horizon)))
            .map_err(|(field, why)| Invalid::new(field, why))?;
        // The clip limits above keep one sample's bytes far from overflowing; the dataset's
        // total (samples × sample) is checked where it matters, before generating
        // (`resources::check_resources`), so checking a config needs nothing of the writer.
        if let Some(appearance) = &self.appearance {
            appearance.check()?;
        }
        if self.classes.is_empty() {
            return Err(Invalid::new("classes", "must list at least one class"));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(c) {
                return Err(Invalid::new(
                    "classes",
                    format!("class {:?} is listed twice", c.name()),
                ));
            }
        }
        let in_range = |field: &'static str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Invalid::new(
                    field,
                    format!("must be within {lo}..={hi}, got {v}"),
                ))
            }
        };
        in_range("fps", self.fps, 1.0, 1000.0)?;
        in_range("fov_deg", self.fov_deg, 10.0, 120.0)?;
        in_range(
            "augmentation.noise_level",
            self.augmentation.noise_level,
            0.0,
            0.2,
        )?;
        in_range("pixel_noise", self.pixel_noise, 0.0, 0.1)?;
        in_range("split.train", self.split.train, 0.0, 1.0)?;
        in_range("split.val", self.split.val, 0.0, 1.0)?;
        in_range("split.test", self.split.test, 0.0, 1.0)?;
        let sum = self.split.train + self.split.val + self.split.test;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Invalid::new(
                "split",
                format!("fractions must add up to 1, got {sum}"),
            ));
        }
        Ok(())
    }

    /// Total labelled frames per sample: the clip plus the prediction horizon.
    pub fn total_frames(&self) -> usize {
        self.frames + self.horizon
    }

    /// Bytes of one video: T × 3 × H × W.
    pub fn video_bytes(&self) -> usize {
        self.frames * 3 * self.height * self.width
    }

    pub fn shard_count(&self) -> usize {
        self.samples.div_ceil(self.checkpoint_interval)
    }

    /// The config with fields that do not change the generated bytes (worker count) cleared,
    /// used to decide whether an existing output folder holds "the same" dataset.
    pub fn content_key(&self) -> DataConfig {
        DataConfig {
            workers: 0,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(field_line: &str, replacement: &str) -> String {
        let text = DEFAULT_CONFIG_RON.replacen(field_line, replacement, 1);
        assert_ne!(
            text, DEFAULT_CONFIG_RON,
            "{field_line} not found in the default config"
        );
        text
    }

    fn err(text: &str) -> ConfigError {
        DataConfig::from_ron(text, "cfg.ron").expect_err("config should be rejected")
    }

    #[test]
    fn default_config_has_the_plan_values() {
        let c = DataConfig::default_config();
        assert_eq!(c.samples, 10_000);
        assert_eq!(c.classes, Class::ALL.to_vec());
        assert_eq!((c.frames, c.width, c.height, c.fps), (32, 64, 64, 30.0));
        assert!(c.auto_camera && c.augmentation.random_rotation && c.augmentation.random_scale);
        assert_eq!(c.augmentation.noise_level, 0.02);
        assert_eq!((c.checkpoint_interval, c.workers), (2000, 4));
        assert!(c.horizon >= 8);
        DataConfig::tiny().validate().unwrap();
    }

    #[test]
    fn zero_frames_names_field_and_position() {
        let e = err(&with("frames: 32", "frames: 0"));
        assert_eq!(e.field, "frames");
        assert_eq!((e.line, e.column), (Some(9), Some(5)));
        let msg = e.to_string();
        assert!(
            msg.starts_with("cfg.ron:9:5:") && msg.contains("`frames`"),
            "{msg}"
        );
    }

    #[test]
    fn negative_count_names_field() {
        let e = err(&with("samples: 10000", "samples: -5"));
        assert_eq!(e.field, "samples");
        assert!(e.message.contains("-5"), "{e}");
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn zero_resolution_names_field() {
        let e = err(&with("height: 64", "height: 0"));
        assert_eq!(e.field, "height");
        assert_eq!(e.line, Some(12));
        assert!(e.to_string().contains("`height`"));
    }

    #[test]
    fn unknown_class_names_the_list_entry() {
        let e = err(&with(
            "\"helical\", \"parabolic\"]",
            "\"zigzag\", \"parabolic\"]",
        ));
        assert_eq!(e.field, "classes[2]");
        assert!(
            e.message.contains("zigzag") && e.message.contains("parabolic"),
            "{e}"
        );
        // Points at the offending string literal on line 7.
        assert_eq!(e.line, Some(7));
        let col = e.column.unwrap();
        let line7 = DEFAULT_CONFIG_RON
            .lines()
            .nth(6)
            .unwrap()
            .replace("helical", "zigzag");
        assert_eq!(&line7[col - 1..col + 7], "\"zigzag\"");
    }

    #[test]
    fn unknown_field_is_rejected_with_line_and_column() {
        let e = err(&with(
            "    fps: 30.0,\n",
            "    fps: 30.0,\n    colour: 3,\n",
        ));
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.line, Some(14));
        assert!(e.column.is_some());
    }

    #[test]
    fn unknown_nested_field_is_rejected() {
        let e = err(&with(
            "random_scale: true,",
            "random_scale: true, blur: 1.0,",
        ));
        assert!(e.message.contains("blur"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn type_error_names_the_field_before_it() {
        let e = err(&with("width: 64", "width: \"wide\""));
        assert_eq!(e.field, "width");
        assert_eq!(e.line, Some(11));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = err(&with("fps: 30.0,", "fps: 30.0,,"));
        assert_eq!(e.line, Some(13));
        assert!(e.to_string().starts_with("cfg.ron:13:"), "{e}");
    }

    #[test]
    fn nested_out_of_range_value_names_dotted_field() {
        let e = err(&with("noise_level: 0.02", "noise_level: -0.5"));
        assert_eq!(e.field, "augmentation.noise_level");
        assert!(e.line.is_some());
    }

    #[test]
    fn split_must_sum_to_one() {
        let e = err(&with("test: 0.1", "test: 0.3"));
        assert_eq!(e.field, "split");
    }

    #[test]
    fn validate_catches_edits_in_code() {
        let mut c = DataConfig::tiny();
        c.width = 0;
        assert_eq!(c.validate().unwrap_err().field, "width");
    }
}
