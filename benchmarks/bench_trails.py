"""Time the training-trails job end to end on real MNIST (Rauber et al. 2017).

    python -m aomcore train --workspace W --dataset mnist --data-root /work/shared/datasets --snapshots 20
    python benchmarks/bench_trails.py --workspace W [--layer fc1] [--n 2000] [--out DIR]

Runs the ``trails`` job of the workspace's latest run in-process (``run_inline``, as the
CLI does with ``--workspace``): per snapshot one forward pass of the fixed stratified test
sample and one coupled t-SNE, then the per-class test accuracy of the last snapshot; then
bundles the trails (``hammer_bundle``) and renders them 800×800 (PNG written to DIR).
The workspace's stored trails are removed first, so the job computes rather than hits its cache.
Prints one line per stage, the process's CPU time and peak resident memory (``ru_maxrss``) and a JSON
summary: on a shared machine the CPU time says what the wall-clock time would be without the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from aomcore import Workspace, run_inline
from aomcore.rauber.trails import bundle_trails, render_trails


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--layer", default="fc1")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench_trails_"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    ws = Workspace(args.workspace)
    shutil.rmtree(ws.results_cache.root / "trails", ignore_errors=True)  # measure the computation, not a hit
    results: dict = {"load_average": os.getloadavg()}

    start = time.perf_counter()
    final = run_inline(ws, "trails", {"run": "latest", "layer": args.layer, "n": args.n})
    job = time.perf_counter() - start
    arrays = ws.results_cache.load_arrays("trails", final["result"]["key"])
    points, labels = arrays["points"], arrays["labels"]
    print(f"job (forward passes + aligned t-SNE + per-class accuracy): {job:.1f}s, "
          f"{points.shape[1]} images × {points.shape[0]} snapshots", flush=True)

    t = time.perf_counter()
    paths = bundle_trails(points, labels)
    bundle = time.perf_counter() - t
    print(f"bundle ({points.shape[1] * (points.shape[0] - 1):,} edges): {bundle:.1f}s", flush=True)
    t = time.perf_counter()
    image = render_trails(points, labels, paths=paths)
    render = time.perf_counter() - t
    from PIL import Image

    Image.fromarray(image).save(out / f"trails_{args.layer}.png")
    total = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    results |= {"layer": args.layer, "n": int(points.shape[1]), "snapshots": int(points.shape[0]),
                "job_s": round(job, 1), "bundle_s": round(bundle, 1), "render_s": round(render, 1),
                "total_s": round(total, 1), "cpu_s": round(cpu, 1), "peak_rss_mib": round(peak_mib),
                "neighborhood_hit": [round(float(v), 3) for v in arrays["neighborhood_hit"]],
                "class_neighborhood_hit": [round(float(v), 3) for v in arrays["class_neighborhood_hit"]],
                "class_accuracy": [round(float(v), 4) for v in arrays["class_accuracy"]],
                "load_average_after": os.getloadavg(), "png": str(out / f"trails_{args.layer}.png")}
    print(f"render 800×800: {render:.1f}s; total {total:.1f}s (CPU time {cpu:.1f}s); peak RSS {peak_mib:.0f} MiB",
          flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
