"""The steps the dashboard and the CLI share, with the disk cache in front of them."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import torch

from ..base.cache import DiskCache
from ..base.data import ImageDataset
from ..base.errors import InputError
from ..base.loaded import INPUTS_VERSION, LoadedModel, arch_identity
from .experiment import selectivity_experiment
from .maps import LayerMaps, check_maps_options, compute_maps

__all__ = ["cached_experiment", "cached_maps", "load_cached_maps", "maps_cache_key", "maps_key"]


def maps_key(digest: str, dataset: ImageDataset, layers: list[str] | None, threshold: float,
             autocast: str | None = None, max_resolution: int | None = None, *, arch: str | None = None,
             edits: list | None = None, structure: str | None = None, channels_last: bool = False,
             batch_size: int | None = None) -> str:
    """Cache key of a maps computation.

    Holds the weights' digest, the architecture (``arch`` spec, with an architecture file's
    content digest; ``edits``; ``structure``, a digest of the module tree) — pass
    ``**loaded.key_parts()`` — the dataset's identity and every option. Without ``arch``
    the key is the old weights-only key, which cannot tell two architectures with the same
    state_dict apart: callers should pass it.
    """
    parts = dict(kind="maps", model=digest, dataset=dataset.identity(), inputs=INPUTS_VERSION,
                 layers=list(layers) if layers else None, threshold=float(threshold),
                 **({"autocast": autocast} if autocast else {}),
                 **({"max_resolution": int(max_resolution)} if max_resolution else {}))
    if arch is not None or edits or structure is not None:
        parts.update(arch_identity(arch), edits=[e.to_dict() if hasattr(e, "to_dict") else e for e in edits or []],
                     structure=structure, channels_last=bool(channels_last),
                     batch_size=None if batch_size is None else int(batch_size))
    return DiskCache.key(**parts)


def cached_maps(loaded: LoadedModel, dataset: ImageDataset, layers: list[str] | None = None,
                threshold: float = 0.0, batch_size: int = 256, device: str | torch.device = "auto",
                cache: DiskCache | None = None,
                progress: Callable[[int, int], None] | None = None,
                autocast: str | None = None, channels_last: bool = False,
                max_resolution: int | None = None) -> tuple[dict[str, LayerMaps], bool]:
    """:func:`~aomcore.aom.maps.compute_maps` behind the disk cache.

    The key (:func:`maps_key`) holds the architecture (spec, file digest, edits, module
    tree), the weights' digest, the dataset's identity and every option; the options are
    validated before the cache is read, and only a validated, complete result is stored.

    Returns
    -------
    (maps, from_cache) : dict of layer name to LayerMaps, and whether it was a cache hit.

    Raises
    ------
    InputError
        A bad option (see :func:`~aomcore.aom.maps.check_maps_options`), or any error of
        :func:`~aomcore.aom.maps.compute_maps`.
    """
    threshold = check_maps_options(layers, threshold, batch_size, autocast, max_resolution, channels_last)
    key = maps_cache_key(loaded, dataset, layers, threshold, batch_size, autocast, max_resolution, channels_last)
    cache = cache or DiskCache()
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


def maps_cache_key(loaded: LoadedModel, dataset: ImageDataset, layers: list[str] | None, threshold: float,
                   batch_size: int = 256, autocast: str | None = None, max_resolution: int | None = None,
                   channels_last: bool = False) -> str:
    """The key :func:`cached_maps` stores these maps under (see :func:`maps_key`)."""
    return maps_key(loaded.digest, dataset, layers, float(threshold), autocast, max_resolution,
                    channels_last=channels_last, batch_size=batch_size, **loaded.key_parts())


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
    """:func:`~aomcore.aom.experiment.selectivity_experiment` behind the disk cache.

    Keyed by the weights' digest, the layer and its tap, the maps' counts and the test
    split's identity. Returns ``(rows, from_cache)``.
    """
    cache = cache or DiskCache()
    key = DiskCache.key(kind="experiment", model=loaded.digest, layer=maps.layer, tap=maps.tap,
                        counts=maps.counts, sizes=maps.class_sizes, test=test_set.identity(), inputs=INPUTS_VERSION)
    arrays = cache.load_arrays("experiments", key)
    if arrays is not None and "rows" in arrays:
        return json.loads(str(arrays["rows"])), True
    rows = selectivity_experiment(loaded.model, maps, test_set, device=device, progress=progress)
    cache.save_arrays("experiments", key, {"rows": np.array(json.dumps(rows))})
    return rows, False
