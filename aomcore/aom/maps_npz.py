"""The ``maps.npz`` file written by the CLI and the dashboard's download button.

Layout, for each layer name ``L``:

========================  ============  =======  =======================================
key                       shape         dtype    meaning
========================  ============  =======  =======================================
``L/aom``                 (K, C, H, W)  float64  eq. 1
``L/odm``                 (K, K)        float64  eq. 2
``L/csm``                 (K, C, H, W)  float64  eq. 3
``L/selectivity``         (K,)          float64  eq. 4
``L/order``               (K,)          int64    kernel display order (clustering)
``L/groups``              (K,)          int64    kernel group at the default cut
``L/counts``              (K, C, H, W)  int64    positive-activation counts
``L/cell_area``           (H, W)        int64    positions per cell (pooled maps only)
``L/class_difference``    (C, C)        float64  class difference E (Task 2)
``L/classes_per_kernel``  (K,)          int64    classes with strong occurrence (Task 3)
========================  ============  =======  =======================================

plus ``class_sizes`` (C,) int64, ``classes`` (C,) str and ``meta``, a JSON string
(model digest, architecture, dataset identity, split, preprocessing, threshold, taps,
``classes_per_kernel_level`` (the level of ``L/classes_per_kernel``), ``kernel_origin``
(per layer, each kernel's index in the first version, ``null`` for a kernel added by an
edit: :mod:`~aomcore.base.lineage`), versions).
Everything loads with ``np.load(path, allow_pickle=False)``. Loading needs only the
counts, so files written before a key existed still load; derived keys are recomputed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_path
from ..base.errors import InputError
from ..base.lineage import Lineage, kernel_origin
from ..base.npzfile import library_versions, read_result_npz
from .maps import MULTI_CLASS_LEVEL, LayerMaps
from .ordering import KernelOrdering, default_n_groups

__all__ = ["load_maps_npz", "maps_npz_bytes", "save_maps_npz"]


def _arrays(maps: dict[str, LayerMaps], meta: dict, lineage: Lineage | None) -> dict[str, np.ndarray]:
    if not maps:
        raise ValueError("no layers to write")
    first = next(iter(maps.values()))
    arrays: dict[str, np.ndarray] = {"class_sizes": first.class_sizes.astype(np.int64),
                                     "classes": np.array(first.classes, dtype=str)}
    taps = {}
    for name, m in maps.items():
        ordering = KernelOrdering(n_groups=default_n_groups(m.odm, m.aom)).fit(m.odm)
        arrays[f"{name}/aom"] = m.aom
        arrays[f"{name}/odm"] = m.odm
        arrays[f"{name}/csm"] = m.csm
        arrays[f"{name}/selectivity"] = m.selectivity
        arrays[f"{name}/order"] = ordering.order_
        arrays[f"{name}/groups"] = ordering.labels_
        arrays[f"{name}/counts"] = m.counts.astype(np.int64)
        arrays[f"{name}/class_difference"] = m.class_difference
        arrays[f"{name}/classes_per_kernel"] = m.classes_per_kernel  # at MULTI_CLASS_LEVEL
        if m.cell_area is not None:
            arrays[f"{name}/cell_area"] = m.cell_area.astype(np.int64)
        taps[name] = m.tap
    full_meta = {"threshold": first.threshold, "layers": list(maps), "taps": taps,
                 "versions": library_versions()} | meta | {
        "classes_per_kernel_level": MULTI_CLASS_LEVEL,
        "kernel_origin": {name: kernel_origin(lineage, name, m.num_kernels) for name, m in maps.items()}}
    arrays["meta"] = np.array(json.dumps(full_meta, default=str))
    return arrays


def save_maps_npz(path: str | Path, maps: dict[str, LayerMaps], meta: dict, lineage: Lineage | None = None) -> Path:
    """Write ``maps`` (layer name → :class:`LayerMaps`) and ``meta`` to ``path``, atomically.

    ``lineage`` is the model's (:attr:`~aomcore.base.loaded.LoadedModel.lineage`): it gives
    ``meta["kernel_origin"]``; without it (an unedited model) kernel i is original kernel i.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **_arrays(maps, meta, lineage))
    return path


def maps_npz_bytes(maps: dict[str, LayerMaps], meta: dict, lineage: Lineage | None = None) -> bytes:
    """The same file as :func:`save_maps_npz`, as bytes (for a download button)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **_arrays(maps, meta, lineage))
    return buf.getvalue()


def load_maps_npz(path: str | Path) -> tuple[dict[str, LayerMaps], dict]:
    """Read a ``maps.npz`` back into :class:`LayerMaps` objects and its meta dict.

    Raises
    ------
    InputError
        Naming the file and what is wrong (:func:`~aomcore.base.npzfile.read_result_npz`; a layer
        in ``meta`` without its counts, counts that do not fit the classes).
    """
    arrays, meta = read_result_npz(path, "maps file", "python -m aomcore maps --out",
                                   required=("classes", "class_sizes"))
    name = Path(path).name
    try:
        classes = [str(c) for c in arrays["classes"]]
        sizes, taps = arrays["class_sizes"], meta.get("taps") or {}
        layers = meta["layers"]
        if not isinstance(layers, list) or not isinstance(taps, dict):
            raise TypeError("meta's layers must be a list and its taps an object")
        maps = {layer: LayerMaps(layer=layer, tap=str(taps.get(layer, layer)), counts=arrays[f"{layer}/counts"],
                                 class_sizes=sizes, classes=classes, threshold=float(meta.get("threshold", 0.0)),
                                 cell_area=arrays.get(f"{layer}/cell_area"))
                for layer in layers}
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    except KeyError as exc:
        raise InputError(f"cannot read the maps file {name}", expected="meta['layers'] naming arrays 'L/counts'",
                         found=f"no {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot read the maps file {name}", expected="a maps.npz written by python -m aomcore maps",
                         found=str(exc)[:300]) from None
    return maps, meta

