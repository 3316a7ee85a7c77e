"""The PyTorch eager equivalent of `trajhost train`'s step and `evaluate`'s batch.

Data: the same safetensors shards trajhost generated, read with the `safetensors` package,
held in memory as one uint8 tensor; a batch is indexed out, converted to float and standardised
as the host does, (pixel / 255 - 0.5) / 0.25 (what a PyTorch user writes; no DataLoader workers,
which would need more cores than the bench has).
Training: forward, cross-entropy + the two MSE terms (future, per-frame track), zero_grad, backward, clip_grad_norm_(1.0), the same
warm-up + cosine schedule, torch.optim.AdamW (weight decay 0.01 on tensors of rank > 1 only,
as the host's AdamW), and the same per-step metric bookkeeping (loss, accuracy, squared error).
"""

import glob
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
from safetensors.numpy import load_file

# The models are the `trajhost` package's (python/), used in place: no copy, no install.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from trajhost.heads import UnifiedModel, compute_loss  # noqa: E402
from trajhost.backbones import build_backbone  # noqa: E402


def load_data(directory, predict_future=5):
    """All samples of every shard, as (uint8 videos, int64 labels, float targets, float tracks)
    tensors: targets (N, 3) the position `predict_future` frames past the clip, tracks (N, T, 3)
    the positions of the T input frames.

    Filled shard by shard into tensors allocated once, so the peak is the data plus one shard
    (as the host's `data::load`), not twice the data as `torch.cat` would make it.
    """
    from safetensors import safe_open

    paths = sorted(glob.glob(os.path.join(directory, "shard-*.safetensors")))
    if not paths:
        raise SystemExit(f"no shard-*.safetensors in {directory}")
    counts = []
    for path in paths:
        with safe_open(path, "np") as f:
            shape = f.get_slice("videos").get_shape()
            counts.append(shape[0])
    n, t = sum(counts), shape[1]
    videos = torch.empty((n, *shape[1:]), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    targets = torch.empty((n, 3), dtype=torch.float32)
    tracks = torch.empty((n, t, 3), dtype=torch.float32)
    start = 0
    for path, count in zip(paths, counts):
        d = load_file(path)
        videos[start:start + count] = torch.from_numpy(d["videos"])
        labels[start:start + count] = torch.from_numpy(d["labels"]).long()
        targets[start:start + count] = torch.from_numpy(d["positions"][:, t - 1 + predict_future])
        tracks[start:start + count] = torch.from_numpy(d["positions"][:, :t])
        start += count
        del d
    return videos, labels, targets, tracks


def learning_rate(step, warmup, total, peak, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / (total - warmup), 1.0)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def make_model(name, seed=42, frames=32):
    torch.manual_seed(seed)
    return UnifiedModel(build_backbone(name), frames)


def epoch_order(n, seed, epoch):
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    return torch.randperm(n, generator=g)


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class StepClock:
    """Times the steps after the first `warmup` ones, as trajhost-bench's `StepClock`
    (bench/src/clock.rs): each timed step runs from where the previous one ended, so preparing
    its batch is timed too.

    Fixed: `steps` timed steps, then done. Served (`serve=True`): after the warm-up, prints
    {"ready": true} and times a block of `steps` steps per `run` line on stdin, printing each
    block as a JSON line, until `stop` or the end of stdin; waiting is not timed.
    """

    def __init__(self, warmup, steps, serve=False):
        self.serve = serve
        self.warmup = max(warmup, 1) if serve else warmup
        self.block_steps = max(steps, 1) if serve else steps
        self.step = 0
        self.step_seconds, self.videos = [], 0
        self.block_start, self.block_videos, self.blocks = 0, 0, []
        self.faults = minor_faults()
        self.restart()

    def restart(self):
        """Between epochs: making the next epoch's order is not a step."""
        self.last = time.perf_counter()

    def step_done(self, videos):
        """Ends the current step of `videos` videos; True once every step has run."""
        now = time.perf_counter()
        if self.step >= self.warmup:
            self.step_seconds.append(now - self.last)
            self.videos += videos
            self.block_videos += videos
        self.last = now
        self.step += 1
        if self.step == self.warmup:
            self.faults = minor_faults()
        if not self.serve:
            return self.step >= self.warmup + self.block_steps
        if self.step < self.warmup:
            return False
        if self.step == self.warmup:
            return self._wait({"ready": True})
        if len(self.step_seconds) - self.block_start < self.block_steps:
            return False
        seconds = self.step_seconds[self.block_start:]
        block = dict(block=len(self.blocks), videos=self.block_videos, seconds=sum(seconds),
                     videos_per_s=self.block_videos / max(sum(seconds), 1e-12), steps=stats(seconds))
        self.blocks.append(block)
        self.block_start, self.block_videos = len(self.step_seconds), 0
        return self._wait(block)

    def _wait(self, line):
        print(json.dumps(line), flush=True)
        command = sys.stdin.readline().strip()
        self.last = time.perf_counter()
        return command != "run"

    def report(self, **fields):
        timed = len(self.step_seconds)
        out = dict(fields, timed_steps=timed, videos=self.videos, seconds=sum(self.step_seconds),
                   step_seconds=self.step_seconds,
                   minor_faults_per_step=(minor_faults() - self.faults) / max(timed, 1))
        if self.serve:
            out["blocks"] = self.blocks
        return out


def stats(seconds):
    if not seconds:
        return dict(n=0, median_s=0.0, min_s=0.0, mean_s=0.0)
    return dict(n=len(seconds), median_s=statistics.median(seconds), min_s=min(seconds),
                mean_s=sum(seconds) / len(seconds))


def compiled(model, mode):
    """`torch.compile` with inductor in `mode` ("default", "max-autotune"); one graph per batch
    size (the last batch of an epoch is smaller), each compiled before the clock starts."""
    if mode in (None, "", "none"):
        return model
    kwargs = {} if mode == "default" else {"mode": mode}
    return torch.compile(model, dynamic=False, **kwargs)


def precompile_tail(model, data, batch_size, train):
    """Compiles the graph for the epoch's last, smaller batch outside the timed steps (its
    gradients are discarded: no optimiser step, so the run is otherwise unchanged)."""
    videos, labels, targets, tracks = data
    tail = len(labels) % batch_size
    if tail == 0:
        return
    x, y, target, track = batch_of(videos, labels, targets, tracks, torch.arange(tail))
    if train:
        logits, position, tracked = model(x)
        compute_loss(logits, position, tracked, y, target, track)[0].backward()
        model.zero_grad(set_to_none=True)
    else:
        with torch.no_grad():
            model(x)


# The 3-D conv models, whose first layer reads (B, C, T, H, W): trajhost hands them batches in
# that memory order (plugin-api's InputLayout); the *_channel_major peers do the same by hand.
CONV_MODELS = {"i3d", "slowfast", "magvit"}
CHANNEL_MAJOR = False
# The step without the loop's own work (trajhost-bench's --floor): the first batch made once and
# reused, the loss not read, no metrics; what is left is the model's kernels and the optimiser.
FLOOR = False
# torch.optim.AdamW(fused=True): one kernel over all parameters instead of a loop per tensor.
FUSED_ADAMW = False


def batch_of(videos, labels, targets, tracks, index):
    # (pixel / 255 - 0.5) / 0.25, the host's `pixels::standardise`.
    if CHANNEL_MAJOR:
        g = videos[index]
        b, t, c, h, w = g.shape
        x = torch.empty((b, c, t, h, w)).copy_(g.permute(0, 2, 1, 3, 4))
        x = x.sub_(127.5).div_(63.75).permute(0, 2, 1, 3, 4)
        return x, labels[index], targets[index], tracks[index]
    x = videos[index].float().sub_(127.5).div_(63.75)
    return x, labels[index], targets[index], tracks[index]


def prepared(name, data, batch_size, seed, compile_mode, train):
    """The model in train or eval mode, compiled (with its tail shapes warmed) if asked."""
    eager = make_model(name, seed, data[0].shape[1])
    eager.train(train)
    model = compiled(eager, compile_mode)
    if compile_mode:
        precompile_tail(model, data, batch_size, train=train)
    return model


def train(name, data, batch_size, warmup, steps, lr=1e-3, weight_decay=0.01, clip=1.0, seed=42,
          serve=False, compile_mode=None):
    videos, labels, targets, tracks = data
    model = prepared(name, data, batch_size, seed, compile_mode, train=True)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=FUSED_ADAMW or None,
    )
    params = list(model.parameters())
    loss_sum, correct, squared, seen = 0.0, 0, 0.0, 0
    clock, epoch, fixed = StepClock(warmup, steps, serve), 0, None
    while True:
        epoch += 1
        order = epoch_order(len(labels), seed, epoch)
        clock.restart()
        for start in range(0, len(order), batch_size):
            step = clock.step
            index = order[start:start + batch_size]
            if FLOOR:
                fixed = fixed or batch_of(videos, labels, targets, tracks, order[:batch_size])
                x, y, target, track = fixed
            else:
                x, y, target, track = batch_of(videos, labels, targets, tracks, index)
            logits, position, tracked = model(x)
            total, _, _, _ = compute_loss(logits, position, tracked, y, target, track)
            if not FLOOR:
                loss = total.item()
                if not math.isfinite(loss):
                    raise SystemExit(f"loss became {loss} at step {step}")
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, 50, 1000, lr, 1e-5)
            optimizer.step()
            if not FLOOR:
                with torch.no_grad():
                    loss_sum += loss * len(y)
                    correct += int((logits.argmax(1) == y).sum())
                    squared += float((position - target).square().sum())
                    seen += len(y)
            if clock.step_done(len(y)):
                return clock.report(parameters=sum(p.numel() for p in params), final_loss=loss_sum / max(seen, 1))


def infer(name, data, batch_size, warmup, steps, seed=42, serve=False, compile_mode=None):
    videos, labels, targets, tracks = data
    model = prepared(name, data, batch_size, seed, compile_mode, train=False)
    correct, clock, fixed = 0, StepClock(warmup, steps, serve), None
    with torch.no_grad():
        while True:
            clock.restart()
            for start in range(0, len(labels), batch_size):
                index = torch.arange(start, min(start + batch_size, len(labels)))
                if FLOOR:
                    fixed = fixed or batch_of(videos, labels, targets, tracks, index)
                    x, y, target, track = fixed
                    model(x)
                else:
                    x, y, target, track = batch_of(videos, labels, targets, tracks, index)
                    logits, position, tracked = model(x)
                    total, ce, mse, tracking = compute_loss(logits, position, tracked, y, target, track)
                    total.item(), ce.item(), mse.item(), tracking.item()
                    correct += int((logits.argmax(1) == y).sum())
                    (position - target).square().sum(0).tolist()
                if clock.step_done(len(y)):
                    return clock.report()

if __name__ == "__main__":
    print(json.dumps({"see": "measure.py train|infer"}))
