"""A second renderer of docs/dataset.md's spec, written from the document alone.

Issue 24's transfer test: a model that learned the geometry should score on videos another lab
would render from the same spec — the same classes, parameter ranges, augmentation, auto camera,
50° lens, 0.12 ball and label frame — as it scores on trajhost's own. This module is that other
lab: it implements the spec's trajectories, camera and labels from the text (not from the Rust
generator) and draws its own pixels: another sky, ground grid, haze, shadow and ball shading,
anti-aliased by supersampling instead of a 1-pixel edge. It writes a dataset folder
(`manifest.json` and one shard, the format of docs/dataset.md, every sample in the test split)
that `trajhost eval --run RUN --data DIR` scores like any other:

    python -m trajhost.spec_renderer --out data/spec-renderer --samples 400 --seed 9

Where the spec leaves a detail open, the choice is this module's own (each is said where made).
"""

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import sys

import numpy as np
from safetensors.numpy import save

# The label order is the package's (and the dataset's) one.
from .data import CLASSES

# At most one shard's worth (the generator's default shard): the videos, their pickled copies
# from the workers and the shard's bytes are all in memory at once (about 2.4 GB at 2,000).
MAX_SAMPLES = 2000
FRAMES, HORIZON, WIDTH, HEIGHT, FPS = 32, 8, 64, 64, 30.0
FOV_DEG = 50.0
NOISE_LEVEL = 0.02
BALL_RADIUS = 0.12
# The label frame (docs/dataset.md, "Labels"): p = (p_cam - (0, 0, DEPTH)) / SCALE.
DEPTH, SCALE = 2.6, 1.2
# The camera's fit keeps every frame's ball inside the image with this margin (a share of the
# half image, on each side: this module's reading of "a 12 % margin").
MARGIN = 0.12
# Supersamples per pixel side: the anti-aliasing.
SUPERSAMPLE = 4
PARAMS_FIELDS = (
    "class", "scale", "yaw", "tilt", "origin_x", "origin_y", "origin_z", "velocity_x",
    "velocity_y", "velocity_z", "axis_x", "axis_y", "axis_z", "radius", "omega", "phase",
    "jitter_sigma", "ball_radius", "ground_z",
)

# This renderer's look: none of these values is trajhost's.
SKY_HORIZON = np.array([0.86, 0.88, 0.84])
SKY_ZENITH = np.array([0.38, 0.55, 0.80])
GROUND = np.array([0.52, 0.47, 0.38])
GRID_LINE = np.array([0.30, 0.28, 0.24])
GRID_SPACING = 0.35
GRID_HALF_WIDTH = 0.025
HAZE_DISTANCE = 14.0
BALL = np.array([0.98, 0.45, 0.12])
LIGHT = np.array([-0.35, 0.45, 0.82])
AMBIENT = 0.28
SPECULAR, SHININESS = 0.45, 24.0


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_unit(rng):
    return unit(rng.normal(size=3))


def perpendicular_basis(n):
    """Two unit vectors orthogonal to `n` and to each other."""
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = unit(np.cross(n, a))
    return e1, np.cross(n, e1)


def rotation_z(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_x(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def clean_curve(kind, rng, s):
    """The class's curve at times `s` (seconds), about 2 units across, and its parameters
    (origin, velocity, axis, radius, omega, phase): docs/dataset.md, "Trajectory"."""
    span = s[-1]
    zero = np.zeros(3)
    if kind == "linear":
        direction = random_unit(rng)
        velocity = direction * rng.uniform(1.6, 2.4) / span
        origin = -velocity * span / 2
        return origin + s[:, None] * velocity, (origin, velocity, zero, 0.0, 0.0, 0.0)
    if kind in ("circular", "helical"):
        axis = random_unit(rng)
        e1, e2 = perpendicular_basis(axis)
        phase = rng.uniform(0, 2 * math.pi)
        if kind == "circular":
            radius, turns, along = rng.uniform(0.7, 1.0), rng.uniform(0.55, 0.95), 0.0
        else:
            radius, turns = rng.uniform(0.45, 0.7), rng.uniform(1.1, 1.7)
            along = rng.uniform(1.0, 1.6)
        omega = 2 * math.pi * turns / span
        angle = phase + omega * s
        velocity = axis * along / span
        curve = radius * (np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2)
        curve = curve + s[:, None] * velocity
        # Centred on the origin: this module centres the box around the drawn part.
        origin = -(curve.min(0) + curve.max(0)) / 2
        return curve + origin, (origin, velocity, axis, radius, omega, phase)
    # Parabolic: gravity within 20° of straight down, apex at 45-60 % of the span and
    # 0.8-1.2 above the start, 1.1-1.8 of sideways travel.
    off = math.radians(rng.uniform(0, 20))
    around = rng.uniform(0, 2 * math.pi)
    down = -np.array([math.sin(off) * math.cos(around), math.sin(off) * math.sin(around),
                      math.cos(off)])
    apex_at, height = rng.uniform(0.45, 0.60) * span, rng.uniform(0.8, 1.2)
    g = 2 * height / apex_at**2
    e1, e2 = perpendicular_basis(down)
    side = rng.uniform(0, 2 * math.pi)
    sideways = math.cos(side) * e1 + math.sin(side) * e2
    velocity = -down * g * apex_at + sideways * rng.uniform(1.1, 1.8) / span
    gravity = down * g
    curve = s[:, None] * velocity + 0.5 * (s**2)[:, None] * gravity
    origin = -(curve.min(0) + curve.max(0)) / 2
    return curve + origin, (origin, velocity, gravity, 0.0, 0.0, 0.0)


def camera_rotation(azimuth, elevation):
    """World → camera rotation (OpenCV axes: x right, y down, z forward) for a camera at
    `azimuth` and `elevation` looking at the target, the world's z up."""
    forward = -np.array([math.cos(elevation) * math.cos(azimuth),
                         math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    right = unit(np.cross(forward, np.array([0.0, 0.0, 1.0])))
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def fits(points_cam, focal, margin):
    """Whether every ball at these camera-frame centres lies inside the image, `margin` of
    the half image kept free on each side (the sphere's silhouette bounded by its tangent
    cone's half angle)."""
    z = points_cam[:, 2]
    if np.any(z <= BALL_RADIUS * 1.01):
        return False
    half = 1 - margin
    spread = np.arcsin(np.minimum(BALL_RADIUS / np.linalg.norm(points_cam, axis=1), 1.0))
    for axis, half_size in ((0, WIDTH / 2), (1, HEIGHT / 2)):
        angle = np.arctan2(np.abs(points_cam[:, axis]), z) + spread
        if np.any(angle >= math.pi / 2) or np.any(focal * np.tan(angle) > half * half_size):
            return False
    return True


def sample(seed, index):
    """Sample `index`: its world positions, camera, labels and parameters."""
    rng = np.random.default_rng([seed, index])
    kind = CLASSES[index % len(CLASSES)]
    s = np.arange(FRAMES + HORIZON) / FPS
    clean, (origin, velocity, axis, radius, omega, phase) = clean_curve(kind, rng, s)
    scale, yaw = rng.uniform(0.8, 1.2), rng.uniform(0, 2 * math.pi)
    tilt = math.radians(rng.uniform(-30, 30))
    rotation = rotation_z(yaw) @ rotation_x(tilt)
    jitter = NOISE_LEVEL * scale
    world = scale * clean @ rotation.T + rng.normal(0, jitter, size=clean.shape)
    target = (world.min(0) + world.max(0)) / 2
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = math.radians(rng.uniform(10, 40))
    R = camera_rotation(azimuth, elevation)
    focal = (WIDTH / 2) / math.tan(math.radians(FOV_DEG) / 2)
    # The smallest distance at which every frame fits, by bisection, then 1.0-1.2 times it.
    near, far = 0.2, 50.0
    for _ in range(60):
        mid = (near + far) / 2
        centre = target - R[2] * mid
        if fits((world - centre) @ R.T, focal, MARGIN):
            far = mid
        else:
            near = mid
    distance = far * rng.uniform(1.0, 1.2)
    camera = target - R[2] * distance
    t = -R @ camera
    cam = world @ R.T + t
    # The ground: this module puts it 0.2-0.6 below the lowest ball's bottom.
    ground_z = world[:, 2].min() - BALL_RADIUS - rng.uniform(0.2, 0.6)
    params = np.array([CLASSES.index(kind), scale, yaw, tilt, *origin, *velocity, *axis, radius,
                       omega, phase, jitter, BALL_RADIUS, ground_z], dtype=np.float32)
    extrinsics = np.eye(4)
    extrinsics[:3, :3], extrinsics[:3, 3] = R, t
    K = np.array([[focal, 0, WIDTH / 2], [0, focal, HEIGHT / 2], [0, 0, 1]])
    return dict(kind=kind, world=world, cam=cam, R=R, camera=camera, ground_z=ground_z,
                extrinsics=extrinsics, K=K, params=params)


def pixel_rays(K, R):
    """World-space unit ray directions through every supersample: (H·S, W·S, 3)."""
    n = SUPERSAMPLE
    u = (np.arange(WIDTH * n) + 0.5) / n
    v = (np.arange(HEIGHT * n) + 0.5) / n
    uu, vv = np.meshgrid(u, v)
    cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1)
    return unit(cam @ R)


def render(sc):
    """The sample's T frames, uint8 (T, 3, H, W)."""
    rays = pixel_rays(sc["K"], sc["R"])
    origin = sc["camera"]
    # Sky: horizon to zenith by the ray's elevation.
    up = np.clip(rays[..., 2], 0, 1)[..., None]
    sky = SKY_HORIZON + (SKY_ZENITH - SKY_HORIZON) * np.sqrt(up)
    # Ground: the plane z = ground_z, a grid of darker lines, hazed with distance.
    with np.errstate(divide="ignore", invalid="ignore"):
        hit_t = (sc["ground_z"] - origin[2]) / rays[..., 2]
    on_ground = (rays[..., 2] < 0) & np.isfinite(hit_t) & (hit_t > 0)
    hit_t = np.where(on_ground, hit_t, 0.0)
    hit = origin + rays * hit_t[..., None]
    cell = np.abs((hit[..., :2] / GRID_SPACING) - np.round(hit[..., :2] / GRID_SPACING))
    line = np.any(cell < GRID_HALF_WIDTH / GRID_SPACING, axis=-1)[..., None]
    ground = np.where(line, GRID_LINE, GROUND)
    haze = np.exp(-hit_t / HAZE_DISTANCE)[..., None]
    frames = []
    for k in range(FRAMES):
        centre = sc["world"][k]
        # A soft shadow straight below the ball, fainter and wider the higher it flies.
        height = centre[2] - sc["ground_z"]
        spread = BALL_RADIUS * (1.0 + 0.8 * height)
        d2 = np.sum((hit[..., :2] - centre[:2]) ** 2, -1)
        shade = 1 - 0.55 / (1 + height) * np.exp(-d2 / (2 * spread**2))
        lit_ground = ground * shade[..., None]
        background = np.where(on_ground[..., None], haze * lit_ground + (1 - haze) * SKY_HORIZON,
                              sky)
        # The ball: the nearest intersection of each ray with the sphere, Lambert + Phong.
        oc = origin - centre
        b = rays @ oc
        c = oc @ oc - BALL_RADIUS**2
        disc = b * b - c
        hits_ball = disc > 0
        t_ball = -b - np.sqrt(np.where(hits_ball, disc, 0))
        hits_ball &= t_ball > 0
        normal = unit(origin + rays * t_ball[..., None] - centre)
        light = unit(LIGHT)
        lambert = np.clip(normal @ light, 0, 1)[..., None]
        reflected = 2 * (normal @ light)[..., None] * normal - light
        spec = np.clip(np.sum(reflected * -rays, -1), 0, 1)[..., None] ** SHININESS
        ball = BALL * (AMBIENT + (1 - AMBIENT) * lambert) + SPECULAR * spec
        image = np.where(hits_ball[..., None], ball, background)
        n = SUPERSAMPLE
        image = image.reshape(HEIGHT, n, WIDTH, n, 3).mean((1, 3))
        frames.append(np.clip(np.round(image * 255), 0, 255).astype(np.uint8).transpose(2, 0, 1))
    return np.stack(frames)


def data_config(samples, seed):
    """The manifest's `config`: the classic config with every sample in the test split."""
    return {
        "samples": samples, "classes": list(CLASSES), "frames": FRAMES, "horizon": HORIZON,
        "width": WIDTH, "height": HEIGHT, "fps": FPS, "auto_camera": True, "fov_deg": FOV_DEG,
        "augmentation": {"noise_level": NOISE_LEVEL, "random_rotation": True,
                         "random_scale": True},
        "pixel_noise": 0.0, "checkpoint_interval": samples, "workers": 1, "seed": seed,
        "split": {"train": 0.0, "val": 0.0, "test": 1.0},
    }


def write_dataset(out, samples, seed, workers):
    scenes = [sample(seed, i) for i in range(samples)]
    with multiprocessing.Pool(workers) as pool:
        videos = np.stack(pool.map(render, scenes, chunksize=4))
    normalised = [(sc["cam"] - np.array([0, 0, DEPTH])) / SCALE for sc in scenes]
    counts = {kind: sum(sc["kind"] == kind for sc in scenes) for kind in CLASSES}
    meta = {"format_version": 1, "first_index": 0, "count": samples, "frames": FRAMES,
            "horizon": HORIZON, "height": HEIGHT, "width": WIDTH, "classes": list(CLASSES),
            "params_fields": list(PARAMS_FIELDS)}
    tensors = {
        "videos": videos,
        "labels": np.array([CLASSES.index(sc["kind"]) for sc in scenes], dtype=np.uint8),
        "indices": np.arange(samples, dtype=np.int64),
        "positions": np.stack(normalised).astype(np.float32),
        "intrinsics": np.stack([sc["K"] for sc in scenes]).astype(np.float32),
        "extrinsics": np.stack([sc["extrinsics"] for sc in scenes]).astype(np.float32),
        "params": np.stack([sc["params"] for sc in scenes]),
    }
    shard = save(tensors, metadata={"trajhost": json.dumps(meta, separators=(",", ":"))})
    manifest = {
        "format_version": 1,
        "generator": "trajhost.spec_renderer (python, docs/dataset.md's spec)",
        "config": data_config(samples, seed),
        "seed": seed,
        "samples": samples,
        "classes": list(CLASSES),
        "class_counts": counts,
        "params_fields": list(PARAMS_FIELDS),
        "normalisation": {
            "rule": "p = (p_cam - (0, 0, depth)) / scale; p_cam in OpenCV camera axes "
            "(x right, y down, z forward), world units",
            "depth": DEPTH,
            "scale": SCALE,
        },
        "split": {
            "rule": "u = (splitmix64(seed ^ splitmix64(index)) >> 11) / 2^53; train if u < "
            "train, val if u < train + val, else test",
            "fractions": {"train": 0.0, "val": 0.0, "test": 1.0},
            "counts": {"test": samples, "train": 0, "val": 0},
        },
        "shards": [{
            "file": "shard-00000.safetensors", "first_index": 0, "count": samples,
            "bytes": len(shard), "sha256": hashlib.sha256(shard).hexdigest(),
        }],
        "complete": True,
    }
    # Written beside `out` and renamed into place: a killed run leaves no half dataset there.
    staging = f"{out}.tmp-{os.getpid()}"
    os.makedirs(staging)
    with open(os.path.join(staging, "shard-00000.safetensors"), "wb") as f:
        f.write(shard)
    with open(os.path.join(staging, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    try:
        os.rename(staging, out)
    except OSError as e:
        # Another process made `out` while this one rendered: its folder is left as it is.
        for name in os.listdir(staging):
            os.remove(os.path.join(staging, name))
        os.rmdir(staging)
        raise SystemExit(
            f"spec_renderer: {out} appeared while rendering ({e.strerror}); nothing written"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="a folder that does not exist yet")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if not 1 <= args.samples <= MAX_SAMPLES:
        parser.error(f"--samples must be 1-{MAX_SAMPLES}, got {args.samples}")
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists; give a new folder")
    if not 0 <= args.seed < 2**63:
        parser.error(f"--seed must be 0 to 2^63 - 1, got {args.seed}")
    if not 1 <= args.workers <= 256:
        parser.error(f"--workers must be 1-256, got {args.workers}")
    write_dataset(args.out, args.samples, args.seed, min(args.workers, args.samples))
    print(f"{args.samples} videos in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
