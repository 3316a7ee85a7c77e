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
encoder reads the lifted track minus its mean. With position_head="fovea" (`host/src/train/fovea.rs`)
the tracker's image position and size are first corrected by a small CNN reading each input
frame, at full resolution, in a square around them; in inference `fovea_passes` times, each
square around the last correction (training looks once).

With background="subtract_median" the model takes each pixel's background out of its input first
(`data.subtract_background`; the host does it while making the input, `model_input.rs`), and with
colour="hue_free" then makes each pixel's colour hue-free (`data.hue_free`, `hue_free.rs`).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import BACKGROUNDS, COLOURS, hue_free, subtract_background

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
# fovea.rs: samples per side of a cut-out, its half width in estimated radii, and the limit on
# its centre.
CROP_SIDE = 12
CROP_RADII = 2.5
CENTRE_LIMIT = 4.0
POSITION_HEADS = ("direct", "pinhole", "fovea")
# runs/src/config/train.rs: the most `fovea_passes` a config may ask for.
MAX_FOVEA_PASSES = 4


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


def crops(video, estimate):
    """(B·T, 3, CROP_SIDE, CROP_SIDE): each frame of `video` (B, T, 3, H, W) resampled bilinearly
    on a square centred on its row of `estimate` (B, T, 3), 2·CROP_RADII estimated radii wide
    (fovea.rs `crops`)."""
    b, t, c, h, w = video.shape
    frames = video.reshape(b * t, c, h, w).float()
    steps = (torch.arange(CROP_SIDE, dtype=torch.float32, device=video.device) * 2 + 1) / CROP_SIDE - 1
    radius = (-estimate[..., 2].clamp(-SIZE_LIMIT, SIZE_LIMIT)).exp() * REFERENCE_RADIUS * CROP_RADII
    half = torch.stack([radius, radius * (w / h)], -1).reshape(-1, 1, 1, 2)
    centre = estimate.reshape(-1, 3)[:, :2].clamp(-CENTRE_LIMIT, CENTRE_LIMIT).reshape(-1, 1, 1, 2)
    offsets = torch.stack([steps.view(1, -1).expand(CROP_SIDE, CROP_SIDE),
                           steps.view(-1, 1).expand(CROP_SIDE, CROP_SIDE)], -1)[None]
    grid = centre + offsets * half
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False), half


class Heads(nn.Module):
    def __init__(self, d, frames=32, position_head="direct", fovea_passes=1):
        super().__init__()
        assert position_head in POSITION_HEADS, position_head
        assert fovea_passes == 1 or position_head == "fovea", fovea_passes
        self.frames = frames
        self.position_head = position_head
        self.fovea_passes = fovea_passes
        self.tracker = nn.Linear(d, 3)
        self.frame_code = nn.Linear(d, FRAME_CODE)
        self.trajectory_in = nn.Linear(frames * (FRAME_CODE + 3), TRAJECTORY_HIDDEN)
        self.trajectory_hidden = nn.Linear(TRAJECTORY_HIDDEN, TRAJECTORY_HIDDEN)
        self.classifier = nn.Linear(d + TRAJECTORY_HIDDEN, NUM_CLASSES)
        self.predictor = nn.Linear(TRAJECTORY_HIDDEN, 3)
        if position_head == "fovea":
            self.fovea_conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.fovea_conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.fovea_conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
            self.fovea_out = nn.Linear(16 * (CROP_SIDE // 4) ** 2, 3)
            # As the host builds them (model.rs): the convolutions with tch's initialisation
            # (Kaiming-uniform, ReLU gain, zero biases), the last layer at zero.
            for conv in (self.fovea_conv1, self.fovea_conv2, self.fovea_conv3):
                bound = (6.0 / conv.weight[0].numel()) ** 0.5
                nn.init.uniform_(conv.weight, -bound, bound)
                nn.init.zeros_(conv.bias)
            nn.init.zeros_(self.fovea_out.weight)
            nn.init.zeros_(self.fovea_out.bias)

    def refine(self, video, estimate, passes=1):
        """The tracker's image position and size, corrected by what the fovea reads around them,
        `passes` times (fovea.rs `Fovea::refine`)."""
        for _ in range(passes):
            estimate = self.look(video, estimate)
        return estimate

    def look(self, video, estimate):
        """One correction of `estimate` (fovea.rs `Fovea::look`)."""
        estimate = estimate.detach()
        b, t = estimate.shape[:2]
        x, half = crops(video, estimate)
        x = F.relu(self.fovea_conv3(F.relu(self.fovea_conv2(F.relu(self.fovea_conv1(x))))))
        correction = self.fovea_out(x.flatten(1)).view(b, t, 3)
        half = half.view(b, t, 2)
        return torch.stack([estimate[..., 0] + correction[..., 0] * half[..., 0],
                            estimate[..., 1] + correction[..., 1] * half[..., 1],
                            estimate[..., 2] + correction[..., 2]], -1)

    def forward(self, features, focal=None, video=None):
        track = self.tracker(features)
        shape = track
        # The fovea's uncorrected track, kept in training for its own loss (model.rs
        # `Outputs::estimate`): compute_loss(..., estimate=model.heads.estimate).
        self.estimate = None
        if self.position_head == "fovea":
            if self.training:
                self.estimate = lift(track, focal)
            track = self.refine(video, track, 1 if self.training else self.fovea_passes)
        if self.position_head in ("pinhole", "fovea"):
            track = lift(track, focal)
            shape = track - track.mean(1, keepdim=True)
        per_frame = torch.cat([self.frame_code(features), shape], 2)
        code = F.relu(self.trajectory_hidden(F.relu(self.trajectory_in(per_frame.flatten(1)))))
        logits = self.classifier(torch.cat([features.mean(1), code], 1))
        position = track[:, -1] + self.predictor(code)
        return logits, position, track


class UnifiedModel(nn.Module):
    def __init__(self, backbone, frames=32, position_head="direct", background="keep", fovea_passes=1,
                 colour="rgb", mirror_average=False):
        super().__init__()
        assert background in BACKGROUNDS, background
        assert colour in COLOURS, colour
        self.background = background
        self.colour = colour
        self.mirror_average = mirror_average
        self.backbone = backbone
        self.heads = Heads(backbone.feature_dim, frames, position_head, fovea_passes)

    def forward(self, video, focal=None):
        if self.mirror_average and not self.training:
            return self.mirror_averaged(video, focal)
        return self.forward_once(video, focal)

    def mirror_averaged(self, video, focal):
        """The answer averaged with the answer for the clip's left-right mirror image, its x
        negated back (mirror.rs `averaged`): the mirror negates only the camera frame's x."""
        logits, position, track = self.forward_once(video, focal)
        m_logits, m_position, m_track = self.forward_once(video.flip(-1).contiguous(), focal)
        negate_x = torch.tensor([-1.0, 1.0, 1.0], dtype=position.dtype, device=position.device)
        return ((logits + m_logits) / 2, (position + m_position * negate_x) / 2,
                (track + m_track * negate_x) / 2)

    def forward_once(self, video, focal=None):
        if self.background == "subtract_median":
            video = subtract_background(video)
        if self.colour == "hue_free":
            video = hue_free(video)
        return self.heads(self.backbone(video), focal, video)


def compute_loss(logits, position, track, labels, target, true_track, w_class=1.0, w_pred=1.0, w_track=1.0,
                 estimate=None):
    """loss.rs: `estimate`, the fovea's uncorrected track, is trained as the track is."""
    classification = F.cross_entropy(logits, labels)
    prediction = F.mse_loss(position, target)
    tracking = F.mse_loss(track, true_track)
    total = w_class * classification + w_pred * prediction + w_track * tracking
    if estimate is not None:
        total = total + w_track * F.mse_loss(estimate, true_track)
    return total, classification, prediction, tracking


def heads_parameter_count(d, frames=32):
    def linear(i, o):
        return i * o + o

    return (linear(d, 3) + linear(d, FRAME_CODE) + linear(frames * (FRAME_CODE + 3), TRAJECTORY_HIDDEN)
            + linear(TRAJECTORY_HIDDEN, TRAJECTORY_HIDDEN) + linear(d + TRAJECTORY_HIDDEN, NUM_CLASSES)
            + linear(TRAJECTORY_HIDDEN, 3))
