"""``reproduce mnist``: the paper's Sec. V-A with no human in the loop.

Train the paper's MNIST model (1 epoch); for conv1 then conv2: compute the layer's maps on
the train split, cut the layer's kernels into groups by clustering their AOM rows at the
default cut (:func:`~aomcore.aom.ordering.default_n_groups`, the dashboard's), and
keep what :func:`aomcore.aom.overview.suggest_keep` keeps (the most selective kernel of each
group, never a dead, always-on or non-selective one); remove the rest, freeze the layer
and everything before it, and retrain 1 epoch. Paper (Garcia et al. 2019):
96.96% → 96.93% with conv1 16 → 5 kernels → 97.69% after conv2.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..base.cache import DiskCache
from ..base.data import ImageDataset
from ..base.editing import Edit, kernel_ranges
from ..base.loaded import pretrained_zoo_model
from ..base.training import TrainConfig
from .maps import compute_maps, kernel_flags
from .ordering import KernelOrdering, default_n_groups
from .overview import MIN_SELECTIVITY, suggest_keep
from .retrain import Version, edit_and_retrain, initial_version

__all__ = ["PAPER_MNIST", "choose_kernels", "reproduce_mnist"]

PAPER_MNIST = {"baseline": 0.9696, "conv1": (5, 0.9693), "conv2": (None, 0.9769)}


def choose_kernels(selectivity: np.ndarray, odm: np.ndarray, aom: np.ndarray, n_groups: int | None = None,
                   min_selectivity: float = MIN_SELECTIVITY) -> list[int]:
    """The paper's rule (:func:`~aomcore.aom.overview.suggest_keep`) on the layer cut into ``n_groups``.

    Parameters
    ----------
    selectivity : ndarray, (K,) float64
    odm : ndarray, (K, K) float64
    aom : ndarray, (K, C, H, W) float64
    n_groups : int, optional
        Groups of the kernel tree (clustered from the ODM, as displayed); default
        :func:`~aomcore.aom.ordering.default_n_groups` (the tree cut at a tenth of 2·m̄, m̄ the layer's mean occurrence).
    min_selectivity : float, default :data:`~aomcore.aom.overview.MIN_SELECTIVITY`

    Returns
    -------
    list of int, the kept kernel indices, sorted.
    """
    n_groups = default_n_groups(odm, aom) if n_groups is None else min(n_groups, len(selectivity))
    groups = KernelOrdering(n_groups=n_groups).fit(odm).labels_
    return suggest_keep(selectivity, groups, kernel_flags(aom), min_selectivity)


def reproduce_mnist(train_set: ImageDataset, test_set: ImageDataset, layers=("conv1", "conv2"),
                    device="auto", cache: DiskCache | None = None,
                    log: Callable[[str], None] = print,
                    on_version: Callable[[Version, int | None], int] | None = None) -> list[dict]:
    """Run the experiment; returns one result row per step (baseline first).

    ``on_version(version, parent_id)``, when given, is called with each step's version
    (baseline first) and returns the id it was recorded under (e.g. in a workspace).
    """
    config = TrainConfig()
    start = time.perf_counter()
    loaded = pretrained_zoo_model("zoo:paper_mnist", train_set, config, device=device, cache=cache)
    version: Version = initial_version(loaded.model, test_set, device, note="paper_mnist, 1 epoch")
    log(f"baseline: test accuracy {version.metrics['accuracy']:.2%} ({time.perf_counter() - start:.0f}s)")
    rows = [_row("baseline", None, None, version, list(range(16)), time.perf_counter() - start)]
    recorded = on_version(version, None) if on_version else None
    for layer in layers:
        t0 = time.perf_counter()
        maps = compute_maps(version.model, train_set, [layer], device=device)[layer]
        k = maps.num_kernels
        keep = choose_kernels(maps.selectivity, maps.odm, maps.aom)
        drop = tuple(i for i in range(k) if i not in keep)
        before = k
        version = edit_and_retrain(version, Edit("remove", layer, drop), version.id + 1, train_set, test_set,
                                   freeze="upto", config=config, device=device)
        rows.append(_row(layer, before, len(keep), version, keep, time.perf_counter() - t0))
        recorded = on_version(version, recorded) if on_version else None
        log(f"{layer}: {before} → {len(keep)} kernels (kept {kernel_ranges(keep)}), test accuracy "
            f"{version.metrics['accuracy']:.2%} ({time.perf_counter() - t0:.0f}s)")
    return rows


def _row(step, before, after, version: Version, kept, seconds) -> dict:
    m = version.metrics
    return {"step": step, "layer": None if step == "baseline" else step, "kernels_before": before,
            "kernels_after": after, "params": m["params"], "flops": m["flops"], "test_accuracy": m["accuracy"],
            "kept": kept, "kernels": m["kernels"], "seconds": round(seconds, 1)}
