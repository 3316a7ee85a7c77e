//! Pinhole camera (OpenCV convention: x right, y down, z forward), automatic placement, and the
//! normalisation of camera-frame positions used for the labels.

use std::f64::consts::TAU;

use glam::{DMat3, DVec3};
use rand::Rng;

/// Labels are `(p_cam - (0, 0, NORM_DEPTH)) / NORM_SCALE` (see docs/dataset.md): a fixed affine
/// map, so every label is observable from the image (ball position and apparent size).
pub const NORM_DEPTH: f64 = 2.6;
pub const NORM_SCALE: f64 = 1.2;

/// Fraction of the half-image kept free around the trajectory by the automatic camera.
const VIEW_MARGIN: f64 = 0.12;

#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// World → camera rotation (rows: right, down, forward).
    pub rot: DMat3,
    /// Camera centre in world coordinates.
    pub eye: DVec3,
}

impl Camera {
    /// A camera at `eye` looking at `target` with world z up; square pixels.
    pub fn look_at(eye: DVec3, target: DVec3, fov_deg: f64, width: usize, height: usize) -> Self {
        let forward = (target - eye).normalize();
        let right = forward.cross(DVec3::Z).normalize();
        let down = forward.cross(right);
        let f = width as f64 * 0.5 / (fov_deg.to_radians() * 0.5).tan();
        Camera {
            fx: f,
            fy: f,
            cx: width as f64 * 0.5,
            cy: height as f64 * 0.5,
            rot: DMat3::from_cols(right, down, forward).transpose(),
            eye,
        }
    }

    /// Random viewpoint (azimuth, 10°–40° elevation) at the smallest distance that keeps every
    /// point, padded by `pad` world units, inside the image with a margin, times a factor drawn
    /// from `distance` (classically 1.0–1.2).
    #[allow(clippy::too_many_arguments)]
    pub fn auto<R: Rng>(
        points: &[DVec3],
        pad: f64,
        fov_deg: f64,
        width: usize,
        height: usize,
        distance: crate::appearance::Range,
        rng: &mut R,
    ) -> Self {
        let azimuth = rng.gen_range(0.0..TAU);
        let elevation = rng.gen_range(10f64..40.0).to_radians();
        let extra = crate::appearance::draw(rng, distance);
        Self::fitted(
            points, pad, fov_deg, width, height, azimuth, elevation, extra,
        )
    }

    /// The fixed viewpoint used when `auto_camera` is off; still fitted so the ball stays in view.
    pub fn fixed(points: &[DVec3], pad: f64, fov_deg: f64, width: usize, height: usize) -> Self {
        let elevation = 25f64.to_radians();
        Self::fitted(points, pad, fov_deg, width, height, 0.6, elevation, 1.1)
    }

    #[allow(clippy::too_many_arguments)]
    fn fitted(
        points: &[DVec3],
        pad: f64,
        fov_deg: f64,
        width: usize,
        height: usize,
        azimuth: f64,
        elevation: f64,
        extra: f64,
    ) -> Self {
        let (lo, hi) = crate::trajectory::bounds(points.iter().copied());
        let target = (lo + hi) * 0.5;
        let dir = DVec3::new(
            elevation.cos() * azimuth.cos(),
            elevation.cos() * azimuth.sin(),
            elevation.sin(),
        );
        let probe = Camera::look_at(target + dir, target, fov_deg, width, height);
        let kx = (1.0 - VIEW_MARGIN) * probe.cx / probe.fx;
        let ky = (1.0 - VIEW_MARGIN) * probe.cy / probe.fy;
        // A point at offset (a, b, c) from the target in camera axes has depth d + c; it is in
        // view when (|a| + pad) / (d + c) <= kx and likewise for b.
        let distance = points
            .iter()
            .map(|&p| {
                let r = probe.rot * (p - target);
                ((r.x.abs() + pad) / kx - r.z)
                    .max((r.y.abs() + pad) / ky - r.z)
                    .max(2.0 * pad - r.z + 0.5)
            })
            .fold(1.0, f64::max);
        Camera::look_at(
            target + dir * distance * extra,
            target,
            fov_deg,
            width,
            height,
        )
    }

    pub fn to_camera(&self, p: DVec3) -> DVec3 {
        self.rot * (p - self.eye)
    }

    /// Continuous pixel coordinates (pixel (i, j) covers [i, i+1) × [j, j+1)).
    pub fn project(&self, pc: DVec3) -> (f64, f64) {
        (
            self.fx * pc.x / pc.z + self.cx,
            self.fy * pc.y / pc.z + self.cy,
        )
    }

    /// Ray direction in world coordinates through continuous pixel (u, v).
    pub fn ray(&self, u: f64, v: f64) -> DVec3 {
        let d = DVec3::new((u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0);
        self.rot.transpose() * d
    }

    /// Row-major 3×3 K.
    pub fn intrinsics(&self) -> [f32; 9] {
        [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0].map(|x| x as f32)
    }

    /// Row-major 4×4 world→camera [R | -R·eye].
    pub fn extrinsics(&self) -> [f32; 16] {
        let r = self.rot;
        let t = -(r * self.eye);
        let row = |i: usize| r.row(i);
        let (r0, r1, r2) = (row(0), row(1), row(2));
        [
            r0.x, r0.y, r0.z, t.x, r1.x, r1.y, r1.z, t.y, r2.x, r2.y, r2.z, t.z, 0.0, 0.0, 0.0, 1.0,
        ]
        .map(|x| x as f32)
    }
}

/// Camera-frame position → label coordinates.
pub fn normalise(pc: DVec3) -> DVec3 {
    (pc - DVec3::new(0.0, 0.0, NORM_DEPTH)) / NORM_SCALE
}

/// Label coordinates → camera-frame position.
pub fn denormalise(p: DVec3) -> DVec3 {
    p * NORM_SCALE + DVec3::new(0.0, 0.0, NORM_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn look_at_follows_opencv_axes() {
        let cam = Camera::look_at(DVec3::new(-5.0, 0.0, 0.0), DVec3::ZERO, 60.0, 64, 48);
        // World +x is forward, world -y is right, world +z is up (= -y in camera).
        assert!((cam.to_camera(DVec3::ZERO) - DVec3::new(0.0, 0.0, 5.0)).length() < 1e-12);
        let right = cam.to_camera(DVec3::new(0.0, -1.0, 0.0));
        assert!(right.x > 0.99 && right.y.abs() < 1e-12);
        let up = cam.to_camera(DVec3::new(0.0, 0.0, 1.0));
        assert!(up.y < -0.99);
        let (u, v) = cam.project(cam.to_camera(DVec3::ZERO));
        assert_eq!((u, v), (32.0, 24.0));
        // Ray through the projection of a point passes through it.
        let p = DVec3::new(1.0, 0.7, -0.4);
        let (u, v) = cam.project(cam.to_camera(p));
        let ray = cam.ray(u, v).normalize();
        assert!(ray.cross((p - cam.eye).normalize()).length() < 1e-12);
    }

    #[test]
    fn extrinsics_match_to_camera() {
        let cam = Camera::look_at(DVec3::new(3.0, 2.0, 1.5), DVec3::ZERO, 50.0, 32, 32);
        let e = cam.extrinsics();
        let p = DVec3::new(0.3, -0.2, 0.9);
        let pc = cam.to_camera(p);
        for i in 0..3 {
            let row = &e[i * 4..i * 4 + 4];
            let got =
                row[0] as f64 * p.x + row[1] as f64 * p.y + row[2] as f64 * p.z + row[3] as f64;
            assert!((got - pc[i]).abs() < 1e-5);
        }
    }

    #[test]
    fn auto_camera_keeps_points_in_view() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let points: Vec<DVec3> = (0..40)
            .map(|k| DVec3::new(k as f64 * 0.05 - 1.0, (k as f64 * 0.3).sin(), 0.5))
            .collect();
        for _ in 0..100 {
            let cam = Camera::auto(&points, 0.12, 50.0, 64, 64, (1.0, 1.2), &mut rng);
            for &p in &points {
                let pc = cam.to_camera(p);
                let (u, v) = cam.project(pc);
                let r = cam.fx * 0.12 / pc.z;
                assert!(pc.z > 0.5);
                assert!(u - r >= 0.0 && u + r <= 64.0 && v - r >= 0.0 && v + r <= 64.0);
            }
        }
        let p = DVec3::new(0.1, 0.2, 3.0);
        assert!((denormalise(normalise(p)) - p).length() < 1e-12);
    }
}
