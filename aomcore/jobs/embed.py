"""The ``embed`` job kind: one 2-D view of a layer (Rauber et al. 2017; DeepEyes' input and filter maps).

The arrays are stored as ``.npz`` in the workspace's content-keyed results
(``W/results/embed/<key>.npz``; never pickles) and indexed with
:meth:`~aomcore.store.workspace.Workspace.record_result`: those of the view's result object
(``Projection.arrays()``, ``InputMap.arrays()``, ``NeuronProjection.arrays()``; for
``filter-map`` the kernels' ``points`` (K, 2) with the DeepEyes arrays of the layer), plus
``classes``. The key names the version, the data and every option (as for ``deepeyes``).
"""

from __future__ import annotations

import time

import numpy as np

from ..base.activations import activation_vectors, stratified_sample
from ..base.embedding import SCHEDULE, embedding_key
from ..base.errors import InputError
from ..deepeyes.input_map import filter_map, input_map
from ..rauber.projections import activation_projection, neuron_projection
from ..store.workspace import Workspace
from .deepeyes import _ensure_deepeyes, _model_parts, _resolve, deepeyes_arrays
from .engine import JobContext
from .registry import job_kind

__all__ = ["EMBED_VIEWS", "embed_job", "stored_embedding"]

EMBED_VIEWS = ("activations", "neurons", "input-map", "filter-map")


class _Share:
    """A job context reporting one part ``i`` of ``n`` equal parts of the job's progress."""

    def __init__(self, ctx, i: int, n: int):
        self.ctx, self.i, self.n = ctx, i, n

    def is_set(self) -> bool:
        return self.ctx.is_set()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.ctx.progress(self.i * total + done, self.n * total, text + (f" (layer {self.i + 1} of {self.n})"
                                                                         if self.n > 1 else ""))


@job_kind("embed", "Embedding")
def embed_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """A 2-D embedding of one layer of a version → ``results/embed/<key>.npz``.

    Parameters (``p``): ``version``, ``view`` (activations, neurons, input-map,
    filter-map), ``layer`` (or ``layers``: several, one after the other), ``split`` (default test;
    train for the filter map's DeepEyes
    statistics), ``n`` (images; input-map: about this many points; default 2000),
    ``method`` (tsne, umap), ``seed``, ``n_iter`` (t-SNE iterations after early
    exaggeration, default 500), ``perplexity`` (default 30), ``mode`` (activations:
    flatten or mean), ``positions`` (input-map, default 10), ``device``.
    """
    layers = p.get("layers") or [p["layer"]]
    keys = [_embed_one(ws, p | {"layer": la}, _Share(ctx, i, len(layers))) for i, la in enumerate(layers)]
    return {"key": keys[-1], "keys": keys}


def _embed_one(ws: Workspace, p: dict, ctx) -> str:
    view = p.get("view")
    if view not in EMBED_VIEWS:
        raise InputError("unknown embedding view", expected=", ".join(EMBED_VIEWS), found=repr(view))
    method, seed = p.get("method", "tsne"), int(p.get("seed", 0))
    n_iter, perplexity = int(p.get("n_iter", 500)), float(p.get("perplexity", 30.0))
    device = p.get("device", "auto")
    loaded = ws.loaded(p["version"])
    split = p.get("split", "train" if view == "filter-map" else "test")
    data = ws.load_split(split)
    layer = _resolve(loaded, data, [p["layer"]])[0]
    parts = _model_parts(loaded, data) | {"view": view, "layer": layer.name, "tap": layer.tap,
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
    key = embedding_key(**parts)
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
                      "schedule": SCHEDULE, **extra})
    return key


def stored_embedding(ws: Workspace, digest: str, view: str, layer: str, **params) -> dict | None:
    """The newest stored projection of a version's layer made with today's t-SNE schedule, or None.

    Parameters
    ----------
    ws : Workspace
    digest : str
        The version's weights digest.
    view : {"activations", "neurons", "input-map", "filter-map"}
    layer : str
    **params
        Further fields the record must hold with these values (e.g. ``n=2000, n_iter=500``).

    Returns
    -------
    dict or None : the ``embed`` result record (:meth:`Workspace.record_result`). Records made with
    another schedule (:data:`aomcore.base.embedding.SCHEDULE`; none before ``converge-4``) do not
    count: asking for the view again computes it with today's schedule.
    """
    want = {"view": view, "layer": layer, "schedule": SCHEDULE, **params}
    found = [r for r in ws.results("embed", digest) if all(r.get(k) == v for k, v in want.items())]
    return found[-1] if found else None

