"""The quality protocol's recipe (configs/quality.ron) on the PyTorch mirror of the models
(python/trajhost, the same models: bench/tests/parity.rs), for a machine with a GPU. trajhost's
own quality runs are bound by two CPU cores (docs/training.md, "Results"); this asks what the
same models and recipe reach with more compute.

Training data: every row of a stored dataset (`trajhost-data generate --config
configs/data-randomised.ron --seed S --samples N`), held on the device as uint8. Recipe: batch
32, AdamW lr 2e-3 (decay 0.01 on tensors of rank > 1 only, as the host's), 100 warm-up steps then
a cosine to 1e-5 that follows the clock, gradient norm clipped to 1, loss weights 1 / 10 / 30,
the fovea position head (`--position-head`: `fovea` as configs/quality.ron since 2026-12-05,
`pinhole` for the recipe before; with the fovea, `--fovea-passes` looks in scoring, 2 as
configs/quality.ron since 2026-12-06; scored answers averaged with the mirror image's as
configs/quality.ron since 2026-12-06, 08:00, `--no-mirror-average` for the recipe before), the
`cpu` preset, each pixel's background taken out (`--background`: `subtract_median` as
configs/quality.ron, `keep` for the recipe before that), each pixel's colour hue-free
(`--colour`: `hue_free` as configs/quality.ron since 2026-12-06, `rgb` for the recipe before).
Each `--eval NAME=FOLDER[:SPLIT]` set is scored (accuracy, MSE, MSE per axis) every `--eval-every`
minutes of training and at the end; one JSON line each. The clock (`--minutes`, and the cosine
that follows it) counts training only, so scoring more sets takes no training time.

    python3 bench/python/quality_mirror.py --backbone i3d --train data/train --minutes 6 \
        --eval test=data/10k:test --eval camera_far=data/far:all
"""

import argparse
import json
import math
import os
import sys
import time

import torch
from safetensors import safe_open

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from trajhost.backbones import build_backbone  # noqa: E402
from trajhost.data import BACKGROUNDS, COLOURS, Split, shard_focal, shard_paths, standardise  # noqa: E402
from trajhost.heads import MAX_FOVEA_PASSES, UnifiedModel, compute_loss  # noqa: E402

BATCH, LR, MIN_LR, WARMUP, DECAY, CLIP = 32, 2e-3, 1e-5, 100, 0.01, 1.0
WEIGHTS = dict(w_class=1.0, w_pred=10.0, w_track=30.0)
PREDICT_FUTURE = 5


def load_rows(directory, device):
    """Every row of a dataset folder on `device`: uint8 videos, labels, targets, tracks and each
    sample's lens. Shard by shard onto the device (`Split` would gather tens of GB in host memory
    first)."""
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    t = manifest["config"]["frames"]
    parts = {"videos": [], "labels": [], "target": [], "track": [], "focal": []}
    for path in shard_paths(directory, manifest):
        with safe_open(path, "pt") as f:
            positions = f.get_tensor("positions")
            parts["videos"].append(f.get_tensor("videos").to(device))
            parts["labels"].append(f.get_tensor("labels").long().to(device))
            parts["target"].append(positions[:, t - 1 + PREDICT_FUTURE].to(device))
            parts["track"].append(positions[:, :t].to(device))
            parts["focal"].append(shard_focal(f, path).to(device))
    return {k: torch.cat(v) for k, v in parts.items()}


def positive_minutes(text):
    """A finite, positive number of minutes (NaN would never end the run)."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} minutes: expected a finite number above 0")
    return value


def evaluate(model, split, device):
    model.eval()
    correct, squared = 0, torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(split), 64):
            x = standardise(split.videos[start:start + 64]).to(device)
            logits, position, _ = model(x, split.focal[start:start + 64])
            correct += (logits.argmax(1).cpu() == split.labels[start:start + 64]).sum().item()
            squared += ((position.cpu() - split.target[start:start + 64]) ** 2).sum(0).double()
    model.train()
    per_axis = (squared / len(split)).tolist()
    return dict(accuracy=correct / len(split), mse=sum(per_axis) / 3, mse_per_axis=per_axis)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--train", required=True, help="a dataset folder; all its rows train")
    parser.add_argument("--eval", action="append", default=[], help="NAME=FOLDER[:SPLIT]")
    parser.add_argument("--minutes", type=positive_minutes, required=True)
    parser.add_argument("--eval-every", type=positive_minutes, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--background", choices=BACKGROUNDS, default="subtract_median")
    parser.add_argument("--colour", choices=COLOURS, default="hue_free")
    parser.add_argument("--position-head", choices=("pinhole", "fovea"), default="fovea")
    parser.add_argument("--fovea-passes", type=int, choices=range(1, MAX_FOVEA_PASSES + 1), default=2)
    parser.add_argument("--mirror-average", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True

    evals = {}
    for spec in args.eval:
        name, _, where = spec.partition("=")
        folder, _, split = where.partition(":")
        evals[name] = Split(folder, split or "test", PREDICT_FUTURE)
        if len(evals[name]) == 0:
            parser.error(f"--eval {spec}: no sample of {folder} is in that split")
    data = load_rows(args.train, device)
    if len(data["labels"]) < BATCH:
        parser.error(f"--train {args.train}: {len(data['labels'])} videos, fewer than a batch of {BATCH}")
    # standardise's table, on the device: a batch is indexed and converted there.
    table = standardise(torch.arange(256, dtype=torch.uint8)).to(device)
    n = len(data["labels"])
    frames = data["videos"].shape[1]
    torch.manual_seed(args.seed)
    passes = args.fovea_passes if args.position_head == "fovea" else 1
    model = UnifiedModel(build_backbone(args.backbone), frames, args.position_head, args.background, passes,
                         args.colour, args.mirror_average).to(device)
    decay = [p for p in model.parameters() if p.dim() > 1]
    plain = [p for p in model.parameters() if p.dim() <= 1]
    groups = [dict(params=decay, weight_decay=DECAY), dict(params=plain, weight_decay=0.0)]
    optimizer = torch.optim.AdamW(groups, lr=LR, fused=device.type == "cuda")

    def report(**fields):
        fields = dict(backbone=args.backbone, background=args.background, colour=args.colour,
                      position_head=args.position_head,
                      fovea_passes=passes, mirror_average=args.mirror_average,
                      train_rows=n, **fields)
        print(json.dumps(fields), flush=True)

    budget = args.minutes * 60
    start, scoring = time.perf_counter(), 0.0
    next_eval, step, seen = args.eval_every * 60, 0, 0
    while True:
        order = torch.randperm(n, device=device)
        for first in range(0, n - BATCH + 1, BATCH):
            elapsed = time.perf_counter() - start - scoring
            if elapsed >= next_eval or elapsed >= budget:
                scored_at = time.perf_counter()
                scores = {name: evaluate(model, s, device) for name, s in evals.items()}
                scoring += time.perf_counter() - scored_at
                report(minutes=elapsed / 60, videos_seen=seen, epochs=seen / n, step=step, **scores)
                next_eval += args.eval_every * 60
                if elapsed >= budget:
                    return
            if step < WARMUP:
                lr = LR * (step + 1) / WARMUP
            else:
                lr = MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = order[first:first + BATCH]
            logits, position, track = model(table[data["videos"][index].int()], data["focal"][index])
            loss = compute_loss(logits, position, track, data["labels"][index], data["target"][index],
                                data["track"][index], **WEIGHTS, estimate=model.heads.estimate)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            step += 1
            seen += BATCH


if __name__ == "__main__":
    main()
