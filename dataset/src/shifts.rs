//! The shifted test sets of a data config: its look and camera changed one way at a time —
//! pixel noise, position jitter, a narrower and a wider field of view, the other camera mode, a
//! farther camera, and held-out appearance styles no training range covers (docs/dataset.md,
//! "Train styles and held-out styles"). `trajhost eval --shifts` scores a model on them;
//! `trajhost data shifts` renders them alone, for a model trajhost does not run.
//!
//! The sets use their own seed, so none of their videos is one a model trained on, and each has
//! a folder named by its shift and a hash of its config, so a changed config never reuses one.

use crate::appearance::{AppearanceConfig, GroundPattern, Shading};
use crate::config::{DataConfig, SplitFractions};
use std::path::{Path, PathBuf};

/// XORed into the training data's seed: the shifted sets' videos are new ones.
pub const SEED_SALT: u64 = 0x5EED_0F5A_1F00;

/// One shift of a data config.
pub struct Shift {
    pub name: &'static str,
    /// A look or camera no training range covers: a transfer test, tabled apart.
    pub held_out: bool,
    pub describe: fn(&DataConfig) -> String,
    pub apply: fn(&mut DataConfig),
}

/// The shifts, in the order the table shows them; the first is no shift.
pub fn all() -> Vec<Shift> {
    vec![
        Shift {
            name: "none",
            held_out: false,
            describe: describe_unshifted,
            apply: |_| {},
        },
        Shift {
            name: "pixel_noise_0.05",
            held_out: false,
            describe: |c| describe_noise(c, 0.05),
            apply: |c| c.pixel_noise = 0.05,
        },
        Shift {
            name: "pixel_noise_0.1",
            held_out: false,
            describe: |c| describe_noise(c, 0.1),
            apply: |c| c.pixel_noise = 0.1,
        },
        Shift {
            name: "jitter_2x",
            held_out: false,
            describe: |c| {
                format!(
                    "position jitter ×2 ({} → {})",
                    c.augmentation.noise_level,
                    jitter(c)
                )
            },
            apply: |c| c.augmentation.noise_level = jitter(c),
        },
        Shift {
            name: "fov_narrow",
            held_out: false,
            describe: |c| format!("field of view {}° → {}°", c.fov_deg, narrow(c)),
            apply: |c| c.fov_deg = narrow(c),
        },
        Shift {
            name: "fov_wide",
            held_out: false,
            describe: |c| format!("field of view {}° → {}°", c.fov_deg, wide(c)),
            apply: |c| c.fov_deg = wide(c),
        },
        Shift {
            name: "camera",
            held_out: false,
            describe: |c| match c.auto_camera {
                true => "a fixed camera instead of a random viewpoint per video".into(),
                false => "a random viewpoint per video instead of the fixed camera".into(),
            },
            apply: |c| c.auto_camera = !c.auto_camera,
        },
        Shift {
            name: "camera_far",
            held_out: true,
            describe: |c| {
                let (low, high) = appearance(c).camera_distance;
                format!(
                    "camera ×1.25–1.5 farther ({low}–{high} → {:.2}–{:.2} of the closest fit)",
                    far(c).0,
                    far(c).1
                )
            },
            apply: |c| style(c).camera_distance = far(c),
        },
        // Held-out styles: looks no training range of configs/data-randomised.ron covers
        // (docs/dataset.md, "Appearance"). The geometry and labels are drawn as for training.
        Shift {
            name: "style_blue_ball",
            held_out: true,
            describe: |_| "held-out style: a blue-violet ball (hue 200–280°)".into(),
            apply: |c| style(c).ball_hue = (200.0, 280.0),
        },
        Shift {
            name: "style_checker",
            held_out: true,
            describe: |_| "held-out style: a checkerboard ground".into(),
            apply: |c| style(c).ground_patterns = vec![GroundPattern::Checker],
        },
        Shift {
            name: "style_no_ground",
            held_out: true,
            describe: |_| "held-out style: no ground at all (sky all round, no shadow)".into(),
            apply: |c| style(c).ground_patterns = vec![GroundPattern::None],
        },
        Shift {
            name: "style_side_light",
            held_out: true,
            describe: |_| "held-out style: a hard, grazing side light (little ambient)".into(),
            apply: |c| {
                let a = style(c);
                (a.light_azimuth, a.light_elevation) = ((80.0, 100.0), (3.0, 12.0));
                (a.ambient, a.specular) = ((0.05, 0.15), (0.6, 0.9));
            },
        },
        Shift {
            name: "style_motion_blur",
            held_out: true,
            describe: |_| "held-out style: motion blur (shutter open 60–100% of a frame)".into(),
            apply: |c| style(c).motion_blur = (0.6, 1.0),
        },
        Shift {
            name: "style_flat",
            held_out: true,
            describe: |_| "held-out style: a flat-shaded ball (no light on it)".into(),
            apply: |c| style(c).shading = vec![Shading::Flat],
        },
        Shift {
            name: "style_outlined",
            held_out: true,
            describe: |_| "held-out style: a flat ball with a dark outline, as a drawing".into(),
            apply: |c| style(c).shading = vec![Shading::Outlined],
        },
    ]
}

/// The `none` row: the training distribution, or where training drew more than the scored
/// sets do (grey clips, shorter lenses, wider training noise), the looks as the test split
/// draws them and what training drew besides.
fn describe_unshifted(c: &DataConfig) -> String {
    let a = appearance(c);
    let mut also_drew = vec![];
    let (low, high) = a.training_focal_scale.unwrap_or(a.focal_scale);
    if (low, high) != (1.0, 1.0) {
        also_drew.push(format!("focal scales {low}–{high}"));
    }
    if let Some((low, high)) = a.training_ball_stripes {
        also_drew.push(format!("balls with stripes {low}–{high}"));
    }
    if let Some((low, high)) = a.training_ball_value {
        also_drew.push(format!("ball values {low}–{high}"));
    }
    if a.grayscale > 0.0 {
        also_drew.push(format!("{:.0}% grey clips", 100.0 * a.grayscale));
    }
    if let Some((low, high)) = a.training_pixel_noise {
        also_drew.push(format!("pixel noise {low}–{high}"));
    }
    match also_drew.is_empty() {
        true => "the training distribution".into(),
        false => format!(
            "the training looks as the test split draws them (training also drew {})",
            also_drew.join(" and ")
        ),
    }
}

/// A noise row: the level the shift sets, and the noise training had — the config's level, plus
/// the range each randomised look draws on top (which the shifted sets keep too; the training
/// split may draw from a wider one).
fn describe_noise(c: &DataConfig, level: f64) -> String {
    let a = appearance(c);
    let (train_low, train_high) = a.training_pixel_noise.unwrap_or(a.pixel_noise);
    match a.pixel_noise {
        (_, 0.0) if train_high == 0.0 => {
            format!("pixel noise {level} (trained with {})", c.pixel_noise)
        }
        (low, high) => format!(
            "pixel noise {level} + each look's {low}–{high} (trained with {} + {train_low}–{train_high})",
            c.pixel_noise
        ),
    }
}

/// The config's appearance section, or the classic look as one.
fn appearance(c: &DataConfig) -> AppearanceConfig {
    c.appearance
        .clone()
        .unwrap_or_else(AppearanceConfig::classic)
}

/// The config's appearance section to change, made the classic look's where it has none.
fn style(c: &mut DataConfig) -> &mut AppearanceConfig {
    c.appearance.get_or_insert_with(AppearanceConfig::classic)
}

/// 1.25–1.5 times the trained camera distance, within what a config allows.
fn far(c: &DataConfig) -> (f64, f64) {
    let (low, high) = appearance(c).camera_distance;
    ((low * 1.25).min(4.0), (high * 1.5).min(4.0))
}

fn jitter(c: &DataConfig) -> f64 {
    (2.0 * c.augmentation.noise_level).min(0.2)
}

fn narrow(c: &DataConfig) -> f64 {
    (c.fov_deg * 0.7).round().clamp(10.0, 120.0)
}

fn wide(c: &DataConfig) -> f64 {
    (c.fov_deg * 1.4).round().clamp(10.0, 120.0)
}

/// The test-only config of one shift of `base`.
pub fn shifted(base: &DataConfig, shift: &Shift, samples: usize) -> DataConfig {
    let mut config = DataConfig {
        samples,
        seed: base.seed ^ SEED_SALT,
        checkpoint_interval: base.checkpoint_interval.min(samples).max(1),
        split: SplitFractions {
            train: 0.0,
            val: 0.0,
            test: 1.0,
        },
        ..base.clone()
    };
    // Every set, the lens shifts included, is seen in colour through the config's own lens: a
    // training range of shorter lenses (`focal_scale`) or of grey clips (`grayscale`) is a way
    // to train, not the condition tested.
    if let Some(appearance) = &mut config.appearance {
        appearance.focal_scale = (1.0, 1.0);
        appearance.grayscale = 0.0;
    }
    (shift.apply)(&mut config);
    config
}

/// A set's folder: the shift's name and a hash of its config, so a changed config never
/// reuses an old set.
pub fn set_dir(cache: &Path, name: &str, config: &DataConfig) -> PathBuf {
    let text = ron::to_string(&config.content_key()).expect("config serialises");
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    cache.join(format!("{name}-{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shift_is_a_valid_config_that_differs_from_the_base_and_has_its_own_folder() {
        let base = DataConfig::default_config();
        let mut dirs = std::collections::HashSet::new();
        for shift in all() {
            let config = shifted(&base, &shift, 400);
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", shift.name));
            assert_ne!(config.seed, base.seed);
            let unshifted = shifted(&base, &all()[0], 400);
            assert_eq!(shift.name == "none", config == unshifted, "{}", shift.name);
            assert!(dirs.insert(set_dir(Path::new("c"), shift.name, &config)));
        }
        assert_eq!(
            set_dir(Path::new("c"), "x", &shifted(&base, &all()[1], 400)),
            set_dir(Path::new("c"), "x", &shifted(&base, &all()[1], 400)),
            "the same config finds the same folder"
        );
    }

    #[test]
    fn the_noise_rows_say_what_noise_training_had() {
        let noise_rows = |c: &DataConfig| -> Vec<String> {
            let rows = all()
                .into_iter()
                .filter(|s| s.name.starts_with("pixel_noise"));
            rows.map(|s| (s.describe)(c)).collect()
        };
        let mut base = DataConfig::default_config();
        assert_eq!(
            noise_rows(&base),
            [
                "pixel noise 0.05 (trained with 0)",
                "pixel noise 0.1 (trained with 0)"
            ]
        );
        let mut randomised = AppearanceConfig::classic();
        randomised.pixel_noise = (0.0, 0.03);
        base.appearance = Some(randomised);
        assert_eq!(
            noise_rows(&base)[1],
            "pixel noise 0.1 + each look's 0–0.03 (trained with 0 + 0–0.03)"
        );
        base.appearance.as_mut().unwrap().training_pixel_noise = Some((0.0, 0.08));
        assert_eq!(
            noise_rows(&base)[1],
            "pixel noise 0.1 + each look's 0–0.03 (trained with 0 + 0–0.08)"
        );
    }

    #[test]
    fn the_unshifted_row_says_what_training_drew_beyond_it() {
        let none = |c: &DataConfig| (all()[0].describe)(c);
        let mut base = DataConfig::default_config();
        assert_eq!(none(&base), "the training distribution");
        let mut appearance = AppearanceConfig::classic();
        appearance.training_pixel_noise = Some((0.0, 0.08));
        base.appearance = Some(appearance);
        assert_eq!(
            none(&base),
            "the training looks as the test split draws them (training also drew pixel noise 0–0.08)"
        );
        base.appearance.as_mut().unwrap().focal_scale = (0.8, 1.0);
        assert_eq!(
            none(&base),
            "the training looks as the test split draws them (training also drew focal scales 0.8–1 and pixel noise 0–0.08)"
        );
        let appearance = base.appearance.as_mut().unwrap();
        appearance.focal_scale = (1.0, 1.0);
        appearance.training_focal_scale = Some((0.7, 1.0));
        appearance.training_ball_stripes = Some((0.0, 0.8));
        appearance.training_ball_value = Some((0.2, 1.0));
        assert_eq!(
            none(&base),
            "the training looks as the test split draws them (training also drew focal scales 0.7–1 and balls with stripes 0–0.8 and ball values 0.2–1 and pixel noise 0–0.08)"
        );
    }

    #[test]
    fn every_shifted_set_is_seen_in_colour_through_the_configs_own_lens() {
        let mut base = DataConfig::default_config();
        let mut appearance = AppearanceConfig::classic();
        appearance.focal_scale = (0.6, 1.0);
        appearance.grayscale = 0.3;
        base.appearance = Some(appearance);
        for shift in all() {
            let config = shifted(&base, &shift, 400);
            let ways_to_train = config.appearance.map(|a| (a.focal_scale, a.grayscale));
            assert_eq!(ways_to_train, Some(((1.0, 1.0), 0.0)), "{}", shift.name);
        }
    }
}
