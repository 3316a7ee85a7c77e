//! How a sample looks, apart from its geometry: the ball's colour and shading, the light, the
//! sky, the ground's colour and pattern, haze, shadow, blur and noise.
//!
//! A data config without an `appearance` section renders every sample in the classic style
//! (the constants trajhost always used; its datasets stay byte-identical). With one, each
//! sample's [`Style`] is drawn from the section's ranges with a random stream of its own, keyed
//! by `(seed, index)`, so the geometry and labels drawn from the sample's main stream are the
//! same as without it. The ranges are validated field by field; `eval --shifts` renders styles
//! outside them (held-out styles) to test what a model learned.

use glam::Vec3;
use rand::Rng;
use serde::{Deserialize, Serialize};
use trajhost_config::Invalid;

/// A closed range `(low, high)` a value is drawn from uniformly; `low == high` fixes it.
pub type Range = (f64, f64);

/// The ground under the trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroundPattern {
    /// Lines along both axes (the classic look).
    Grid,
    /// Squares of two colours.
    Checker,
    /// A smooth random texture.
    Noise,
    /// One colour.
    Plain,
    /// No ground at all: sky all round, no shadow.
    None,
}

/// How the ball is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shading {
    /// Lambert + specular (the classic look).
    Shaded,
    /// One colour, no lighting.
    Flat,
    /// Flat with a dark rim, as a drawing.
    Outlined,
}

/// The `appearance` section of a data config: a range for every property of a sample's look.
/// Colours are hue (degrees, may run past 360 or below 0 to wrap), saturation and value (0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppearanceConfig {
    pub ball_hue: Range,
    pub ball_saturation: Range,
    pub ball_value: Range,
    pub shading: Vec<Shading>,
    /// How much darker two stripes on the ball are, 0–1: a pattern on its surface, two dark bands
    /// across it in a direction drawn per sample (its middle and the ends of that direction
    /// light, so never a dark rim or a dark side), so the inside of the ball need not be one
    /// bright patch. Left out (or `(0, 0)`), a plain ball.
    #[serde(default = "plain_ball", skip_serializing_if = "is_plain_ball")]
    pub ball_stripes: Range,
    /// Strength of the highlight, 0–1.
    pub specular: Range,
    /// Light direction, degrees: azimuth around the view axis (0 = from the camera's upper
    /// left, as the classic light), and elevation from the image plane towards the camera.
    pub light_azimuth: Range,
    pub light_elevation: Range,
    /// The share of the ball's colour that does not depend on the light, 0–1.
    pub ambient: Range,
    pub sky_hue: Range,
    pub sky_saturation: Range,
    pub sky_value: Range,
    pub ground_patterns: Vec<GroundPattern>,
    pub ground_hue: Range,
    pub ground_saturation: Range,
    pub ground_value: Range,
    /// World size of a grid cell, checker square or noise feature.
    pub ground_scale: Range,
    /// Half width of a grid line, as a fraction of the cell.
    pub line_width: Range,
    /// How much darker lines and the second checker colour are than the ground, 0–1.
    pub line_contrast: Range,
    /// Distance at which the ground fades to 1/e into the horizon haze.
    pub haze_distance: Range,
    /// Darkening under the ball (0 = no shadow) and its blur (× the classic softness).
    pub shadow_strength: Range,
    pub shadow_softness: Range,
    /// Gap between the trajectory's lowest point (less the ball) and the ground.
    pub ground_gap: Range,
    /// The camera's distance as a multiple of the closest one that keeps the ball in view.
    pub camera_distance: Range,
    /// Std-dev of additive pixel noise (fraction of full scale), on top of `pixel_noise`.
    pub pixel_noise: Range,
    /// The training split's `pixel_noise` range, where it should differ: an augmentation that
    /// leaves the validation and test splits (and every `eval --shifts` set) as `pixel_noise`
    /// draws them. Left out, every split draws from `pixel_noise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_pixel_noise: Option<Range>,
    /// The training split's `focal_scale` range, where it should differ: shorter lenses as an
    /// augmentation (balls drawn as small as a farther camera's) that leaves the validation
    /// and test splits as `focal_scale` draws them. Left out, every split draws from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_focal_scale: Option<Range>,
    /// The training split's `ball_stripes` range, where it should differ (as above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_ball_stripes: Option<Range>,
    /// The training split's `ball_value` range, where it should differ (as above): darker
    /// balls, which stand out from the background by being darker than it rather than brighter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_ball_value: Option<Range>,
    /// Gaussian blur of every frame, std-dev in pixels.
    pub blur: Range,
    /// Motion blur: the share of the frame interval the shutter stays open, 0–1.
    pub motion_blur: Range,
    /// The lens's focal length as a multiple of `fov_deg`'s, 0.3–1. The camera is still placed
    /// for `fov_deg`, so below 1 the whole clip is drawn smaller, as through a wider lens: the
    /// ball looks as it would farther away while its labels keep its true depth. Each sample's
    /// intrinsics record its lens. Left out (or `(1, 1)`), every sample has `fov_deg`'s lens.
    #[serde(default = "unscaled", skip_serializing_if = "is_unscaled")]
    pub focal_scale: Range,
    /// The chance, 0–1, that a sample is drawn in grey (each pixel its luma, before the pixel
    /// noise): a ball found by its colour is lost in these, so training with some teaches
    /// finding it by brightness and shape. Left out (or 0), every sample is in colour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grayscale: f64,
}

fn is_zero(chance: &f64) -> bool {
    *chance == 0.0
}

/// `ball_stripes` when a config leaves it out: no stripes.
fn plain_ball() -> Range {
    (0.0, 0.0)
}

fn is_plain_ball(range: &Range) -> bool {
    *range == plain_ball()
}

/// `focal_scale` when a config leaves it out: the config's own lens (older configs, and their
/// manifests, stay as they were written).
fn unscaled() -> Range {
    (1.0, 1.0)
}

fn is_unscaled(range: &Range) -> bool {
    *range == unscaled()
}

/// The classic look's ground gap and camera distance ranges (drawn from the sample's main
/// stream, as they always were).
pub const CLASSIC_GROUND_GAP: Range = (0.2, 0.6);
pub const CLASSIC_CAMERA_DISTANCE: Range = (1.0, 1.2);

/// One sample's look, drawn from an [`AppearanceConfig`] or the classic one.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    pub ball: Vec3,
    pub shading: Shading,
    pub ambient: f32,
    pub diffuse: f32,
    pub specular: f32,
    /// Towards the light, in camera axes.
    pub light: Vec3,
    pub sky_horizon: Vec3,
    pub sky_zenith: Vec3,
    pub pattern: GroundPattern,
    pub ground: Vec3,
    pub line: Vec3,
    pub cell: f32,
    pub line_half_width: f32,
    pub haze_distance: f32,
    pub shadow_strength: f32,
    pub shadow_softness: f64,
    pub pixel_noise: f64,
    pub blur: f32,
    pub motion_blur: f64,
    /// Keys the noise texture.
    pub texture_seed: u32,
    /// Multiplies the lens's focal length (`AppearanceConfig::focal_scale`).
    pub focal_scale: f64,
    /// Drawn in grey (`AppearanceConfig::grayscale`).
    pub grayscale: bool,
    /// How much darker the ball's dark stripes are (`AppearanceConfig::ball_stripes`; 0 plain).
    pub stripes: f32,
    /// The unit direction in the image plane (z = 0) the stripes lie across.
    pub stripe_axis: Vec3,
}

impl Style {
    /// The look trajhost always rendered.
    pub fn classic() -> Style {
        Style {
            ball: Vec3::new(0.95, 0.38, 0.08),
            shading: Shading::Shaded,
            ambient: 0.55,
            diffuse: 0.45,
            specular: 0.45,
            light: Vec3::new(-0.3, -0.45, -0.85).normalize(),
            sky_horizon: Vec3::new(0.72, 0.78, 0.86),
            sky_zenith: Vec3::new(0.36, 0.52, 0.78),
            pattern: GroundPattern::Grid,
            ground: Vec3::new(0.52, 0.50, 0.38),
            line: Vec3::new(0.22, 0.25, 0.22),
            cell: 0.5,
            line_half_width: 0.025,
            haze_distance: 20.0,
            shadow_strength: 0.55,
            shadow_softness: 1.0,
            pixel_noise: 0.0,
            blur: 0.0,
            motion_blur: 0.0,
            texture_seed: 0,
            focal_scale: 1.0,
            grayscale: false,
            stripes: 0.0,
            stripe_axis: Vec3::X,
        }
    }
}

/// Colour from hue (degrees, any), saturation and value (0–1).
pub fn hsv(hue: f64, saturation: f64, value: f64) -> Vec3 {
    let h = hue.rem_euclid(360.0) / 60.0;
    let c = value * saturation;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    Vec3::new((r + m) as f32, (g + m) as f32, (b + m) as f32)
}

/// A value of `range`: one draw from `rng` whether or not the range is a single value, so the
/// stream stays aligned.
pub fn draw<R: Rng>(rng: &mut R, (low, high): Range) -> f64 {
    if low < high {
        rng.gen_range(low..high)
    } else {
        let _: f64 = rng.gen();
        low
    }
}

fn pick<R: Rng, T: Copy>(rng: &mut R, choices: &[T]) -> T {
    choices[rng.gen_range(0..choices.len())]
}

impl AppearanceConfig {
    /// The classic look as a section: every range a single value (or the classic range).
    pub fn classic() -> AppearanceConfig {
        AppearanceConfig {
            ball_hue: (20.0, 20.0),
            ball_saturation: (0.92, 0.92),
            ball_value: (0.95, 0.95),
            shading: vec![Shading::Shaded],
            ball_stripes: plain_ball(),
            specular: (0.45, 0.45),
            light_azimuth: (0.0, 0.0),
            light_elevation: (58.0, 58.0),
            ambient: (0.55, 0.55),
            sky_hue: (215.0, 215.0),
            sky_saturation: (0.3, 0.3),
            sky_value: (0.82, 0.82),
            ground_patterns: vec![GroundPattern::Grid],
            ground_hue: (50.0, 50.0),
            ground_saturation: (0.27, 0.27),
            ground_value: (0.52, 0.52),
            ground_scale: (0.5, 0.5),
            line_width: (0.05, 0.05),
            line_contrast: (0.55, 0.55),
            haze_distance: (20.0, 20.0),
            shadow_strength: (0.55, 0.55),
            shadow_softness: (1.0, 1.0),
            ground_gap: CLASSIC_GROUND_GAP,
            camera_distance: CLASSIC_CAMERA_DISTANCE,
            pixel_noise: (0.0, 0.0),
            training_pixel_noise: None,
            training_focal_scale: None,
            training_ball_stripes: None,
            training_ball_value: None,
            blur: (0.0, 0.0),
            motion_blur: (0.0, 0.0),
            focal_scale: unscaled(),
            grayscale: 0.0,
        }
    }

    /// One sample's look, from its appearance stream. A sample of the training split
    /// (`training`) takes its pixel noise, focal scale, stripes and ball value from the
    /// `training_*` ranges where there are some: the same random draws mapped onto the other
    /// ranges, so nothing else about the sample changes.
    pub fn draw<R: Rng>(&self, rng: &mut R, training: bool) -> Style {
        let for_split = |range: Range, training_range: Option<Range>| match training {
            true => training_range.unwrap_or(range),
            false => range,
        };
        let pixel_noise = for_split(self.pixel_noise, self.training_pixel_noise);
        let focal_scale = for_split(self.focal_scale, self.training_focal_scale);
        let ball_stripes = for_split(self.ball_stripes, self.training_ball_stripes);
        let ball_value = for_split(self.ball_value, self.training_ball_value);
        let ball = hsv(
            draw(rng, self.ball_hue),
            draw(rng, self.ball_saturation),
            draw(rng, ball_value),
        );
        let shading = pick(rng, &self.shading);
        let specular = draw(rng, self.specular) as f32;
        let azimuth = draw(rng, self.light_azimuth).to_radians();
        let elevation = draw(rng, self.light_elevation).to_radians();
        // Azimuth 0 points to the upper left, as the classic light; elevation towards the camera.
        let (sa, ca) = (azimuth + 0.98).sin_cos();
        let light = Vec3::new(
            (-ca * elevation.cos()) as f32,
            (-sa * elevation.cos()) as f32,
            -elevation.sin() as f32,
        )
        .normalize();
        let ambient = draw(rng, self.ambient) as f32;
        let sky_hue = draw(rng, self.sky_hue);
        let sky_saturation = draw(rng, self.sky_saturation);
        let sky_value = draw(rng, self.sky_value);
        let sky_horizon = hsv(sky_hue, sky_saturation * 0.5, (sky_value * 1.05).min(1.0));
        let sky_zenith = hsv(sky_hue, sky_saturation * 1.6, sky_value * 0.9);
        let pattern = pick(rng, &self.ground_patterns);
        let ground = hsv(
            draw(rng, self.ground_hue),
            draw(rng, self.ground_saturation),
            draw(rng, self.ground_value),
        );
        let cell = draw(rng, self.ground_scale) as f32;
        let line_half_width = (draw(rng, self.line_width) as f32) * cell;
        let line = ground * (1.0 - draw(rng, self.line_contrast) as f32);
        let mut style = Style {
            ball,
            shading,
            ambient,
            diffuse: 1.0 - ambient,
            specular,
            light,
            sky_horizon,
            sky_zenith,
            pattern,
            ground,
            line,
            cell,
            line_half_width,
            haze_distance: draw(rng, self.haze_distance) as f32,
            shadow_strength: draw(rng, self.shadow_strength) as f32,
            shadow_softness: draw(rng, self.shadow_softness),
            pixel_noise: draw(rng, pixel_noise),
            blur: draw(rng, self.blur) as f32,
            motion_blur: draw(rng, self.motion_blur),
            texture_seed: rng.gen(),
            // Drawn last, so a config without them draws every other property as before.
            focal_scale: draw(rng, focal_scale),
            grayscale: self.grayscale > 0.0 && rng.gen::<f64>() < self.grayscale,
            stripes: 0.0,
            stripe_axis: Vec3::X,
        };
        // After the fields above, so a config without stripes draws them as before.
        if !is_plain_ball(&ball_stripes) {
            style.stripes = draw(rng, ball_stripes) as f32;
            let angle = rng.gen_range(0.0f32..std::f32::consts::PI);
            style.stripe_axis = Vec3::new(angle.cos(), angle.sin(), 0.0);
        }
        style
    }

    /// Refuses an empty, inverted, non-finite or unphysical range, naming the field
    /// (`appearance.<field>`).
    pub fn check(&self) -> Result<(), Invalid> {
        let ranges: [(&str, Range, f64, f64); 26] = [
            ("ball_hue", self.ball_hue, -720.0, 720.0),
            ("ball_saturation", self.ball_saturation, 0.0, 1.0),
            ("ball_value", self.ball_value, 0.05, 1.0),
            ("ball_stripes", self.ball_stripes, 0.0, 1.0),
            ("specular", self.specular, 0.0, 1.0),
            ("light_azimuth", self.light_azimuth, -360.0, 360.0),
            ("light_elevation", self.light_elevation, 0.0, 90.0),
            ("ambient", self.ambient, 0.0, 1.0),
            ("sky_hue", self.sky_hue, -720.0, 720.0),
            ("sky_saturation", self.sky_saturation, 0.0, 1.0),
            ("sky_value", self.sky_value, 0.0, 1.0),
            ("ground_hue", self.ground_hue, -720.0, 720.0),
            ("ground_saturation", self.ground_saturation, 0.0, 1.0),
            ("ground_value", self.ground_value, 0.0, 1.0),
            ("ground_scale", self.ground_scale, 0.05, 10.0),
            ("line_width", self.line_width, 0.0, 0.5),
            ("line_contrast", self.line_contrast, 0.0, 1.0),
            ("haze_distance", self.haze_distance, 1.0, 1000.0),
            ("shadow_strength", self.shadow_strength, 0.0, 1.0),
            ("shadow_softness", self.shadow_softness, 0.1, 10.0),
            ("ground_gap", self.ground_gap, 0.0, 10.0),
            ("camera_distance", self.camera_distance, 1.0, 4.0),
            ("pixel_noise", self.pixel_noise, 0.0, 0.1),
            ("blur", self.blur, 0.0, 3.0),
            ("motion_blur", self.motion_blur, 0.0, 1.0),
            // Above 1 the auto camera's framing would cut the trajectory off; below 0.3 the
            // ball shrinks under a pixel at 64×64.
            ("focal_scale", self.focal_scale, 0.3, 1.0),
        ];
        for (field, range, min, max) in ranges {
            check_range(field, range, min, max)?;
        }
        // The training split's ranges have the bounds of the fields they stand for.
        let training_ranges = [
            ("pixel_noise", self.training_pixel_noise),
            ("focal_scale", self.training_focal_scale),
            ("ball_stripes", self.training_ball_stripes),
            ("ball_value", self.training_ball_value),
        ];
        for (field, range) in training_ranges {
            let Some(range) = range else { continue };
            let (_, _, min, max) = ranges
                .iter()
                .find(|bounded| bounded.0 == field)
                .expect("every training range stands for a bounded field");
            check_range(&format!("training_{field}"), range, *min, *max)?;
        }
        if !(0.0..=1.0).contains(&self.grayscale) {
            return Err(Invalid::new(
                "appearance.grayscale",
                format!("{} is no chance: give a number from 0 to 1", self.grayscale),
            ));
        }
        if self.shading.is_empty() {
            return Err(Invalid::new(
                "appearance.shading",
                "is empty: list at least one",
            ));
        }
        if self.ground_patterns.is_empty() {
            return Err(Invalid::new(
                "appearance.ground_patterns",
                "is empty: list at least one",
            ));
        }
        Ok(())
    }
}

/// Refuses a range that is not finite, inverted, or outside `min..=max`, naming
/// `appearance.<field>`.
fn check_range(field: &str, (low, high): Range, min: f64, max: f64) -> Result<(), Invalid> {
    let field = format!("appearance.{field}");
    if !low.is_finite() || !high.is_finite() {
        return Err(Invalid::new(
            field,
            format!("({low}, {high}) is not a range of finite numbers"),
        ));
    }
    if low > high {
        return Err(Invalid::new(
            field,
            format!("({low}, {high}) is inverted: the low end comes first"),
        ));
    }
    if low < min || high > max {
        return Err(Invalid::new(
            field,
            format!("({low}, {high}) must lie within {min}..={max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hsv_gives_the_primaries_and_wraps() {
        assert_eq!(hsv(0.0, 1.0, 1.0), Vec3::new(1.0, 0.0, 0.0));
        assert_eq!(hsv(120.0, 1.0, 1.0), Vec3::new(0.0, 1.0, 0.0));
        assert_eq!(hsv(-120.0, 1.0, 1.0), Vec3::new(0.0, 0.0, 1.0));
        assert_eq!(hsv(77.0, 0.0, 0.5), Vec3::splat(0.5));
    }

    #[test]
    fn the_classic_section_draws_the_classic_light_and_bad_ranges_are_named() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let style = AppearanceConfig::classic().draw(&mut rng, false);
        let classic = Style::classic();
        assert!((style.light - classic.light).length() < 0.02, "{style:?}");
        assert!((style.ball - classic.ball).length() < 0.03, "{style:?}");
        AppearanceConfig::classic().check().unwrap();
        let mut bad = AppearanceConfig::classic();
        bad.blur = (0.5, 0.1);
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("appearance.blur"));
        bad.blur = (f64::NAN, 0.1);
        assert!(bad.check().is_err());
        bad.blur = (0.0, 0.0);
        bad.camera_distance = (0.5, 1.0);
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("appearance.camera_distance"));
        bad.camera_distance = (1.0, 1.0);
        for range in [(0.9, 1.1), (0.2, 0.5), (0.8, 0.6), (f64::NAN, 1.0)] {
            bad.focal_scale = range;
            assert!(
                bad.check()
                    .unwrap_err()
                    .to_string()
                    .contains("appearance.focal_scale"),
                "{range:?}"
            );
        }
        bad.focal_scale = (1.0, 1.0);
        for chance in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            bad.grayscale = chance;
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains("appearance.grayscale"), "{chance}: {err}");
        }
    }

    /// The training split's ranges are left out of configs without them and refused by name
    /// outside their fields' bounds.
    #[test]
    fn training_ranges_are_optional_and_bounded_like_their_fields() {
        let classic = AppearanceConfig::classic();
        assert!(!ron::to_string(&classic).unwrap().contains("training"));
        let mut bad = classic.clone();
        bad.training_focal_scale = Some((0.8, 1.0));
        bad.training_ball_stripes = Some((0.0, 0.8));
        bad.training_ball_value = Some((0.2, 1.0));
        let text = ron::to_string(&bad).unwrap();
        assert_eq!(ron::from_str::<AppearanceConfig>(&text).unwrap(), bad);
        bad.check().unwrap();
        for range in [(0.2, 1.0), (0.9, 1.1), (f64::NAN, 1.0)] {
            bad.training_focal_scale = Some(range);
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains("appearance.training_focal_scale"), "{err}");
        }
        bad.training_focal_scale = None;
        for range in [(0.8, 0.2), (0.0, 1.0), (0.2, 1.5)] {
            bad.training_ball_value = Some(range);
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains("appearance.training_ball_value"), "{err}");
        }
        bad.training_ball_value = None;
        for range in [(0.8, 0.2), (-0.1, 0.5), (0.0, 1.5)] {
            bad.training_ball_stripes = Some(range);
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains("appearance.training_ball_stripes"), "{err}");
        }
    }

    /// Configs written before `focal_scale` read and write as they did, and drawing it last
    /// leaves every other property of a sample's look as it was.
    #[test]
    fn focal_scale_defaults_to_the_configs_lens_and_changes_no_other_draw() {
        let classic = AppearanceConfig::classic();
        let text = ron::to_string(&classic).unwrap();
        assert!(!text.contains("focal_scale"), "{text}");
        assert_eq!(ron::from_str::<AppearanceConfig>(&text).unwrap(), classic);
        let mut scaled = classic.clone();
        scaled.focal_scale = (0.5, 0.9);
        let draw =
            |a: &AppearanceConfig| a.draw(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3), false);
        let (plain, zoomed) = (draw(&classic), draw(&scaled));
        assert_eq!(plain.focal_scale, 1.0);
        assert!((0.5..0.9).contains(&zoomed.focal_scale));
        assert_eq!(
            Style {
                focal_scale: 1.0,
                ..zoomed
            },
            plain
        );
    }

    /// `grayscale` is left out of configs without it, and drawing it (last) changes no other
    /// property; about its chance of samples come out grey.
    #[test]
    fn grayscale_defaults_to_colour_and_changes_no_other_draw() {
        let classic = AppearanceConfig::classic();
        assert!(!ron::to_string(&classic).unwrap().contains("grayscale"));
        let mut grey = classic.clone();
        grey.grayscale = 0.3;
        let text = ron::to_string(&grey).unwrap();
        assert_eq!(ron::from_str::<AppearanceConfig>(&text).unwrap(), grey);
        let draw = |a: &AppearanceConfig, seed| {
            a.draw(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), false)
        };
        let mut drawn_grey = 0;
        for seed in 0..1000 {
            let (plain, maybe) = (draw(&classic, seed), draw(&grey, seed));
            assert!(!plain.grayscale);
            drawn_grey += maybe.grayscale as usize;
            assert_eq!(
                Style {
                    grayscale: false,
                    ..maybe
                },
                plain
            );
        }
        assert!((250..350).contains(&drawn_grey), "{drawn_grey} of 1000");
    }

    /// `ball_stripes` is left out of configs without it (a plain ball), drawing it (last)
    /// changes no other property, and a bad range is refused by name.
    #[test]
    fn ball_stripes_default_to_a_plain_ball_and_change_no_other_draw() {
        let classic = AppearanceConfig::classic();
        assert!(!ron::to_string(&classic).unwrap().contains("stripes"));
        let mut striped = classic.clone();
        striped.ball_stripes = (0.2, 0.9);
        let text = ron::to_string(&striped).unwrap();
        assert_eq!(ron::from_str::<AppearanceConfig>(&text).unwrap(), striped);
        let draw = |a: &AppearanceConfig, seed| {
            a.draw(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), false)
        };
        for seed in 0..100 {
            let (plain, maybe) = (draw(&classic, seed), draw(&striped, seed));
            assert_eq!(plain.stripes, 0.0);
            assert!((0.2..0.9).contains(&maybe.stripes), "{}", maybe.stripes);
            assert!((maybe.stripe_axis.length() - 1.0).abs() < 1e-4);
            assert_eq!(
                Style {
                    stripes: 0.0,
                    stripe_axis: plain.stripe_axis,
                    ..maybe
                },
                plain
            );
        }
        for range in [(0.5, 0.2), (-0.1, 0.5), (0.0, 1.5), (f64::NAN, 0.5)] {
            striped.ball_stripes = range;
            let err = striped.check().unwrap_err().to_string();
            assert!(err.contains("appearance.ball_stripes"), "{range:?}: {err}");
        }
    }
}
