"""Runs both sides of the benchmark on this machine, in one run, with the same thread count,
and writes `bench/results.json` and a table of ratios. Started by `scripts/bench`.

Every measurement is its own process (so its peak memory is its own); the two sides of each row
run back to back, alternating which goes first on each repeat, and the best repeat of each side
is compared (the least-disturbed run of each).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKBONES = ["i3d", "slowfast", "transformer", "magvit"]

QUICK = dict(render_rust=16, render_numpy=4, train_samples=48, batch=4, warmup=1, steps=1, repeats=1,
             boundary_batch=2, boundary_rounds=2, boundary_small_rounds=5, cli_train=False)
FULL = dict(render_rust=2000, render_numpy=200, train_samples=1000, batch=32, warmup=3, steps=15, repeats=3,
            boundary_batch=32, boundary_rounds=40, boundary_small_rounds=200, cli_train=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, threads, verbose, omp_wait_policy=None):
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
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


def best(runs):
    return max(runs, key=lambda r: r["videos_per_s"])


def ratio(a, b):
    return a / b if b else float("nan")


def mib(kib):
    return None if kib is None else kib / 1024.0


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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the harness, numbers mean nothing")
    ap.add_argument("--out", default=None,
                    help="default bench/results.json; with --quick target/bench-quick.json (never committed)")
    ap.add_argument("--backbones", default=",".join(BACKBONES))
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--cli-train", choices=["on", "off"], default=None,
                    help="also time `trajhost train` itself for one epoch (default: on, off with --quick)")
    ap.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE", "unset"], default=None,
                    help="OMP_WAIT_POLICY for both sides (default: as in the environment; PASSIVE with --quick, "
                         "since spinning OpenMP workers make libtorch collapse on a busy machine)")
    for key in FULL:
        if key != "cli_train":
            ap.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    a = ap.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    for key in cfg:
        value = getattr(a, key, None)
        if value is not None:
            cfg[key] = value
    if a.cli_train:
        cfg["cli_train"] = a.cli_train == "on"
    if a.out is None:
        a.out = os.path.join(ROOT, "target", "bench-quick.json") if a.quick else os.path.join(ROOT, "bench", "results.json")
    backbones = [b for b in a.backbones.split(",") if b]
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown:
        raise SystemExit(f"bench: unknown backbone(s) {unknown}; expected some of {BACKBONES}")
    threads = a.threads
    rust = os.path.join(a.bin_dir, "trajhost-bench")
    trajhost = os.path.join(a.bin_dir, "trajhost")
    py = [sys.executable, os.path.join(HERE, "measure.py")]
    policy = a.omp_wait_policy or ("PASSIVE" if a.quick else os.environ.get("OMP_WAIT_POLICY"))
    policy = None if policy == "unset" else policy
    runner = Runner(threads, verbose=True, omp_wait_policy=policy)
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="trajhost-bench-")
    results = dict(
        meta=dict(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command="scripts/bench " + " ".join(sys.argv[1:]),
            quick=a.quick, threads=threads, settings=cfg, omp_wait_policy=policy or "(unset)", machine=machine(), python=platform.python_version(),
        ),
    )
    try:
        import torch
        results["meta"]["torch"] = torch.__version__
    except ImportError:
        pass
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
        log("[3/5] training and inference throughput")
        model_rows = {}
        for name in backbones:
            row = {}
            for what in ["train", "infer"]:
                args = ["--data", data, "--batch", str(cfg["batch"]), "--warmup", str(cfg["warmup"]),
                        "--steps", str(cfg["steps"]), "--threads", str(threads)]
                runs = {"trajhost": [], "pytorch": []}
                for rep in range(cfg["repeats"]):
                    order = ["trajhost", "pytorch"] if rep % 2 == 0 else ["pytorch", "trajhost"]
                    for side in order:
                        if side == "trajhost":
                            runs[side].append(runner.json([rust, what, "--plugin", name] + args))
                        else:
                            runs[side].append(runner.json(py + [what, "--backbone", name] + args))
                row[what] = {side: dict(best=best(r), runs=[x["videos_per_s"] for x in r]) for side, r in runs.items()}
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
    table = render_table(results, threads)
    results["table"] = table
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print(table)
    print(f"\nwritten: {os.path.relpath(a.out, ROOT)}  ({results['meta']['bench_wall_s']:.0f} s"
          f"{', QUICK MODE: harness check only, the numbers mean nothing' if a.quick else ''})")


def render_table(r, threads):
    g = r["datagen"]
    rows = []
    tr, tr1, nr = g["trajhost_render"]["videos_per_s"], g["trajhost_render_1worker"]["videos_per_s"], g["numpy_render"]["videos_per_s"]
    rows.append((f"data generation, render ({threads} workers vs numpy)", f"{tr:.0f} videos/s", f"{nr:.1f} videos/s", ratio(tr, nr), "≥ 20×"))
    rows.append(("data generation, render (1 worker vs numpy)", f"{tr1:.0f} videos/s", f"{nr:.1f} videos/s", ratio(tr1, nr), "≥ 20×"))
    te = g["trajhost_generate"]["videos_per_s"]
    rows.append((f"data generation, end to end incl. shard writing ({threads} workers)", f"{te:.0f} videos/s", f"{nr:.1f} videos/s (render only)", ratio(te, nr), "≥ 20×"))
    for name, m in r["models"].items():
        for what, label in [("train", "training"), ("infer", "inference")]:
            t, p = m[what]["trajhost"]["best"]["videos_per_s"], m[what]["pytorch"]["best"]["videos_per_s"]
            rows.append((f"{name} {label}", f"{t:.1f} videos/s", f"{p:.1f} videos/s", ratio(t, p), "≥ 1.0×"))
        if "cli_train" in m and "videos_per_s" in m["cli_train"]:
            c = m["cli_train"]["videos_per_s"]
            p = m["train"]["pytorch"]["best"]["videos_per_s"]
            rows.append((f"{name} training, `trajhost train` 1 epoch (incl. first steps)", f"{c:.1f} videos/s", f"{p:.1f} videos/s", ratio(c, p), "≥ 1.0×"))
    for name, b in r.get("boundary", {}).items():
        for mode in ["infer", "train"]:
            x = b[mode]
            rows.append((f"{name} plugin boundary, {mode} (plugin vs linked)",
                         f"{x['plugin']['median_s'] * 1e3:.1f} ms/batch", f"{x['linked']['median_s'] * 1e3:.1f} ms/batch (linked)",
                         None, f"{x['overhead_pct']:+.2f}% (< 2%)"))
        c = b["small_call_us"]
        rows.append((f"{name} plugin boundary, one small call (1 video × 2 frames)", f"{c['plugin']:.0f} µs",
                     f"{c['linked']:.0f} µs (linked)", None, f"{c['plugin'] - c['linked']:+.0f} µs per call"))
    for name, m in r["models"].items():
        for what in ["train", "infer"]:
            t, p = mib(m[what]["trajhost"]["best"]["peak_rss_kib"]), mib(m[what]["pytorch"]["best"]["peak_rss_kib"])
            rows.append((f"{name} {what} peak RSS", f"{t:.0f} MiB", f"{p:.0f} MiB", ratio(p, t), "PyTorch / trajhost"))
    rows.append(("data generation peak RSS", f"{mib(g['trajhost_render']['peak_rss_kib']):.0f} MiB",
                 f"{mib(g['numpy_render']['peak_rss_kib']):.0f} MiB",
                 ratio(g['numpy_render']['peak_rss_kib'], g['trajhost_render']['peak_rss_kib']), "numpy / trajhost"))
    for name, m in r["models"].items():
        for what in ["train", "infer"]:
            t, p = (m[what][side]["best"].get("minor_faults_per_step") for side in ["trajhost", "pytorch"])
            if t is not None and p is not None:
                rows.append((f"{name} {what} minor page faults per step", f"{t:.0f}", f"{p:.0f}", None, "(fresh pages the kernel zeroes)"))
    lines = ["| measurement | trajhost | PyTorch / numpy | ratio | target |", "| --- | ---: | ---: | ---: | --- |"]
    for label, a, b, x, target in rows:
        lines.append(f"| {label} | {a} | {b} | {'' if x is None else f'{x:.2f}×'} | {target} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
