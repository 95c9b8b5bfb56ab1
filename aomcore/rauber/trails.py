"""Training trails (Rauber, Fadel, Falcão, Telea, TVCG 23(1), 2017).

One projection of the same fixed image sample per training snapshot; each image's
positions across snapshots form its *trail*. Trails are edge-bundled to remove noise,
coloured by class, and drawn with luminance by snapshot (dark = early, bright = late).

* :func:`aligned_projections` — one 2-D layout per snapshot, each coupled to the previous
  one (see there for how, and how it relates to dynamic t-SNE).
* :func:`trail_segments`, :func:`bundle_trails` — trails as paths in a DataFrame
  (straight, or bundled with datashader's ``hammer_bundle``).
* :func:`render_trails` — an RGB image (datashader rasterisation).
* :func:`trails_from_run` — from saved snapshots of a training run to trails: one forward
  pass per snapshot on the fixed sample; memory holds one snapshot's (N, D) activations
  while it is embedded, and the (S, N, 2) result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..base.activations import _Stages, activation_vectors, stratified_sample
from ..base.data import ImageDataset
from ..base.embedding import _check_cancel, _Event, embed, neighborhood_hit, reduce_dims
from ..base.errors import InputError
from ..base.layers import list_layers, resolve_layers
from ..base.models import apply_state_dict, load_state_dict

__all__ = [
    "COUPLINGS",
    "Trails",
    "aligned_projections",
    "bundle_trails",
    "class_palette",
    "render_trails",
    "trail_lengths",
    "trail_segments",
    "trails_from_run",
]

#: Tableau's 20 categorical colours (tab10 first); classes beyond 20 cycle.
_PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
], dtype=np.uint8)


def class_palette(num_classes: int) -> np.ndarray:
    """One colour per class: (C, 3) uint8 RGB (tab10, then tab20's light shades, cycling)."""
    return _PALETTE[np.arange(num_classes) % len(_PALETTE)]


# --------------------------------------------------------------------------------------
# Aligned projections
# --------------------------------------------------------------------------------------


COUPLINGS = ("continue", "rescale")


def _procrustes(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Similarity Procrustes: rotate/reflect, scale uniformly and translate ``y`` (N, 2) onto ``ref``."""
    from scipy.linalg import orthogonal_procrustes

    a, b = y - y.mean(0), ref - ref.mean(0)
    norm = float((a**2).sum())
    if norm <= 0.0:
        return np.broadcast_to(ref.mean(0), y.shape).copy()
    rotation, trace = orthogonal_procrustes(a, b)  # trace = Σ singular values of aᵀb
    return (a @ rotation) * (trace / norm) + ref.mean(0)


def _snapshot_iterations(s: int, stability: float, n_iter: int, ee_iter: int, coupling: str) -> tuple[int, int]:
    """(early-exaggeration, plain) iterations of snapshot ``s`` (see aligned_projections)."""
    if s == 0:
        return int(ee_iter), int(n_iter)
    keep = 1.0 - stability
    return (int(round(ee_iter * keep)) if coupling == "rescale" else 0), int(round(n_iter * keep))


def aligned_projections(activations: Iterable[np.ndarray], method: str = "tsne", stability: float = 0.5,
                        seed: int = 0, perplexity: float = 30.0, n_iter: int = 500,
                        early_exaggeration_iter: int = 250, pca_dims: int | None = 50,
                        coupling: str = "continue", align: bool = True, n_snapshots: int | None = None,
                        progress: Callable[[int, int], None] | None = None,
                        cancel: _Event | None = None) -> np.ndarray:
    """One 2-D layout per snapshot of the same N observations, each coupled to the previous.

    **t-SNE (default).** Snapshot 0 is a plain :func:`aomcore.base.embedding.embed` (PCA
    initialisation, ``early_exaggeration_iter`` exaggerated + ``n_iter`` plain
    iterations). Snapshot s ≥ 1 starts from snapshot s − 1's layout:

    * ``coupling="continue"`` (default): the t-SNE optimisation continues from the previous
      layout as it is, on the new snapshot's affinities, for ``round(n_iter · (1 −
      stability))`` plain iterations (no early exaggeration, which would tear the layout
      apart and regroup it).
    * ``coupling="rescale"``: openTSNE's recipe for an array initialisation — the previous
      layout rescaled to standard deviation 1e-4 (:func:`openTSNE.initialization.rescale`)
      — then ``round(early_exaggeration_iter · (1 − stability))`` exaggerated and
      ``round(n_iter · (1 − stability))`` plain iterations.

    ``stability`` ∈ [0, 1] trades faithfulness for smooth trails: fewer iterations leave
    the points closer to where the previous snapshot put them; 1 freezes the first layout.
    Measured on 300 points in 3 clusters (trail length per :func:`trail_lengths`, after
    alignment): an unchanged snapshot moves the points by 0.01–0.015 with "continue"
    (stability 0.5 / 0), by 0.13–0.16 with "rescale" — as much as a new run with another
    seed (0.26 without scale alignment) — and a snapshot with noise of 0.3 of the cluster
    spread added moves them by 0.08–0.09 with "continue". Hence the default.

    With ``align`` (default), each layout is then rotated/reflected, scaled uniformly and
    translated onto the previous one (similarity Procrustes), so the arbitrary orientation
    and the slow growth of a t-SNE layout never show as motion.

    Relation to dynamic t-SNE (Rauber, Falcão, Telea, EuroVis 2016): there all layouts are
    optimised jointly for Σ_t KL_t + λ/(2N) Σ_t ‖Y_t − Y_{t+1}‖², a penalty that pulls
    each point toward its positions in the neighbouring snapshots. Here the coupling is by
    initialisation (and by how long each layout may move away from it), not by a joint
    penalty: layouts are computed one after the other, so snapshots can be streamed (one
    (N, D) array in memory at a time), and a later snapshot never changes an earlier layout.

    **AlignedUMAP** (``method="umap"``): umap-learn's ``AlignedUMAP`` with the identity
    relation between consecutive snapshots and ``alignment_regularisation =
    0.01 · 10^(2·stability − 1)`` (0.001 at 0, umap's default 0.01 at 0.5, 0.1 at 1). It
    needs every snapshot at once (memory S·N·D) and reports progress only at the end.

    Parameters
    ----------
    activations : iterable of ndarray, each (N, D_s) float
        One array per snapshot, same N observations in the same order (D may differ, e.g.
        after an edit). May be a generator: t-SNE consumes it one snapshot at a time.
    method : {"tsne", "umap"}, default "tsne"
    stability : float in [0, 1], default 0.5
    seed, perplexity, n_iter, early_exaggeration_iter, pca_dims : see :func:`aomcore.base.embedding.embed`
    coupling : {"continue", "rescale"}, default "continue"
    align : bool, default True
    n_snapshots : int, optional
        S, when ``activations`` has no ``len`` (for progress reports only).
    progress : callable(done, total), optional
        t-SNE iterations summed over the snapshots.
    cancel : object with ``is_set()``, optional

    Returns
    -------
    ndarray, (S, N, 2) float64.

    Raises
    ------
    InputError
        Bad method, coupling or stability, snapshots with different N, no snapshot.
    Cancelled
    """
    if method not in ("tsne", "umap"):
        raise InputError("unknown trails method", expected="tsne or umap", found=repr(method))
    if coupling not in COUPLINGS:
        raise InputError("unknown coupling", expected=" or ".join(COUPLINGS), found=repr(coupling))
    if not 0.0 <= float(stability) <= 1.0:
        raise InputError("stability must lie in [0, 1]", expected="0 <= stability <= 1", found=str(stability))
    stability = float(stability)
    if method == "umap":
        return _aligned_umap([np.asarray(a, dtype=np.float32) for a in activations], stability, seed, pca_dims,
                             progress, cancel)
    total_s = n_snapshots if n_snapshots is not None else (len(activations) if isinstance(activations, Sequence)
                                                           else None)
    sizes = None if total_s is None else [
        max(1, sum(_snapshot_iterations(s, stability, n_iter, early_exaggeration_iter, coupling)))
        for s in range(total_s)]
    stages = _Stages(progress, sizes) if sizes else None
    layouts: list[np.ndarray] = []
    for s, acts in enumerate(activations):
        _check_cancel(cancel)
        x = np.asarray(acts)
        if layouts and x.shape[0] != layouts[0].shape[0]:
            raise InputError("every snapshot needs the same observations",
                             expected=f"{layouts[0].shape[0]} rows", found=f"{x.shape[0]} in snapshot {s}")
        ee, it = _snapshot_iterations(s, stability, n_iter, early_exaggeration_iter, coupling)
        report = stages.stage(s) if stages is not None and s < len(sizes) else None
        y = embed(x, method="tsne", perplexity=perplexity, seed=seed, init=layouts[-1] if layouts else None,
                  rescale_init=coupling == "rescale", n_iter=it, early_exaggeration_iter=ee, pca_dims=pca_dims,
                  progress=report, cancel=cancel)
        if align and layouts:
            y = _procrustes(y, layouts[-1])
        layouts.append(y)
    if not layouts:
        raise InputError("no snapshots to project", expected="at least one activation array", found="none")
    return np.stack(layouts)


def _aligned_umap(arrays, stability, seed, pca_dims, progress, cancel):
    import warnings

    import umap

    if not arrays:
        raise InputError("no snapshots to project", expected="at least one activation array", found="none")
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise InputError("every snapshot needs the same observations", expected=f"{n} rows",
                         found=str([a.shape[0] for a in arrays]))
    _check_cancel(cancel)
    if progress is not None:
        progress(0, 1)
    arrays = [reduce_dims(a, pca_dims, seed) for a in arrays]
    if len(arrays) == 1:
        return embed(arrays[0], method="umap", seed=seed)[None]
    relations = [{i: i for i in range(n)} for _ in range(len(arrays) - 1)]
    reducer = umap.AlignedUMAP(n_neighbors=max(2, min(15, n - 1)), random_state=seed,
                               alignment_regularisation=0.01 * 10 ** (2 * stability - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer.fit(arrays, relations=relations)
    _check_cancel(cancel)
    if progress is not None:
        progress(1, 1)
    return np.stack([np.asarray(e, dtype=np.float64) for e in reducer.embeddings_])


def trail_lengths(points: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Length of each trail, Σ_s ‖Y_{s+1} − Y_s‖.

    Parameters
    ----------
    points : ndarray, (S, N, 2)
    normalize : bool, default True
        Divide by the RMS distance of the last layout's points to their centroid, so
        lengths compare across runs (1 ≈ moving across a typical cluster radius).

    Returns
    -------
    ndarray, (N,) float64.
    """
    p = np.asarray(points, dtype=np.float64)
    lengths = np.linalg.norm(np.diff(p, axis=0), axis=2).sum(axis=0)  # (N,)
    if normalize:
        last = p[-1]
        radius = np.sqrt(((last - last.mean(0)) ** 2).sum(1).mean())
        lengths = lengths / max(radius, 1e-300)
    return lengths


# --------------------------------------------------------------------------------------
# Trails as paths: straight and bundled
# --------------------------------------------------------------------------------------


def _check_points(points, labels, subset):
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 2 or p.shape[0] < 2:
        raise InputError("trails need (S >= 2, N, 2) points", expected="(S, N, 2)", found=f"shape {p.shape}")
    y = np.asarray(labels).astype(np.int64)
    if y.shape != (p.shape[1],):
        raise InputError("one label per trail", expected=f"({p.shape[1]},)", found=f"{y.shape}")
    trails = np.arange(p.shape[1]) if subset is None else np.unique(np.asarray(subset, dtype=np.int64))
    if trails.size and (trails.min() < 0 or trails.max() >= p.shape[1]):
        raise InputError("trail index out of range", expected=f"indices in [0, {p.shape[1] - 1}]",
                         found=f"{trails.min()}..{trails.max()}")
    return p, y, trails


def _edges(p: np.ndarray, trails: np.ndarray):
    """Edge e = (step, trail) from snapshot ``step`` to ``step + 1``, ordered by step then trail."""
    s = p.shape[0]
    step = np.repeat(np.arange(s - 1), trails.size)
    trail = np.tile(trails, s - 1)
    return step, trail


def _paths_frame(xs: list[np.ndarray], ys: list[np.ndarray], step, trail, labels):
    """Paths (one per edge) → DataFrame with a NaN row after each path."""
    import pandas as pd

    lengths = np.array([len(x) for x in xs], dtype=np.int64) + 1  # + separator
    nan = np.array([np.nan])
    x = np.concatenate([np.concatenate([xi, nan]) for xi in xs]) if xs else np.zeros(0)
    y = np.concatenate([np.concatenate([yi, nan]) for yi in ys]) if ys else np.zeros(0)
    return pd.DataFrame({"x": x, "y": y, "trail": np.repeat(trail, lengths), "step": np.repeat(step, lengths),
                         "label": np.repeat(labels[trail], lengths)})


def trail_segments(points: np.ndarray, labels, subset=None):
    """Straight (unbundled) trails.

    Parameters
    ----------
    points : ndarray, (S, N, 2)
    labels : array, (N,) int
    subset : array of int, optional
        Only these trails (observation indices into N).

    Returns
    -------
    pandas.DataFrame with columns ``x``, ``y`` (float64), ``trail``, ``step``, ``label``
    (int64): one path per (trail, step) edge from snapshot ``step`` to ``step + 1``, as its
    points followed by a row whose x, y are NaN (the layout datashader's ``Canvas.line``
    draws as separate lines). Edges are ordered by step, then trail.
    """
    p, y, trails = _check_points(points, labels, subset)
    step, trail = _edges(p, trails)
    xs = [np.array([p[s, t, 0], p[s + 1, t, 0]]) for s, t in zip(step, trail, strict=True)]
    ys = [np.array([p[s, t, 1], p[s + 1, t, 1]]) for s, t in zip(step, trail, strict=True)]
    return _paths_frame(xs, ys, step, trail, y)


def bundle_trails(points: np.ndarray, labels, subset=None, **hammer_options):
    """Edge-bundled trails: datashader's ``hammer_bundle`` on the snapshot-to-snapshot edges.

    The graph has one node per (snapshot, observation) and one edge per consecutive pair
    of an observation's positions. ``hammer_bundle`` works in coordinates normalised to
    the unit square and returns float32-accurate paths; every path's first and last point
    are then set to the exact node positions, so bundling never moves a trail's end points
    (nor where consecutive edges meet). Which trails are bundled together depends on the
    set drawn: a ``subset`` is bundled on its own.

    Parameters
    ----------
    points, labels, subset : as in :func:`trail_segments`
    **hammer_options
        Passed to ``datashader.bundling.hammer_bundle`` (``initial_bandwidth`` 0.05,
        ``decay`` 0.7, ``iterations`` 4, ...).

    Returns
    -------
    pandas.DataFrame in the format of :func:`trail_segments`, with more points per path.
    """
    import pandas as pd
    from datashader.bundling import hammer_bundle

    p, y, trails = _check_points(points, labels, subset)
    step, trail = _edges(p, trails)
    if trail.size == 0:
        return trail_segments(p, y, trails)
    n = p.shape[1]
    flat = p.reshape(-1, 2)  # node id = snapshot · N + observation
    src = step * n + trail
    dst = src + n
    xs = [np.array([flat[a, 0], flat[b, 0]]) for a, b in zip(src, dst, strict=True)]
    ys = [np.array([flat[a, 1], flat[b, 1]]) for a, b in zip(src, dst, strict=True)]
    moving = np.flatnonzero(np.any(flat[src] != flat[dst], axis=1))  # a zero-length edge stays a point pair
    if moving.size:
        nodes = pd.DataFrame({"x": flat[:, 0], "y": flat[:, 1]})
        edges = pd.DataFrame({"source": src[moving], "target": dst[moving]},
                             index=pd.RangeIndex(moving.size, name="id"))
        if (np.ptp(flat, axis=0) <= 0).any():  # hammer_bundle divides by the range: widen a flat box
            corners = np.stack([flat.min(0) - 1.0, flat.max(0) + 1.0])
            nodes = pd.concat([nodes, pd.DataFrame(corners, columns=["x", "y"],
                                                   index=[len(flat), len(flat) + 1])])
        bundled = hammer_bundle(nodes, edges, include_edge_id=True, **hammer_options)
        bx, by = bundled["x"].to_numpy(), bundled["y"].to_numpy()
        breaks = np.flatnonzero(np.isnan(bx))
        starts = np.r_[0, breaks[:-1] + 1]
        ids = bundled["edge_id"].to_numpy()[starts].astype(np.int64)
        for e, a, b in zip(ids, starts, breaks, strict=True):
            edge = moving[e]
            px, py = bx[a:b].astype(np.float64), by[a:b].astype(np.float64)
            if px.size < 2:
                continue
            px[0], py[0] = flat[src[edge]]
            px[-1], py[-1] = flat[dst[edge]]
            xs[edge], ys[edge] = px, py
    return _paths_frame(xs, ys, step, trail, y)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render_trails(points: np.ndarray, labels, bundled: bool = True, subset=None, highlight: int | None = None,
                  paths=None, width: int = 800, height: int = 800, background: str = "black",
                  palette: np.ndarray | None = None, min_luminance: float = 0.25, spread: int = 0,
                  **hammer_options) -> np.ndarray:
    """Draw trails: colour by class, luminance by snapshot (dark = early, bright = late).

    As in Rauber et al. 2017's trail figures. Each edge from snapshot s to s + 1 is drawn in its class's
    colour scaled by ``min_luminance + (1 − min_luminance) · s / (S − 2)``; where edges
    overlap, the later one is on top (the highlighted class above everything else).

    Parameters
    ----------
    points : ndarray, (S, N, 2)
    labels : array, (N,) int
    bundled : bool, default True
        Bundle with :func:`bundle_trails`; False draws the raw straight trails.
    subset : array of int, optional
        Draw only these trails (observation indices).
    highlight : int, optional
        Draw this class in colour and every other class in grey.
    paths : DataFrame, optional
        Precomputed :func:`bundle_trails` / :func:`trail_segments` output (skips bundling;
        ``bundled`` and ``subset`` are then ignored).
    width, height : int, default 800
    background : {"black", "white"}, default "black"
        On white, luminance runs the other way round: early edges are pale, late ones
        in full colour.
    palette : ndarray (C, 3) uint8, optional
        Default :func:`class_palette`.
    min_luminance : float, default 0.25
    spread : int, default 0
        Thicken lines by this many pixels (datashader ``spread``).

    Returns
    -------
    ndarray, (height, width, 3) uint8 RGB.
    """
    import datashader as ds

    p, y, _ = _check_points(points, labels, subset)
    if paths is None:
        paths = bundle_trails(p, y, subset, **hammer_options) if bundled else trail_segments(p, y, subset)
    num_classes = int(y.max()) + 1 if y.size else 1
    palette = class_palette(num_classes) if palette is None else np.asarray(palette, dtype=np.uint8)
    steps = p.shape[0] - 1
    flat = p.reshape(-1, 2)
    pad = 0.02 * np.maximum(np.ptp(flat, axis=0), 1e-9)
    x_range = (float(flat[:, 0].min() - pad[0]), float(flat[:, 0].max() + pad[0]))
    y_range = (float(flat[:, 1].min() - pad[1]), float(flat[:, 1].max() + pad[1]))
    if background not in ("black", "white"):
        raise InputError("unknown background", expected="black or white", found=repr(background))
    bg = np.array([0, 0, 0] if background == "black" else [255, 255, 255], dtype=np.float64)
    image = np.broadcast_to(bg, (height, width, 3)).copy()
    if len(paths) == 0:
        return image.astype(np.uint8)
    # One value per edge encodes (on top?, step, class); the max per pixel is the edge drawn there.
    on_top = (paths["label"].to_numpy() == highlight) if highlight is not None else np.zeros(len(paths), bool)
    value = (on_top * steps + paths["step"].to_numpy()) * num_classes + paths["label"].to_numpy()
    frame = paths[["x", "y"]].assign(v=value.astype(np.float64))
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range, y_range=y_range)
    agg = canvas.line(frame, "x", "y", agg=ds.max("v"))
    if spread:
        import datashader.transfer_functions as tf

        agg = tf.spread(agg, px=int(spread), how="max")
    v = np.asarray(agg.values, dtype=np.float64)[::-1]  # datashader's y axis points up
    drawn = np.isfinite(v)
    code = np.where(drawn, v, 0).astype(np.int64)
    label = code % num_classes
    step = (code // num_classes) % steps
    top = code // (num_classes * steps)
    lum = min_luminance + (1.0 - min_luminance) * step / max(steps - 1, 1)
    colour = palette[label].astype(np.float64)
    if highlight is not None:
        grey = np.full(3, 110.0 if background == "black" else 150.0)
        colour = np.where(top[..., None] == 1, colour, grey)
    rgb = colour * lum[..., None] if background == "black" else 255.0 - (255.0 - colour) * lum[..., None]
    image[drawn] = rgb[drawn]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# From a training run
# --------------------------------------------------------------------------------------


@dataclass
class Trails:
    """Projections of a fixed sample across a training run's snapshots.

    Attributes
    ----------
    points : ndarray, (S, N, 2) float64
    labels : ndarray, (N,) int64
    index : ndarray, (N,) int64
        Dataset indices of the sample.
    iterations : ndarray, (S,) int64
        Training step of each snapshot.
    predicted : ndarray, (S, N) int64
        Each snapshot's prediction for each image (-1 if unknown).
    neighborhood_hit : ndarray, (S,) float64
        Per snapshot, of the points with the true labels (k=6).
    layer, tap : str
    """

    points: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    iterations: np.ndarray
    predicted: np.ndarray
    neighborhood_hit: np.ndarray
    layer: str
    tap: str

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of a ``trails.npz`` (see :mod:`aomcore.aom.maps_npz`)."""
        return {"points": self.points, "labels": self.labels, "index": self.index, "iterations": self.iterations,
                "predicted": self.predicted, "neighborhood_hit": self.neighborhood_hit}


def trails_from_run(build_model: Callable[[], nn.Module], snapshots: Sequence[tuple[int, object]],
                    dataset: ImageDataset, layer: str, n: int = 2000, seed: int = 0, indices=None,
                    mode: str = "flatten", method: str = "tsne", stability: float = 0.5,
                    coupling: str = "continue", perplexity: float = 30.0, n_iter: int = 500, pca_dims: int | None = 50,
                    batch_size: int = 256, device: str | torch.device = "auto",
                    progress: Callable[[int, int], None] | None = None,
                    cancel: _Event | None = None) -> Trails:
    """Trails of a training run: one forward pass per snapshot on a fixed stratified sample.

    Parameters
    ----------
    build_model : callable() -> nn.Module
        Builds the (untrained) architecture each snapshot's weights load into.
    snapshots : sequence of (iteration, weights)
        In training order; weights are a ``.pt``/``.safetensors`` path or a state_dict.
    dataset : ImageDataset
        Usually the test split.
    layer : str
        Read at its tap (see :func:`aomcore.rauber.projections.activation_vectors`).
    n, seed, indices : the sample (:func:`aomcore.rauber.projections.stratified_sample`)
    mode : {"flatten", "mean"}, default "flatten"
    method, stability, perplexity, n_iter, pca_dims, coupling : see :func:`aligned_projections`
    progress : callable(done, total), optional
        Snapshots done out of S (t-SNE iterations are not broken down further).
    cancel : object with ``is_set()``, optional

    Returns
    -------
    Trails
    """
    if not snapshots:
        raise InputError("no snapshots", expected="at least one (iteration, weights) pair", found="none")
    labels_all = dataset.labels.numpy()
    idx = stratified_sample(labels_all, n, seed) if indices is None else np.asarray(indices, dtype=np.int64)
    predicted: list[np.ndarray] = []
    tap = {}

    def snapshot_activations():
        for s, (_iteration, weights) in enumerate(snapshots):
            _check_cancel(cancel)
            model = build_model()
            state = weights if isinstance(weights, dict) else load_state_dict(weights)
            apply_state_dict(model, state)
            if not tap:
                tap["name"] = resolve_layers(list_layers(model, dataset.input_shape, include_all=True), [layer])[0].tap
            acts, pred = activation_vectors(model, dataset, layer, idx, mode, batch_size, device, cancel=cancel)
            predicted.append(pred)
            del model
            yield acts
            if progress is not None:
                progress(s + 1, len(snapshots))

    points = aligned_projections(snapshot_activations(), method=method, stability=stability, seed=seed,
                                 perplexity=perplexity, n_iter=n_iter, pca_dims=pca_dims, coupling=coupling,
                                 n_snapshots=len(snapshots), cancel=cancel)
    labels = labels_all[idx]
    return Trails(points=points, labels=labels, index=idx,
                  iterations=np.array([int(i) for i, _ in snapshots], dtype=np.int64),
                  predicted=np.stack(predicted), neighborhood_hit=np.array([neighborhood_hit(pt, labels)
                                                                            for pt in points]),
                  layer=layer, tap=tap.get("name", layer))
