"""Benchmark: maps of a real-format image folder, streamed, against what a user would write instead.

    python benchmarks/make_folder.py /tmp/fm_folder          # once: 70,000 JPEGs of 40–300 px
    python benchmarks/bench_folder.py /tmp/fm_folder [--workers 2] [--runs 2] [--json benchmarks/folder.json]

Measures, each in a fresh process (so its peak resident memory, summed over the process and
its DataLoader workers, is its own):

1. ``scan``  — the first index of the folder's 70,000 files (``scan_folder`` on train and
   test) and the header survey (``load_dataset`` of both splits);
2. ``maps``  — ``compute_maps`` of every conv layer of ``torchvision:resnet18`` (10 classes,
   3×32×32) over the test split (10,000 images), ``--transform "Resize(40), CenterCrop(32)"``;
3. ``reference`` — torchvision's ``ImageFolder`` + the same v2 transforms + ``DataLoader``
   with the same workers and batch size + a bare forward of the same model in
   ``torch.inference_mode`` (no counting), over the same split;
4. ``maps`` over the train split (60,000 images), for peak memory against (2).

``--runs`` runs of (2) and (3), interleaved; the ratio is of the median images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench_load import _tree_rss  # noqa: E402  (resident bytes of a process and its children)

TRANSFORM = "Resize(40), CenterCrop(32)"
BATCH = 256


def _measure(args: list[str]) -> dict:
    """Run ``bench_folder.py --one ...`` in a fresh process; its JSON line plus its peak tree RSS."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=REPO)
    peak = [0]

    def poll():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{args} failed with code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak[0] / 2**20, 1)
    return result


def _model():
    import torch

    from aomcore import build_model

    torch.manual_seed(0)
    return build_model("torchvision:resnet18", 10, (3, 32, 32)).eval()


def _one(kind: str, folder: Path, split: str, workers: int) -> dict:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers) if workers else (os.cpu_count() or 1))
    if kind == "scan":
        from aomcore import Preprocessing, load_dataset
        from aomcore.base.folder import scan_folder

        started = time.perf_counter()
        n = sum(len(scan_folder(folder / s).files) for s in ("train", "test"))
        scanned = time.perf_counter() - started
        for s in ("train", "test"):
            load_dataset(f"imagefolder:{folder}", s, preprocessing=Preprocessing(transform=TRANSFORM))
        return {"files": n, "scan_s": round(scanned, 2), "scan_and_survey_s": round(time.perf_counter() - started, 2)}
    model = _model()
    if kind == "maps":
        from aomcore import Preprocessing, list_layers, load_dataset
        from aomcore.aom import compute_maps

        data = load_dataset(f"imagefolder:{folder}", split, preprocessing=Preprocessing(transform=TRANSFORM),
                            workers=workers)
        layers = [layer.name for layer in list_layers(model, data.input_shape) if layer.kind == "conv"]
        started = time.perf_counter()
        compute_maps(model, data, layers, batch_size=BATCH, device="cpu")
        elapsed = time.perf_counter() - started
        return {"images": len(data), "layers": len(layers), "seconds": round(elapsed, 2),
                "images_per_s": round(len(data) / elapsed, 1)}
    from torchvision import datasets
    from torchvision.transforms import v2

    transform = v2.Compose([v2.PILToTensor(), v2.Resize(40), v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True)])
    data = datasets.ImageFolder(str(folder / split), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    started = time.perf_counter()
    with torch.inference_mode():
        for x, _ in loader:
            model(x)
    elapsed = time.perf_counter() - started
    return {"images": len(data), "seconds": round(elapsed, 2), "images_per_s": round(len(data) / elapsed, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--one", choices=["scan", "maps", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--split", default="test", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one, args.folder, args.split, args.workers)))
        return 0
    common = [str(args.folder), "--workers", str(args.workers)]
    results = {"machine": f"{os.cpu_count()} cores", "workers": args.workers, "transform": TRANSFORM,
               "batch_size": BATCH, "scan": _measure([*common, "--one", "scan"])}
    print("scan", results["scan"], flush=True)
    runs = {"maps": [], "reference": []}
    for _ in range(args.runs):
        for kind in runs:
            runs[kind].append(_measure([*common, "--one", kind, "--split", "test"]))
            print(kind, runs[kind][-1], flush=True)
    results.update(runs)
    rate = {k: statistics.median(r["images_per_s"] for r in v) for k, v in runs.items()}
    results["ratio"] = round(rate["maps"] / rate["reference"], 3)
    results["maps_train"] = _measure([*common, "--one", "maps", "--split", "train"])
    print("maps over train", results["maps_train"], flush=True)
    small = statistics.median(r["peak_rss_mb"] for r in runs["maps"])
    results["rss_ratio_60k_vs_10k"] = round(results["maps_train"]["peak_rss_mb"] / small, 3)
    print(f"maps / reference images/s: {results['ratio']}; peak RSS 60k / 10k: {results['rss_ratio_60k_vs_10k']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
