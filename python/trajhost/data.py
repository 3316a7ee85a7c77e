"""A trajhost dataset folder in PyTorch: the split rule, the labels and the model's input.

The one place these are defined for Python (docs/dataset.md has the file format):
* **split**: sample `i` of a dataset generated with `seed` goes to train when
  `u = (splitmix64(seed ^ splitmix64(i)) >> 11) / 2**53 < train`, to val when
  `u < train + val`, else to test (the fractions are in `manifest.json`);
* **target**: the ball's position `predict_future` frames after the clip's last frame, that is
  frame `T - 1 + predict_future` of `positions` (the normalised camera frame: the label of
  docs/dataset.md); the **track** is positions `0 .. T` (what the tracker is trained on);
* **input**: uint8 RGB `(B, T, 3, H, W)` → float `p · (1 / 63.75) - 2`, in float32 exactly as
  the host computes it, so every pixel lies in [-2, 2] (`plugin-api/src/input.rs`);
* **lens**: a pinhole position head reads each sample's focal lengths in half image sizes,
  `fx / cx` and `fy / cy` of its intrinsics (`1 / tan(fov / 2)` and that `· W / H` for the
  config's lens; an appearance section's `focal_scale` shortens it per sample;
  `host/src/train/pinhole.rs`).
"""

import json
import os

import numpy as np
import torch
from safetensors import safe_open

PIXEL_MEAN = 0.5
PIXEL_STD = 0.25
SPLITS = ("train", "val", "test")
CLASSES = ("linear", "circular", "helical", "parabolic")
_MASK = (1 << 64) - 1
# Focal lengths in half image sizes a sample's lens may have (fields of view 0.1°–179.9°).
FOCAL_LIMITS = (0.009, 1100.0)
# The host converts through a table of float32 values (`pixels.rs`): p · scale + shift, each
# step rounded to float32. Indexing the same table gives the same bits.
_SCALE = np.float32(1.0 / (255.0 * PIXEL_STD))
_SHIFT = np.float32(-PIXEL_MEAN / PIXEL_STD)
_TABLE = torch.from_numpy(np.arange(256, dtype=np.float32) * _SCALE + _SHIFT)


def standardise(videos):
    """uint8 videos of any shape → the float32 values the host feeds a backbone."""
    if videos.dtype != torch.uint8:
        raise TypeError(f"standardise takes uint8 pixels, not {videos.dtype}")
    return _TABLE[videos.long()]


# background="subtract_median" (`host/src/train/background.rs`): each pixel's lower median over
# every stride-th frame, at most SAMPLED_FRAMES of them, is taken out of every frame.
SAMPLED_FRAMES = 8
BACKGROUNDS = ("keep", "subtract_median")
COLOURS = ("rgb", "hue_free")
# hue_free.rs: 1/3 and 1/√3 in float32, multiplied by as the host does.
_ONE_THIRD = 1.0 / 3.0
_INV_SQRT_3 = 0.57735026


def subtract_background(video):
    """Standardised (B, T, C, H, W) video → each pixel's background taken out, as the host does
    for a run trained with `background: subtract_median` (the same bits)."""
    stride = max(1, -(-video.shape[1] // SAMPLED_FRAMES))
    return video - video[:, ::stride].median(dim=1, keepdim=True).values


def hue_free(video):
    """Standardised (B, T, 3, H, W) video → each pixel's colour as (its component along the grey
    axis, its distance from that axis, 0), as the host does for a run trained with
    `colour: hue_free` (`host/src/train/hue_free.rs`; the same values to a float's last bit)."""
    r, g, b = video.unbind(2)
    total = r + g + b
    mean = total * torch.tensor(_ONE_THIRD, dtype=torch.float32).item()
    distance = ((r - mean).square() + (g - mean).square() + (b - mean).square()).sqrt()
    grey = total * torch.tensor(_INV_SQRT_3, dtype=torch.float32).item()
    return torch.stack([grey, distance, torch.zeros_like(distance)], 2)


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def split_of(seed, index, fractions):
    """"train", "val" or "test": the split rule of docs/dataset.md."""
    u = (splitmix64(seed ^ splitmix64(index)) >> 11) / float(1 << 53)
    if u < fractions["train"]:
        return "train"
    if u < fractions["train"] + fractions["val"]:
        return "val"
    return "test"


def shard_paths(directory, manifest):
    """The shard files a manifest lists, each a plain file name inside `directory`: a manifest
    from someone else names no other file."""
    paths = []
    for shard in manifest["shards"]:
        name = shard["file"]
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"{directory}/manifest.json lists shard {name!r}, not a file name in that folder")
        paths.append(os.path.join(directory, name))
    return paths


def shard_focal(shard, path, rows=slice(None)):
    """The lens of each of `rows` of an open shard, float64 (N, 2): (fx / cx, fy / cy) of its
    intrinsics. Untrusted: a K that is no lens would make every depth NaN, so it is refused
    naming the file and the sample (pinhole.rs refuses it too)."""
    k = shard.get_tensor("intrinsics")[rows].double()
    focal = torch.stack([k[:, 0, 0] / k[:, 0, 2], k[:, 1, 1] / k[:, 1, 2]], 1)
    bad = ~((focal >= FOCAL_LIMITS[0]) & (focal <= FOCAL_LIMITS[1])).all(1)
    if bad.any():
        sample = int(shard.get_tensor("indices")[rows][bad][0])
        raise ValueError(f"{path}: sample {sample}'s intrinsics are no pinhole lens (fx / cx and fy / cy must lie within {FOCAL_LIMITS})")
    return focal


class Split:
    """One split of a dataset folder ("train", "val", "test", or "all" samples): `videos` uint8
    (N, T, 3, H, W), `labels` int64 (N,), `target` float32 (N, 3), `track` float32 (N, T, 3),
    `index` int64 (N,), ascending, and each sample's lens `focal` float64 (N, 2): (fx, fy) in
    half image sizes."""

    def __init__(self, directory, split="test", predict_future=5):
        if split not in SPLITS + ("all",):
            raise ValueError(f"split {split!r}: expected one of {SPLITS + ('all',)}")
        with open(os.path.join(directory, "manifest.json")) as f:
            manifest = json.load(f)
        config = manifest["config"]
        t, horizon = config["frames"], config["horizon"]
        if not 1 <= predict_future <= horizon:
            raise ValueError(f"predict_future {predict_future}: {directory} labels {horizon} frames past the clip")
        seed, fractions = manifest["seed"], manifest["split"]["fractions"]
        parts = {"videos": [], "labels": [], "target": [], "track": [], "index": [], "focal": []}
        for path in shard_paths(directory, manifest):
            with safe_open(path, "pt") as f:
                index = f.get_tensor("indices")
                rows = torch.tensor([split in ("all", split_of(seed, int(i), fractions)) for i in index])
                positions = f.get_tensor("positions")[rows]
                parts["videos"].append(f.get_tensor("videos")[rows])
                parts["labels"].append(f.get_tensor("labels")[rows].long())
                parts["target"].append(positions[:, t - 1 + predict_future])
                parts["track"].append(positions[:, :t])
                parts["index"].append(index[rows])
                parts["focal"].append(shard_focal(f, path, rows))
        for key, values in parts.items():
            setattr(self, key, torch.cat(values))

    def __len__(self):
        return len(self.labels)
