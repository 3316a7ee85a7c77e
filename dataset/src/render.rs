//! Software renderer: a ground grid with perspective and fog (the depth cue), drawn once per
//! sample, then per frame a soft shadow under the ball and the anti-aliased shaded ball, touching
//! only their bounding boxes. Output is planar RGB u8, frames × 3 × H × W.

use glam::{DVec3, Vec3};
use rand::RngCore;

use crate::camera::Camera;
use crate::trajectory::BALL_RADIUS;

const SKY_HORIZON: Vec3 = Vec3::new(0.72, 0.78, 0.86);
const SKY_ZENITH: Vec3 = Vec3::new(0.36, 0.52, 0.78);
const GROUND: Vec3 = Vec3::new(0.52, 0.50, 0.38);
const GRID_LINE: Vec3 = Vec3::new(0.22, 0.25, 0.22);
/// Ball albedo: saturated orange-red, far from every background colour (used by `check`).
pub const BALL: Vec3 = Vec3::new(0.95, 0.38, 0.08);
const GRID_CELL: f32 = 0.5;
const GRID_HALF_WIDTH: f32 = 0.025;
const FOG_DISTANCE: f32 = 20.0;
const SHADOW_STRENGTH: f32 = 0.55;

/// Renders the clip for `positions` (world, one per frame) into `out` (frames × 3 × H × W).
pub fn render_video<R: RngCore>(
    cam: &Camera,
    ground_z: f64,
    positions: &[DVec3],
    (width, height): (usize, usize),
    pixel_noise: f64,
    rng: &mut R,
    out: &mut [u8],
) {
    let plane = width * height;
    let frame_len = 3 * plane;
    assert_eq!(out.len(), positions.len() * frame_len);
    let background = background(cam, ground_z, width, height);
    // Light direction (towards the light) in camera axes: upper left, from the camera's side.
    let light = Vec3::new(-0.3, -0.45, -0.85).normalize();
    let half = (light + Vec3::new(0.0, 0.0, -1.0)).normalize();
    for (frame, &p) in out.chunks_exact_mut(frame_len).zip(positions) {
        frame.copy_from_slice(&background);
        draw_shadow(frame, cam, ground_z, p, width, height);
        draw_ball(frame, cam, p, width, height, light, half);
    }
    if pixel_noise > 0.0 {
        add_noise(out, pixel_noise, rng);
    }
}

fn to_u8(x: f32) -> u8 {
    (x * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

/// Sky gradient above the horizon; below it the ground plane z = `ground_z` with an
/// anti-aliased grid whose lines thin out with distance, fading into haze.
fn background(cam: &Camera, ground_z: f64, width: usize, height: usize) -> Vec<u8> {
    let plane = width * height;
    let mut out = vec![0u8; 3 * plane];
    let fx = cam.fx as f32;
    for j in 0..height {
        for i in 0..width {
            let d = cam.ray(i as f64 + 0.5, j as f64 + 0.5);
            let dn = d.normalize().as_vec3();
            let sky = SKY_HORIZON.lerp(SKY_ZENITH, (dn.z * 2.5).clamp(0.0, 1.0));
            let colour = if d.z < -1e-9 {
                let t = (ground_z - cam.eye.z) / d.z;
                let hit = cam.eye + d * t;
                let dist = (t * d.length()) as f32;
                // World size of this pixel on the ground, stretched at grazing angles.
                let footprint = dist / fx / (-dn.z).max(0.08);
                let line_cover = |x: f64| {
                    let c = (x as f32 / GRID_CELL).fract().abs();
                    let dl = c.min(1.0 - c) * GRID_CELL;
                    ((GRID_HALF_WIDTH - dl) / footprint + 0.5).clamp(0.0, 1.0)
                };
                // Lines narrower than ~a pixel average out into the haze instead of aliasing.
                let visibility = (1.0 - footprint / GRID_CELL).clamp(0.0, 1.0);
                let cover = line_cover(hit.x).max(line_cover(hit.y)) * visibility;
                let ground = GROUND.lerp(GRID_LINE, cover);
                let fog = (-dist / FOG_DISTANCE).exp();
                SKY_HORIZON.lerp(ground, fog)
            } else {
                sky
            };
            let k = j * width + i;
            out[k] = to_u8(colour.x);
            out[plane + k] = to_u8(colour.y);
            out[2 * plane + k] = to_u8(colour.z);
        }
    }
    out
}

/// Pixel bounding box of a disc/ellipse, clipped to the image; None when fully outside.
fn pixel_box(
    u: f64,
    v: f64,
    rx: f64,
    ry: f64,
    w: usize,
    h: usize,
) -> Option<(usize, usize, usize, usize)> {
    let x0 = (u - rx - 1.0).floor().max(0.0);
    let y0 = (v - ry - 1.0).floor().max(0.0);
    let x1 = (u + rx + 1.0).ceil().min(w as f64);
    let y1 = (v + ry + 1.0).ceil().min(h as f64);
    (x0 < x1 && y0 < y1).then_some((x0 as usize, y0 as usize, x1 as usize, y1 as usize))
}

/// A soft dark ellipse on the ground straight below the ball: ties the ball to the grid in depth.
fn draw_shadow(frame: &mut [u8], cam: &Camera, ground_z: f64, p: DVec3, w: usize, h: usize) {
    let s = DVec3::new(p.x, p.y, ground_z);
    let sc = cam.to_camera(s);
    if sc.z < 0.1 {
        return;
    }
    let (u, v) = cam.project(sc);
    let grazing = ((cam.eye.z - ground_z) / (s - cam.eye).length()).clamp(0.05, 1.0);
    let rx = cam.fx * BALL_RADIUS * 1.2 / sc.z;
    let ry = (rx * grazing).max(0.4);
    let Some((x0, y0, x1, y1)) = pixel_box(u, v, rx, ry, w, h) else {
        return;
    };
    let plane = w * h;
    let softness = rx.min(ry).max(0.5);
    for y in y0..y1 {
        let dy = (y as f64 + 0.5 - v) / ry;
        for x in x0..x1 {
            let dx = (x as f64 + 0.5 - u) / rx;
            let e = (dx * dx + dy * dy).sqrt();
            let cover = ((1.0 - e) * softness + 0.5).clamp(0.0, 1.0) as f32;
            if cover > 0.0 {
                let k = y * w + x;
                let shade = 1.0 - SHADOW_STRENGTH * cover;
                for c in 0..3 {
                    let px = &mut frame[c * plane + k];
                    *px = (*px as f32 * shade + 0.5) as u8;
                }
            }
        }
    }
}

/// A Lambert + specular shaded sphere, drawn as a disc of radius f·R/z with 1-pixel edge coverage.
fn draw_ball(
    frame: &mut [u8],
    cam: &Camera,
    p: DVec3,
    w: usize,
    h: usize,
    light: Vec3,
    half: Vec3,
) {
    let pc = cam.to_camera(p);
    if pc.z < 0.1 {
        return;
    }
    let (u, v) = cam.project(pc);
    let r = cam.fx * BALL_RADIUS / pc.z;
    let Some((x0, y0, x1, y1)) = pixel_box(u, v, r, r, w, h) else {
        return;
    };
    let plane = w * h;
    let (u, v, r) = (u as f32, v as f32, r as f32);
    for y in y0..y1 {
        let dy = (y as f32 + 0.5 - v) / r;
        for x in x0..x1 {
            let dx = (x as f32 + 0.5 - u) / r;
            let d2 = dx * dx + dy * dy;
            let cover = (r + 0.5 - d2.sqrt() * r).clamp(0.0, 1.0);
            if cover <= 0.0 {
                continue;
            }
            let n = Vec3::new(dx, dy, -(1.0 - d2.min(1.0)).sqrt());
            let diffuse = n.dot(light).max(0.0);
            let spec = n.dot(half).max(0.0).powi(16) * 0.45;
            // Generous ambient: at 1–3 px radius every pixel must still read as "ball".
            let colour = BALL * (0.55 + 0.45 * diffuse) + Vec3::splat(spec);
            let k = y * w + x;
            for (c, value) in colour.to_array().into_iter().enumerate() {
                let px = &mut frame[c * plane + k];
                *px = (*px as f32 * (1.0 - cover) + value.min(1.0) * 255.0 * cover + 0.5) as u8;
            }
        }
    }
}

/// Uniform noise with standard deviation `sigma` (fraction of full scale).
fn add_noise<R: RngCore>(out: &mut [u8], sigma: f64, rng: &mut R) {
    let mut noise = vec![0u8; out.len()];
    rng.fill_bytes(&mut noise);
    // Uniform on [-a, a] has std a/√3; the bytes map 0..=255 onto [-a, a].
    let a = (sigma * 3f64.sqrt() * 255.0) as f32;
    for (px, n) in out.iter_mut().zip(noise) {
        let delta = (n as f32 - 127.5) / 127.5 * a;
        *px = (*px as f32 + delta).round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scene() -> (Camera, Vec<DVec3>) {
        let cam = Camera::look_at(DVec3::new(-4.0, 0.0, 1.5), DVec3::ZERO, 50.0, 32, 32);
        let positions = vec![DVec3::ZERO, DVec3::new(0.0, 0.5, 0.3)];
        (cam, positions)
    }

    #[test]
    fn ball_is_drawn_where_it_projects() {
        let (cam, positions) = scene();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut out = vec![0u8; 2 * 3 * 32 * 32];
        render_video(&cam, -1.0, &positions, (32, 32), 0.0, &mut rng, &mut out);
        for (f, &p) in positions.iter().enumerate() {
            let (u, v) = cam.project(cam.to_camera(p));
            let k = f * 3 * 1024 + v as usize * 32 + u as usize;
            let (r, b) = (out[k] as i32, out[k + 2 * 1024] as i32);
            assert!(r - b > 60, "frame {f}: ball pixel r={r} b={b}");
        }
        // The top rows are sky (blue > red), the bottom rows ground.
        assert!(out[2 * 1024] > out[0]);
        assert!(out[31 * 32] > out[2 * 1024 + 31 * 32]);
        assert_ne!(out[..3072], out[3072..], "frames differ as the ball moves");
    }

    #[test]
    fn pixel_noise_changes_pixels_by_about_sigma() {
        let (cam, positions) = scene();
        let mut clean = vec![0u8; 2 * 3072];
        let mut noisy = clean.clone();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        render_video(&cam, -1.0, &positions, (32, 32), 0.0, &mut rng, &mut clean);
        render_video(&cam, -1.0, &positions, (32, 32), 0.05, &mut rng, &mut noisy);
        let var = clean
            .iter()
            .zip(&noisy)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / clean.len() as f64;
        let std = var.sqrt() / 255.0;
        assert!((0.04..0.06).contains(&std), "noise std {std}");
    }
}
