"""A run exported by `trajhost export`, rebuilt in PyTorch and scored.

    import trajhost
    model, info = trajhost.load("export/")             # strict=True, eval mode
    test = trajhost.Split("data/10k", "test", info["predict_future"])
    print(trajhost.evaluate(model, test, info["batch_size"]))

The folder holds `model.safetensors` (the state dict) and `model.json` (what to build: the
backbone, its plugin configuration, the heads' clip length, position head, background, colour and
mirror averaging, and the run it came from).
"""

import json
import os

import torch
from safetensors.torch import load_file

from .backbones import build_backbone
from .data import BACKGROUNDS, COLOURS, standardise
from .heads import MAX_FOVEA_PASSES, UnifiedModel

FORMAT = 1


def load(directory, device="cpu"):
    """(model, info): the exported model with every tensor loaded `strict=True`, in eval mode."""
    with open(os.path.join(directory, "model.json")) as f:
        info = json.load(f)
    if info.get("format") != FORMAT:
        raise ValueError(f"{directory}/model.json has format {info.get('format')}, this package reads {FORMAT}")
    backbone = build_backbone(info["backbone"], info["backbone_config"])
    # Exports from before the field kept the background.
    background = info.get("background", "keep")
    if background not in BACKGROUNDS:
        raise ValueError(f"{directory}/model.json: background {background!r} is none of {BACKGROUNDS}")
    # Exports from before the field kept the colour as rendered.
    colour = info.get("colour", "rgb")
    if colour not in COLOURS:
        raise ValueError(f"{directory}/model.json: colour {colour!r} is none of {COLOURS}")
    # Exports from before the field looked once.
    passes = info.get("fovea_passes", 1)
    if type(passes) is not int or not 1 <= passes <= MAX_FOVEA_PASSES:
        raise ValueError(f"{directory}/model.json: fovea_passes {passes!r} is not 1 to {MAX_FOVEA_PASSES}")
    # Exports from before the field answered from the clip alone.
    mirror_average = info.get("mirror_average", False)
    if type(mirror_average) is not bool:
        raise ValueError(f"{directory}/model.json: mirror_average {mirror_average!r} is not true or false")
    model = UnifiedModel(backbone, info["frames"], info["position_head"], background, passes, colour,
                         mirror_average)
    model.load_state_dict(load_file(os.path.join(directory, "model.safetensors")), strict=True)
    return model.to(device).eval(), info


@torch.no_grad()
def evaluate(model, split, batch_size=16, device="cpu"):
    """Accuracy and position MSE over `split` (a `trajhost.Split`), in the host's order and
    batches; the numbers `trajhost eval` prints for the same model and data."""
    correct, squared, n = 0, torch.zeros(3, dtype=torch.float64), len(split)
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size)
        video = standardise(split.videos[rows]).to(device)
        logits, position, _ = model(video, split.focal[rows])
        correct += int((logits.argmax(1).cpu() == split.labels[rows]).sum())
        squared += (position.cpu() - split.target[rows]).square().sum(0, dtype=torch.float64)
    return {"samples": n, "accuracy": correct / n, "mse": float(squared.sum() / n / 3)}
