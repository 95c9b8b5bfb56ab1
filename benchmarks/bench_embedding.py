"""Time the embedding views on real MNIST: projections of 5,000 test images and training trails.

    python benchmarks/bench_embedding.py [--snapshots 10] [--out DIR]

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench_embedding_"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
