"""Benchmark: the cost of the DeepEyes training monitor (issue #11).

Times the same training job (``train`` job kind, 20 snapshots, the dataset's recipe) with
and without the :class:`~aomcore.deepeyes.statistics.TrainingMonitor` that every dashboard training
carries (``monitor: false`` turns it off), each in a fresh process, alternating the two
(A B A B …) so a change in the machine's load hits both alike. The time is the training
loop's own (``retrain_seconds`` of the version made: steps, snapshots with their test
accuracy, and for the monitored run the hooks and ``monitor.npz`` writes), not the process
start or the dataset load.

Case: ``zoo:paper_mnist`` on MNIST train (1 epoch, 938 steps) when ``--data-root`` (or
``$AOMSCOPE_DATA_ROOT``, or /work/shared/datasets) holds MNIST, else ``zoo:digits_net`` on
digits (30 epochs).

Usage::

    python benchmarks/bench_monitor.py [--repeat 3] [--device cpu] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path("/work/shared/datasets")


def _one(dataset: str, data_root: str | None, monitor: bool, device: str) -> dict:
    """One training in this process; returns its numbers."""
    import aomcore
    from aomcore.base.allocator import reuse_freed_memory

    reuse_freed_memory()  # as the dashboard's job workers do
    arch = "zoo:paper_mnist" if dataset == "mnist" else "zoo:digits_net"
    with tempfile.TemporaryDirectory() as tmp:
        ws = aomcore.Workspace.create(name="bench", dataset=dataset, data_root=data_root, path=Path(tmp) / "w")
        ws.load_split("train"), ws.load_split("test")  # loaded before the clock starts
        final = aomcore.run_inline(ws, "train", {"arch": arch, "config": aomcore.default_train_config(dataset).__dict__,
                                                 "snapshots": 20, "monitor": monitor, "device": device})
        version = ws.version(final["result"]["version"])
        run = Path(ws.runs_dir / final["result"]["run"])
        return {"monitor": monitor, "seconds": version["retrain_seconds"],
                "accuracy": version["metrics"]["accuracy"], "monitor_npz": (run / "monitor.npz").is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default=os.environ.get("AOMSCOPE_DATA_ROOT") or
                        (str(SHARED) if (SHARED / "MNIST").is_dir() else None))
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", choices=("on", "off"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    dataset = args.dataset or ("mnist" if args.data_root else "digits")
    if args.one:
        print(json.dumps(_one(dataset, args.data_root, args.one == "on", args.device)))
        return
    rows = []
    for i in range(args.repeat):
        for mode in ("off", "on"):  # alternate: A B A B …
            cmd = [sys.executable, __file__, "--one", mode, "--dataset", dataset, "--device", args.device]
            if args.data_root:
                cmd += ["--data-root", args.data_root]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
            row = json.loads(out.stdout.strip().splitlines()[-1]) | {"round": i}
            rows.append(row)
            print(f"round {i} monitor {mode:>3}: {row['seconds']:.1f}s (test accuracy {row['accuracy']:.2%})",
                  flush=True)
    off = [r["seconds"] for r in rows if not r["monitor"]]
    on = [r["seconds"] for r in rows if r["monitor"]]
    pairs = [b / a for a, b in zip(off, on, strict=True)]
    summary = {"dataset": dataset, "device": args.device, "machine": platform.machine(),
               "cpus": os.cpu_count(), "load": os.getloadavg(), "off_median": statistics.median(off),
               "on_median": statistics.median(on), "ratio_of_medians": statistics.median(on) / statistics.median(off),
               "median_pair_ratio": statistics.median(pairs), "pair_ratios": pairs, "rows": rows}
    print(f"{dataset}: without monitor {summary['off_median']:.1f}s, with {summary['on_median']:.1f}s (medians of "
          f"{args.repeat}); ratio of medians {summary['ratio_of_medians']:.3f}, median of paired ratios "
          f"{summary['median_pair_ratio']:.3f} (target <= 1.15)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
