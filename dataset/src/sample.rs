//! One sample, a pure function of (config, seed, index): this is what makes output independent
//! of the worker count and lets a resumed run reproduce an uninterrupted one byte for byte.

use glam::DVec3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::appearance::{Style, CLASSIC_CAMERA_DISTANCE, CLASSIC_GROUND_GAP};
use crate::camera::{normalise, Camera};
use crate::config::DataConfig;
use crate::render::render_video;
use crate::split::{split_of, Split};
use crate::trajectory::{bounds, Class, Trajectory, BALL_RADIUS, PARAM_FIELDS};

/// Everything but the video for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLabels {
    pub label: u8,
    /// (T + H) × 3 normalised camera-frame positions.
    pub positions: Vec<f32>,
    pub intrinsics: [f32; 9],
    pub extrinsics: [f32; 16],
    pub params: [f32; PARAM_FIELDS.len()],
}

/// The per-sample random stream: ChaCha8 keyed by the seed, stream number = sample index.
pub fn sample_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// XORed into the seed for the appearance stream: a sample's look is drawn apart from its
/// geometry, so adding an `appearance` section leaves trajectories, cameras and labels alone.
const APPEARANCE_SALT: u64 = 0xA99E_A2A4_CE00_57E1;

/// Sample `index`'s look: classic without an `appearance` section. Its split decides only the
/// pixel noise range (`training_pixel_noise`), so a sample looks the same in a stored dataset
/// and rendered on the fly.
pub fn style_of(cfg: &DataConfig, index: u64) -> Style {
    match &cfg.appearance {
        None => Style::classic(),
        Some(appearance) => appearance.draw(
            &mut sample_rng(cfg.seed ^ APPEARANCE_SALT, index),
            split_of(cfg.seed, index, &cfg.split) == Split::Train,
        ),
    }
}

/// Classes are assigned round-robin, so any prefix of the dataset is balanced.
pub fn class_of(cfg: &DataConfig, index: u64) -> Class {
    cfg.classes[(index % cfg.classes.len() as u64) as usize]
}

/// Generates sample `index`, rendering its clip into `video` (T × 3 × H × W).
pub fn generate_sample(cfg: &DataConfig, index: u64, video: &mut [u8]) -> SampleLabels {
    let plan = plan_sample(cfg, index);
    plan.render(cfg, video)
}

/// A sample with its scene chosen and labels computed but its clip not yet rendered: the
/// shard writer needs every label of a shard before the first video byte (file order).
pub struct SamplePlan {
    labels: SampleLabels,
    cam: Camera,
    ground_z: f64,
    style: Style,
    /// Only the first T rows are drawn (the next one too, for motion blur).
    world: Vec<DVec3>,
    /// The stream as it stands after the scene was drawn from it; rendering continues it.
    rng: ChaCha8Rng,
}

impl SamplePlan {
    pub fn labels(&self) -> &SampleLabels {
        &self.labels
    }

    /// Renders the clip into `video` (T × 3 × H × W): exactly what [`generate_sample`] renders.
    pub fn render(mut self, cfg: &DataConfig, video: &mut [u8]) -> SampleLabels {
        render_video(
            &self.cam,
            self.ground_z,
            &self.world,
            cfg.frames,
            (cfg.width, cfg.height),
            &self.style,
            cfg.pixel_noise,
            &mut self.rng,
            video,
        );
        self.labels
    }
}

/// Everything of sample `index` but its pixels; the random draws happen in the same order as
/// they always have (rendering draws last), so the bytes do not change.
pub fn plan_sample(cfg: &DataConfig, index: u64) -> SamplePlan {
    let mut rng = sample_rng(cfg.seed, index);
    let class = class_of(cfg, index);
    let trajectory = Trajectory::sample(class, cfg, &mut rng);
    let world = trajectory.world_positions(cfg.total_frames(), cfg.fps, &mut rng);
    let (lo, _) = bounds(world.iter().copied());
    let appearance = cfg.appearance.as_ref();
    let gap = appearance.map_or(CLASSIC_GROUND_GAP, |a| a.ground_gap);
    let ground_z = lo.z - BALL_RADIUS - crate::appearance::draw(&mut rng, gap);
    let (w, h) = (cfg.width, cfg.height);
    let distance = appearance.map_or(CLASSIC_CAMERA_DISTANCE, |a| a.camera_distance);
    let mut cam = if cfg.auto_camera {
        Camera::auto(&world, BALL_RADIUS, cfg.fov_deg, w, h, distance, &mut rng)
    } else {
        Camera::fixed(&world, BALL_RADIUS, cfg.fov_deg, w, h)
    };
    let style = style_of(cfg, index);
    // Placed for `fov_deg`, seen through the sample's own lens (1 unless the appearance
    // section scales it).
    cam.fx *= style.focal_scale;
    cam.fy *= style.focal_scale;
    let positions = world
        .iter()
        .flat_map(|&p| normalise(cam.to_camera(p)).to_array())
        .map(|x| x as f32)
        .collect();
    let labels = SampleLabels {
        label: class.index(),
        positions,
        intrinsics: cam.intrinsics(),
        extrinsics: cam.extrinsics(),
        params: trajectory.params(ground_z),
    };
    SamplePlan {
        labels,
        cam,
        ground_z,
        style,
        world,
        rng,
    }
}

/// Row `frame` of a (T + H) × 3 positions array.
pub fn position_at(positions: &[f32], frame: usize) -> DVec3 {
    let p = &positions[frame * 3..frame * 3 + 3];
    DVec3::new(p[0] as f64, p[1] as f64, p[2] as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_depends_only_on_seed_and_index() {
        let cfg = DataConfig::tiny();
        let mut a = vec![0u8; cfg.video_bytes()];
        let mut b = a.clone();
        let la = generate_sample(&cfg, 5, &mut a);
        // Generating other samples in between must not matter.
        generate_sample(&cfg, 6, &mut b);
        let lb = generate_sample(&cfg, 5, &mut b);
        assert_eq!((la, a.clone()), (lb, b.clone()));
        let other = DataConfig {
            seed: cfg.seed + 1,
            ..cfg.clone()
        };
        generate_sample(&other, 5, &mut b);
        assert_ne!(a, b, "a different seed gives a different video");
    }
}

#[cfg(test)]
mod appearance_tests {
    use super::*;
    use crate::appearance::{AppearanceConfig, GroundPattern, Shading};
    use crate::camera::denormalise;

    /// Wide ranges of every kind, the held-out patterns and shadings included.
    fn wide() -> DataConfig {
        let mut cfg = DataConfig::tiny();
        cfg.width = 64;
        cfg.height = 64;
        let mut a = AppearanceConfig::classic();
        a.ball_hue = (0.0, 360.0);
        a.ball_saturation = (0.5, 1.0);
        a.ball_value = (0.5, 1.0);
        a.shading = vec![Shading::Shaded, Shading::Flat, Shading::Outlined];
        a.light_azimuth = (-90.0, 90.0);
        a.ground_patterns = vec![
            GroundPattern::Grid,
            GroundPattern::Checker,
            GroundPattern::Noise,
            GroundPattern::Plain,
            GroundPattern::None,
        ];
        a.ground_gap = (0.1, 2.0);
        a.camera_distance = (1.0, 1.8);
        a.ground_hue = (0.0, 360.0);
        a.focal_scale = (0.5, 1.0);
        a.ball_stripes = (0.0, 0.9);
        cfg.appearance = Some(a);
        cfg.validate().unwrap();
        cfg
    }

    #[test]
    fn every_randomised_sample_draws_its_ball_where_and_as_big_as_its_labels_say() {
        let cfg = wide();
        let (w, h) = (cfg.width, cfg.height);
        let plane = w * h;
        let mut checked = 0;
        for index in 0..64 {
            let mut plan = plan_sample(&cfg, index);
            // The ball alone over the background: no shadow, blur or noise to separate it from.
            plan.style.shadow_strength = 0.0;
            plan.style.blur = 0.0;
            plan.style.motion_blur = 0.0;
            plan.style.pixel_noise = 0.0;
            let background = crate::render::background(&plan.cam, plan.ground_z, w, h, &plan.style);
            let mut video = vec![0u8; cfg.video_bytes()];
            let style = plan.style.clone();
            let labels = plan.render(&cfg, &mut video);
            let k = &labels.intrinsics;
            for f in 0..cfg.frames {
                let pc = denormalise(position_at(&labels.positions, f));
                let (u, v) = (
                    k[0] as f64 * pc.x / pc.z + k[2] as f64,
                    k[4] as f64 * pc.y / pc.z + k[5] as f64,
                );
                let r = k[0] as f64 * BALL_RADIUS / pc.z;
                if r < 2.5 {
                    continue;
                }
                // Pixels the ball changed, weighted by how much: its disc.
                let frame = &video[f * 3 * plane..(f + 1) * 3 * plane];
                let (mut mass, mut su, mut sv, mut area) = (0.0, 0.0, 0.0, 0.0);
                for y in 0..h {
                    for x in 0..w {
                        let i = y * w + x;
                        let changed =
                            (0..3).any(|c| frame[c * plane + i] != background[c * plane + i]);
                        if changed {
                            mass += 1.0;
                            su += x as f64 + 0.5;
                            sv += y as f64 + 0.5;
                            area += 1.0;
                        }
                    }
                }
                assert!(
                    mass > 0.0,
                    "sample {index} frame {f}: no ball drawn ({style:?})"
                );
                let (cu, cv) = (su / mass, sv / mass);
                let radius = (area / std::f64::consts::PI).sqrt();
                let inside =
                    u - r > 1.0 && v - r > 1.0 && u + r < w as f64 - 1.0 && v + r < h as f64 - 1.0;
                if !inside {
                    continue;
                }
                assert!(
                    (cu - u).abs() < 0.35 && (cv - v).abs() < 0.35,
                    "sample {index} frame {f}: ball drawn at ({cu:.2}, {cv:.2}), labels say ({u:.2}, {v:.2})"
                );
                assert!(
                    (radius - r).abs() < 0.7,
                    "sample {index} frame {f}: radius {radius:.2} drawn, {r:.2} from the labels"
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} frames checked");
    }

    /// A focal scale keeps the sample's trajectory and camera pose (so its labels) and records
    /// the shorter lens in the intrinsics, which the ball-drawing test above holds the pixels to.
    #[test]
    fn a_focal_scale_keeps_the_labels_and_records_the_shorter_lens() {
        let mut plain = DataConfig::tiny();
        plain.appearance = Some(AppearanceConfig::classic());
        let mut scaled = plain.clone();
        scaled.appearance.as_mut().unwrap().focal_scale = (0.4, 0.9);
        for index in 0..8 {
            let (a, b) = (plan_sample(&plain, index), plan_sample(&scaled, index));
            let scale = b.style.focal_scale;
            assert!((0.4..0.9).contains(&scale), "{scale}");
            assert_eq!(a.labels.positions, b.labels.positions);
            assert_eq!(a.labels.extrinsics, b.labels.extrinsics);
            let (ka, kb) = (a.labels.intrinsics, b.labels.intrinsics);
            for (i, (x, y)) in ka.iter().zip(&kb).enumerate() {
                let expected = if i == 0 || i == 4 {
                    x * scale as f32
                } else {
                    *x
                };
                assert!((y - expected).abs() < 1e-4, "K[{i}]: {y} vs {expected}");
            }
        }
    }

    #[test]
    fn an_appearance_section_changes_the_look_but_not_the_labels_and_is_deterministic() {
        let classic = DataConfig::tiny();
        let mut styled = classic.clone();
        let mut a = AppearanceConfig::classic();
        a.ball_hue = (100.0, 300.0);
        a.ground_patterns = vec![GroundPattern::Checker, GroundPattern::Noise];
        styled.appearance = Some(a);
        let mut va = vec![0u8; classic.video_bytes()];
        let mut vb = va.clone();
        let mut vc = va.clone();
        let la = generate_sample(&classic, 3, &mut va);
        let lb = generate_sample(&styled, 3, &mut vb);
        generate_sample(&styled, 3, &mut vc);
        assert_eq!(la, lb, "same geometry and labels");
        assert_ne!(va, vb, "another look");
        assert_eq!(vb, vc, "a pure function of (config, seed, index)");
    }

    /// A `training_*` range changes the training split and nothing else: validation and test
    /// samples render (and are labelled) as without it, training samples as if the range it
    /// stands for were set to it everywhere.
    fn assert_only_the_training_split_changes(
        scored: &DataConfig,
        set_training: impl Fn(&mut AppearanceConfig),
        set_everywhere: impl Fn(&mut AppearanceConfig),
    ) {
        let with = |set: &dyn Fn(&mut AppearanceConfig)| {
            let mut cfg = scored.clone();
            set(cfg.appearance.as_mut().unwrap());
            cfg.validate().unwrap();
            cfg
        };
        let (augmented, everywhere) = (with(&set_training), with(&set_everywhere));
        let sample = |cfg: &DataConfig, index| {
            let mut v = vec![0u8; cfg.video_bytes()];
            let labels = generate_sample(cfg, index, &mut v);
            (labels, v)
        };
        let (mut seen, mut changed) = ([0; 3], 0);
        for index in 0..60 {
            let split = split_of(scored.seed, index, &scored.split);
            let expected = match split {
                Split::Train => &everywhere,
                Split::Val | Split::Test => scored,
            };
            let augmented = sample(&augmented, index);
            assert_eq!(augmented, sample(expected, index), "{index}");
            seen[split as usize] += 1;
            changed += (split == Split::Train && augmented != sample(scored, index)) as usize;
        }
        assert!(seen.iter().all(|&n| n > 0), "every split checked: {seen:?}");
        assert!(
            changed > seen[0] / 2,
            "{changed} of {} training samples",
            seen[0]
        );
    }

    #[test]
    fn training_pixel_noise_widens_only_the_training_splits_noise() {
        let mut scored = wide();
        scored.appearance.as_mut().unwrap().pixel_noise = (0.0, 0.02);
        assert_only_the_training_split_changes(
            &scored,
            |a| a.training_pixel_noise = Some((0.0, 0.08)),
            |a| a.pixel_noise = (0.0, 0.08),
        );
    }

    #[test]
    fn training_focal_scale_shortens_only_the_training_splits_lenses() {
        let mut scored = wide();
        scored.appearance.as_mut().unwrap().focal_scale = (1.0, 1.0);
        assert_only_the_training_split_changes(
            &scored,
            |a| a.training_focal_scale = Some((0.7, 1.0)),
            |a| a.focal_scale = (0.7, 1.0),
        );
    }

    #[test]
    fn training_ball_value_darkens_only_the_training_splits_balls() {
        let mut scored = wide();
        scored.appearance.as_mut().unwrap().ball_value = (0.55, 1.0);
        assert_only_the_training_split_changes(
            &scored,
            |a| a.training_ball_value = Some((0.2, 1.0)),
            |a| a.ball_value = (0.2, 1.0),
        );
    }

    #[test]
    fn training_ball_stripes_stripe_only_the_training_splits_balls() {
        let mut scored = wide();
        scored.appearance.as_mut().unwrap().ball_stripes = (0.0, 0.0);
        assert_only_the_training_split_changes(
            &scored,
            |a| a.training_ball_stripes = Some((0.2, 0.8)),
            |a| a.ball_stripes = (0.2, 0.8),
        );
    }
}
