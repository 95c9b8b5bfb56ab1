"""The ``trails`` job: training trails (Rauber et al. 2017) of a workspace run, content-keyed.

:func:`compute_trails` turns a run folder's snapshots into the arrays of a ``trails.npz``
(layout in :mod:`aomcore.export`); :func:`trails_key` names them by content (the run's
snapshot files, architecture and edits, the layer, the sample and projection options, the
data); :func:`job_trails` is the job kind: it computes them once into
``ws.results_cache`` (kind ``trails``) and indexes them with ``ws.record_result``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cache import file_sha256
from .errors import InputError

__all__ = ["TRAILS_DEFAULTS", "compute_trails", "job_trails", "lagging_classes", "run_architecture", "trails_key"]

#: Parameters of a ``trails`` job and their defaults (``run`` and ``layer`` are required).
TRAILS_DEFAULTS = {"n": 2000, "method": "tsne", "seed": 0, "stability": 0.5, "split": "test", "n_iter": 500,
                   "perplexity": 30.0, "device": "auto"}


def run_architecture(record: dict, dataset) -> Callable:
    """A builder of the run's architecture (``arch`` with its ``edits``) for ``dataset``'s classes and shape."""
    import torch

    from .editing import Edit, build_edited

    edits = [Edit.from_dict(e) for e in record.get("edits", [])]

    def build():
        with torch.random.fork_rng(devices=[]):  # building must not move the caller's random stream
            return build_edited(record["arch"], dataset.num_classes, dataset.input_shape, edits)
    return build


def _snapshots(folder: Path, record: dict) -> list[tuple[int, Path]]:
    snapshots = [(int(s["iteration"]), folder / s["file"]) for s in record.get("snapshots", [])]
    if len(snapshots) < 2:
        raise InputError("trails need a run with at least two snapshots",
                         expected="a run trained with --snapshots N >= 2", found=f"{len(snapshots)} in {folder}")
    return snapshots


def _options(params: dict) -> dict:
    """``params`` with defaults filled in and checked (InputError names what is wrong)."""
    p = TRAILS_DEFAULTS | {k: v for k, v in params.items() if v is not None}
    if p["method"] not in ("tsne", "umap"):
        raise InputError("unknown trails method", expected="tsne or umap", found=repr(p["method"]))
    if int(p["n"]) < 10:
        raise InputError("too few images for trails", expected="n >= 10", found=str(p["n"]))
    if not 0.0 <= float(p["stability"]) <= 1.0:
        raise InputError("stability must lie in [0, 1]", expected="0 <= stability <= 1", found=str(p["stability"]))
    if int(p["n_iter"]) < 1:
        raise InputError("too few t-SNE iterations", expected="n_iter >= 1", found=str(p["n_iter"]))
    return p | {"n": int(p["n"]), "seed": int(p["seed"]), "stability": float(p["stability"]),
                "n_iter": int(p["n_iter"]), "perplexity": float(p["perplexity"])}


def trails_key(folder: Path, record: dict, dataset, params: dict) -> str:
    """The content key of a run's trails: snapshot files' sha256, architecture, edits, options, data."""
    from .cache import DiskCache

    p = _options(params)
    return DiskCache.key(kind="trails", run=record.get("id"), arch=record["arch"], edits=record.get("edits", []),
                         snapshots=[(i, file_sha256(f)) for i, f in _snapshots(Path(folder), record)],
                         layer=p["layer"], n=p["n"], method=p["method"], seed=p["seed"], stability=p["stability"],
                         n_iter=p["n_iter"], perplexity=p["perplexity"], data=dataset.identity())


def compute_trails(folder: str | Path, record: dict, dataset, params: dict,
                   progress: Callable[[int, int, str], None] | None = None, cancel=None) -> dict[str, np.ndarray]:
    """The arrays of a run's ``trails.npz``: one projection of a fixed sample per snapshot.

    Parameters
    ----------
    folder, record : the run folder and its ``run.json`` (:func:`aomcore.read_run`)
    dataset : ImageDataset
        The split the sample is drawn from (usually test).
    params : dict
        ``layer`` and the options of :data:`TRAILS_DEFAULTS`.
    progress : callable(done, total, text), optional
    cancel : object with ``is_set()``, optional

    Returns
    -------
    dict of ndarray: ``points`` (S, N, 2) float64, ``labels``, ``index`` (N,) int64,
    ``snapshots`` = ``iterations`` (S,) int64 training steps, ``predicted`` (S, N) int64,
    ``neighborhood_hit`` (S,) float64 (k = 6), ``class_neighborhood_hit`` (C,) float64 (final
    snapshot), ``class_accuracy`` (C,) float64 (the final snapshot's test accuracy per class,
    over the whole split), ``seconds`` () float64.

    Raises
    ------
    InputError
        Fewer than two snapshots, unknown layer or method, bad options.
    Cancelled
    """
    from .embedding import neighborhood_hit_per_class
    from .models import apply_state_dict, load_state_dict
    from .trails import trails_from_run
    from .training import evaluate

    p = _options(params)
    folder = Path(folder)
    snapshots = _snapshots(folder, record)
    build = run_architecture(record, dataset)
    s_total = len(snapshots)
    start = time.perf_counter()

    def report(done, total):
        if progress is not None:
            progress(done, total + 1, f"projected snapshot {done} of {total} ({p['method']}, {p['n']:,} images)")

    if progress is not None:
        progress(0, s_total + 1, f"projecting snapshot 1 of {s_total}")
    trails = trails_from_run(build, snapshots, dataset, p["layer"], n=p["n"], seed=p["seed"], method=p["method"],
                             stability=p["stability"], perplexity=p["perplexity"], n_iter=p["n_iter"],
                             device=p["device"], progress=report, cancel=cancel)
    if progress is not None:
        progress(s_total, s_total + 1, "test accuracy per class of the last snapshot")
    final = build()
    apply_state_dict(final, load_state_dict(snapshots[-1][1]))
    accuracy = evaluate(final, dataset, device=p["device"]).per_class
    arrays = trails.arrays()
    return arrays | {"snapshots": trails.iterations,
                     "class_neighborhood_hit": neighborhood_hit_per_class(trails.points[-1], trails.labels,
                                                                          num_classes=dataset.num_classes),
                     "class_accuracy": np.asarray(accuracy, dtype=np.float64),
                     "tap": np.array(trails.tap), "seconds": np.array(time.perf_counter() - start)}


def lagging_classes(class_neighborhood_hit, margin: float = 0.05) -> np.ndarray:
    """Classes whose final neighbourhood hit lies more than ``margin`` below the median class.

    Rauber et al. 2017 read such classes (still mixed with others when the rest have
    separated) as ones the network would learn better with more training data or more
    capacity. NaN classes (no image in the sample) are never flagged.

    Returns
    -------
    ndarray of int64: the class indices, most lagging first.
    """
    nh = np.asarray(class_neighborhood_hit, dtype=np.float64)
    if not np.isfinite(nh).any():
        return np.zeros(0, dtype=np.int64)
    median = float(np.nanmedian(nh))
    lag = np.flatnonzero(np.isfinite(nh) & (nh < median - margin))
    return lag[np.argsort(nh[lag], kind="stable")].astype(np.int64)


def job_trails(ws, params: dict, ctx) -> dict:
    """Job kind ``trails``: a workspace run's trails into ``ws.results_cache`` (kind ``trails``), indexed.

    ``params``: ``run`` (id), ``layer``, and the options of :data:`TRAILS_DEFAULTS`.
    Returns ``{"key": ...}``; asking again with the same content is a cache hit.
    """
    from .runs import read_run, resolve_run

    p = _options(params)
    folder = resolve_run(str(p["run"]), ws)
    record = read_run(folder)
    dataset = ws.load_split(p["split"])
    key = trails_key(folder, record, dataset, p)
    arrays = ws.results_cache.load_arrays("trails", key)
    hit = arrays is not None
    if not hit:
        arrays = compute_trails(folder, record, dataset, p, progress=ctx.progress, cancel=ctx)
        ws.results_cache.save_arrays("trails", key, arrays)
    nh = arrays["neighborhood_hit"]
    ws.record_result({"kind": "trails", "key": key, "digest": key, "run": record["id"], "arch": record["arch"],
                      "layer": p["layer"], "tap": str(arrays["tap"]), "n": p["n"], "method": p["method"],
                      "seed": p["seed"], "stability": p["stability"], "n_iter": p["n_iter"],
                      "split": p["split"], "snapshots": int(len(arrays["snapshots"])),
                      "final_neighborhood_hit": float(nh[-1]), "seconds": float(arrays["seconds"]),
                      "from_cache": hit, "dataset": dataset.identity()})
    return {"key": key}
