"""The PyTorch/numpy side of the benchmark: one measurement per process, one JSON line on stdout
(with the process's peak resident memory), mirroring `trajhost-bench <command>`.

    measure.py params
    measure.py render --samples N
    measure.py train|infer --backbone NAME --data DIR [--batch 32] [--warmup 3] [--steps 20] [--threads K]
               [--serve] [--compile default|max-autotune]

--serve: after the warm-up, one block of --steps timed steps per `run` line on stdin (see
train_loop.StepClock and bench/src/clock.rs); --compile: the model wrapped in torch.compile.
The glibc allocator is whatever the environment sets (MALLOC_*_ variables, recorded here).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The models are the `trajhost` package's (python/), used in place: no copy, no install.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def stats(seconds):
    if not seconds:
        return dict(n=0, median_s=0.0, min_s=0.0, mean_s=0.0)
    return dict(n=len(seconds), median_s=statistics.median(seconds), min_s=min(seconds), mean_s=sum(seconds) / len(seconds))


def malloc_env():
    """The glibc allocator variables this process started with."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")}


def params():
    import torch

    torch.set_num_threads(1)
    from trajhost.heads import Heads, heads_parameter_count
    from trajhost.backbones import BACKBONES, build_backbone

    out = {}
    for name in BACKBONES:
        torch.manual_seed(0)
        backbone = build_backbone(name)
        heads = Heads(backbone.feature_dim)
        count = sum(p.numel() for p in backbone.parameters())
        head_count = sum(p.numel() for p in heads.parameters())
        assert head_count == heads_parameter_count(backbone.feature_dim)
        with torch.no_grad():
            features = backbone.eval()(torch.rand(1, 32, 3, 64, 64))
        out[name] = dict(
            output_shape=list(features.shape), feature_dim=backbone.feature_dim, backbone=count, heads=head_count, total=count + head_count,
            backbone_shapes=sorted(list(p.shape) for p in backbone.parameters()),
            head_shapes=sorted(list(p.shape) for p in heads.parameters()),
        )
    return out


def pattern(n, offset):
    """trajhost-bench's `pattern`: fractional parts of (k + offset)·φ, computed in f64."""
    import numpy as np

    return np.modf((np.arange(n, dtype=np.float64) + offset) * 0.6180339887498949)[0].astype(np.float32)


def shaped(shape):
    """trajhost-bench's `shaped`: a parameter value determined by the shape alone."""
    import math

    import torch

    n = math.prod(shape)
    p = torch.from_numpy(pattern(n, float(n))).reshape(shape) - 0.5
    if len(shape) > 1:
        return p * (2.0 / math.sqrt(max(n // shape[0], 1)))
    return p * 0.2 + 1.0


def forward_check():
    """Features of every backbone with shape-determined weights (see trajhost-bench forward-check)."""
    import torch

    from trajhost.backbones import BACKBONES, build_backbone

    torch.set_num_threads(1)
    out = {}
    for name in BACKBONES:
        backbone = build_backbone(name).eval()
        with torch.no_grad():
            for p in backbone.parameters():
                p.copy_(shaped(list(p.shape)))
            shape = [2, 32, 3, 64, 64]
            video = torch.from_numpy(pattern(math_prod(shape), 0.5)).reshape(shape)
            features = backbone(video)
        out[name] = dict(shape=list(features.shape), values=features.flatten().tolist())
    return out


def math_prod(xs):
    import math

    return math.prod(xs)


def render(samples):
    from generator import generate_sample

    start = time.perf_counter()
    checksum = 0
    for i in range(samples):
        video, label, _ = generate_sample(i, seed=7)
        checksum += int(video[len(video) // 2, 0, 32, 32]) + label
    seconds = time.perf_counter() - start
    return dict(side="pytorch", what="render", samples=samples, threads=1, seconds=seconds,
                videos_per_s=samples / seconds, checksum=checksum, frames=video.shape[0],
                height=video.shape[2], width=video.shape[3], peak_rss_kib=peak_rss_kib())


def model_bench(what, a):
    import torch

    torch.set_num_threads(a.threads)
    import train_loop

    data = train_loop.load_data(a.data)
    train_loop.CHANNEL_MAJOR = a.channel_major and a.backbone in train_loop.CONV_MODELS
    train_loop.FLOOR = a.floor
    train_loop.FUSED_ADAMW = a.fused_adamw
    run = train_loop.train if what == "train" else train_loop.infer
    r = run(a.backbone, data, a.batch, a.warmup, a.steps, serve=a.serve, compile_mode=a.compile)
    step_seconds = r.pop("step_seconds")
    return dict(side="pytorch", what=what, backbone=a.backbone, threads=torch.get_num_threads(),
                compile=a.compile, channel_major=train_loop.CHANNEL_MAJOR, floor=a.floor,
                fused_adamw=a.fused_adamw,
                malloc_env=malloc_env(),
                batch_size=a.batch, warmup_steps=a.warmup, steps=stats(step_seconds),
                videos_per_s=r["videos"] / max(r["seconds"], 1e-12), torch=torch.__version__,
                peak_rss_kib=peak_rss_kib(), **r)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["params", "forward-check", "render", "train", "infer"])
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--backbone")
    p.add_argument("--data")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channel-major", action="store_true",
                   help="batches of the 3-D conv models laid out (B, C, T, H, W) in memory")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--serve", action="store_true")
    p.add_argument("--compile", default=None, choices=["default", "max-autotune"])
    p.add_argument("--fused-adamw", action="store_true",
                   help="torch.optim.AdamW(fused=True) instead of the default per-tensor loop")
    p.add_argument("--floor", action="store_true",
                   help="the step without its own work: one batch reused, no loss read, no metrics "
                        "(as trajhost-bench's --floor true)")
    a = p.parse_args()
    if a.command == "params":
        result = params()
    elif a.command == "forward-check":
        result = forward_check()
    elif a.command == "render":
        result = render(a.samples)
    else:
        result = model_bench(a.command, a)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
