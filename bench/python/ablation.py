"""Short training runs of the PyTorch mirror (python/trajhost: backbones.py + heads.py) that isolate one piece of the
training recipe at a time (docs/training.md, "Why: the diagnosis").

Trains on the first 1,600 videos of a dataset (default data/demo, which `scripts/demo` makes) and
reports held-out accuracy, future-position MSE and per-frame tracking MSE on the last 400, after
`--steps` steps of batch 32 on one core (warm-up 20 steps, cosine to 1e-5, AdamW, clipping 1.0).

    python bench/python/ablation.py --backbone magvit --input raw --weights 1,1,1 --lr 2e-3
    python bench/python/ablation.py --backbone transformer --pooling mean --init tch

Prints one JSON line. Run it with the venv of scripts/setup-torch.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The models are the `trajhost` package's (python/), used in place: no copy, no install.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from trajhost.heads import UnifiedModel, compute_loss  # noqa: E402
from trajhost.backbones import Transformer, build_backbone  # noqa: E402
from train_loop import learning_rate, load_data  # noqa: E402

TRAIN, HELD_OUT = 1600, 400


class MeanPooledTransformer(Transformer):
    """The Transformer as it was before the readout: the mean of each frame's patch tokens."""

    def forward(self, video):
        b, t, ch, h, w = video.shape
        x = self.patch_embed(video.reshape(b * t, ch, h, w)).flatten(2, 3).transpose(1, 2)
        x = x.reshape(b, t, x.shape[1], self.dim) + self.pos_embed_space + self.pos_embed_time[:t].unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x).mean(dim=2)


def tch_init(model):
    """tch's defaults: Kaiming-uniform with the ReLU gain (bound √(6 / fan_in)), conv biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            bound = math.sqrt(6.0 / m.weight[0].numel())
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None and not isinstance(m, nn.Linear):
                    m.bias.zero_()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", required=True, choices=["i3d", "slowfast", "transformer", "magvit"])
    p.add_argument("--data", default="data/demo")
    p.add_argument("--input", default="fixed", choices=["raw", "fixed", "channel"],
                   help="raw: pixel/255; fixed: (pixel/255 - 0.5)/0.25 (the host's); "
                        "channel: each channel's mean and std over the training videos")
    p.add_argument("--weights", default="1,10,10", help="classification, prediction, tracking")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--init", default="pytorch", choices=["pytorch", "tch"])
    p.add_argument("--pooling", default="readout", choices=["readout", "mean"], help="Transformer only")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.set_num_threads(1)
    w_class, w_pred, w_track = (float(x) for x in a.weights.split(","))

    videos, labels, targets, tracks = load_data(a.data)
    if len(labels) < TRAIN + HELD_OUT:
        raise SystemExit(f"{a.data} has {len(labels)} videos; {TRAIN + HELD_OUT} needed")
    if a.input == "channel":
        pixels = videos[:400].float().div(255.0).transpose(0, 2).reshape(3, -1)
        mean, std = pixels.mean(1).view(1, 1, 3, 1, 1), pixels.std(1).view(1, 1, 3, 1, 1)

    def prepare(x):
        x = x.float().div_(255.0)
        if a.input == "fixed":
            return (x - 0.5) / 0.25
        if a.input == "channel":
            return (x - mean) / std
        return x

    torch.manual_seed(a.seed)
    if a.backbone == "transformer" and a.pooling == "mean":
        from trajhost.backbones import TRANSFORMER_CPU
        backbone = MeanPooledTransformer(**TRANSFORMER_CPU)
    else:
        backbone = build_backbone(a.backbone)
    model = UnifiedModel(backbone, videos.shape[1])
    if a.init == "tch":
        tch_init(model)
    decay = [q for q in model.parameters() if q.dim() > 1]
    no_decay = [q for q in model.parameters() if q.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    order_generator = torch.Generator().manual_seed(1)
    start, step = time.time(), 0
    model.train()
    while step < a.steps:
        order = torch.randperm(TRAIN, generator=order_generator)
        for first in range(0, TRAIN, 32):
            if step >= a.steps:
                break
            i = order[first:first + 32]
            logits, position, track = model(prepare(videos[i]))
            total, _, _, _ = compute_loss(logits, position, track, labels[i], targets[i], tracks[i],
                                          w_class, w_pred, w_track)
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, 20, a.steps, a.lr, 1e-5)
            optimizer.step()
            step += 1
    seconds = time.time() - start

    model.eval()
    correct, squared, tracked = 0, 0.0, 0.0
    with torch.no_grad():
        for first in range(TRAIN, TRAIN + HELD_OUT, 50):
            i = torch.arange(first, first + 50)
            logits, position, track = model(prepare(videos[i]))
            correct += int((logits.argmax(1) == labels[i]).sum())
            squared += float((position - targets[i]).square().mean(1).sum())
            tracked += float((track - tracks[i]).square().mean((1, 2)).sum())
    print(json.dumps(dict(vars(a), accuracy=correct / HELD_OUT, mse=squared / HELD_OUT,
                          tracking_mse=tracked / HELD_OUT, train_seconds=seconds)))


if __name__ == "__main__":
    main()
