"""Time the embedding views on real MNIST: projections of 5,000 test images and training trails.

    python benchmarks/bench_embedding.py [--snapshots 10] [--out DIR]
    python benchmarks/bench_embedding.py --compare [--rounds 3] [--sizes 5000,60000] [--out DIR]

``--compare`` times whole processes side by side, interleaved over ``--rounds``: our
``python -m aomcore embed --view activations`` of fc1 (trained paper_mnist; 5,000 stratified
test images, or the 60,000 train images) against a short script a user would write instead —
scikit-learn's ``TSNE(n_jobs=cores)`` and openTSNE's ``TSNE()`` with its defaults — on the same
vectors, read from a ``.npy`` (so the scripts pay no torch import and no forward pass, and ours
does). It also runs :func:`aomcore.base.embedding.embed` in process with and without
``converge`` on fc1 and conv2 (PCA 50), reporting iterations, KL divergence and neighbourhood hit.

Trains zoo:paper_mnist for one epoch (Adam, lr 1e-3, batch 128, seed 0) and keeps its
weights at ~10 steps spread over the epoch (more of them early, where the network changes
most), then times:

* t-SNE of 5,000 stratified test images from fc1's activations (128-D), Barnes-Hut
  (openTSNE's choice below 10k points) and FFT;
* the activation projection of conv2 (9,216-D, PCA to 50 first) and DeepEyes' input map
  of conv2 (5,000 receptive fields, 144-D patches);
* trails of 2,000 stratified test images over the snapshots at fc1: aligned projections,
  bundling, rendering (PNG written to DIR).

Data from ``$AOMSCOPE_DATA_ROOT``. Prints one line per measurement and a JSON summary.
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

import numpy as np
import torch

from aomcore import build_model, load_dataset, neighborhood_hit
from aomcore.base.activations import activation_vectors, stratified_sample
from aomcore.base.embedding import embed
from aomcore.base.training import TrainConfig, evaluate, train
from aomcore.deepeyes.input_map import input_map
from aomcore.rauber.projections import activation_projection
from aomcore.rauber.trails import bundle_trails, render_trails, trail_lengths, trails_from_run


def _log(results: dict, name: str, seconds: float, **extra):
    results[name] = {"seconds": round(seconds, 2), **extra}
    print(f"{name}: {seconds:.1f}s {extra if extra else ''}", flush=True)


_SCRIPT = """
import json, sys, time
import numpy as np
x, y = np.load(sys.argv[2]), np.load(sys.argv[3])
if sys.argv[1] == "sklearn":
    from sklearn.manifold import TSNE
    points = TSNE(n_jobs=int(sys.argv[4]), random_state=0).fit_transform(x)
else:
    from openTSNE import TSNE
    points = np.asarray(TSNE(random_state=0).fit(x))
from sklearn.neighbors import NearestNeighbors
idx = NearestNeighbors(n_neighbors=6).fit(points).kneighbors(return_distance=False)
print(json.dumps({"neighborhood_hit": float((y[idx] == y[:, None]).mean())}))
"""


def _timed(cmd: list[str], env: dict, timeout: float) -> tuple[float, str | None]:
    """Wall seconds of ``cmd`` as a whole process, and its stdout (None when it ran past ``timeout``)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None
    return time.perf_counter() - start, done.stdout


def compare(args, out: Path) -> None:
    """Whole-process times of our embed CLI vs scikit-learn's and openTSNE's TSNE, side by side."""
    import re

    from aomcore.base import threads

    cores = threads.available_cores()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    weights = out / "paper_mnist.pt"
    if not weights.exists():
        torch.manual_seed(0)
        model = build_model("zoo:paper_mnist", 10, (1, 28, 28))
        train(model, load_dataset("mnist", "train"), TrainConfig(epochs=1, seed=0), device="cpu")
        torch.save(model.state_dict(), weights)
    model = build_model("zoo:paper_mnist", 10, (1, 28, 28))
    model.load_state_dict(torch.load(weights, weights_only=True))
    results: dict = {"cores": cores, "sizes": {}, "convergence": {}}
    for size in args.sizes:
        split = "test" if size <= 10_000 else "train"
        data = load_dataset("mnist", split)
        idx = stratified_sample(data.labels.numpy(), size, 0)
        x, _ = activation_vectors(model, data, "fc1", idx, device="cpu")
        np.save(out / f"x{size}.npy", x)
        np.save(out / f"y{size}.npy", data.labels.numpy()[idx])
        ours = [sys.executable, "-m", "aomcore", "embed", "--arch", "zoo:paper_mnist", "--weights", str(weights),
                "--dataset", "mnist", "--split", split, "--layer", "fc1", "--view", "activations", "--n", str(size),
                "--out", str(out / f"ours{size}.npz")]
        tools = {"aomscope embed (whole process)": ours,
                 f"scikit-learn TSNE(n_jobs={cores})": [sys.executable, "-c", _SCRIPT, "sklearn",
                                                         str(out / f"x{size}.npy"), str(out / f"y{size}.npy"),
                                                         str(cores)],
                 "openTSNE TSNE() defaults": [sys.executable, "-c", _SCRIPT, "opentsne", str(out / f"x{size}.npy"),
                                              str(out / f"y{size}.npy")]}
        rows = {name: {"seconds": [], "neighborhood_hit": None} for name in tools}
        for _ in range(args.rounds if size <= 10_000 else 1):
            for name, cmd in tools.items():
                seconds, text = _timed(cmd, env, args.timeout)
                if text is None:
                    rows[name]["seconds"].append(None)
                    print(f"{size} {name}: stopped after {seconds:.0f}s", flush=True)
                    continue
                found = re.search(r"neighbourhood hit ([0-9.]+)", text)
                hit = float(found.group(1)) if found else json.loads(text.strip().splitlines()[-1])["neighborhood_hit"]
                rows[name]["seconds"].append(round(seconds, 1))
                rows[name]["neighborhood_hit"] = round(hit, 4)
                print(f"{size} {name}: {seconds:.1f}s, neighbourhood hit {hit:.4f}", flush=True)
        for row in rows.values():
            done = [t for t in row["seconds"] if t is not None]
            row["median"] = float(np.median(done)) if done else None
        base = rows[f"scikit-learn TSNE(n_jobs={cores})"]["median"]
        for row in rows.values():
            row["ratio_to_sklearn"] = round(row["median"] / base, 3) if base and row["median"] else None
        results["sizes"][size] = rows
    for name, layer, pca in (("fc1", "fc1", None), ("conv2", "conv2", 50)):
        data = load_dataset("mnist", "test")
        idx = stratified_sample(data.labels.numpy(), 5000, 0)
        x, _ = activation_vectors(model, data, layer, idx, device="cpu")
        labels = data.labels.numpy()[idx]
        for converge in (True, False):
            report: dict = {}
            start = time.perf_counter()
            points = embed(x, pca_dims=pca, converge=converge, report=report)
            row = {"seconds": round(time.perf_counter() - start, 1), "iterations": report["iterations"],
                   "kl_divergence": round(report["kl_divergence"], 4),
                   "neighborhood_hit": round(neighborhood_hit(points, labels), 4)}
            results["convergence"][f"{name} 5,000 converge={converge}"] = row
            print(f"{name} converge={converge}: {row}", flush=True)
    (out / "compare.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench_embedding_"))
    parser.add_argument("--compare", action="store_true", help="only the side-by-side whole-process times")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds a compared process may run")
    parser.add_argument("--sizes", type=lambda t: [int(v) for v in t.split(",") if v], default=[5000, 60000],
                        help="sizes to compare (\"\" for none: only the convergence rows)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.compare:
        compare(args, out)
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    train_set, test_set = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    results: dict = {}

    def build():
        return build_model("zoo:paper_mnist", 10, (1, 28, 28))

    torch.manual_seed(0)
    model = build()
    steps = -(-len(train_set) // 128)
    keep = sorted({0, *np.unique(np.geomspace(5, steps, args.snapshots - 1).astype(int)).tolist()})
    snapshots = []

    def save(step):
        path = out / f"step{step:05d}.pt"
        torch.save(model.state_dict(), path)
        snapshots.append((step, str(path)))

    save(0)
    start = time.perf_counter()
    train(model, train_set, TrainConfig(epochs=1, seed=0), device="cpu",
          progress=lambda m: save(m["step"]) if m["step"] in keep else None)
    _log(results, "train paper_mnist 1 epoch (with snapshots)", time.perf_counter() - start,
         snapshots=[s for s, _ in snapshots], accuracy=round(evaluate(model, test_set, device="cpu").accuracy, 4))

    idx = stratified_sample(test_set.labels.numpy(), 5000, 0)
    labels = test_set.labels.numpy()[idx]
    start = time.perf_counter()
    acts, _ = activation_vectors(model, test_set, "fc1", idx, device="cpu")
    _log(results, "fc1 activations of 5,000 test images", time.perf_counter() - start)
    for gradient in ("auto", "fft"):
        start = time.perf_counter()
        points = embed(acts, negative_gradient_method=gradient)
        _log(results, f"t-SNE 5,000 x 128 ({'Barnes-Hut' if gradient == 'auto' else 'FFT'})",
             time.perf_counter() - start, neighborhood_hit=round(neighborhood_hit(points, labels), 4))
    start = time.perf_counter()
    proj = activation_projection(model, test_set, "conv2", n=5000, device="cpu")
    _log(results, "activation projection conv2 (5,000 x 9,216 -> PCA 50 -> t-SNE)", time.perf_counter() - start,
         neighborhood_hit=round(proj.neighborhood_hit, 4))
    start = time.perf_counter()
    imap = input_map(model, test_set, "conv2", n=5000, device="cpu")
    _log(results, "input map conv2 (5,000 receptive fields x 144)", time.perf_counter() - start,
         neighborhood_hit=round(imap.neighborhood_hit, 4))

    start = time.perf_counter()
    trails = trails_from_run(build, snapshots, test_set, "fc1", n=2000, device="cpu")
    _log(results, f"trails fc1, 2,000 images x {len(snapshots)} snapshots", time.perf_counter() - start,
         neighborhood_hit=[round(float(h), 3) for h in trails.neighborhood_hit],
         median_trail_length=round(float(np.median(trail_lengths(trails.points))), 3))
    start = time.perf_counter()
    paths = bundle_trails(trails.points, trails.labels)
    _log(results, "bundle trails", time.perf_counter() - start, rows=len(paths))
    start = time.perf_counter()
    image = render_trails(trails.points, trails.labels, paths=paths)
    _log(results, "render trails 800x800", time.perf_counter() - start)
    from PIL import Image

    Image.fromarray(image).save(out / "trails.png")
    Image.fromarray(render_trails(trails.points, trails.labels, bundled=False)).save(out / "trails_raw.png")
    Image.fromarray(render_trails(trails.points, trails.labels, paths=paths, highlight=4)).save(
        out / "trails_class4.png")
    np.savez(out / "trails.npz", points=trails.points, labels=trails.labels)
    print(json.dumps(results, indent=1))
    print(f"images and snapshots in {out}")


if __name__ == "__main__":
    main()
