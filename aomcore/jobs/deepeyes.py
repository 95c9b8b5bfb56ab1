"""The ``deepeyes`` job kind: DeepEyes' statistics of a version's layers (Pezzotti et al. 2018).

The arrays are stored as ``.npz`` in the workspace's content-keyed results
(``W/results/deepeyes/<key>.npz``; never pickles) and indexed with
:meth:`~aomcore.store.workspace.Workspace.record_result`: ``<layer>::<name>`` for each layer
and each array of :meth:`aomcore.deepeyes.statistics.DeepEyesStats.result`
(max_activation, activation_frequency, perplexity_histogram, bin_edges,
filter_similarity, filter_label, filter_confidence). A key names everything the arrays
depend on: the version's weights digest, architecture and edit list, the dataset's
identity (name, split, content digest, preprocessing) and every option, so asking again is
a cache hit and two versions never share an entry.
"""

from __future__ import annotations

import time

import numpy as np

from ..base.cache import DiskCache
from ..base.layers import list_layers, resolve_layers
from ..deepeyes.statistics import compute_deepeyes
from ..store.workspace import Workspace
from .engine import JobContext
from .registry import job_kind

__all__ = ["deepeyes_arrays", "deepeyes_job", "deepeyes_key"]

_SEP = "::"


_SEP = "::"


def _model_parts(loaded, data) -> dict:
    return {"digest": loaded.digest, "arch": loaded.arch, "edits": [e.to_dict() for e in loaded.edits],
            "dataset": data.identity()}


def deepeyes_key(loaded, data, layers: list[str], positions, seed: int, bins: int = 30) -> str:
    """The content key of a ``deepeyes`` result (version, data, resolved layers, options)."""
    return DiskCache.key(kind="deepeyes", **_model_parts(loaded, data), layers=list(layers),
                         positions=positions, seed=int(seed), bins=int(bins))


def deepeyes_arrays(ws: Workspace, key: str) -> dict[str, dict[str, np.ndarray]] | None:
    """A stored ``deepeyes`` result as ``{layer: {name: array}}`` (None when absent or damaged)."""
    flat = ws.results_cache.load_arrays("deepeyes", key)
    if flat is None:
        return None
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in flat.items():
        layer, _, field = name.partition(_SEP)
        out.setdefault(layer, {})[field] = arr
    return out


def _resolve(loaded, data, layers) -> list:
    available = list_layers(loaded.model, data.input_shape, include_all=True)
    if not layers:
        return [la for la in available if la.kind in ("conv", "fc")]
    return resolve_layers(available, list(layers))


def _ensure_deepeyes(ws: Workspace, p: dict, ctx, share: tuple[int, int] = (0, 1)) -> dict:
    """Compute (or find) the DeepEyes result of ``p``; returns its result record."""
    loaded = ws.loaded(p["version"])
    data = ws.load_split(p.get("split", "train"))
    chosen = _resolve(loaded, data, p.get("layers"))
    names = [la.name for la in chosen]
    positions, seed = p.get("positions", 10), int(p.get("seed", 0))
    key = deepeyes_key(loaded, data, names, positions, seed)
    start = time.perf_counter()
    hit = ws.results_cache.lookup("deepeyes", key, ".npz") is not None
    if not hit:
        first, parts = share

        def progress(done, total):
            ctx.progress(first * total + done, parts * total,
                         f"DeepEyes statistics: {done:,} / {total:,} image passes")

        results = compute_deepeyes(loaded.model, data, names, positions=positions, seed=seed,
                                   batch_size=p.get("batch_size", 256), device=p.get("device", "auto"),
                                   progress=progress)
        flat = {f"{name}{_SEP}{field}": arr for name, res in results.items() for field, arr in res.arrays.items()
                if arr is not None}
        ws.results_cache.save_arrays("deepeyes", key, flat)
    record = {"kind": "deepeyes", "key": key, "digest": loaded.digest, "version": p["version"],
              "layers": names, "taps": {la.name: la.tap for la in chosen}, "split": data.split,
              "positions": positions, "seed": seed, "n_images": len(data), "from_cache": hit,
              "seconds": time.perf_counter() - start, "dataset": data.identity()}
    ws.record_result(record)
    return record


@job_kind("deepeyes", "DeepEyes statistics")
def deepeyes_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """DeepEyes statistics of a version's layers over a split (``compute_deepeyes``).

    Parameters (``p``): ``version``, ``split`` (default train), ``layers`` (default every
    conv and FC layer), ``positions`` (default 10), ``seed``, ``batch_size``, ``device``.
    """
    return {"key": _ensure_deepeyes(ws, p, ctx)["key"]}
