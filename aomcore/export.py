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
``classes_per_kernel_level`` (the level of ``L/classes_per_kernel``), versions).
Everything loads with ``np.load(path, allow_pickle=False)``. Loading needs only the
counts, so files written before a key existed still load; derived keys are recomputed.

The ``embed.npz`` file (``python -m aomcore embed``; :func:`save_embedding_npz`) holds one
2-D projection:

==============================  ========  =======  ==========================================
key                             shape     dtype    meaning
==============================  ========  =======  ==========================================
``points``                      (N, 2)    float64  2-D positions
``labels``                      (N,)      int64    class (images, samples) / colour class (neurons)
``index``                       (N,)      int64    dataset index (images, samples) / kernel (neurons)
``classes``                     (C,)      str      class names
``meta``                        ()        str      JSON: view, layer, tap, model digest, dataset
                                                   identity, embedding options, versions, key
``neighborhood_hit``            ()        float64  per-image views (activations, input-map)
``neighborhood_hit_per_class``  (C,)      float64  per-image views
``predicted``                   (N,)      int64    activations: the model's prediction
``position``                    (N,)      int64    input-map: row · W + col in the layer's map
``perplexity``                  (N,)      float64  input-map: DeepEyes perplexity of the sample
``max_activation``              (N,)      float32  input-map: largest kernel activation
``class_means``                 (K, C)    float64  neurons: mean activation per class
``distances``                   (K, K)    float64  neurons: 1 − |Pearson r|
==============================  ========  =======  ==========================================

A ``trails.npz`` (:meth:`aomcore.trails.Trails.arrays` + ``meta``, written with
:func:`save_embedding_npz`) holds ``points`` (S, N, 2) float64, ``labels``, ``index`` (N,)
int64, ``iterations`` (S,) int64, ``predicted`` (S, N) int64 and ``neighborhood_hit`` (S,)
float64; the ``trails`` job and CLI (:mod:`aomcore.trails_jobs`) add ``snapshots`` (S,) int64 (the
iterations again, under the name the page and CLI use), ``class_neighborhood_hit`` and
``class_accuracy`` (C,) float64 (final snapshot; accuracy over the whole split).
"""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .maps import MULTI_CLASS_LEVEL, LayerMaps
from .ordering import KernelOrdering

__all__ = ["load_embedding_npz", "load_maps_npz", "maps_npz_bytes", "save_embedding_npz", "save_maps_npz",
           "versions"]


def versions() -> dict[str, str]:
    """Versions of the packages the maps depend on (read from the installed metadata: importing
    scikit-learn only for its version took 1.3 s of a 10 s maps command)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from . import __version__

    try:
        sklearn = version("scikit-learn")
    except PackageNotFoundError:
        sklearn = "not installed"
    return {"aomcore": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn, "python": platform.python_version()}


def _arrays(maps: dict[str, LayerMaps], meta: dict) -> dict[str, np.ndarray]:
    if not maps:
        raise ValueError("no layers to write")
    first = next(iter(maps.values()))
    arrays: dict[str, np.ndarray] = {"class_sizes": first.class_sizes.astype(np.int64),
                                     "classes": np.array(first.classes, dtype=str)}
    taps = {}
    for name, m in maps.items():
        ordering = KernelOrdering().fit(m.odm)
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
                 "versions": versions()} | meta | {"classes_per_kernel_level": MULTI_CLASS_LEVEL}
    arrays["meta"] = np.array(json.dumps(full_meta, default=str))
    return arrays


def save_maps_npz(path: str | Path, maps: dict[str, LayerMaps], meta: dict) -> Path:
    """Write ``maps`` (layer name → :class:`LayerMaps`) and ``meta`` to ``path``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **_arrays(maps, meta))
    return path


def maps_npz_bytes(maps: dict[str, LayerMaps], meta: dict) -> bytes:
    """The same file as :func:`save_maps_npz`, as bytes (for a download button)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **_arrays(maps, meta))
    return buf.getvalue()


def load_maps_npz(path: str | Path) -> tuple[dict[str, LayerMaps], dict]:
    """Read a ``maps.npz`` back into :class:`LayerMaps` objects and its meta dict."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        classes = [str(c) for c in npz["classes"]]
        sizes = npz["class_sizes"]
        maps = {name: LayerMaps(layer=name, tap=meta.get("taps", {}).get(name, name), counts=npz[f"{name}/counts"],
                                class_sizes=sizes, classes=classes, threshold=float(meta.get("threshold", 0.0)),
                                cell_area=npz[f"{name}/cell_area"] if f"{name}/cell_area" in npz.files else None)
                for name in meta["layers"]}
    return maps, meta


def save_embedding_npz(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write an ``embed.npz`` / ``trails.npz`` (layout in the module docstring) atomically.

    Written with :func:`aomcore.atomic.atomic_path` (temporary file in the same folder,
    fsync, rename), so a reader sees the old file or the whole new one; adds the library
    versions (openTSNE, umap-learn, ...) to ``meta``.
    """
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for name in ("openTSNE", "umap-learn"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = "absent"
    full_meta = {"versions": versions() | libs} | meta
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays, meta=np.array(json.dumps(full_meta, default=str)))
    return Path(path)


def load_embedding_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read an ``embed.npz`` / ``trails.npz`` back: (arrays without ``meta``, meta dict)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
        meta = json.loads(str(npz["meta"]))
    return arrays, meta
