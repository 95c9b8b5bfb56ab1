"""``reproduce mnist`` and ``reproduce cifar10``: the paper's Sec. V-A and V-B with no human in the loop.

Train the paper's model (``zoo:paper_mnist`` / ``zoo:paper_cifar10``, 1 epoch), or start
from a given one; for each of the experiment's layers in turn (MNIST: conv1 then conv2;
CIFAR-10: conv1 then conv6, the 1st and 6th conv layers): compute the layer's maps on the
train split, cut the layer's kernels into groups by clustering their AOM rows at the
default cut (:func:`~aomcore.aom.ordering.default_n_groups`, the dashboard's), and
keep what :func:`aomcore.aom.overview.suggest_keep` keeps (the most selective kernel of each
group, never a dead, always-on or non-selective one); remove the rest, freeze the layer
and everything before it, and retrain 1 epoch (for conv6 that leaves only the
fully-connected layers to retrain, as the paper does). Paper (Garcia et al. 2019):
MNIST 96.96% → 96.93% with conv1 16 → 5 kernels → 97.69% after conv2; CIFAR-10 80.54% →
81.20% with conv1 64 → 20 → 80.43% with conv6 64 → 35.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..base.cache import DiskCache
from ..base.data import ImageDataset
from ..base.editing import Edit, kernel_ranges
from ..base.loaded import LoadedModel, pretrained_zoo_model
from ..base.training import TrainConfig
from .maps import compute_maps, kernel_flags
from .ordering import KernelOrdering, default_n_groups
from .overview import MIN_SELECTIVITY, suggest_keep
from .retrain import Version, edit_and_retrain, initial_version

__all__ = ["PAPER_EXPERIMENTS", "PAPER_MNIST", "choose_kernels", "reproduce_mnist", "reproduce_paper"]

#: Each experiment: its zoo model, its default dataset, the layers reduced in turn, and what
#: the paper reports per step (test accuracy; for a layer ``(kernels kept or None, accuracy)``).
PAPER_EXPERIMENTS = {
    "mnist": {"section": "V-A", "arch": "zoo:paper_mnist", "dataset": "mnist", "layers": ("conv1", "conv2"),
              "paper": {"baseline": 0.9696, "conv1": (5, 0.9693), "conv2": (None, 0.9769)}},
    "cifar10": {"section": "V-B", "arch": "zoo:paper_cifar10", "dataset": "cifar10", "layers": ("conv1", "conv6"),
                "paper": {"baseline": 0.8054, "conv1": (20, 0.8120), "conv6": (35, 0.8043)}},
}
PAPER_MNIST = PAPER_EXPERIMENTS["mnist"]["paper"]


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


def reproduce_paper(experiment: str, train_set: ImageDataset, test_set: ImageDataset,
                    baseline: LoadedModel | None = None, config: TrainConfig | None = None,
                    device="auto", cache: DiskCache | None = None, log: Callable[[str], None] = print,
                    on_version: Callable[[Version, int | None], int] | None = None) -> list[dict]:
    """Run one of :data:`PAPER_EXPERIMENTS`; returns one result row per step (baseline first).

    Parameters
    ----------
    experiment : {"mnist", "cifar10"}
    train_set, test_set : ImageDataset
        Maps and retraining read the train split; every accuracy is on the test split.
    baseline : LoadedModel, optional
        The trained model to reduce (its layers must include the experiment's); default: the
        experiment's zoo model trained ``config.epochs`` on ``train_set`` (from ``cache`` when
        trained before).
    config : TrainConfig, optional
        Training of the baseline (when not given) and of each retraining; default 1 epoch, Adam.
    on_version : callable, optional
        ``on_version(version, parent_id)`` is called with each step's version (baseline first)
        and returns the id it was recorded under (e.g. in a workspace).

    Each row: ``step`` ("baseline" or the layer), ``kernels_before``/``kernels_after`` (None for
    the baseline), ``params``, ``flops`` (per image), ``test_accuracy`` in [0, 1], ``kept``
    (kernel indices of the layer before the edit), ``kernels`` (per layer), ``seconds``.
    """
    spec = PAPER_EXPERIMENTS[experiment]
    config = config or TrainConfig()
    retrain = TrainConfig(**(config.__dict__ | {"epochs": 1}))  # the paper retrains one epoch
    start = time.perf_counter()
    if baseline is None:
        baseline = pretrained_zoo_model(spec["arch"], train_set, config, device=device, cache=cache)
        note = f"{spec['arch'].removeprefix('zoo:')}, {config.epochs} epoch(s)"
    else:
        note = baseline.source or "the given model"
    version: Version = initial_version(baseline.model, test_set, device, note=note, edits=baseline.edits)
    log(f"baseline: test accuracy {version.metrics['accuracy']:.2%} ({time.perf_counter() - start:.0f}s)")
    rows = [_row("baseline", None, None, version, None, time.perf_counter() - start)]
    recorded = on_version(version, None) if on_version else None
    for layer in spec["layers"]:
        t0 = time.perf_counter()
        maps = compute_maps(version.model, train_set, [layer], device=device)[layer]
        k = maps.num_kernels
        keep = choose_kernels(maps.selectivity, maps.odm, maps.aom)
        drop = tuple(i for i in range(k) if i not in keep)
        if not drop:  # nothing to remove: the step keeps the model as it is, and no version is added
            rows.append(_row(layer, k, k, version, keep, time.perf_counter() - t0))
            log(f"{layer}: the rule keeps all {k} kernels; nothing removed")
            continue
        version = edit_and_retrain(version, Edit("remove", layer, drop), version.id + 1, train_set, test_set,
                                   freeze="upto", config=retrain, device=device)
        rows.append(_row(layer, k, len(keep), version, keep, time.perf_counter() - t0))
        recorded = on_version(version, recorded) if on_version else None
        log(f"{layer}: {k} → {len(keep)} kernels (kept {kernel_ranges(keep)}), test accuracy "
            f"{version.metrics['accuracy']:.2%} ({time.perf_counter() - t0:.0f}s)")
    return rows


def reproduce_mnist(train_set: ImageDataset, test_set: ImageDataset, device="auto", cache: DiskCache | None = None,
                    log: Callable[[str], None] = print,
                    on_version: Callable[[Version, int | None], int] | None = None) -> list[dict]:
    """Sec. V-A: :func:`reproduce_paper` ``("mnist", ...)`` from the paper's model trained 1 epoch."""
    return reproduce_paper("mnist", train_set, test_set, device=device, cache=cache, log=log, on_version=on_version)


def _row(step, before, after, version: Version, kept, seconds) -> dict:
    m = version.metrics
    return {"step": step, "layer": None if step == "baseline" else step, "kernels_before": before,
            "kernels_after": after, "params": m["params"], "flops": m["flops"], "test_accuracy": m["accuracy"],
            "kept": kept, "kernels": m["kernels"], "seconds": round(seconds, 1)}
