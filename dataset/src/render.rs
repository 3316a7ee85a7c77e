//! Software renderer: a ground (grid, checker, noise texture or plain) with perspective and haze
//! (the depth cue), drawn once per sample, then per frame a soft shadow under the ball and the
//! anti-aliased ball, touching only their bounding boxes; then optional blur and noise. Every
//! colour and amount comes from the sample's [`Style`] (`Style::classic()` is the look trajhost
//! always rendered, byte for byte). Output is planar RGB u8, frames × 3 × H × W.

use glam::{DVec3, Vec3};
use rand::RngCore;
use std::f32::consts::TAU;

use crate::appearance::{GroundPattern, Shading, Style};
use crate::camera::Camera;
use crate::trajectory::BALL_RADIUS;

/// Sub-frame positions a motion-blurred frame averages.
const MOTION_SAMPLES: usize = 6;

/// Renders the clip of `frames` frames for `positions` (world, one per frame, at least one
/// more than `frames` when the style has motion blur) into `out` (frames × 3 × H × W).
#[allow(clippy::too_many_arguments)]
pub fn render_video<R: RngCore>(
    cam: &Camera,
    ground_z: f64,
    positions: &[DVec3],
    frames: usize,
    (width, height): (usize, usize),
    style: &Style,
    pixel_noise: f64,
    rng: &mut R,
    out: &mut [u8],
) {
    let plane = width * height;
    let frame_len = 3 * plane;
    assert_eq!(out.len(), frames * frame_len);
    let background = background(cam, ground_z, width, height, style);
    // Blur is linear and the background still: blurred once, then per frame only around what
    // the shadow and ball changed, a small part of the frame.
    let mut blur = (style.blur > 0.0).then(|| Blur::new(style.blur, &background, width, height));
    let half = (style.light + Vec3::new(0.0, 0.0, -1.0)).normalize();
    // Draws the background, shadow and ball; returns the box outside which the frame is the
    // background.
    let draw = |frame: &mut [u8], p: DVec3| -> Option<Rect> {
        frame.copy_from_slice(&background);
        let shadow = if style.pattern != GroundPattern::None && style.shadow_strength > 0.0 {
            draw_shadow(frame, cam, ground_z, p, width, height, style)
        } else {
            None
        };
        union(shadow, draw_ball(frame, cam, p, width, height, style, half))
    };
    for (f, frame) in out.chunks_exact_mut(frame_len).enumerate() {
        let p = positions[f];
        let drawn = match positions.get(f + 1).filter(|_| style.motion_blur > 0.0) {
            None => draw(frame, p),
            Some(&next) => {
                // The shutter open for `motion_blur` of the interval after the frame's instant.
                let mut sum = vec![0f32; frame_len];
                let mut drawn = None;
                for k in 0..MOTION_SAMPLES {
                    let s = style.motion_blur * k as f64 / (MOTION_SAMPLES - 1) as f64;
                    drawn = union(drawn, draw(frame, p.lerp(next, s)));
                    for (acc, &px) in sum.iter_mut().zip(frame.iter()) {
                        *acc += px as f32;
                    }
                }
                for (px, acc) in frame.iter_mut().zip(sum) {
                    *px = (acc / MOTION_SAMPLES as f32 + 0.5) as u8;
                }
                drawn
            }
        };
        if let Some(blur) = &mut blur {
            blur.apply(frame, &background, drawn);
        }
        if style.grayscale {
            to_grey(frame, plane);
        }
    }
    let sigma = match style.pixel_noise {
        0.0 => pixel_noise,
        extra => (pixel_noise * pixel_noise + extra * extra).sqrt(),
    };
    if sigma > 0.0 {
        add_noise(out, sigma, rng);
    }
}

/// A planar RGB frame (`plane` pixels a channel) in grey: every channel its pixel's luma
/// (ITU-R BT.601 weights).
fn to_grey(frame: &mut [u8], plane: usize) {
    let (r, rest) = frame.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let luma = 0.299 * *r as f32 + 0.587 * *g as f32 + 0.114 * *b as f32;
        let luma = (luma + 0.5) as u8;
        (*r, *g, *b) = (luma, luma, luma);
    }
}

fn to_u8(x: f32) -> u8 {
    (x * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

/// Sky gradient above the horizon; below it the ground plane z = `ground_z` with its pattern
/// (grid lines thin out with distance), fading into haze. Without a ground, sky all round.
pub(crate) fn background(
    cam: &Camera,
    ground_z: f64,
    width: usize,
    height: usize,
    style: &Style,
) -> Vec<u8> {
    let plane = width * height;
    let mut out = vec![0u8; 3 * plane];
    let fx = cam.fx as f32;
    for j in 0..height {
        for i in 0..width {
            let d = cam.ray(i as f64 + 0.5, j as f64 + 0.5);
            let dn = d.normalize().as_vec3();
            let sky = style
                .sky_horizon
                .lerp(style.sky_zenith, (dn.z * 2.5).clamp(0.0, 1.0));
            let colour = if d.z < -1e-9 && style.pattern != GroundPattern::None {
                let t = (ground_z - cam.eye.z) / d.z;
                let hit = cam.eye + d * t;
                let dist = (t * d.length()) as f32;
                // World size of this pixel on the ground, stretched at grazing angles.
                let footprint = dist / fx / (-dn.z).max(0.08);
                let ground = ground_colour(style, hit.x, hit.y, footprint);
                let fog = (-dist / style.haze_distance).exp();
                style.sky_horizon.lerp(ground, fog)
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

/// The ground's colour at world (x, y), for a pixel covering `footprint` of it: detail smaller
/// than about a pixel averages out instead of aliasing.
fn ground_colour(style: &Style, x: f64, y: f64, footprint: f32) -> Vec3 {
    let cell = style.cell;
    let visibility = (1.0 - footprint / cell).clamp(0.0, 1.0);
    match style.pattern {
        GroundPattern::Grid => {
            let line_cover = |x: f64| {
                let c = (x as f32 / cell).fract().abs();
                let dl = c.min(1.0 - c) * cell;
                ((style.line_half_width - dl) / footprint + 0.5).clamp(0.0, 1.0)
            };
            let cover = line_cover(x).max(line_cover(y)) * visibility;
            style.ground.lerp(style.line, cover)
        }
        GroundPattern::Checker => {
            let (cx, cy) = ((x as f32 / cell).floor(), (y as f32 / cell).floor());
            let odd = (cx + cy).rem_euclid(2.0);
            // Near an edge, or where squares are smaller than a pixel, the two colours mix.
            let edge = |v: f64| {
                let c = (v as f32 / cell).fract().abs();
                c.min(1.0 - c) * cell / footprint.max(1e-6)
            };
            let sharp = (edge(x).min(edge(y)) * 2.0).clamp(0.0, 1.0) * visibility;
            let mix = 0.5 + (odd - 0.5) * sharp;
            style.ground.lerp(style.line, mix)
        }
        GroundPattern::Noise => {
            let n = value_noise(x / cell as f64, y / cell as f64, style.texture_seed);
            let amount = 0.5 + (n - 0.5) * visibility;
            style.ground.lerp(style.line, amount)
        }
        GroundPattern::Plain | GroundPattern::None => style.ground,
    }
}

/// Smooth value noise in 0..1 on a unit lattice, keyed by `seed`.
fn value_noise(x: f64, y: f64, seed: u32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let corner = |dx: f64, dy: f64| {
        let (ix, iy) = ((x0 + dx) as i64 as u64, (y0 + dy) as i64 as u64);
        let mut h = ix.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ iy.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ (seed as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        (h & 0xFFFF) as f32 / 65535.0
    };
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(fx), smooth(fy));
    let top = corner(0.0, 0.0) + (corner(1.0, 0.0) - corner(0.0, 0.0)) * sx;
    let bottom = corner(0.0, 1.0) + (corner(1.0, 1.0) - corner(0.0, 1.0)) * sx;
    top + (bottom - top) * sy
}

/// A pixel rectangle `(x0, y0, x1, y1)`, ends excluded.
type Rect = (usize, usize, usize, usize);

/// The smallest rectangle holding both.
fn union(a: Option<Rect>, b: Option<Rect>) -> Option<Rect> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Pixel bounding box of a disc/ellipse, clipped to the image; None when fully outside.
fn pixel_box(u: f64, v: f64, rx: f64, ry: f64, w: usize, h: usize) -> Option<Rect> {
    let x0 = (u - rx - 1.0).floor().max(0.0);
    let y0 = (v - ry - 1.0).floor().max(0.0);
    let x1 = (u + rx + 1.0).ceil().min(w as f64);
    let y1 = (v + ry + 1.0).ceil().min(h as f64);
    (x0 < x1 && y0 < y1).then_some((x0 as usize, y0 as usize, x1 as usize, y1 as usize))
}

/// A soft dark ellipse on the ground straight below the ball: ties the ball to the grid in depth.
/// Returns the box it may have changed.
fn draw_shadow(
    frame: &mut [u8],
    cam: &Camera,
    ground_z: f64,
    p: DVec3,
    w: usize,
    h: usize,
    style: &Style,
) -> Option<Rect> {
    let s = DVec3::new(p.x, p.y, ground_z);
    let sc = cam.to_camera(s);
    if sc.z < 0.1 {
        return None;
    }
    let (u, v) = cam.project(sc);
    let grazing = ((cam.eye.z - ground_z) / (s - cam.eye).length()).clamp(0.05, 1.0);
    let rx = cam.fx * BALL_RADIUS * 1.2 / sc.z;
    let ry = (rx * grazing).max(0.4);
    let (x0, y0, x1, y1) = pixel_box(u, v, rx, ry, w, h)?;
    let plane = w * h;
    let softness = (rx.min(ry) / style.shadow_softness).max(0.5);
    for y in y0..y1 {
        let dy = (y as f64 + 0.5 - v) / ry;
        for x in x0..x1 {
            let dx = (x as f64 + 0.5 - u) / rx;
            let e = (dx * dx + dy * dy).sqrt();
            let cover = ((1.0 - e) * softness + 0.5).clamp(0.0, 1.0) as f32;
            if cover > 0.0 {
                let k = y * w + x;
                let shade = 1.0 - style.shadow_strength * cover;
                for c in 0..3 {
                    let px = &mut frame[c * plane + k];
                    *px = (*px as f32 * shade + 0.5) as u8;
                }
            }
        }
    }
    Some((x0, y0, x1, y1))
}

/// A sphere drawn as a disc of radius f·R/z with 1-pixel edge coverage: Lambert + specular
/// shaded, flat, or flat with a dark rim. Returns the box it may have changed.
fn draw_ball(
    frame: &mut [u8],
    cam: &Camera,
    p: DVec3,
    w: usize,
    h: usize,
    style: &Style,
    half: Vec3,
) -> Option<Rect> {
    let pc = cam.to_camera(p);
    if pc.z < 0.1 {
        return None;
    }
    let (u, v) = cam.project(pc);
    let r = cam.fx * BALL_RADIUS / pc.z;
    let (x0, y0, x1, y1) = pixel_box(u, v, r, r, w, h)?;
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
            // Two dark bands across the ball, where the surface's offset along the stripe axis
            // is 0.25–0.75 of the radius either way: a pattern on the surface, not the light.
            let ball = match style.stripes > 0.0 && (TAU * n.dot(style.stripe_axis)).cos() < 0.0 {
                true => style.ball * (1.0 - style.stripes),
                false => style.ball,
            };
            let colour = match style.shading {
                Shading::Shaded => {
                    let diffuse = n.dot(style.light).max(0.0);
                    let spec = n.dot(half).max(0.0).powi(16) * style.specular;
                    // Generous ambient: at 1–3 px radius every pixel must still read as "ball".
                    ball * (style.ambient + style.diffuse * diffuse) + Vec3::splat(spec)
                }
                Shading::Flat => ball,
                // The outer pixel of the rim, at least, is dark.
                Shading::Outlined if d2.sqrt() * r > r - 1.0 => ball * 0.25,
                Shading::Outlined => ball,
            };
            let k = y * w + x;
            for (c, value) in colour.to_array().into_iter().enumerate() {
                let px = &mut frame[c * plane + k];
                *px = (*px as f32 * (1.0 - cover) + value.min(1.0) * 255.0 * cover + 0.5) as u8;
            }
        }
    }
    Some((x0, y0, x1, y1))
}

/// A Gaussian blur of a sample's frames, which differ from its background only around the
/// ball and its shadow.
struct Blur {
    weights: Vec<f32>,
    radius: usize,
    width: usize,
    height: usize,
    background: Vec<u8>,
    /// The frame before blurring (reused from frame to frame).
    composite: Vec<u8>,
    /// The horizontal pass's output (reused).
    rows: Vec<f32>,
}

impl Blur {
    fn new(sigma: f32, background: &[u8], width: usize, height: usize) -> Blur {
        let radius = (3.0 * sigma).ceil() as usize;
        let raw: Vec<f32> = (-(radius as isize)..=radius as isize)
            .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f32 = raw.iter().sum();
        let mut blur = Blur {
            weights: raw.iter().map(|w| w / total).collect(),
            radius,
            width,
            height,
            background: Vec::new(),
            composite: Vec::new(),
            rows: Vec::new(),
        };
        let mut blurred = background.to_vec();
        blur.region(background, &mut blurred, (0, 0, width, height));
        blur.background = blurred;
        blur
    }

    /// Blurs `frame` (planar RGB): the blurred background, recomputed where `frame` differs
    /// from `background` (within the kernel's reach); `drawn` bounds where it can differ.
    fn apply(&mut self, frame: &mut [u8], background: &[u8], drawn: Option<Rect>) {
        let (w, h, r) = (self.width, self.height, self.radius);
        let plane = w * h;
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        if let Some((dx0, dy0, dx1, dy1)) = drawn {
            for c in 0..3 {
                for y in dy0..dy1 {
                    let row = c * plane + y * w;
                    for x in dx0..dx1 {
                        if frame[row + x] != background[row + x] {
                            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                        }
                    }
                }
            }
        }
        let mut composite = std::mem::take(&mut self.composite);
        composite.clear();
        composite.extend_from_slice(frame);
        frame.copy_from_slice(&self.background);
        if x0 < x1 {
            let rect = (
                x0.saturating_sub(r),
                y0.saturating_sub(r),
                (x1 + r).min(w),
                (y1 + r).min(h),
            );
            self.region(&composite, frame, rect);
        }
        self.composite = composite;
    }

    /// Separable blur of `src` into `dst` inside `rect` (x0, y0, x1, y1), edges clamped. Each
    /// pixel sums its taps in kernel order whatever the rectangle, so a pixel comes out the
    /// same from any rectangle holding it; the tap loop runs outside the pixel loop so that
    /// the pixel loop vectorises.
    fn region(&mut self, src: &[u8], dst: &mut [u8], (x0, y0, x1, y1): Rect) {
        let (w, h, r) = (self.width, self.height, self.radius);
        let (ry0, ry1) = (y0.saturating_sub(r), (y1 + r).min(h));
        let cols = x1 - x0;
        let mut rows = std::mem::take(&mut self.rows);
        let mut column = vec![0f32; cols];
        for (src, dst) in src.chunks_exact(w * h).zip(dst.chunks_exact_mut(w * h)) {
            rows.clear();
            rows.resize((ry1 - ry0) * cols, 0.0);
            for y in ry0..ry1 {
                let line = &src[y * w..(y + 1) * w];
                let out = &mut rows[(y - ry0) * cols..(y - ry0 + 1) * cols];
                for (k, &weight) in self.weights.iter().enumerate() {
                    // Tap k reads column x + k − r: clamped to the image outside [lo, hi), a
                    // plain slice (which vectorises) inside.
                    let lo = r.saturating_sub(k).clamp(x0, x1);
                    let hi = (w + r).saturating_sub(k).clamp(lo, x1);
                    for x in (x0..lo).chain(hi..x1) {
                        let sx = (x + k).saturating_sub(r).min(w - 1);
                        out[x - x0] += weight * line[sx] as f32;
                    }
                    if lo < hi {
                        let taps = &line[lo + k - r..hi + k - r];
                        for (acc, &tap) in out[lo - x0..hi - x0].iter_mut().zip(taps) {
                            *acc += weight * tap as f32;
                        }
                    }
                }
            }
            for y in y0..y1 {
                column.fill(0.0);
                for (k, &weight) in self.weights.iter().enumerate() {
                    let sy = (y + k).saturating_sub(r).min(h - 1);
                    let taps = &rows[(sy - ry0) * cols..(sy - ry0 + 1) * cols];
                    for (acc, &tap) in column.iter_mut().zip(taps) {
                        *acc += weight * tap;
                    }
                }
                for (px, acc) in dst[y * w + x0..y * w + x1].iter_mut().zip(&column) {
                    *px = (acc + 0.5).clamp(0.0, 255.0) as u8;
                }
            }
        }
        self.rows = rows;
    }
}

/// Uniform noise with standard deviation `sigma` (fraction of full scale).
fn add_noise<R: RngCore>(out: &mut [u8], sigma: f64, rng: &mut R) {
    let mut noise = vec![0u8; out.len()];
    rng.fill_bytes(&mut noise);
    // Uniform on [-a, a] has std a/√3; the bytes map 0..=255 onto [-a, a]. Every (noise byte,
    // pixel) pair's result is tabled once: the same arithmetic, a lookup per pixel.
    let a = (sigma * 3f64.sqrt() * 255.0) as f32;
    let mut table = vec![0u8; 256 * 256];
    for (n, row) in table.chunks_exact_mut(256).enumerate() {
        let delta = (n as f32 - 127.5) / 127.5 * a;
        for (px, out) in row.iter_mut().enumerate() {
            *out = round_half_away(px as f32 + delta).clamp(0.0, 255.0) as u8;
        }
    }
    for (px, n) in out.iter_mut().zip(noise) {
        *px = table[(n as usize) << 8 | *px as usize];
    }
}

/// `x.round()` (halves away from zero) for |x| < 2³¹, without the libm call: the fraction
/// left by truncation is exact in this range, so the comparison with ½ is too.
fn round_half_away(x: f32) -> f32 {
    let whole = (x as i32 as f32).copysign(x);
    let fraction = x - whole;
    if fraction >= 0.5 {
        whole + 1.0
    } else if fraction <= -0.5 {
        whole - 1.0
    } else {
        whole
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

    /// The two-frame scene rendered in `style` with `pixel_noise`.
    fn render(style: &Style, pixel_noise: f64, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
        let (cam, positions) = scene();
        let mut out = vec![0u8; 2 * 3072];
        render_video(
            &cam,
            -1.0,
            &positions,
            2,
            (32, 32),
            style,
            pixel_noise,
            rng,
            &mut out,
        );
        out
    }

    /// A grey sample is grey in every pixel, and as bright as its colour twin.
    #[test]
    fn a_grey_style_draws_every_pixel_as_its_luma() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let colour = render(&Style::classic(), 0.0, &mut rng.clone());
        let grey = Style {
            grayscale: true,
            ..Style::classic()
        };
        let grey = render(&grey, 0.0, &mut rng);
        for (c, g) in colour.chunks_exact(3072).zip(grey.chunks_exact(3072)) {
            for i in 0..1024 {
                let [r, gr, b] = [c[i], c[1024 + i], c[2048 + i]].map(f32::from);
                let luma = (0.299 * r + 0.587 * gr + 0.114 * b + 0.5) as u8;
                assert_eq!([g[i], g[1024 + i], g[2048 + i]], [luma; 3]);
            }
        }
    }

    /// Stripes darken bands of the ball and nothing else: nothing outside the ball changes, no
    /// pixel gets brighter, and some get as dark as the stripes say.
    #[test]
    fn stripes_darken_bands_inside_the_balls_outline() {
        let cam = Camera::look_at(DVec3::new(-1.0, 0.0, 0.2), DVec3::ZERO, 50.0, 32, 32);
        let draw = |stripes: f32| {
            let style = Style {
                shading: Shading::Flat,
                shadow_strength: 0.0,
                stripes,
                stripe_axis: Vec3::new(0.0, 1.0, 0.0),
                ..Style::classic()
            };
            let mut out = vec![0u8; 3072];
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            render_video(
                &cam,
                -1.0,
                &[DVec3::ZERO],
                1,
                (32, 32),
                &style,
                0.0,
                &mut rng,
                &mut out,
            );
            out
        };
        let (plain, striped) = (draw(0.0), draw(0.8));
        let pc = cam.to_camera(DVec3::ZERO);
        let (u, v) = cam.project(pc);
        let r = cam.fx * BALL_RADIUS / pc.z;
        assert!(r > 3.0, "a ball big enough to show stripes: {r}");
        let mut darker = 0;
        for i in 0..1024 {
            let (x, y) = ((i % 32) as f64 + 0.5, (i / 32) as f64 + 0.5);
            let (p, s) = (plain[i] as f32, striped[i] as f32);
            if (x - u).hypot(y - v) > r + 1.0 {
                assert_eq!(s, p, "pixel {i}, outside the ball, changed");
            }
            assert!(s <= p + 1.0, "pixel {i}: {s} brighter than {p}");
            if s < 0.5 * p {
                darker += 1;
            }
        }
        assert!(darker >= 4, "{darker} pixels darkened");
    }

    #[test]
    fn ball_is_drawn_where_it_projects() {
        let (cam, positions) = scene();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let out = render(&Style::classic(), 0.0, &mut rng);
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
    fn blurring_around_the_ball_equals_blurring_the_whole_frame() {
        let (cam, _) = scene();
        let mut style = Style::classic();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let sharp = render(&style, 0.0, &mut rng);
        style.blur = 0.8;
        let blurred = render(&style, 0.0, &mut rng);
        let background = background(&cam, -1.0, 32, 32, &style);
        let mut blur = Blur::new(0.8, &background, 32, 32);
        for (frame, expected) in sharp.chunks_exact(3072).zip(blurred.chunks_exact(3072)) {
            let mut whole = frame.to_vec();
            blur.region(frame, &mut whole, (0, 0, 32, 32));
            assert_eq!(whole, expected);
        }
        assert_ne!(sharp, blurred);
    }

    /// The blur as written down: every pixel the sum, in kernel order, of its clamped taps
    /// across, then of those sums down.
    fn reference_blur(blur: &Blur, src: &[u8]) -> Vec<u8> {
        let (w, h, r) = (
            blur.width as isize,
            blur.height as isize,
            blur.radius as isize,
        );
        let at = |i: isize, n: isize| i.clamp(0, n - 1) as usize;
        let mut out = vec![0u8; src.len()];
        for (src, out) in src
            .chunks_exact((w * h) as usize)
            .zip(out.chunks_exact_mut((w * h) as usize))
        {
            let across: Vec<f32> = (0..h * w)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    blur.weights.iter().enumerate().fold(0.0, |acc, (k, wt)| {
                        acc + wt * src[y as usize * w as usize + at(x + k as isize - r, w)] as f32
                    })
                })
                .collect();
            for (i, px) in out.iter_mut().enumerate() {
                let (x, y) = (i as isize % w, i as isize / w);
                let acc = blur.weights.iter().enumerate().fold(0.0, |acc, (k, wt)| {
                    acc + wt * across[at(y + k as isize - r, h) * w as usize + x as usize]
                });
                *px = (acc + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    #[test]
    fn any_blurred_rectangle_matches_the_written_down_blur_up_to_the_largest_radius() {
        // The smallest image a config allows (16 px) and the largest blur (3 px: a kernel
        // reaching 9 px each way), rectangles at every edge and in the middle.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let src: Vec<u8> = (0..3 * 16 * 16).map(|_| rng.next_u32() as u8).collect();
        for sigma in [0.3, 1.0, 3.0] {
            let mut blur = Blur::new(sigma, &src, 16, 16);
            let expected = reference_blur(&blur, &src);
            for rect in [
                (0, 0, 16, 16),
                (0, 0, 3, 5),
                (13, 11, 16, 16),
                (6, 0, 9, 16),
                (5, 7, 6, 8),
            ] {
                let mut got = vec![0u8; src.len()];
                blur.region(&src, &mut got, rect);
                for c in 0..3 {
                    for y in rect.1..rect.3 {
                        for x in rect.0..rect.2 {
                            let i = c * 256 + y * 16 + x;
                            assert_eq!(got[i], expected[i], "sigma {sigma}, {rect:?}, ({x}, {y})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn round_half_away_is_f32_round_over_the_noise_range() {
        // Every f32 in [-300, 300] spaced 2⁻¹⁰ apart, and the neighbours of every half.
        let mut values: Vec<f32> = (-300 * 1024..=300 * 1024)
            .map(|i| i as f32 / 1024.0)
            .collect();
        for i in -600..=600 {
            let half = i as f32 / 2.0;
            values.extend([half.next_down(), half, half.next_up()]);
        }
        for x in values {
            assert_eq!(round_half_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
    }

    #[test]
    fn pixel_noise_changes_pixels_by_about_sigma() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let clean = render(&Style::classic(), 0.0, &mut rng);
        let noisy = render(&Style::classic(), 0.05, &mut rng);
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
