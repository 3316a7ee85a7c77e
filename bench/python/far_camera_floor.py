"""What the farther camera would cost a tracker that reads every ball as precisely as it reads
the balls of training (docs/training.md, "The farther camera's geometric floor").

The future-position error of the quality runs is mostly the tracker's error at the last input
frame. This script models that error as noise on the ball's pixel centre and on its apparent
radius, lifted through each sample's lens as the pinhole head lifts them, and calibrates the
two noise levels so that the in-distribution set scores a run's per-axis test MSE. The same
noise applied to the farther camera's set gives the error of a tracker that generalised
perfectly to the smaller balls: what geometry alone adds. Two readings of "as precisely": the
radius off by the same pixels (absolute) or by the same fraction (relative).

    python bench/python/far_camera_floor.py data/procedural-shifts/none-<hash> \\
        data/procedural-shifts/camera_far-<hash> results/quality/magvit [more runs or reports]

The two sets are the ones `trajhost eval --run <run> --shifts` stored (robustness.json names
them). Each calibration source is a run folder (its test split's per-axis MSE) or the JSON of
`trajhost eval --run <run> --data <the in-distribution set> --split all --out <report>` (that
set's own). Run it with the venv of scripts/setup-torch (numpy, safetensors).
"""

import glob
import json
import sys

import numpy as np
from safetensors.numpy import load_file

BALL_RADIUS = 0.12  # world units (docs/dataset.md)
DEPTH, SCALE = 2.6, 1.2  # the labels' normalisation (docs/dataset.md)
CLIP = 32  # input frames; the last one is index CLIP - 1
DRAWS = 200


def last_frame_truth(dataset):
    """Per sample: the true camera-frame position, pixel centre and radius at the last input
    frame, and the lens."""
    positions, lenses = [], []
    for shard in sorted(glob.glob(dataset + "/shard-*.safetensors")):
        tensors = load_file(shard)
        positions.append(tensors["positions"])
        lenses.append(tensors["intrinsics"])
    labels = np.concatenate(positions).astype(np.float64)
    k = np.concatenate(lenses).astype(np.float64)
    p = labels[:, CLIP - 1] * SCALE + np.array([0.0, 0.0, DEPTH])
    fx, fy, cx, cy = k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]
    u = fx * p[:, 0] / p[:, 2] + cx
    v = fy * p[:, 1] / p[:, 2] + cy
    r = fx * BALL_RADIUS / p[:, 2]
    return p, u, v, r, fx, fy, cx, cy


def lifted_mse(truth, centre_px, radius_noise, relative, draws=DRAWS, seed=0):
    """Per-axis MSE, in label units, of positions lifted from noisy pixel readings."""
    p, u, v, r, fx, fy, cx, cy = truth
    rng = np.random.default_rng(seed)
    n = len(u)
    total = np.zeros(3)
    for _ in range(draws):
        uu = u + rng.normal(0, centre_px, n)
        vv = v + rng.normal(0, centre_px, n)
        if relative:
            rr = r * np.exp(-rng.normal(0, radius_noise, n))
        else:
            rr = np.maximum(r + rng.normal(0, radius_noise, n), 0.05)
        z = fx * BALL_RADIUS / rr
        lifted = np.stack([(uu - cx) * z / fx, (vv - cy) * z / fy, z], 1)
        total += (((lifted - p) / SCALE) ** 2).mean(0)
    return total / draws


def bisect(score, target, high):
    """The noise level in (0, high) at which `score` (increasing in it) reaches `target`."""
    low = 1e-4
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if score(mid) < target else (low, mid)
    return (low + high) / 2


def calibrate(truth, per_axis, relative):
    """Centre and radius noise whose lifted error matches `per_axis` (x, y: the mean of the two;
    z). The two interact through the depth, so three rounds."""
    centre, radius = 0.3, 0.1
    lateral = (per_axis[0] + per_axis[1]) / 2
    for _ in range(3):
        radius = bisect(
            lambda s: lifted_mse(truth, centre, s, relative, 40)[2],
            per_axis[2],
            2.0 if relative else 5.0,
        )
        centre = bisect(
            lambda s: lifted_mse(truth, s, radius, relative, 40)[:2].mean(), lateral, 10.0
        )
    return centre, radius


def measured_per_axis(source):
    """A run folder's test per-axis MSE, or an eval report's."""
    if source.endswith(".json"):
        with open(source) as f:
            return json.load(f)["metrics"]["mse_per_axis"]
    with open(source + "/final_metrics.json") as f:
        return json.load(f)["test"]["mse_per_axis"]


def main():
    none, far = last_frame_truth(sys.argv[1]), last_frame_truth(sys.argv[2])
    for name, truth in (("in distribution", none), ("farther camera", far)):
        radii = np.percentile(truth[3], [5, 50, 95]).round(2)
        print(f"ball radius at the last input frame, 5/50/95 %, {name}: {radii} px")
    for run in sys.argv[3:]:
        per_axis = measured_per_axis(run)
        for relative in (False, True):
            centre, radius = calibrate(none, per_axis, relative)
            at_home = lifted_mse(none, centre, radius, relative)
            away = lifted_mse(far, centre, radius, relative)
            unit = "(log)" if relative else "px"
            print(
                f"{run}, radius off by the same {'fraction' if relative else 'pixels'}: "
                f"centre {centre:.2f} px, radius {radius:.3f} {unit}; "
                f"in distribution {at_home.mean():.4f} (x/y/z {at_home.round(4)}), "
                f"farther camera {away.mean():.4f} (x/y/z {away.round(4)}), "
                f"{away.mean() / at_home.mean():.1f}x"
            )


if __name__ == "__main__":
    main()
