"""A numpy equivalent of trajhost's data generator (`dataset/src/{trajectory,camera,render,sample}.rs`).

Same output — T = 32 frames of 64×64 planar RGB uint8, (T + H) × 3 normalised positions, a
label — and the same rendering work: per sample a sky/ground background with a perspective
anti-aliased grid fading into haze (every pixel), then per frame a soft shadow ellipse and an
anti-aliased Lambert + specular ball, each touching only its bounding box. Vectorised numpy in
one process, as a Python user would write it; it is not bit-identical to the Rust renderer
(different random streams), only equivalent in resolution, frames and cost class.
"""

import math

import numpy as np

SKY_HORIZON = np.array([0.72, 0.78, 0.86], np.float32)
SKY_ZENITH = np.array([0.36, 0.52, 0.78], np.float32)
GROUND = np.array([0.52, 0.50, 0.38], np.float32)
GRID_LINE = np.array([0.22, 0.25, 0.22], np.float32)
BALL = np.array([0.95, 0.38, 0.08], np.float32)
GRID_CELL, GRID_HALF_WIDTH, FOG_DISTANCE, SHADOW_STRENGTH = 0.5, 0.025, 20.0, 0.55
BALL_RADIUS, NORM_DEPTH, NORM_SCALE, VIEW_MARGIN = 0.12, 2.6, 1.2, 0.12
CLASSES = ["linear", "circular", "helical", "parabolic"]


def unit(rng):
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def any_orthonormal(v):
    a = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(v, a)
    return u / np.linalg.norm(u)


def axis_angle(axis, angle):
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    C = 1 - c
    return np.array([
        [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
        [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
        [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
    ])


def trajectory(cls, n, fps, rng, noise_level=0.02):
    """World positions (n, 3) of one trajectory of class `cls`, centred, augmented, jittered."""
    duration = n / fps
    s = np.arange(n) / fps
    if cls == 0:  # linear
        v = unit(rng) * rng.uniform(1.6, 2.4) / duration
        p = s[:, None] * v
    elif cls in (1, 2):  # circular, helical
        axis = unit(rng)
        if cls == 1:
            radius, omega, v = rng.uniform(0.7, 1.0), rng.choice([-1, 1]) * rng.uniform(1.1 * math.pi, 1.9 * math.pi) / duration, 0.0
        else:
            radius, omega = rng.uniform(0.45, 0.7), rng.choice([-1, 1]) * rng.uniform(2.2 * math.pi, 3.4 * math.pi) / duration
            v = axis * rng.uniform(1.0, 1.6) / duration
        phase = rng.uniform(0, 2 * math.pi)
        u = any_orthonormal(axis)
        w = np.cross(axis, u)
        a = phase + omega * s
        p = radius * (np.cos(a)[:, None] * u + np.sin(a)[:, None] * w) + s[:, None] * v
    else:  # parabolic
        g_dir = np.array([0.0, 0.0, -1.0]) + unit(rng) * rng.uniform(0.0, 0.35)
        g_dir /= np.linalg.norm(g_dir)
        apex, height = rng.uniform(0.45, 0.6), rng.uniform(0.8, 1.2)
        g = 2 * height / (apex * duration) ** 2
        side = axis_angle(g_dir, rng.uniform(0, 2 * math.pi)) @ any_orthonormal(g_dir)
        v = -g_dir * g * apex * duration + side * rng.uniform(1.1, 1.8) / duration
        p = s[:, None] * v + 0.5 * (g_dir * g) * (s * s)[:, None]
    p = p - (p.min(0) + p.max(0)) * 0.5
    scale = rng.uniform(0.8, 1.2)
    yaw, tilt = rng.uniform(0, 2 * math.pi), rng.uniform(-math.pi / 6, math.pi / 6)
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    return scale * p @ (rz @ rx).T + rng.standard_normal((n, 3)) * noise_level * scale


class Camera:
    def __init__(self, eye, target, fov_deg, width, height):
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        self.f = width * 0.5 / math.tan(math.radians(fov_deg) * 0.5)
        self.cx, self.cy = width * 0.5, height * 0.5
        self.rot = np.stack([right, down, forward])  # rows: world → camera
        self.eye = eye

    @staticmethod
    def auto(points, pad, fov_deg, width, height, rng):
        az, el, extra = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(10, 40)), rng.uniform(1.0, 1.2)
        target = (points.min(0) + points.max(0)) * 0.5
        d = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        probe = Camera(target + d, target, fov_deg, width, height)
        kx = (1 - VIEW_MARGIN) * probe.cx / probe.f
        ky = (1 - VIEW_MARGIN) * probe.cy / probe.f
        r = (points - target) @ probe.rot.T
        dist = np.maximum.reduce([(np.abs(r[:, 0]) + pad) / kx - r[:, 2], (np.abs(r[:, 1]) + pad) / ky - r[:, 2], 2 * pad - r[:, 2] + 0.5])
        distance = max(1.0, float(dist.max()))
        return Camera(target + d * distance * extra, target, fov_deg, width, height)

    def to_camera(self, p):
        return (p - self.eye) @ self.rot.T

    def project(self, pc):
        return self.f * pc[..., 0] / pc[..., 2] + self.cx, self.f * pc[..., 1] / pc[..., 2] + self.cy


def background(cam, ground_z, w, h):
    """(3, H, W) float32 sky gradient / fogged grid ground, every pixel ray-cast."""
    jj, ii = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    rays = np.stack([(ii - cam.cx) / cam.f, (jj - cam.cy) / cam.f, np.ones_like(ii)], -1) @ cam.rot  # world dirs
    length = np.linalg.norm(rays, axis=-1)
    dn = rays / length[..., None]
    sky = SKY_HORIZON + (SKY_ZENITH - SKY_HORIZON) * np.clip(dn[..., 2:3] * 2.5, 0, 1)
    ground_mask = rays[..., 2] < -1e-9
    t = np.where(ground_mask, (ground_z - cam.eye[2]) / np.where(ground_mask, rays[..., 2], -1.0), 0.0)
    hit = cam.eye + rays * t[..., None]
    dist = (t * length).astype(np.float32)
    footprint = dist / cam.f / np.maximum(-dn[..., 2], 0.08)

    def cover(x):
        c = np.abs(np.modf(x / GRID_CELL)[0])
        dl = np.minimum(c, 1 - c) * GRID_CELL
        return np.clip((GRID_HALF_WIDTH - dl) / np.maximum(footprint, 1e-9) + 0.5, 0, 1)

    visibility = np.clip(1 - footprint / GRID_CELL, 0, 1)
    line = np.maximum(cover(hit[..., 0]), cover(hit[..., 1])) * visibility
    ground = GROUND + (GRID_LINE - GROUND) * line[..., None]
    fog = np.exp(-dist / FOG_DISTANCE)[..., None]
    colour = np.where(ground_mask[..., None], SKY_HORIZON + (ground - SKY_HORIZON) * fog, sky)
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1)


def box(u, v, rx, ry, w, h):
    x0, y0 = max(0, math.floor(u - rx - 1)), max(0, math.floor(v - ry - 1))
    x1, y1 = min(w, math.ceil(u + rx + 1)), min(h, math.ceil(v + ry + 1))
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def render_video(cam, ground_z, positions, w, h):
    light = np.array([-0.3, -0.45, -0.85], np.float32)
    light /= np.linalg.norm(light)
    half = light + np.array([0, 0, -1], np.float32)
    half /= np.linalg.norm(half)
    video = np.empty((len(positions), 3, h, w), np.uint8)
    video[:] = background(cam, ground_z, w, h)
    pcs = cam.to_camera(positions)
    shadows = positions.copy()
    shadows[:, 2] = ground_z
    scs = cam.to_camera(shadows)
    for f in range(len(positions)):
        frame = video[f]
        sc = scs[f]
        if sc[2] >= 0.1:  # soft shadow ellipse under the ball
            u, v = cam.project(sc)
            grazing = min(max((cam.eye[2] - ground_z) / np.linalg.norm(shadows[f] - cam.eye), 0.05), 1.0)
            rx = cam.f * BALL_RADIUS * 1.2 / sc[2]
            ry = max(rx * grazing, 0.4)
            b = box(u, v, rx, ry, w, h)
            if b:
                x0, y0, x1, y1 = b
                dy = (np.arange(y0, y1)[:, None] + 0.5 - v) / ry
                dx = (np.arange(x0, x1)[None, :] + 0.5 - u) / rx
                c = np.clip((1 - np.sqrt(dx * dx + dy * dy)) * max(min(rx, ry), 0.5) + 0.5, 0, 1).astype(np.float32)
                region = frame[:, y0:y1, x0:x1]
                region[:] = (region * (1 - SHADOW_STRENGTH * c) + 0.5).astype(np.uint8)
        pc = pcs[f]
        if pc[2] < 0.1:
            continue
        u, v = cam.project(pc)
        r = cam.f * BALL_RADIUS / pc[2]
        b = box(u, v, r, r, w, h)
        if not b:
            continue
        x0, y0, x1, y1 = b
        dy = ((np.arange(y0, y1)[:, None] + 0.5 - v) / r).astype(np.float32)
        dx = ((np.arange(x0, x1)[None, :] + 0.5 - u) / r).astype(np.float32)
        dx, dy = np.broadcast_arrays(dx, dy)
        d2 = dx * dx + dy * dy
        c = np.clip(r + 0.5 - np.sqrt(d2) * r, 0, 1).astype(np.float32)
        n = np.stack([dx, dy, -np.sqrt(1 - np.minimum(d2, 1))], -1)
        diffuse = np.maximum(n @ light, 0)
        spec = np.maximum(n @ half, 0) ** 16 * 0.45
        colour = BALL * (0.55 + 0.45 * diffuse[..., None]) + spec[..., None]
        region = frame[:, y0:y1, x0:x1].astype(np.float32)
        out = region * (1 - c) + np.minimum(colour, 1).transpose(2, 0, 1) * 255 * c + 0.5
        frame[:, y0:y1, x0:x1] = np.where(c > 0, out, region).astype(np.uint8)
    return video


def generate_sample(index, seed=42, frames=32, horizon=8, width=64, height=64, fps=30.0, fov=50.0):
    rng = np.random.default_rng([seed, index])
    cls = index % 4
    world = trajectory(cls, frames + horizon, fps, rng)
    ground_z = world[:, 2].min() - BALL_RADIUS - rng.uniform(0.2, 0.6)
    cam = Camera.auto(world, BALL_RADIUS, fov, width, height, rng)
    video = render_video(cam, ground_z, world[:frames], width, height)
    positions = ((cam.to_camera(world) - [0, 0, NORM_DEPTH]) / NORM_SCALE).astype(np.float32)
    return video, cls, positions
