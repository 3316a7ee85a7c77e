"""The host's heads (`host/src/train/model.rs`) and loss (`loss.rs`) around a backbone.

Per-frame features (B, T, D) →
  tracker Linear(D, 3) on every frame → track (B, T, 3);
  [frame_code Linear(D, 8) ⊕ track] per frame, flattened in time → Linear(T·11, 128) → ReLU →
  Linear(128, 128) → ReLU = trajectory code;
  classifier Linear(D + 128, 4) on (temporal mean ⊕ code);
  future position = last tracked position + predictor Linear(128, 3)(code).
loss = w_c · cross-entropy + w_p · MSE(future) + w_t · MSE(track, true positions of the T frames).

With position_head="pinhole" (`host/src/train/pinhole.rs`) the tracker's three numbers are the
ball's image position and log apparent size, lifted to label coordinates through the lens
(`focal` = (fx / (W/2), fy / (H/2)); 1/tan(25°) for the default 50° lens), and the trajectory
encoder reads the lifted track minus its mean.

With background="subtract_median" the model takes each pixel's background out of its input first
(`data.subtract_background`; the host does it while making the input, `model_input.rs`).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import BACKGROUNDS, subtract_background

NUM_CLASSES = 4
TRAJECTORY_HIDDEN = 128
FRAME_CODE = 8
# docs/dataset.md: the ball's radius, and labels = (p_cam - (0, 0, NORM_DEPTH)) / NORM_SCALE.
BALL_RADIUS = 0.12
NORM_DEPTH = 2.6
NORM_SCALE = 1.2
# pinhole.rs: the apparent radius (half widths) a size output of 0 means, and the size clamp.
REFERENCE_RADIUS = 0.1
SIZE_LIMIT = 3.0


def lift(image, focal):
    """(B, T, 3) image position and log size → (B, T, 3) label coordinates (pinhole.rs `lift`),
    through one lens `focal` = (fx, fy) for every sample or a (B, 2) tensor of each sample's."""
    if isinstance(focal, torch.Tensor):
        # (B, 1) columns over the frames; f·R/r₀ rounded to float32 once, as the host does.
        focal = focal.to(image.device, torch.float64)
        focal_x, focal_y = focal[:, 0, None], focal[:, 1, None]
        depth_per_size = (focal_x * BALL_RADIUS / REFERENCE_RADIUS).to(image.dtype)
        focal_x, focal_y = focal_x.to(image.dtype), focal_y.to(image.dtype)
    else:
        focal_x, focal_y = focal
        depth_per_size = focal_x * BALL_RADIUS / REFERENCE_RADIUS
    u, v = image[..., 0], image[..., 1]
    depth = image[..., 2].clamp(-SIZE_LIMIT, SIZE_LIMIT).exp() * depth_per_size
    x, y = u * depth / focal_x, v * depth / focal_y
    return torch.stack([x / NORM_SCALE, y / NORM_SCALE, (depth - NORM_DEPTH) / NORM_SCALE], -1)


class Heads(nn.Module):
    def __init__(self, d, frames=32, position_head="direct"):
        super().__init__()
        assert position_head in ("direct", "pinhole"), position_head
        self.frames = frames
        self.position_head = position_head
        self.tracker = nn.Linear(d, 3)
        self.frame_code = nn.Linear(d, FRAME_CODE)
        self.trajectory_in = nn.Linear(frames * (FRAME_CODE + 3), TRAJECTORY_HIDDEN)
        self.trajectory_hidden = nn.Linear(TRAJECTORY_HIDDEN, TRAJECTORY_HIDDEN)
        self.classifier = nn.Linear(d + TRAJECTORY_HIDDEN, NUM_CLASSES)
        self.predictor = nn.Linear(TRAJECTORY_HIDDEN, 3)

    def forward(self, features, focal=None):
        track = self.tracker(features)
        shape = track
        if self.position_head == "pinhole":
            track = lift(track, focal)
            shape = track - track.mean(1, keepdim=True)
        per_frame = torch.cat([self.frame_code(features), shape], 2)
        code = F.relu(self.trajectory_hidden(F.relu(self.trajectory_in(per_frame.flatten(1)))))
        logits = self.classifier(torch.cat([features.mean(1), code], 1))
        position = track[:, -1] + self.predictor(code)
        return logits, position, track


class UnifiedModel(nn.Module):
    def __init__(self, backbone, frames=32, position_head="direct", background="keep"):
        super().__init__()
        assert background in BACKGROUNDS, background
        self.background = background
        self.backbone = backbone
        self.heads = Heads(backbone.feature_dim, frames, position_head)

    def forward(self, video, focal=None):
        if self.background == "subtract_median":
            video = subtract_background(video)
        return self.heads(self.backbone(video), focal)


def compute_loss(logits, position, track, labels, target, true_track, w_class=1.0, w_pred=1.0, w_track=1.0):
    classification = F.cross_entropy(logits, labels)
    prediction = F.mse_loss(position, target)
    tracking = F.mse_loss(track, true_track)
    total = w_class * classification + w_pred * prediction + w_track * tracking
    return total, classification, prediction, tracking


def heads_parameter_count(d, frames=32):
    def linear(i, o):
        return i * o + o

    return (linear(d, 3) + linear(d, FRAME_CODE) + linear(frames * (FRAME_CODE + 3), TRAJECTORY_HIDDEN)
            + linear(TRAJECTORY_HIDDEN, TRAJECTORY_HIDDEN) + linear(d + TRAJECTORY_HIDDEN, NUM_CLASSES)
            + linear(TRAJECTORY_HIDDEN, 3))
