"""Training trails of a run folder (Rauber et al. 2017): the arrays of a ``trails.npz``.

:func:`compute_trails` turns a run's snapshots into the arrays of a ``trails.npz`` (layout
in :mod:`aomcore.base.npzfile`); :func:`trails_key` names them by content (the run's
snapshot files, architecture and edits, the layer, the sample and projection options, the
data). The ``trails`` job (:mod:`aomcore.jobs.trails`) computes them once into a
workspace's results; the CLI without a workspace calls :func:`compute_trails` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..base.cache import file_sha256
from ..base.embedding import embedding_key, neighborhood_hit_per_class
from ..base.errors import InputError
from ..base.models import apply_state_dict, load_state_dict
from ..base.npzfile import embedding_npz_bytes
from ..base.training import evaluate
from .trails import trails_from_run

__all__ = ["TRAILS_DEFAULTS", "compute_trails", "lagging_classes", "trails_key", "trails_npz_bytes", "trails_options"]


#: Parameters of a ``trails`` job and their defaults (``run`` and ``layer`` are required).
TRAILS_DEFAULTS = {"n": 2000, "method": "tsne", "seed": 0, "stability": 0.5, "split": "test", "n_iter": 500,
                   "perplexity": 30.0, "device": "auto"}


def _check_snapshots(snapshots: list[tuple[int, Path]]) -> list[tuple[int, Path]]:
    snapshots = list(snapshots)
    if len(snapshots) < 2:
        raise InputError("trails need a run with at least two snapshots",
                         expected="a run trained with --snapshots N >= 2", found=str(len(snapshots)))
    return snapshots


def trails_options(params: dict) -> dict:
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


def trails_key(record: dict, snapshots: list[tuple[int, Path]], dataset, params: dict) -> str:
    """The content key of a run's trails: snapshot files' sha256, architecture, edits, options, data,
    and (:func:`aomcore.base.embedding.embedding_key`) the t-SNE schedule and library versions.

    ``record`` is the run's ``run.json``; ``snapshots`` its ``(iteration, weights file)`` pairs
    (:func:`aomcore.store.runs.run_snapshots`, which keeps every file inside the run folder).
    """
    p = trails_options(params)
    return embedding_key(view="trails", run=record.get("id"), arch=record["arch"], edits=record.get("edits", []),
                         snapshots=[(i, file_sha256(f)) for i, f in _check_snapshots(snapshots)],
                         layer=p["layer"], n=p["n"], method=p["method"], seed=p["seed"], stability=p["stability"],
                         n_iter=p["n_iter"], perplexity=p["perplexity"], data=dataset.identity())


def compute_trails(snapshots: list[tuple[int, Path]], build: Callable, dataset, params: dict,
                   progress: Callable[[int, int, str], None] | None = None, cancel=None) -> dict[str, np.ndarray]:
    """The arrays of a run's ``trails.npz``: one projection of a fixed sample per snapshot.

    Parameters
    ----------
    snapshots : list of (int, path)
        The run's ``(iteration, weights file)`` pairs (:func:`aomcore.store.runs.run_snapshots`).
    build : callable() -> nn.Module
        A fresh model of the run's architecture (weights are loaded into it).
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
    p = trails_options(params)
    snapshots = _check_snapshots(snapshots)
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


def trails_npz_bytes(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """The ``trails.npz`` of computed trails (:func:`compute_trails`): the one writer of that file.

    ``tap`` and ``seconds`` move from the arrays into ``meta`` (with ``kind: "trails"``); the
    CLI writes these bytes to ``--out`` and the dashboard offers them for download.
    """
    arrays = dict(arrays)
    extra = {"kind": "trails"}
    if "tap" in arrays:
        extra["tap"] = str(arrays.pop("tap"))
    if "seconds" in arrays:
        extra["seconds"] = float(arrays.pop("seconds"))
    return embedding_npz_bytes(arrays, extra | meta)
