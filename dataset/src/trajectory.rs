//! Trajectory classes, their randomised parameters, and the 3-D world positions they produce.
//!
//! World frame: z up, metres-like "units"; a trajectory's clean curve spans about 2 units and is
//! centred on the origin before augmentation (random scale, yaw/tilt rotation, position jitter).

use std::f64::consts::{PI, TAU};

use glam::{DMat3, DVec3};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, UnitSphere};

pub use crate::class::Class;
use crate::config::DataConfig;

/// Ball radius in world units (fixed, so apparent size tells depth).
pub const BALL_RADIUS: f64 = 0.12;

/// Range of the random-scale augmentation.
pub const MIN_SCALE: f64 = 0.8;
pub const MAX_SCALE: f64 = 1.2;

/// Names of the columns of the `params` tensor, in order (K = `PARAM_FIELDS.len()`).
/// Vectors are in the pre-augmentation trajectory frame; see docs/dataset.md.
pub const PARAM_FIELDS: [&str; 19] = [
    "class",
    "scale",
    "yaw",
    "tilt",
    "origin_x",
    "origin_y",
    "origin_z",
    "velocity_x",
    "velocity_y",
    "velocity_z",
    "axis_x",
    "axis_y",
    "axis_z",
    "radius",
    "omega",
    "phase",
    "jitter_sigma",
    "ball_radius",
    "ground_z",
];

/// Randomised parameters of one trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub class: Class,
    /// Start point (linear, parabolic) or centre (circular, helical).
    pub origin: DVec3,
    /// Constant velocity (linear), initial velocity (parabolic), axial velocity (helical).
    pub velocity: DVec3,
    /// Plane normal / helix axis (unit), or gravity acceleration vector (parabolic).
    pub axis: DVec3,
    pub radius: f64,
    /// Angular speed in rad/s (signed).
    pub omega: f64,
    pub phase: f64,
    /// Augmentation: uniform scale, yaw about world z, tilt about world x.
    pub scale: f64,
    pub yaw: f64,
    pub tilt: f64,
    /// Std-dev of the per-frame position jitter, world units.
    pub jitter_sigma: f64,
}

impl Trajectory {
    /// Draws the parameters for `class`, scaled so the shape spans the labelled T + H frames.
    pub fn sample<R: Rng>(class: Class, cfg: &DataConfig, rng: &mut R) -> Trajectory {
        let duration = cfg.total_frames() as f64 / cfg.fps;
        let unit = |rng: &mut R| DVec3::from(UnitSphere.sample(rng));
        let sign = |rng: &mut R| if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        let mut t = Trajectory {
            class,
            origin: DVec3::ZERO,
            velocity: DVec3::ZERO,
            axis: DVec3::ZERO,
            radius: 0.0,
            omega: 0.0,
            phase: 0.0,
            scale: 1.0,
            yaw: 0.0,
            tilt: 0.0,
            jitter_sigma: 0.0,
        };
        match class {
            Class::Linear => {
                t.velocity = unit(rng) * rng.gen_range(1.6..2.4) / duration;
            }
            Class::Circular => {
                t.axis = unit(rng);
                t.radius = rng.gen_range(0.7..1.0);
                // At least half a turn, so the arc is unmistakably round.
                t.omega = sign(rng) * rng.gen_range(1.1 * PI..1.9 * PI) / duration;
                t.phase = rng.gen_range(0.0..TAU);
            }
            Class::Helical => {
                t.axis = unit(rng);
                t.radius = rng.gen_range(0.45..0.7);
                // More than a full turn plus clear travel along the axis.
                t.omega = sign(rng) * rng.gen_range(2.2 * PI..3.4 * PI) / duration;
                t.phase = rng.gen_range(0.0..TAU);
                t.velocity = t.axis * rng.gen_range(1.0..1.6) / duration;
            }
            Class::Parabolic => {
                // Gravity mostly down, up to ~20° off vertical; apex inside the labelled span.
                let g_dir = (DVec3::NEG_Z + unit(rng) * rng.gen_range(0.0..0.35)).normalize();
                let apex_frac: f64 = rng.gen_range(0.45..0.6);
                let height: f64 = rng.gen_range(0.8..1.2);
                let g = 2.0 * height / (apex_frac * duration).powi(2);
                t.axis = g_dir * g;
                let up = -g_dir * g * apex_frac * duration;
                let side = g_dir.any_orthonormal_vector();
                let side = DMat3::from_axis_angle(g_dir, rng.gen_range(0.0..TAU)) * side;
                t.velocity = up + side * rng.gen_range(1.1..1.8) / duration;
            }
        }
        // Centre the clean curve's bounding box on the origin.
        let times: Vec<f64> = (0..cfg.total_frames())
            .map(|k| k as f64 / cfg.fps)
            .collect();
        let (lo, hi) = bounds(times.iter().map(|&s| t.clean(s)));
        t.origin -= (lo + hi) * 0.5;

        let aug = &cfg.augmentation;
        if aug.random_scale {
            t.scale = rng.gen_range(MIN_SCALE..MAX_SCALE);
        }
        if aug.random_rotation {
            t.yaw = rng.gen_range(0.0..TAU);
            t.tilt = rng.gen_range(-PI / 6.0..PI / 6.0);
        }
        t.jitter_sigma = aug.noise_level * t.scale;
        t
    }

    /// Position on the clean (un-augmented) curve at time `s` seconds.
    pub fn clean(&self, s: f64) -> DVec3 {
        match self.class {
            Class::Linear => self.origin + self.velocity * s,
            Class::Circular | Class::Helical => {
                let u = self.axis.any_orthonormal_vector();
                let w = self.axis.cross(u);
                let a = self.phase + self.omega * s;
                self.origin + self.radius * (a.cos() * u + a.sin() * w) + self.velocity * s
            }
            Class::Parabolic => self.origin + self.velocity * s + 0.5 * self.axis * s * s,
        }
    }

    /// The augmentation's rotation (world from trajectory frame).
    pub fn rotation(&self) -> DMat3 {
        DMat3::from_rotation_z(self.yaw) * DMat3::from_rotation_x(self.tilt)
    }

    /// World positions of frames `0..n` at `fps`, augmented and jittered.
    pub fn world_positions<R: Rng>(&self, n: usize, fps: f64, rng: &mut R) -> Vec<DVec3> {
        let rot = self.rotation();
        (0..n)
            .map(|k| {
                let jitter = DVec3::new(
                    rng.sample(StandardNormal),
                    rng.sample(StandardNormal),
                    rng.sample(StandardNormal),
                );
                self.scale * (rot * self.clean(k as f64 / fps)) + jitter * self.jitter_sigma
            })
            .collect()
    }

    /// The `params` row (see [`PARAM_FIELDS`]); `ground_z` comes from the scene.
    pub fn params(&self, ground_z: f64) -> [f32; PARAM_FIELDS.len()] {
        let (o, v, a) = (self.origin, self.velocity, self.axis);
        [
            self.class.index() as f64,
            self.scale,
            self.yaw,
            self.tilt,
            o.x,
            o.y,
            o.z,
            v.x,
            v.y,
            v.z,
            a.x,
            a.y,
            a.z,
            self.radius,
            self.omega,
            self.phase,
            self.jitter_sigma,
            BALL_RADIUS,
            ground_z,
        ]
        .map(|x| x as f32)
    }
}

/// Axis-aligned bounding box of points.
pub fn bounds(points: impl Iterator<Item = DVec3>) -> (DVec3, DVec3) {
    points.fold(
        (DVec3::splat(f64::INFINITY), DVec3::splat(f64::NEG_INFINITY)),
        |(lo, hi), p| (lo.min(p), hi.max(p)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn class_names_round_trip() {
        for c in Class::ALL {
            assert_eq!(Class::from_name(c.name()), Some(c));
            assert_eq!(Class::from_index(c.index()), Some(c));
        }
        assert_eq!(Class::from_name("zigzag"), None);
    }

    #[test]
    fn clean_curves_are_centred_and_unit_sized() {
        let cfg = DataConfig::default_config();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for class in Class::ALL {
            for _ in 0..50 {
                let t = Trajectory::sample(class, &cfg, &mut rng);
                let times = (0..cfg.total_frames()).map(|k| k as f64 / cfg.fps);
                let (lo, hi) = bounds(times.map(|s| t.clean(s)));
                assert!(((lo + hi) * 0.5).length() < 1e-9, "{class:?} not centred");
                let extent = (hi - lo).max_element();
                assert!((0.8..3.0).contains(&extent), "{class:?} extent {extent}");
            }
        }
    }
}
