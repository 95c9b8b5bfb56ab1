"""Benchmark: maps at the cost of one forward pass, with flat memory (issue: performance and scale).

Measures, on the same data and batch size, each in a fresh process (so peak resident
memory belongs to that measurement alone):

1. ``forward``  — the model over the split, no hooks (inference mode);
2. ``maps``     — AOMscope: counts for all conv layers (or the given layers) in one pass,
   then eqs. 1–4 from the counts;
3. ``collect``  — the plain collect-then-compute way: hooks append every activation,
   then eqs. 1–4 on the stacked arrays; run on a subset small enough to fit and
   extrapolated linearly (time and activation memory) to the full split.

Cases: the paper's MNIST model over MNIST train (60k), conv layers and FC hidden layers;
``torchvision:resnet18`` (num_classes=10) on FashionMNIST resized to 32×32 and repeated to
3 channels, with its layer1–layer4 block outputs. Also ``maps`` at 10k vs 60k images.

Usage::

    python benchmarks/bench_maps.py [--data-root DIR] [--device cpu|cuda] [--quick] [--json FILE]
    python benchmarks/bench_maps.py --whole-process [--runs 3] [--device cpu|cuda] [--profile]

Timings are medians over ``--repeat`` passes after one warm-up pass.

``--whole-process`` times whole commands instead, each a fresh process from an empty cache:
``python -m aomcore maps`` (MNIST train, batch 1000, writing ``maps.npz``) against a bare
script that loads the same data and runs the same model forward in ``torch.inference_mode``
over the same batches — once with glibc's default allocator settings and once with the
settings the CLI uses (:mod:`aomcore.base.allocator`, here through glibc's ``MALLOC_*`` variables).
Models: the paper's (``zoo:paper_mnist``: the default layers conv1 and conv2, and with fc1) and
``benchmarks/tap_model.py``
(BatchNorm, a residual add, a functional ReLU; two 12×28×28 taps, one 24×10×10, one FC 64).
``--runs`` runs of each, interleaved; the ratio is of the medians. ``--profile`` adds one
maps run under cProfile and prints where its time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = {
    "mnist-conv": dict(arch="zoo:paper_mnist", dataset="mnist", layers=None, prep={}),
    "mnist-fc": dict(arch="zoo:paper_mnist", dataset="mnist", layers=["fc1"], prep={}),
    "resnet18-blocks": dict(arch="torchvision:resnet18", dataset="fashion-mnist",
                            layers=["layer1", "layer2", "layer3", "layer4"], prep={"channels": 3, "resize": 32}),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(case: str, mode: str, n: int, batch_size: int, device: str, data_root: str, repeat: int) -> dict:
    """Run one measurement in this process and return its numbers."""
    import numpy as np
    import torch

    import aomcore

    spec = CASES[case]
    prep = aomcore.Preprocessing(**spec["prep"])
    data = aomcore.load_dataset(spec["dataset"], "train", data_root, prep)
    if n < len(data):  # a stratified-enough prefix: MNIST-style files are shuffled
        data = aomcore.ImageDataset(data.images[:n], data.labels[:n], data.classes, data.name, "train",
                                    data.scale, data.preprocessing)
    torch.manual_seed(0)
    model = aomcore.build_model(spec["arch"], 10, data.input_shape).eval().to(device)
    layers = spec["layers"]
    rss_start = _rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def forward():
        with torch.inference_mode():
            for x, _ in data.batches(batch_size, device):
                model(x)
        sync()

    def maps():
        result = aomcore.compute_maps(model, data, layers, batch_size=batch_size, device=device)
        for m in result.values():  # eqs. 1-4 from the counts
            _ = (m.aom, m.odm, m.csm, m.selectivity)
        sync()

    def collect():
        names = [la.tap for la in aomcore.resolve_layers(
            aomcore.list_layers(model, data.input_shape, device, include_all=True), layers)]
        store = {name: [] for name in names}
        labels = []
        with aomcore.forward_hooks(model, {nm: (lambda out, nm=nm: store[nm].append(out.cpu().numpy()))
                                           for nm in names}), torch.inference_mode():
            for x, y in data.batches(batch_size, device):
                model(x)
                labels.append(y.cpu().numpy())
        y = np.concatenate(labels)
        for name in names:
            acts = np.concatenate(store.pop(name))  # (N, K, ...)
            acts = acts.reshape(acts.shape[0], acts.shape[1], -1) if acts.ndim != 4 else acts
            m = np.stack([(acts[y == c] > 0).mean(axis=0) for c in range(10)], axis=1)  # eq. 1
            m = m.reshape(m.shape[0], 10, -1)
            _ = np.abs(m[:, None] - m[None, :]).mean(axis=(2, 3)) if m.shape[0] <= 128 else None  # eq. 2
            s = (10 * m - m.sum(axis=1, keepdims=True)) / 9  # eq. 3
            avg = s.mean(axis=2)
            _ = np.abs(avg[:, :, None] - avg[:, None, :]).sum(axis=(1, 2))  # eq. 4
            del acts

    fn = {"forward": forward, "maps": maps, "collect": collect}[mode]
    times = []
    for i in range(repeat + (1 if mode != "collect" else 0)):
        t0 = time.perf_counter()
        fn()
        if mode == "collect" or i > 0:  # the first pass of forward/maps warms up
            times.append(time.perf_counter() - t0)
    out = {"case": case, "mode": mode, "n": len(data), "batch_size": batch_size, "device": device,
           "seconds": statistics.median(times), "all_seconds": [round(t, 3) for t in times],
           "images_per_s": len(data) / statistics.median(times), "peak_rss_mb": _rss_mb(),
           "rss_before_mb": rss_start}
    if device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


WHOLE = {
    "paper": dict(arch="zoo:paper_mnist", layers=None),  # the command's default: every conv layer
    "paper+fc1": dict(arch="zoo:paper_mnist", layers="conv1,conv2,fc1"),
    "four-tap": dict(arch=str(REPO / "benchmarks" / "tap_model.py") + ":TapNet", layers="conv1,block,conv3,fc1"),
}
_WHOLE_BATCH = 1000  # images per batch in both commands
#: What :func:`aomcore.base.allocator.reuse_freed_memory` sets, as glibc's environment tunables.
_REUSE_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def _bare(arch: str, weights: str, data_root: str, batch_size: int, device: str) -> None:
    """The floor: load MNIST train and the model, run it forward over the batches; nothing else."""
    import torch

    import aomcore

    data = aomcore.load_dataset("mnist", "train", data_root)
    model = aomcore.load_model(arch, weights, data.num_classes, data.input_shape).model.to(device).eval()
    with torch.inference_mode():
        for x, _ in data.batches(batch_size, torch.device(device)):
            model(x)
    if device == "cuda":
        torch.cuda.synchronize()


def _weights(case: str, folder: Path) -> Path:
    """Seeded random weights for ``case`` (BatchNorm statistics and affine terms randomised too)."""
    import torch
    from safetensors.torch import save_file

    import aomcore

    torch.manual_seed(0)
    model = aomcore.build_model(WHOLE[case]["arch"], 10, (1, 28, 28))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    path = folder / f"{case}.safetensors"
    save_file(model.state_dict(), str(path))
    return path


def _timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def _profile_breakdown(path: Path) -> dict[str, float]:
    """Seconds of a profiled maps run spent in its parts (cumulative times of named functions)."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}

    def cum(file_end: str, name: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file_end) and n == name)

    total = max(v[3] for v in stats.values())
    parts = {"whole process (profiled)": total,
             "imports before the command": total - cum("aomcore/cli.py", "main"),
             "load the dataset": cum("aomcore/data.py", "load_dataset"),
             "load the weights": cum("aomcore/workflow.py", "load_model"),
             "dataset digest (cache key)": cum("aomcore/data.py", "digest"),
             "model copy": cum("copy.py", "deepcopy"),
             "layer list (one dry forward)": cum("aomcore/layers.py", "list_layers"),
             "the pass (forward + counting)": cum("aomcore/maps.py", "compute_maps") - cum("aomcore/layers.py",
                                                                                           "list_layers"),
             "  of which counting": cum("aomcore/maps.py", "update"),
             "write the cache entry": cum("aomcore/cache.py", "save_arrays"),
             "ODM, CSM, ordering, write maps.npz": cum("aomcore/export.py", "save_maps_npz")}
    parts["the rest (argument checks, printing, ...)"] = total - sum(
        v for k, v in parts.items() if k not in ("whole process (profiled)", "  of which counting"))
    return parts


def whole_process(args) -> int:
    import tempfile

    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(REPO))
    env.pop("AOMSCOPE_CACHE_DIR", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in args.whole_cases.split(","):
            weights = _weights(case, tmp)
            spec = WHOLE[case]
            bare = [sys.executable, __file__, "--bare", spec["arch"], str(weights), "--data-root", args.data_root,
                    "--device", args.device]
            command = ["-m", "aomcore", "maps", "--arch", spec["arch"], "--weights", str(weights), "--dataset", "mnist",
                       "--data-root", args.data_root, *(["--layers", spec["layers"]] if spec["layers"] else []),
                       "--batch-size", str(_WHOLE_BATCH), "--device", args.device]
            times = {"bare": [], "bare, freed memory reused": [], "maps": []}
            for run in range(args.runs):
                times["bare"].append(_timed(bare, env))
                times["bare, freed memory reused"].append(_timed(bare, {**env, **_REUSE_ENV}))
                maps = [sys.executable, *command, "--cache-dir", str(tmp / f"cache{run}"), "--out",
                        str(tmp / f"{case}{run}.npz")]
                times["maps"].append(_timed(maps, env))
            median = {k: statistics.median(v) for k, v in times.items()}
            row = {"case": case, "runs": {k: [round(t, 2) for t in v] for k, v in times.items()},
                   "median_s": median, "ratio": median["maps"] / median["bare"],
                   "ratio_same_allocator": median["maps"] / median["bare, freed memory reused"]}
            if args.profile:
                prof = tmp / f"{case}.prof"
                _timed([sys.executable, "-m", "cProfile", "-o", str(prof), *command, "--cache-dir",
                        str(tmp / "cache-profiled"), "--out", str(tmp / "profiled.npz")], env)
                row["profile"] = _profile_breakdown(prof)
            rows.append(row)
    print(f"whole process · device {args.device} · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} CPUs · MNIST train, 60,000 images, batch 1000 · median of {args.runs}")
    print(f"{'model':<10} {'bare s':>7} {'bare, reused s':>14} {'maps s':>7} {'maps/bare':>9} {'maps/bare reused':>16}")
    for r in rows:
        m = r["median_s"]
        print(f"{r['case']:<10} {m['bare']:>7.2f} {m['bare, freed memory reused']:>14.2f} {m['maps']:>7.2f} "
              f"{r['ratio']:>9.3f} {r['ratio_same_allocator']:>16.3f}    runs: {r['runs']}")
        for part, seconds in r.get("profile", {}).items():
            print(f"    {part:<44} {seconds:6.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"whole_process": rows, "device": args.device,
                                               "date": time.strftime("%Y-%m-%d")}, indent=2))
    return 0


def _spawn(case, mode, n, args) -> dict:
    cmd = [sys.executable, __file__, "--one", case, mode, str(n), "--batch-size", str(args.batch_size),
           "--device", args.device, "--data-root", args.data_root, "--repeat", str(args.repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if proc.returncode != 0:
        raise SystemExit(f"{case}/{mode} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("AOMSCOPE_DATA_ROOT", str(REPO.parent / "shared" /
                                                                                      "datasets")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10k images instead of 60k, one repeat")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", default=None, help="write all results to this file")
    parser.add_argument("--one", nargs=3, metavar=("CASE", "MODE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--whole-process", action="store_true",
                        help="time `python -m aomcore maps` against a bare forward script, as whole processes")
    parser.add_argument("--whole-cases", default=",".join(WHOLE), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="--whole-process: runs of each command")
    parser.add_argument("--profile", action="store_true", help="--whole-process: profile one maps run")
    parser.add_argument("--bare", nargs=2, metavar=("ARCH", "WEIGHTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        _bare(*args.bare, args.data_root, _WHOLE_BATCH, args.device)
        return 0
    if args.whole_process:
        return whole_process(args)
    if args.one:
        case, mode, n = args.one
        print(json.dumps(_one(case, mode, int(n), args.batch_size, args.device, args.data_root, args.repeat)))
        return 0
    if not (Path(args.data_root) / "MNIST" / "raw").is_dir():
        raise SystemExit(f"real MNIST/FashionMNIST not found under {args.data_root}: pass --data-root DIR")
    if args.quick:
        args.repeat = 1
    full, small = (10_000, 2_000) if args.quick else (60_000, 10_000)
    subset = {"mnist-conv": 3_000, "mnist-fc": 10_000, "resnet18-blocks": 10_000}
    results, rows = [], []
    for case in args.cases.split(","):
        fwd = _spawn(case, "forward", full, args)
        maps = _spawn(case, "maps", full, args)
        maps_small = _spawn(case, "maps", small, args)
        coll = _spawn(case, "collect", min(subset[case], full), args)
        scale = full / coll["n"]
        coll_time = coll["seconds"] * scale
        coll_mem = coll["rss_before_mb"] + (coll["peak_rss_mb"] - coll["rss_before_mb"]) * scale
        results += [fwd, maps, maps_small, coll]
        rows.append({"case": case, "n": full, "forward_s": fwd["seconds"], "maps_s": maps["seconds"],
                     "maps_img_s": maps["images_per_s"], "collect_s_extrapolated": coll_time,
                     "rss_forward_mb": fwd["peak_rss_mb"], "rss_maps_mb": maps["peak_rss_mb"],
                     f"rss_maps_{small // 1000}k_mb": maps_small["peak_rss_mb"],
                     "rss_collect_extrapolated_mb": coll_mem,
                     "ratio_maps_forward": maps["seconds"] / fwd["seconds"],
                     "ratio_collect_maps_time": coll_time / maps["seconds"],
                     "ratio_collect_maps_memory": coll_mem / maps["peak_rss_mb"],
                     "added_maps_mb": maps["peak_rss_mb"] - maps["rss_before_mb"],
                     "added_collect_extrapolated_mb": coll_mem - coll["rss_before_mb"],
                     "ratio_collect_maps_added_memory": (coll_mem - coll["rss_before_mb"]) /
                     max(1.0, maps["peak_rss_mb"] - maps["rss_before_mb"]),
                     "memory_growth": maps["peak_rss_mb"] / maps_small["peak_rss_mb"] - 1,
                     "peak_gpu_mb": maps.get("peak_gpu_mb")})
    print(f"device: {args.device} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · "
          f"batch {args.batch_size} · median of {args.repeat}")
    head = (f"{'case':<16} {'images':>7} {'forward s':>9} {'maps s':>7} {'maps img/s':>10} {'maps/fwd':>8} "
            f"{'collect s*':>10} {'coll/maps':>9} {'RSS maps':>9} {'RSS small':>9} {'growth':>7} "
            f"{'RSS coll*':>10} {'mem ratio':>9} {'added maps':>10} {'added coll*':>11} {'ratio':>6}")
    print(head)
    for r in rows:
        small_key = next(k for k in r if k.startswith("rss_maps_") and k.endswith("k_mb"))
        print(f"{r['case']:<16} {r['n']:>7,} {r['forward_s']:>9.2f} {r['maps_s']:>7.2f} {r['maps_img_s']:>10,.0f} "
              f"{r['ratio_maps_forward']:>8.2f} {r['collect_s_extrapolated']:>10.1f} "
              f"{r['ratio_collect_maps_time']:>9.1f} {r['rss_maps_mb']:>8.0f}M {r[small_key]:>8.0f}M "
              f"{r['memory_growth']:>7.1%} {r['rss_collect_extrapolated_mb']:>9.0f}M "
              f"{r['ratio_collect_maps_memory']:>9.1f} {r['added_maps_mb']:>9.0f}M "
              f"{r['added_collect_extrapolated_mb']:>10.0f}M {r['ratio_collect_maps_added_memory']:>6.0f}")
    print("* collect-then-compute measured on a subset and extrapolated linearly to the full split")
    print("RSS = peak resident memory of the whole process (Python, torch, the dataset in memory); added = peak "
          "minus the resident memory just before the pass (what the method itself needs)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "runs": results, "device": args.device,
                                               "date": time.strftime("%Y-%m-%d")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
