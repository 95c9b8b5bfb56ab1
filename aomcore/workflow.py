"""The steps the dashboard and the CLI share, with the disk cache in front of them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .cache import DiskCache
from .data import ImageDataset
from .errors import InputError
from .experiment import selectivity_experiment
from .maps import LayerMaps, compute_maps
from .models import apply_state_dict, build_model, load_state_dict, save_state_dict, weights_digest
from .training import TrainConfig, train

__all__ = ["LoadedModel", "cached_experiment", "cached_maps", "load_cached_maps", "load_model", "maps_key",
           "pretrained_zoo_model"]


@dataclass
class LoadedModel:
    """A model with what identifies it.

    Attributes
    ----------
    arch : str
        Architecture spec (``zoo:NAME``, ``torchvision:NAME``, ``FILE.py:CLASS``).
    model : nn.Module
        On the CPU, in eval mode.
    digest : str
        sha256 of its weights (:func:`~aomcore.models.weights_digest`).
    source : str
        Where the weights came from (file name, "trained here: …").
    """

    arch: str
    model: nn.Module
    digest: str
    source: str

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_model(arch: str, weights, num_classes: int, input_shape: tuple[int, int, int],
               weights_name: str | None = None, edits: list | None = None) -> LoadedModel:
    """Build ``arch`` (with ``edits`` applied, if any) and load weights from a path or bytes.

    ``edits`` (a list of :class:`aomcore.editing.Edit`) rebuilds an edited architecture, so
    weights saved from an edited version load back (see :mod:`aomcore.models`).

    Raises
    ------
    InputError
        Unknown architecture, unreadable weights, weights that do not fit (missing,
        unexpected and mis-shaped keys listed), NaN/Inf in the weights.
    """
    if edits:
        from .editing import build_edited

        model = build_edited(arch, num_classes, input_shape, edits)
    else:
        model = build_model(arch, num_classes, input_shape)
    state_dict = load_state_dict(weights, name=weights_name)
    apply_state_dict(model, state_dict)
    model.eval()
    name = weights_name or str(weights)
    return LoadedModel(arch=arch, model=model, digest=weights_digest(model), source=name)


def pretrained_zoo_model(arch: str, train_set: ImageDataset, config: TrainConfig | None = None,
                         device: str | torch.device = "auto", cache: DiskCache | None = None,
                         progress: Callable[[dict], None] | None = None,
                         cancel: threading.Event | None = None) -> LoadedModel:
    """A zoo model trained on ``train_set``, from the disk cache when trained before.

    The cache key holds the architecture, the dataset's identity and the training config,
    so a restart reuses the weights instead of retraining.
    """
    cache = cache or DiskCache()
    config = config or TrainConfig()
    key = DiskCache.key(arch=arch, dataset=train_set.identity(), config=config.__dict__, seed=config.seed)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the process's RNG (shared servers)
        torch.manual_seed(config.seed)
        model = build_model(arch, train_set.num_classes, train_set.input_shape)
    source = f"trained here: {config.epochs} epoch(s) on {train_set.name} {train_set.split}"
    path = cache.lookup("models", key, ".safetensors")
    if path is not None:
        try:
            apply_state_dict(model, load_state_dict(path))
            model.eval()
            return LoadedModel(arch=arch, model=model, digest=weights_digest(model), source=source + " (cached)")
        except InputError:
            path.unlink(missing_ok=True)
    train(model, train_set, config, device=device, progress=progress, cancel=cancel)
    model.eval()
    cache.commit("models", key, ".safetensors", lambda tmp: save_state_dict(model, tmp, fmt="safetensors"))
    return LoadedModel(arch=arch, model=model, digest=weights_digest(model), source=source)


#: Bumped when the conversion of raw images into model inputs changes, so results cached
#: from the old inputs are not served: "torchvision" = bit-identical to ToTensor/Normalize
#: (before it, uint8 was multiplied by 1/255, a last-bit difference for ~13% of pixels).
_INPUTS = "torchvision"


def maps_key(digest: str, dataset: ImageDataset, layers: list[str] | None, threshold: float,
             autocast: str | None = None, max_resolution: int | None = None) -> str:
    """Cache key of a maps computation (weights digest, dataset identity, layers, threshold, precision)."""
    return DiskCache.key(kind="maps", model=digest, dataset=dataset.identity(), inputs=_INPUTS,
                         layers=list(layers) if layers else None, threshold=float(threshold),
                         **({"autocast": autocast} if autocast else {}),
                         **({"max_resolution": max_resolution} if max_resolution else {}))


def cached_maps(loaded: LoadedModel, dataset: ImageDataset, layers: list[str] | None = None,
                threshold: float = 0.0, batch_size: int = 256, device: str | torch.device = "auto",
                cache: DiskCache | None = None,
                progress: Callable[[int, int], None] | None = None,
                autocast: str | None = None, channels_last: bool = False,
                max_resolution: int | None = None) -> tuple[dict[str, LayerMaps], bool]:
    """:func:`~aomcore.maps.compute_maps` behind the disk cache.

    Returns
    -------
    (maps, from_cache) : dict of layer name to LayerMaps, and whether it was a cache hit.
    """
    cache = cache or DiskCache()
    key = maps_key(loaded.digest, dataset, layers, threshold, autocast, max_resolution)
    arrays = cache.load_arrays("maps", key)
    if arrays is not None:
        try:
            return _maps_from_arrays(arrays), True
        except (KeyError, ValueError, InputError):
            cache.path("maps", key, ".npz").unlink(missing_ok=True)
    maps = compute_maps(loaded.model, dataset, layers, threshold=threshold, batch_size=batch_size,
                        device=device, progress=progress, autocast=autocast, channels_last=channels_last,
                        max_resolution=max_resolution)
    cache.save_arrays("maps", key, _maps_to_arrays(maps))
    return maps, False


def load_cached_maps(cache: DiskCache, key: str) -> dict[str, LayerMaps]:
    """Maps stored under ``key`` by :func:`cached_maps`.

    Raises
    ------
    InputError
        No intact entry under that key.
    """
    arrays = cache.load_arrays("maps", key)
    if arrays is None:
        raise InputError("maps not found", expected=f"an intact entry {key} in {cache.root}", found="none")
    return _maps_from_arrays(arrays)


def _maps_to_arrays(maps: dict[str, LayerMaps]) -> dict[str, np.ndarray]:
    first = next(iter(maps.values()))
    arrays = {"layers": np.array(list(maps), dtype=str), "classes": np.array(first.classes, dtype=str),
              "class_sizes": first.class_sizes, "threshold": np.array(first.threshold)}
    for name, m in maps.items():
        arrays[f"{name}/counts"] = m.counts
        arrays[f"{name}/tap"] = np.array(m.tap)
        if m.cell_area is not None:
            arrays[f"{name}/cell_area"] = m.cell_area
    return arrays


def _maps_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, LayerMaps]:
    classes = [str(c) for c in arrays["classes"]]
    return {str(name): LayerMaps(layer=str(name), tap=str(arrays[f"{name}/tap"]), counts=arrays[f"{name}/counts"],
                                 class_sizes=arrays["class_sizes"], classes=classes,
                                 threshold=float(arrays["threshold"]), cell_area=arrays.get(f"{name}/cell_area"))
            for name in arrays["layers"]}


def cached_experiment(loaded: LoadedModel, maps: LayerMaps, test_set: ImageDataset,
                      device: str | torch.device = "auto", cache: DiskCache | None = None,
                      progress: Callable[[int, int], None] | None = None) -> tuple[list[dict], bool]:
    """:func:`~aomcore.experiment.selectivity_experiment` behind the disk cache.

    Keyed by the weights' digest, the layer and its tap, the maps' counts and the test
    split's identity. Returns ``(rows, from_cache)``.
    """
    cache = cache or DiskCache()
    key = DiskCache.key(kind="experiment", model=loaded.digest, layer=maps.layer, tap=maps.tap,
                        counts=maps.counts, sizes=maps.class_sizes, test=test_set.identity(), inputs=_INPUTS)
    arrays = cache.load_arrays("experiments", key)
    if arrays is not None and "rows" in arrays:
        return json.loads(str(arrays["rows"])), True
    rows = selectivity_experiment(loaded.model, maps, test_set, device=device, progress=progress)
    cache.save_arrays("experiments", key, {"rows": np.array(json.dumps(rows))})
    return rows, False
