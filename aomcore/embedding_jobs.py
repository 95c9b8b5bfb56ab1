"""Job kinds of the DeepEyes and Rauber et al. views: ``deepeyes`` and ``embed``.

Both store their arrays as ``.npz`` in the workspace's content-keyed results
(``W/results/deepeyes/<key>.npz``, ``W/results/embed/<key>.npz``; never pickles) and index
them with :meth:`~aomcore.workspace.Workspace.record_result`. A key names everything the
arrays depend on: the version's weights digest, architecture and edit list, the dataset's
identity (name, split, content digest, preprocessing) and every option, so asking again
is a cache hit and two versions never share an entry.

``deepeyes`` arrays: ``<layer>::<name>`` for each layer and each array of
:meth:`aomcore.deepeyes.DeepEyesStats.result` (max_activation, activation_frequency,
perplexity_histogram, bin_edges, filter_similarity, filter_label, filter_confidence).

``embed`` arrays: those of the view's result object (``Projection.arrays()``,
``InputMap.arrays()``, ``NeuronProjection.arrays()``; for ``filter-map`` the kernels'
``points`` (K, 2) with the DeepEyes arrays of the layer), plus ``classes``.
"""

from __future__ import annotations

import time

import numpy as np

from .cache import DiskCache
from .errors import InputError

__all__ = ["EMBED_VIEWS", "deepeyes_arrays", "deepeyes_key", "embed_key", "display_images", "job_deepeyes", "job_embed"]

EMBED_VIEWS = ("activations", "neurons", "input-map", "filter-map")
_SEP = "::"


def _loaded(ws, version_id: int):
    from .jobs import _loaded as loaded

    return loaded(ws, version_id)


def _model_parts(ws, loaded, data) -> dict:
    return {"digest": loaded.digest, "arch": loaded.arch, "edits": [e.to_dict() for e in loaded.edits],
            "dataset": data.identity()}


def deepeyes_key(ws, loaded, data, layers: list[str], positions, seed: int, bins: int = 30) -> str:
    """The content key of a ``deepeyes`` result (version, data, resolved layers, options)."""
    return DiskCache.key(kind="deepeyes", **_model_parts(ws, loaded, data), layers=list(layers),
                         positions=positions, seed=int(seed), bins=int(bins))


def deepeyes_arrays(ws, key: str) -> dict[str, dict[str, np.ndarray]] | None:
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
    from .layers import list_layers, resolve_layers

    available = list_layers(loaded.model, data.input_shape, include_all=True)
    if not layers:
        return [la for la in available if la.kind in ("conv", "fc")]
    return resolve_layers(available, list(layers))


def _ensure_deepeyes(ws, p: dict, ctx, share: tuple[int, int] = (0, 1)) -> dict:
    """Compute (or find) the DeepEyes result of ``p``; returns its result record."""
    from .deepeyes import compute_deepeyes

    loaded = _loaded(ws, p["version"])
    data = ws.load_split(p.get("split", "train"))
    chosen = _resolve(loaded, data, p.get("layers"))
    names = [la.name for la in chosen]
    positions, seed = p.get("positions", 10), int(p.get("seed", 0))
    key = deepeyes_key(ws, loaded, data, names, positions, seed)
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


def job_deepeyes(ws, p: dict, ctx) -> dict:
    """DeepEyes statistics of a version's layers over a split (``compute_deepeyes``).

    Parameters (``p``): ``version``, ``split`` (default train), ``layers`` (default every
    conv and FC layer), ``positions`` (default 10), ``seed``, ``batch_size``, ``device``.
    """
    return {"key": _ensure_deepeyes(ws, p, ctx)["key"]}


def embed_key(parts: dict) -> str:
    from .embedding import embedding_key

    return embedding_key(**parts)


class _Share:
    """A job context reporting one part ``i`` of ``n`` equal parts of the job's progress."""

    def __init__(self, ctx, i: int, n: int):
        self.ctx, self.i, self.n = ctx, i, n

    def is_set(self) -> bool:
        return self.ctx.is_set()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.ctx.progress(self.i * total + done, self.n * total, text + (f" (layer {self.i + 1} of {self.n})"
                                                                         if self.n > 1 else ""))


def job_embed(ws, p: dict, ctx) -> dict:
    """A 2-D embedding of one layer of a version → ``results/embed/<key>.npz``.

    Parameters (``p``): ``version``, ``view`` (activations, neurons, input-map,
    filter-map), ``layer`` (or ``layers``: several, one after the other), ``split`` (default test; train for the filter map's DeepEyes
    statistics), ``n`` (images; input-map: about this many points; default 2000),
    ``method`` (tsne, umap), ``seed``, ``n_iter`` (t-SNE iterations after early
    exaggeration, default 500), ``perplexity`` (default 30), ``mode`` (activations:
    flatten or mean), ``positions`` (input-map, default 10), ``device``.
    """
    layers = p.get("layers") or [p["layer"]]
    keys = [_embed_one(ws, p | {"layer": la}, _Share(ctx, i, len(layers))) for i, la in enumerate(layers)]
    return {"key": keys[-1], "keys": keys}


def _embed_one(ws, p: dict, ctx) -> str:
    from .projections import activation_projection, activation_vectors, filter_map, input_map, \
        neuron_projection, stratified_sample

    view = p.get("view")
    if view not in EMBED_VIEWS:
        raise InputError("unknown embedding view", expected=", ".join(EMBED_VIEWS), found=repr(view))
    method, seed = p.get("method", "tsne"), int(p.get("seed", 0))
    n_iter, perplexity = int(p.get("n_iter", 500)), float(p.get("perplexity", 30.0))
    device = p.get("device", "auto")
    loaded = _loaded(ws, p["version"])
    split = p.get("split", "train" if view == "filter-map" else "test")
    data = ws.load_split(split)
    layer = _resolve(loaded, data, [p["layer"]])[0]
    parts = _model_parts(ws, loaded, data) | {"view": view, "layer": layer.name, "tap": layer.tap,
                                              "method": method, "seed": seed, "n_iter": n_iter,
                                              "perplexity": perplexity}
    text = f"{view} of {layer.name}"

    def progress(done, total):
        ctx.progress(done, total, f"{text}: {done:,} / {total:,}")

    extra: dict = {}
    if view == "filter-map":
        de = _ensure_deepeyes(ws, {"version": p["version"], "split": split, "layers": None, "seed": seed,
                                   "positions": p.get("positions", 10), "device": device}, ctx, (0, 2))
        parts["deepeyes"] = de["key"]
    elif view == "activations":
        parts |= {"n": int(p.get("n", 2000)), "mode": p.get("mode", "flatten")}
    elif view == "input-map":
        parts |= {"n": int(p.get("n", 2000)), "positions": int(p.get("positions", 10))}
    else:
        parts |= {"n": int(p.get("n", 2000))}
    key = embed_key(parts)
    start = time.perf_counter()
    hit = ws.results_cache.lookup("embed", key, ".npz") is not None
    if not hit:
        arrays: dict = {"classes": np.array(data.classes, dtype=str)}
        if view == "filter-map":
            stats = deepeyes_arrays(ws, parts["deepeyes"])[layer.name]
            if stats.get("filter_similarity") is None:
                raise InputError("no filter similarity for this layer", expected="a conv or FC layer",
                                 found=layer.name)
            arrays |= {f"deepeyes_{k}": v for k, v in stats.items()}
            arrays["points"] = filter_map(stats["filter_similarity"], perplexity, seed, method, n_iter,
                                          progress=lambda d, t: ctx.progress(t + d, 2 * t, f"{text}: t-SNE {d}/{t}"),
                                          cancel=ctx)
        elif view == "activations":
            proj = activation_projection(loaded.model, data, layer.name, n=parts["n"], seed=seed, mode=parts["mode"],
                                         method=method, perplexity=perplexity, n_iter=n_iter, device=device,
                                         progress=progress, cancel=ctx)
            arrays |= proj.arrays()
            extra = {"neighborhood_hit": proj.neighborhood_hit,
                     "misclassified": int((proj.predicted != proj.labels).sum())}
        elif view == "input-map":
            imap = input_map(loaded.model, data, layer.name, n=parts["n"], positions=parts["positions"], seed=seed,
                             method=method, perplexity=perplexity, n_iter=n_iter, device=device, progress=progress,
                             cancel=ctx)
            arrays |= imap.arrays() | {"activations": imap.samples.activations,
                                       "map_shape": np.array(imap.samples.map_shape)}
            extra = {"neighborhood_hit": imap.neighborhood_hit}
        else:
            idx = stratified_sample(data.labels.numpy(), parts["n"], seed)
            acts, _ = activation_vectors(loaded.model, data, layer.name, idx, "mean", device=device, cancel=ctx)
            neurons = neuron_projection(acts, data.labels.numpy()[idx], data.num_classes, method=method,
                                        perplexity=perplexity, seed=seed, n_iter=n_iter, progress=progress)
            arrays |= neurons.arrays()
        ws.results_cache.save_arrays("embed", key, arrays)
    else:
        old = next((r for r in ws.results("embed") if r["key"] == key), {})
        extra = {k: old[k] for k in ("neighborhood_hit", "misclassified") if k in old}
    ws.record_result({"kind": "embed", "key": key, "digest": loaded.digest, "version": p["version"], "view": view,
                      "layer": layer.name, "tap": layer.tap, "split": split, "n": parts.get("n"), "method": method,
                      "seed": seed, "n_iter": n_iter, "seconds": time.perf_counter() - start, "from_cache": hit,
                      **extra})
    return key


def display_images(dataset, indices) -> np.ndarray:
    """Images of ``dataset`` at ``indices`` as displayed: float32 (N, H, W, C) in [0, 1]."""
    import torch

    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return dataset._unit(dataset.images[idx]).clamp(0, 1).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
