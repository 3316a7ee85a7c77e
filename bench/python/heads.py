"""The host's heads and loss (`host/src/train/model.rs`) around a backbone.

Per-frame features (B, T, D) →
  tracker Linear(D, 3) on every frame → track (B, T, 3);
  [frame_code Linear(D, 8) ⊕ track] per frame, flattened in time → Linear(T·11, 128) → ReLU →
  Linear(128, 128) → ReLU = trajectory code;
  classifier Linear(D + 128, 4) on (temporal mean ⊕ code);
  future position = last tracked position + predictor Linear(128, 3)(code).
loss = w_c · cross-entropy + w_p · MSE(future) + w_t · MSE(track, true positions of the T frames).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 4
TRAJECTORY_HIDDEN = 128
FRAME_CODE = 8


class Heads(nn.Module):
    def __init__(self, d, frames=32):
        super().__init__()
        self.frames = frames
        self.tracker = nn.Linear(d, 3)
        self.frame_code = nn.Linear(d, FRAME_CODE)
        self.trajectory_in = nn.Linear(frames * (FRAME_CODE + 3), TRAJECTORY_HIDDEN)
        self.trajectory_hidden = nn.Linear(TRAJECTORY_HIDDEN, TRAJECTORY_HIDDEN)
        self.classifier = nn.Linear(d + TRAJECTORY_HIDDEN, NUM_CLASSES)
        self.predictor = nn.Linear(TRAJECTORY_HIDDEN, 3)

    def forward(self, features):
        track = self.tracker(features)
        per_frame = torch.cat([self.frame_code(features), track], 2)
        code = F.relu(self.trajectory_hidden(F.relu(self.trajectory_in(per_frame.flatten(1)))))
        logits = self.classifier(torch.cat([features.mean(1), code], 1))
        position = track[:, -1] + self.predictor(code)
        return logits, position, track


class UnifiedModel(nn.Module):
    def __init__(self, backbone, frames=32):
        super().__init__()
        self.backbone = backbone
        self.heads = Heads(backbone.feature_dim, frames)

    def forward(self, video):
        return self.heads(self.backbone(video))


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
