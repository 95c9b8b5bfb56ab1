"""DeepEyes over a training run's snapshots, alone and beside other jobs: is the slowdown a fair share?

    python benchmarks/bench_threads.py [--out DIR] [--per-class 200] [--snapshots 20] [--others 1,3]

Trains ``zoo:paper_mnist`` on MNIST for one epoch keeping ``--snapshots`` weights (once, in
``DIR/ws``), then times one CLI process, ``python -m aomcore deepeyes --run RUN --layers conv2
--positions all`` on the test split (``--per-class`` images of each class), as a whole process:

* alone, and with 1 and 3 other processes running the same command on the machine (started
  first, restarted until the measured one ends);
* each way twice: with the thread rule of :mod:`aomcore.base.threads` (every process takes its
  share of the cores), and with ``AOMSCOPE_THREADS`` set to the machine's cores for every process
  (each sized for the whole machine, as every process was before the rule).

The slowdown is the time beside others over the time alone. A fair share on C cores with n
others is at most (n + 1)·C / C' where C' ≤ C is the speed-up one process gets from its C
threads; ≤ 4× with three others on 2 cores. Writes ``DIR/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env(threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("OMP_NUM_THREADS", None)
    env.pop("AOMSCOPE_THREADS", None)
    if threads is not None:
        env["AOMSCOPE_THREADS"] = str(threads)
    return env


def _command(args, ws: Path, out: Path) -> list[str]:
    run = sorted((ws / "runs").iterdir())[-1]
    return [sys.executable, "-m", "aomcore", "deepeyes", "--arch", "zoo:paper_mnist", "--dataset", "mnist",
            "--run", str(run), "--split", "test", "--per-class", str(args.per_class), "--layers", "conv2",
            "--positions", "all", "--no-similarity", "--out", str(out)]


def _measure(args, ws: Path, out: Path, others: int, threads: int | None) -> float:
    env = _env(threads)
    stop = out / "stop"
    stop.unlink(missing_ok=True)
    loop = (f"import subprocess, sys, pathlib\n"
            f"cmd = {_command(args, ws, out / 'other.npz')!r}\n"
            f"while not pathlib.Path({str(stop)!r}).exists():\n"
            f"    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")
    background = [subprocess.Popen([sys.executable, "-c", loop.replace("other.npz", f"other{i}.npz")], env=env)
                  for i in range(others)]
    try:
        if others:
            time.sleep(8)  # the others are past their imports and into their passes
        start = time.perf_counter()
        subprocess.run(_command(args, ws, out / "measured.npz"), env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        stop.touch()
        for proc in background:
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench_threads_"))
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--others", type=lambda t: [int(v) for v in t.split(",")], default=[1, 3])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ws = out / "ws"
    if not (ws / "runs").exists():
        subprocess.run([sys.executable, "-m", "aomcore", "train", "--workspace", str(ws), "--dataset", "mnist",
                        "--snapshots", str(args.snapshots)], env=_env(None), check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(REPO))
    from aomcore.base.threads import available_cores

    cores = available_cores()
    results: dict = {"cores": cores, "per_class": args.per_class, "snapshots": args.snapshots, "rows": {}}
    for label, threads in (("thread rule", None), (f"every process {cores} threads", cores)):
        alone = _measure(args, ws, out, 0, threads)
        row = {"alone_s": round(alone, 1)}
        print(f"{label}: alone {alone:.1f}s", flush=True)
        for n in args.others:
            seconds = _measure(args, ws, out, n, threads)
            row[f"with_{n}_others_s"] = round(seconds, 1)
            row[f"slowdown_{n}"] = round(seconds / alone, 2)
            print(f"{label}: with {n} others {seconds:.1f}s ({seconds / alone:.2f}x)", flush=True)
        results["rows"][label] = row
    (out / "threads.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
