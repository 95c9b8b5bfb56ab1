"""Write a real-format image folder from FashionMNIST: JPEGs of many sizes, one folder per class.

    python benchmarks/make_folder.py OUT [--data-root DIR] [--per-split N] [--seed 0]

Each of FashionMNIST's 70,000 images (or the first ``--per-split`` of each split) is
upscaled by a random factor and pasted at a random place on a black canvas of random size
(40–300 px a side, not square), tinted so that it is a real RGB image, and saved as
``OUT/{train,test}/{class}/{index}.jpg`` at JPEG quality 90; one image in ten is saved
grayscale, as photo folders mix both. The folder is data for benchmarks and walks, made
here because no photo dataset can be downloaded on this machine; never commit it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _write(job):
    from PIL import Image

    out, pixels, seed = job
    rng = np.random.default_rng(seed)
    for (path, image) in zip(out, pixels, strict=True):
        w, h = (int(v) for v in rng.integers(40, 301, 2))
        side = int(rng.integers(28, max(29, min(w, h) + 1)))
        item = Image.fromarray(image).resize((side, side), Image.BILINEAR)
        canvas = Image.new("L", (w, h))
        canvas.paste(item, (int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))))
        if rng.random() < 0.1:
            canvas.save(path, quality=90)
        else:
            tint = rng.uniform(0.7, 1.0, 3)
            rgb = (np.asarray(canvas, np.float32)[..., None] * tint).round().astype(np.uint8)
            Image.fromarray(rgb).save(path, quality=90)
    return len(out)


def main(argv=None) -> int:
    from aomcore import load_dataset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--data-root", default=os.environ.get("AOMSCOPE_DATA_ROOT"))
    p.add_argument("--per-split", type=int, default=None, help="images per split (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    started, jobs = time.perf_counter(), []
    for split in ("train", "test"):
        data = load_dataset("fashion-mnist", split, args.data_root)
        n = len(data) if args.per_split is None else min(args.per_split, len(data))
        for name in data.classes:
            (args.out / split / name.replace("/", "-")).mkdir(parents=True, exist_ok=True)
        images, labels = data.images[:n, 0].numpy(), data.labels[:n].tolist()
        paths = [args.out / split / data.classes[t].replace("/", "-") / f"{i:05d}.jpg" for i, t in enumerate(labels)]
        for start in range(0, n, 1000):
            jobs.append((paths[start:start + 1000], images[start:start + 1000], args.seed * 1000 + len(jobs)))
    with ProcessPoolExecutor(args.processes) as pool:
        written = sum(pool.map(_write, jobs))
    print(f"{written} images written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
