"""The host's heads and loss (`host/src/train/model.rs`) around a backbone.

Temporal mean → Linear(D, 4) classifier; concat(mean, last frame) → Linear(2D, 128) → ReLU →
Linear(128, 3) predictor; loss = w_c · cross-entropy + w_p · MSE.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 4
PREDICTION_HIDDEN = 128


class Heads(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.classifier = nn.Linear(d, NUM_CLASSES)
        self.predictor_hidden = nn.Linear(2 * d, PREDICTION_HIDDEN)
        self.predictor_out = nn.Linear(PREDICTION_HIDDEN, 3)

    def forward(self, features):
        mean = features.mean(1)
        last = features[:, -1]
        logits = self.classifier(mean)
        position = self.predictor_out(F.relu(self.predictor_hidden(torch.cat([mean, last], 1))))
        return logits, position


class UnifiedModel(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.heads = Heads(backbone.feature_dim)

    def forward(self, video):
        return self.heads(self.backbone(video))


def compute_loss(logits, position, labels, target, w_class=1.0, w_pred=1.0):
    classification = F.cross_entropy(logits, labels)
    prediction = F.mse_loss(position, target)
    return w_class * classification + w_pred * prediction, classification, prediction


def heads_parameter_count(d):
    return d * NUM_CLASSES + NUM_CLASSES + 2 * d * PREDICTION_HIDDEN + PREDICTION_HIDDEN + PREDICTION_HIDDEN * 3 + 3
