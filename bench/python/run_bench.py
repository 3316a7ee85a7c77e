"""Runs trajhost and its PyTorch peers on this machine, in one run, with the same thread count,
and writes `bench/results.json`; `trajhost-bench report` renders the tables from it. Started by
`scripts/bench`.

Peers (each its own column): PyTorch eager with default malloc; PyTorch eager with the glibc
allocator settings trajhost applies to itself (host/src/allocator.rs), given through the
environment; torch.compile (inductor, default mode) with those settings; optionally
torch.compile mode="max-autotune" (--max-autotune).

Every training and inference row starts one warmed-up process per side (its peak memory is its
own), then times blocks of --block-steps steps in --pairs rounds, each round every side once,
the order rotated from round to round: interleaved pairs, seconds apart. A side that cannot run
(no C++ compiler for inductor, a compile error) keeps its column with the reason.

--time-to-accuracy instead runs `trajhost train` per backbone (configs/time-to-accuracy.ron) and
records the wall-clock seconds until validation accuracy first reaches 90 % and validation MSE
first reaches 0.05, from the run folder's metrics.jsonl; it updates only that part of the file.
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKBONES = ["i3d", "slowfast", "transformer", "magvit"]
DEFAULT_OUT = os.path.join(ROOT, "bench", "results.json")

QUICK = dict(render_rust=16, render_numpy=4, train_samples=48, batch=4, warmup=2, block_steps=1, pairs=2, repeats=1,
             boundary_batch=2, boundary_rounds=2, boundary_small_rounds=5, cli_train=False,
             tta_samples=96, tta_minutes=0.5, tta_epochs=2)
FULL = dict(render_rust=2000, render_numpy=200, train_samples=1000, batch=32, warmup=3, block_steps=10, pairs=5, repeats=2,
            boundary_batch=32, boundary_rounds=40, boundary_small_rounds=200, cli_train=True,
            tta_samples=4000, tta_minutes=4.0, tta_epochs=100)

# What trajhost sets with mallopt (host/src/allocator.rs: M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB,
# M_TOP_PAD 64 MiB), as the environment variables glibc reads for the same parameters.
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_TOP_PAD_": "67108864"}

# The PyTorch peers, in column order. All but the plain `eager` one are what a
# performance-minded user runs: trajhost's malloc settings and torch's fused AdamW kernel
# (`fused=True`, CPU support since torch 2.4; the default is a per-tensor loop on the CPU).
PEERS = {
    "eager": dict(label="PyTorch eager, default malloc", malloc={}, compile=None),
    "eager_tuned": dict(label="PyTorch eager, trajhost's malloc settings, fused AdamW", malloc=TUNED_MALLOC,
                        compile=None, fused_adamw=True),
    "compile": dict(label="torch.compile (inductor), trajhost's malloc settings, fused AdamW", malloc=TUNED_MALLOC,
                    compile="default", fused_adamw=True),
    "eager_tuned_channel_major": dict(
        label="PyTorch eager, trajhost's malloc settings, fused AdamW, conv models' batches channel-major",
        malloc=TUNED_MALLOC, compile=None, channel_major=True, fused_adamw=True),
    "compile_channel_major": dict(
        label="torch.compile (inductor), trajhost's malloc settings, fused AdamW, conv models' batches channel-major",
        malloc=TUNED_MALLOC, compile="default", channel_major=True, fused_adamw=True),
    "compile_max_autotune": dict(label="torch.compile mode=max-autotune, trajhost's malloc settings, fused AdamW",
                                 malloc=TUNED_MALLOC, compile="max-autotune", fused_adamw=True),
}
DEFAULT_PEERS = ["eager", "eager_tuned", "compile", "eager_tuned_channel_major", "compile_channel_major"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, threads, verbose, omp_wait_policy=None):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if omp_wait_policy:
            self.env["OMP_WAIT_POLICY"] = omp_wait_policy
        self.verbose = verbose

    def json(self, cmd):
        start = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise SystemExit(f"bench: `{' '.join(cmd)}` failed ({p.returncode}):\n{p.stderr[-4000:]}")
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if not lines:
            raise SystemExit(f"bench: `{' '.join(cmd)}` printed no JSON:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        result = json.loads(lines[-1])
        result["process_wall_s"] = wall
        if self.verbose:
            log(f"  {wall:6.1f}s  {' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)}")
        return result


class WorkerFailed(Exception):
    pass


class Worker:
    """One served measurement process (`--serve`): warm-up, then a timed block per `run`."""

    def __init__(self, name, cmd, env, tmp):
        self.name, self.cmd = name, cmd
        self.err_path = os.path.join(tmp, f"stderr-{name}.txt")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.buffer = b""
        self.started = time.perf_counter()

    def stderr_tail(self, n=1500):
        self.err.flush()
        with open(self.err_path, errors="replace") as f:
            return f.read()[-n:]

    def read_json(self, timeout):
        """The next JSON line on its stdout; WorkerFailed if it exits or `timeout` s pass first."""
        deadline = time.perf_counter() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.startswith(b"{"):
                    return json.loads(line)
            left = deadline - time.perf_counter()
            if left <= 0:
                self.kill()
                raise WorkerFailed(f"no answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], min(left, 5.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    raise WorkerFailed(f"exited with {self.proc.returncode}: {self.stderr_tail()}")
                self.buffer += chunk

    def send(self, command):
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerFailed(f"cannot send {command!r}: {e}; {self.stderr_tail()}")

    def ready(self, timeout):
        msg = self.read_json(timeout)
        if not msg.get("ready"):
            raise WorkerFailed(f"expected ready, got {msg}")
        return time.perf_counter() - self.started

    def block(self, timeout):
        self.send("run")
        return self.read_json(timeout)

    def finish(self, timeout):
        self.send("stop")
        self.proc.stdin.close()
        result = self.read_json(timeout)
        self.proc.wait(timeout=timeout)
        self.err.close()
        return result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def compile_unavailable():
    """Why torch.compile cannot run here, or None: inductor's CPU backend needs a C++ compiler."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return f"no C++ compiler ({cxx}) on PATH: inductor's CPU backend compiles C++ kernels"
    return None


def peer_env(runner, peer):
    return dict(runner.env, **PEERS[peer]["malloc"])


def interleaved_row(runner, rust, py, name, what, data, cfg, threads, peers, tmp, ready_timeout):
    """One training or inference row: every side's process warmed up, then `pairs` rounds of one
    block per side, the order rotated each round."""
    args = ["--data", data, "--batch", str(cfg["batch"]), "--warmup", str(cfg["warmup"]),
            "--steps", str(cfg["block_steps"]), "--threads", str(threads), "--serve"]
    sides = {"trajhost": dict(cmd=[rust, what, "--plugin", name] + args, env=runner.env)}
    errors = {}
    for peer in peers:
        compile_mode = PEERS[peer]["compile"]
        if compile_mode and compile_unavailable():
            errors[peer] = compile_unavailable()
            continue
        cmd = py + [what, "--backbone", name] + args + (["--compile", compile_mode] if compile_mode else [])
        if PEERS[peer].get("channel_major"):
            cmd.append("--channel-major")
        if PEERS[peer].get("fused_adamw") and what == "train":
            cmd.append("--fused-adamw")
        sides[peer] = dict(cmd=cmd, env=peer_env(runner, peer))
    workers = {side: Worker(f"{name}-{what}-{side}", s["cmd"], s["env"], tmp) for side, s in sides.items()}
    setup_s = {}
    for side, w in workers.items():
        try:
            setup_s[side] = w.ready(ready_timeout)
        except WorkerFailed as e:
            if side == "trajhost":
                raise SystemExit(f"bench: trajhost {what} {name} failed: {e}")
            errors[side] = f"did not start: {e}"
            w.kill()
    alive = [side for side in workers if side not in errors]
    blocks = {side: [] for side in sides}
    orders = []
    for k in range(cfg["pairs"]):
        order = alive[k % len(alive):] + alive[:k % len(alive)]
        orders.append(order)
        for side in order:
            if side in errors:
                blocks[side].append(None)
                continue
            try:
                blocks[side].append(workers[side].block(ready_timeout)["videos_per_s"])
            except WorkerFailed as e:
                if side == "trajhost":
                    raise SystemExit(f"bench: trajhost {what} {name} failed: {e}")
                errors[side] = f"failed in round {k}: {e}"
                blocks[side].append(None)
    out = {}
    for side in list(sides) + [p for p in peers if p not in sides]:
        entry = dict(blocks=blocks.get(side, []))
        if side in errors:
            entry["error"] = errors[side]
            if side in workers:
                workers[side].kill()
        else:
            final = workers[side].finish(ready_timeout)
            final.pop("blocks", None)
            entry.update(setup_s=setup_s[side], **{k: final.get(k) for k in [
                "peak_rss_kib", "minor_faults_per_step", "steps", "timed_steps", "videos", "seconds",
                "videos_per_s", "malloc_env", "compile", "torch", "final_loss", "accuracy"] if k in final})
        out[side] = entry
    med = {side: median([b for b in e["blocks"] if b]) for side, e in out.items()}
    log(f"  {name} {what}: " + ", ".join(f"{side} {v:.1f}" for side, v in med.items() if v) + " videos/s (median block)")
    return dict(sides=out, orders=orders)


def median(values):
    values = sorted(values)
    if not values:
        return None
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def check_parity(rust, py):
    """The PyTorch modules must have exactly the plugins' parameters (count and shapes)."""
    problems = []
    for name in BACKBONES:
        r, p = rust[name], py[name]
        for key in ["feature_dim", "backbone", "heads", "total", "backbone_shapes", "head_shapes"]:
            if r[key] != p[key]:
                shown = (r[key], p[key]) if not key.endswith("shapes") else ("(differ)", "(differ)")
                problems.append(f"{name}.{key}: trajhost {shown[0]} vs PyTorch {shown[1]}")
    return problems


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "")
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=platform.release(),
                avx512_bf16="avx512_bf16" in flags, amx_bf16="amx_bf16" in flags, avx2="avx2" in flags)


def cli_train(runner, trajhost, name, data, threads, batch, out_dir, repeats):
    """`trajhost train` itself, one epoch, its own videos/s from final_metrics.json; the best
    of `repeats` runs, as for the other rows (one epoch is a single short sample)."""
    config = os.path.join(out_dir, "bench-train.ron")
    with open(config, "w") as f:
        f.write(f"""(phase: "bench", epochs: 1, batch_size: {batch}, lr: 1e-3, weight_decay: 0.01,
  warmup_steps: 50, cosine: true, min_lr: 1e-5, grad_clip: Some(1.0), checkpoint_interval: 1,
  keep_checkpoints: 1, early_stopping: None, classification_weight: 1.0, prediction_weight: 1.0,
  predict_future: 5, seed: 42, backbone: "(preset: \\"cpu\\")", max_train_samples: None,
  time_budget_minutes: None)
""")
    run_dir = os.path.join(out_dir, f"run-{name}")
    cmd = [trajhost, "train", "--plugin", name, "--data", data, "--config", config, "--out", run_dir,
           "--threads", str(threads), "--device", "cpu"]
    runs = []
    for _ in range(repeats):
        shutil.rmtree(run_dir, ignore_errors=True)
        start = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=runner.env, capture_output=True, text=True)
        if p.returncode != 0:
            return dict(error=p.stderr[-2000:])
        with open(os.path.join(run_dir, "final_metrics.json")) as f:
            final = json.load(f)
        runs.append(dict(videos_per_s=final["train_videos_per_second"], process_wall_s=time.perf_counter() - start))
    return dict(max(runs, key=lambda r: r["videos_per_s"]), runs=[r["videos_per_s"] for r in runs])


def load_existing(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_results(path, results):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def render_docs(bin_dir, path):
    """Rewrites docs/bench.md's and the README's generated blocks from the results file."""
    p = subprocess.run([os.path.join(bin_dir, "trajhost-bench"), "docs", "--results", path],
                       cwd=ROOT, capture_output=True, text=True)
    log("docs/bench.md and README.md re-rendered from " + os.path.relpath(path, ROOT) if p.returncode == 0
        else f"bench: re-rendering the docs failed: {p.stderr[-2000:]}")


def report(bin_dir, path):
    """The tables, rendered from the results file by `trajhost-bench report` (the same renderer
    that writes docs/bench.md and the README's speed section)."""
    p = subprocess.run([os.path.join(bin_dir, "trajhost-bench"), "report", "--results", path],
                       cwd=ROOT, capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else f"(report failed: {p.stderr[-2000:]})"


def first_reached(records, key, ok):
    """The first epoch record whose validation `key` satisfies `ok`, as {epoch, elapsed_s, value}."""
    for r in records:
        if ok(r["val"][key]):
            return dict(epoch=r["epoch"], elapsed_s=r["elapsed_seconds"], value=r["val"][key])
    return None


def time_to_accuracy(runner, trajhost, rust, name, data, config_text, threads, out_dir):
    """`trajhost train` with the time-to-accuracy recipe; seconds until val accuracy ≥ 90 % and
    val MSE ≤ 0.05, from metrics.jsonl (`elapsed_seconds`: training and validation time so far)."""
    config = os.path.join(out_dir, f"tta-{name}.ron")
    with open(config, "w") as f:
        f.write(config_text)
    run_dir = os.path.join(out_dir, f"tta-{name}")
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [trajhost, "train", "--plugin", name, "--data", data, "--config", config, "--out", run_dir,
           "--threads", str(threads), "--device", "cpu"]
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=runner.env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        return dict(error=p.stderr[-2000:])
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(l) for l in f if l.strip()]
    epochs = [dict(epoch=r["epoch"], elapsed_s=r["elapsed_seconds"], val_accuracy=r["val"]["accuracy"],
                   val_mse=r["val"]["mse"]) for r in records]
    log(f"  {name}: " + "; ".join(f"ep {e['epoch']} {e['elapsed_s']:.0f}s acc {e['val_accuracy']:.3f} mse {e['val_mse']:.4f}"
                                  for e in epochs))
    return dict(accuracy_90=first_reached(records, "accuracy", lambda v: v >= 0.9),
                mse_0_05=first_reached(records, "mse", lambda v: v <= 0.05),
                epochs=epochs, process_wall_s=wall)


def tta_config(minutes, epochs):
    """configs/time-to-accuracy.ron with the run's time budget and epoch cap."""
    with open(os.path.join(ROOT, "configs", "time-to-accuracy.ron")) as f:
        text = f.read()
    text = re.sub(r"time_budget_minutes:\s*[^,\n]+,", f"time_budget_minutes: Some({float(minutes)}),", text)
    return re.sub(r"\bepochs:\s*\d+,", f"epochs: {int(epochs)},", text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the harness, numbers mean nothing")
    ap.add_argument("--out", default=None,
                    help="default bench/results.json; with --quick target/bench-quick.json (never committed)")
    ap.add_argument("--backbones", default=",".join(BACKBONES))
    ap.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                    help=f"PyTorch peers, comma-separated, from {list(PEERS)} (default %(default)s)")
    ap.add_argument("--max-autotune", action="store_true", help="also the compile_max_autotune peer (slow to compile)")
    ap.add_argument("--ready-timeout", type=float, default=900.0,
                    help="seconds a side may take to start, compile and warm up, or to time one block")
    ap.add_argument("--time-to-accuracy", action="store_true",
                    help="run the time-to-accuracy measurement instead of the throughput rows")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--cli-train", choices=["on", "off"], default=None,
                    help="also time `trajhost train` itself for one epoch (default: on, off with --quick)")
    ap.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE", "unset"], default=None,
                    help="OMP_WAIT_POLICY for every side (default: as in the environment; PASSIVE with --quick, "
                         "since spinning OpenMP workers make libtorch collapse on a busy machine)")
    for key, value in FULL.items():
        if key != "cli_train":
            ap.add_argument("--" + key.replace("_", "-"), type=type(value), default=None)
    a = ap.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    for key in cfg:
        value = getattr(a, key, None)
        if value is not None:
            cfg[key] = value
    if a.cli_train:
        cfg["cli_train"] = a.cli_train == "on"
    if a.out is None:
        a.out = os.path.join(ROOT, "target", "bench-quick.json") if a.quick else DEFAULT_OUT
    backbones = [b for b in a.backbones.split(",") if b]
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown:
        raise SystemExit(f"bench: unknown backbone(s) {unknown}; expected some of {BACKBONES}")
    peers = [p for p in a.peers.split(",") if p] + (["compile_max_autotune"] if a.max_autotune else [])
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        raise SystemExit(f"bench: unknown or no peers {unknown}; expected some of {list(PEERS)}")
    if cfg["pairs"] < 1 or cfg["block_steps"] < 1:
        raise SystemExit("bench: --pairs and --block-steps must be at least 1")
    threads = a.threads
    rust = os.path.join(a.bin_dir, "trajhost-bench")
    trajhost = os.path.join(a.bin_dir, "trajhost")
    py = [sys.executable, os.path.join(HERE, "measure.py")]
    policy = a.omp_wait_policy or ("PASSIVE" if a.quick else os.environ.get("OMP_WAIT_POLICY"))
    policy = None if policy == "unset" else policy
    runner = Runner(threads, verbose=True, omp_wait_policy=policy)
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="trajhost-bench-")
    meta = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command="scripts/bench " + " ".join(sys.argv[1:]),
        quick=a.quick, threads=threads, omp_wait_policy=policy or "(unset)", machine=machine(),
        python=platform.python_version(), commit=git_commit(),
    )
    try:
        import torch
        meta["torch"] = torch.__version__
    except ImportError:
        pass
    results = load_existing(a.out)
    if a.time_to_accuracy:
        try:
            config_text = tta_config(cfg["tta_minutes"], cfg["tta_epochs"])
            log(f"time to accuracy: {cfg['tta_samples']} videos, `trajhost train` per backbone, "
                f"at most {cfg['tta_minutes']} min / {cfg['tta_epochs']} epochs each")
            data = os.path.join(tmp, "data")
            runner.json([rust, "generate", "--out", data, "--samples", str(cfg["tta_samples"]), "--threads", str(threads)])
            rows = {name: time_to_accuracy(runner, trajhost, rust, name, data, config_text, threads, tmp)
                    for name in backbones}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        results["time_to_accuracy"] = dict(
            meta=dict(meta, samples=cfg["tta_samples"], minutes=cfg["tta_minutes"], epochs=cfg["tta_epochs"],
                      config="configs/time-to-accuracy.ron", bars=dict(accuracy=0.9, mse=0.05),
                      wall_s=time.perf_counter() - started),
            backbones=rows)
        write_results(a.out, results)
        if os.path.abspath(a.out) == DEFAULT_OUT:
            render_docs(a.bin_dir, a.out)
        print(report(a.bin_dir, a.out))
        print(f"\nwritten: {os.path.relpath(a.out, ROOT)} (time_to_accuracy){', QUICK MODE: numbers mean nothing' if a.quick else ''}")
        return

    meta.update(schema=2, settings=cfg, allocator_env=TUNED_MALLOC,
                peers={p: dict(label=PEERS[p]["label"], malloc_env=PEERS[p]["malloc"], compile=PEERS[p]["compile"], channel_major=PEERS[p].get("channel_major", False), fused_adamw=PEERS[p].get("fused_adamw", False))
                       for p in peers},
                compile_unavailable=compile_unavailable())
    kept = {k: results[k] for k in ["time_to_accuracy"] if k in results}
    results = dict(meta=meta, **kept)
    try:
        # 1. Parameter parity.
        log("[1/5] parity: parameter counts and shapes, and the same function (shape-determined weights)")
        rp, pp = runner.json([rust, "params"]), runner.json(py + ["params"])
        problems = check_parity(rp, pp)
        if problems:
            raise SystemExit("bench: the PyTorch models do not match the plugins:\n  " + "\n  ".join(problems))
        rf, pf = runner.json([rust, "forward-check"]), runner.json(py + ["forward-check"])
        for name in BACKBONES:
            r, p = rf[name]["values"], pf[name]["values"]
            scale = max([1.0] + [abs(x) for x in r])
            diff = max(abs(x - y) for x, y in zip(r, p)) if rf[name]["shape"] == pf[name]["shape"] else float("inf")
            if diff > 2e-6 * scale:
                raise SystemExit(f"bench: PyTorch {name} computes another function than the plugin (max |Δ| = {diff:g})")
            rp[name]["forward_max_abs_diff"] = diff
        results["params"] = {n: {k: rp[n][k] for k in ["feature_dim", "backbone", "heads", "total", "forward_max_abs_diff"]}
                             for n in BACKBONES}

        # 2. Data generation.
        log("[2/5] data generation")
        gen = dict(
            trajhost_render=runner.json([rust, "render", "--samples", str(cfg["render_rust"]), "--threads", str(threads)]),
            trajhost_render_1worker=runner.json([rust, "render", "--samples", str(max(cfg["render_rust"] // threads, 1)), "--threads", "1"]),
            numpy_render=runner.json(py + ["render", "--samples", str(cfg["render_numpy"])]),
        )
        data = os.path.join(tmp, "data")
        gen["trajhost_generate"] = runner.json([rust, "generate", "--out", data, "--samples", str(cfg["train_samples"]), "--threads", str(threads)])
        results["datagen"] = gen

        # 3. Training and inference throughput, 4. peak memory.
        log(f"[3/5] training and inference: trajhost vs {', '.join(peers)}, {cfg['pairs']} interleaved pairs "
            f"of {cfg['block_steps']}-step blocks per row")
        model_rows = {}
        for name in backbones:
            row = {}
            for what in ["train", "infer"]:
                row[what] = interleaved_row(runner, rust, py, name, what, data, cfg, threads, peers, tmp, a.ready_timeout)
            if cfg["cli_train"]:
                row["cli_train"] = cli_train(runner, trajhost, name, data, threads, cfg["batch"], tmp, cfg["repeats"])
            model_rows[name] = row
        results["models"] = model_rows

        # 5. The plugin boundary.
        log("[4/5] plugin boundary")
        results["boundary"] = {
            name: runner.json([os.path.join(a.bin_dir, f"boundary_{name}"), "--threads", str(threads),
                               "--batch", str(cfg["boundary_batch"]), "--rounds", str(cfg["boundary_rounds"]),
                               "--small-rounds", str(cfg["boundary_small_rounds"])])
            for name in backbones
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["meta"]["bench_wall_s"] = time.perf_counter() - started

    log("[5/5] results")
    write_results(a.out, results)
    if os.path.abspath(a.out) == DEFAULT_OUT:
        render_docs(a.bin_dir, a.out)
    print(report(a.bin_dir, a.out))
    print(f"\nwritten: {os.path.relpath(a.out, ROOT)}  ({results['meta']['bench_wall_s']:.0f} s"
          f"{', QUICK MODE: harness check only, the numbers mean nothing' if a.quick else ''})")


def git_commit():
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (p.stdout.strip() or "unknown") + ("+changes" if dirty else "")


if __name__ == "__main__":
    main()
