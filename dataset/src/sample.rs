//! One sample, a pure function of (config, seed, index): this is what makes output independent
//! of the worker count and lets a resumed run reproduce an uninterrupted one byte for byte.

use glam::DVec3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::camera::{normalise, Camera};
use crate::config::DataConfig;
use crate::render::render_video;
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
    /// Only the first T rows are drawn.
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
            &self.world[..cfg.frames],
            (cfg.width, cfg.height),
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
    let ground_z = lo.z - BALL_RADIUS - rng.gen_range(0.2..0.6);
    let (w, h) = (cfg.width, cfg.height);
    let cam = if cfg.auto_camera {
        Camera::auto(&world, BALL_RADIUS, cfg.fov_deg, w, h, &mut rng)
    } else {
        Camera::fixed(&world, BALL_RADIUS, cfg.fov_deg, w, h)
    };
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
