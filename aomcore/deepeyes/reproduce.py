"""``reproduce deepeyes``: DeepEyes' MNIST use case (Pezzotti et al. 2018) with no human in the loop.

DeepEyes trains a LeNet-style network on MNIST (``zoo:deepeyes_mnist``: conv 5×5×20,
pool, conv 5×5×50, pool, FC 500, FC 10) and, from its views, shrinks conv1 to 10 filters
and fc1 to 100 neurons, reporting 98.2% test accuracy for the shrunk network. Here the
choices the user made by eye are made by rule, from the same two views:

1. the activation heatmap: dead filters (maximum activation 0) and always-on filters
   (firing on ≥ 99.9% of the sampled receptive fields) go first;
2. the filter map's similarity: the remaining filters are clustered on 1 − similarity
   (average linkage, :class:`aomcore.aom.ordering.KernelOrdering`) into as many groups as
   filters are kept, and each group keeps one filter — its most confident one (the
   filter label's confidence, how class-specific it is), ties by maximum activation.

Each edit is retrained 1 epoch with the layer and everything before it frozen (Garcia et
al.'s protocol, ``freeze="upto"``; DeepEyes does not state how it retrained). The
statistics are read on the train split (10 sampled positions per image, as DeepEyes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..aom.ordering import KernelOrdering
from ..aom.retrain import Version, edit_and_retrain, initial_version
from ..base.cache import DiskCache
from ..base.data import ImageDataset
from ..base.editing import Edit
from ..base.loaded import pretrained_zoo_model
from ..base.training import TrainConfig
from .statistics import compute_deepeyes

__all__ = ["DEEPEYES_PAPER", "DEEPEYES_TARGETS", "choose_by_deepeyes", "reproduce_deepeyes"]

DEEPEYES_PAPER = {"accuracy": 0.982, "kernels": {"conv1": 10, "fc1": 100}}
DEEPEYES_TARGETS = (("conv1", 10), ("fc1", 100))
ALWAYS_ON = 0.999


def choose_by_deepeyes(max_activation: np.ndarray, frequency: np.ndarray, similarity: np.ndarray,
                       confidence: np.ndarray, keep: int) -> list[int]:
    """The filters to keep: dead/always-on out first, then one per cluster of similar filters.

    Parameters
    ----------
    max_activation, frequency, confidence : ndarray, (K,) float
        DeepEyes' activation heatmap (maximum, frequency) and filter-label confidence.
    similarity : ndarray, (K, K) float in [0, 1]
        DeepEyes' filter similarity.
    keep : int
        How many to keep (≤ K).

    Returns
    -------
    list of int, sorted, ``min(keep, K)`` filters (fewer only when fewer are alive).
    """
    k = len(max_activation)
    alive = np.flatnonzero((max_activation > 0) & (frequency < ALWAYS_ON))
    if len(alive) <= keep:  # not enough live filters: keep them all, then the least bad of the rest
        rest = [i for i in np.argsort(-frequency * (frequency < ALWAYS_ON)) if i not in set(alive)]
        return sorted([*alive.tolist(), *rest[: keep - len(alive)]])[:k]
    s = np.clip((similarity + similarity.T) / 2, 0, 1)[np.ix_(alive, alive)]
    d = 1.0 - s
    np.fill_diagonal(d, 0.0)
    groups = KernelOrdering(n_groups=keep).fit(d).labels_
    chosen = []
    for g in np.unique(groups):
        members = alive[groups == g]
        best = max(members, key=lambda i: (confidence[i], max_activation[i]))
        chosen.append(int(best))
    return sorted(chosen)


def reproduce_deepeyes(train_set: ImageDataset, test_set: ImageDataset, device="auto",
                       cache: DiskCache | None = None, targets=DEEPEYES_TARGETS, config: TrainConfig | None = None,
                       log: Callable[[str], None] = print,
                       on_version: Callable[[Version, int | None], int] | None = None) -> list[dict]:
    """Train, then shrink each ``(layer, keep)`` of ``targets`` in turn and retrain; one row per step."""
    config = config or TrainConfig()
    t0 = time.perf_counter()
    loaded = pretrained_zoo_model("zoo:deepeyes_mnist", train_set, config, device=device, cache=cache)
    version = initial_version(loaded.model, test_set, device, note="deepeyes_mnist, 1 epoch")
    rows = [_row("baseline", version, None, time.perf_counter() - t0)]
    log(f"baseline: test accuracy {version.metrics['accuracy']:.2%}, kernels {version.metrics['kernels']}")
    recorded = on_version(version, None) if on_version else None
    for layer, keep in targets:
        t0 = time.perf_counter()
        stats = compute_deepeyes(version.model, train_set, [layer], device=device)[layer]
        kept = choose_by_deepeyes(stats.max_activation, stats.activation_frequency, stats.filter_similarity,
                                  stats.filter_confidence, keep)
        dead = int((stats.max_activation <= 0).sum())
        always = int((stats.activation_frequency >= ALWAYS_ON).sum())
        drop = tuple(i for i in range(stats.num_kernels) if i not in kept)
        version = edit_and_retrain(version, Edit("remove", layer, drop), version.id + 1, train_set, test_set,
                                   freeze="upto", config=config, device=device)
        rows.append(_row(layer, version, {"kept": kept, "dead": dead, "always_on": always},
                         time.perf_counter() - t0))
        recorded = on_version(version, recorded) if on_version else None
        log(f"{layer}: {stats.num_kernels} → {len(kept)} ({dead} dead, {always} always on), test accuracy "
            f"{version.metrics['accuracy']:.2%} ({time.perf_counter() - t0:.0f}s)")
    return rows


def _row(step: str, version: Version, choice: dict | None, seconds: float) -> dict:
    m = version.metrics
    return {"step": step, "kernels": m["kernels"], "accuracy": m["accuracy"], "params": m["params"],
            "flops": m["flops"], "seconds": round(seconds, 1), **(choice or {})}
