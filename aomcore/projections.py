"""Projections of a layer's activity: Rauber et al. (TVCG 2017) and DeepEyes' input/filter maps.

* :func:`stratified_sample` — the fixed, seeded, class-stratified sample every view embeds.
* :func:`activation_vectors` — one vector per sampled image from one layer, streamed in
  batches (memory: the (N, D) result plus one batch).
* :func:`activation_projection` — Rauber et al. 2017: images placed by t-SNE of
  their activations in one layer, coloured by class, with the neighbourhood hit.
* :func:`neuron_distances`, :func:`neuron_projection` — Rauber et al. 2017: neurons
  (kernels) placed by how their activations co-vary over the images (1 − |Pearson r|).
* :func:`input_map_vectors`, :func:`input_map` — DeepEyes (Pezzotti et al., TVCG 2018,
  input map): one point per sampled receptive field, placed by the layer's *input* patch.
* :func:`filter_map` — DeepEyes' filter map: kernels placed by a similarity matrix (e.g. the
  weighted Jaccard of :mod:`aomcore.deepeyes`), distance (1 − sim)².

Which activation is read: the layer's default *tap* (:func:`aomcore.layers.list_layers`) —
the output of the conv/FC layer after the BatchNorm/activation modules that directly follow
it, i.e. the activation the next layer sees, taken as is (no extra clamping). Perplexities
for colouring clamp at 0 as DeepEyes does.

Every model is evaluated on a private copy (eval mode, ``torch.inference_mode``), so hooks
and mode changes never reach a model others share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageDataset
from .embedding import _check_cancel, _Event, embed, neighborhood_hit, neighborhood_hit_per_class
from .errors import InputError
from .hooks import forward_hooks, forward_input_hooks, get_module
from .layers import LayerInfo, list_layers, resolve_layers
from .maps import resolve_device

__all__ = [
    "VECTOR_MODES",
    "InputMap",
    "InputMapSamples",
    "NeuronProjection",
    "Projection",
    "activation_projection",
    "activation_vectors",
    "filter_map",
    "input_map",
    "input_map_vectors",
    "neuron_distances",
    "neuron_projection",
    "sample_perplexity",
    "stratified_sample",
]

VECTOR_MODES = ("flatten", "mean")
INPUT_MAP_USES = ("patch", "activations")


# --------------------------------------------------------------------------------------
# Sampling and progress plumbing
# --------------------------------------------------------------------------------------


def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """A fixed, seeded sample of ``n`` indices, stratified by class.

    Each class gets ``n · |class| / N`` places, rounded by largest remainder (ties to the
    lower class index), so the sample keeps the class proportions; within a class the
    members are the first of one seeded permutation, so a larger ``n`` with the same seed
    contains the smaller sample of every class.

    Parameters
    ----------
    labels : array, (N,) int
    n : int
        ``n >= N`` returns every index.
    seed : int, default 0

    Returns
    -------
    ndarray, (min(n, N),) int64, sorted ascending.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    total = labels.shape[0]
    if n < 1:
        raise InputError("sample size must be >= 1", expected="n >= 1", found=str(n))
    if n >= total:
        return np.arange(total, dtype=np.int64)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = n * sizes / total
    quota = np.floor(exact).astype(np.int64)
    short = n - int(quota.sum())
    order = np.lexsort((np.arange(len(classes)), -(exact - quota)))  # largest remainder first
    quota[order[:short]] += 1
    chosen = []
    for c, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == c)
        rng = np.random.default_rng([int(seed), int(c)])
        chosen.append(members[rng.permutation(members.size)[:q]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class _Stages:
    """Map the progress of successive stages (images, then iterations) onto one counter."""

    def __init__(self, progress: Callable[[int, int], None] | None, sizes: list[int]):
        self.progress, self.sizes, self.total = progress, sizes, int(sum(sizes))

    def stage(self, i: int) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        offset, size = sum(self.sizes[:i]), self.sizes[i]

        def report(done: int, total: int):
            self.progress(offset + int(round(size * done / max(total, 1))), self.total)
        return report


def _as_indices(indices, n_total: int) -> torch.Tensor:
    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).ravel())
    if idx.numel() == 0:
        raise InputError("no images to project", expected="at least one index", found="none")
    if int(idx.min()) < 0 or int(idx.max()) >= n_total:
        raise InputError("image index out of range", expected=f"indices in [0, {n_total - 1}]",
                         found=f"min {int(idx.min())}, max {int(idx.max())}")
    return idx


def _private_model(model: nn.Module, dataset: ImageDataset, layer: str, device) -> tuple[nn.Module, LayerInfo]:
    device = resolve_device(device)
    private = copy.deepcopy(model).to(device).eval()
    info = resolve_layers(list_layers(private, dataset.input_shape, device, include_all=True), [layer])[0]
    return private, info


def _layer_info(model: nn.Module, dataset: ImageDataset, layer: str) -> LayerInfo:
    """The layer's :class:`LayerInfo` (its tap, positions), read on a private CPU copy."""
    return _private_model(model, dataset, layer, "cpu")[1]


def _predictions(logits) -> torch.Tensor | None:
    if isinstance(logits, torch.Tensor) and logits.ndim == 2:
        return logits.argmax(1)
    return None


# --------------------------------------------------------------------------------------
# Activation vectors and Rauber et al.'s projections
# --------------------------------------------------------------------------------------


def activation_vectors(model: nn.Module, dataset: ImageDataset, layer: str, indices, mode: str = "flatten",
                       batch_size: int = 256, device: str | torch.device = "auto",
                       progress: Callable[[int, int], None] | None = None,
                       cancel: _Event | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One activation vector per image from ``layer``, and the model's predictions.

    Parameters
    ----------
    model : nn.Module
        Not modified (a private copy is evaluated).
    dataset : ImageDataset
    layer : str
        A layer of :func:`aomcore.layers.list_layers`; read at its tap (the activation the
        next layer sees, as is).
    indices : array, (N,) int
        Dataset indices, in the order the rows are returned.
    mode : {"flatten", "mean"}, default "flatten"
        "flatten": the whole map, K·H·W values per image (FC: the K neurons);
        "mean": the spatial mean of each kernel's map, K values (FC: the K neurons).
    batch_size : int, default 256
    device : "auto", "cpu", "cuda" or torch.device
    progress : callable(done_images, total_images), optional
    cancel : object with ``is_set()``, optional

    Returns
    -------
    activations : ndarray, (N, D) float32 on the CPU
    predicted : ndarray, (N,) int64
        Argmax of the model's output (-1 when the output is not (B, classes)).

    Raises
    ------
    InputError
        Unknown layer or mode, out-of-range indices, a model that does not take the images.
    Cancelled
    """
    if mode not in VECTOR_MODES:
        raise InputError("unknown vector mode", expected=" or ".join(VECTOR_MODES), found=repr(mode))
    idx = _as_indices(indices, len(dataset))
    private, info = _private_model(model, dataset, layer, device)
    dev = next(private.parameters()).device
    n = int(idx.numel())
    out: np.ndarray | None = None
    predicted = np.full(n, -1, dtype=np.int64)
    current: dict = {}

    def observe(act):
        a = act.reshape(act.shape[0], act.shape[1], -1)  # (B, K, P)
        current["a"] = (a.mean(2) if mode == "mean" else a.reshape(a.shape[0], -1)).float()  # (B, D)

    done = 0
    with forward_hooks(private, {info.tap: observe}), torch.inference_mode():
        for x, _y in dataset.batches(batch_size, dev, idx):
            _check_cancel(cancel)
            logits = private(x)
            a = current.pop("a").cpu().numpy()
            if out is None:
                out = np.empty((n, a.shape[1]), dtype=np.float32)
            out[done : done + a.shape[0]] = a
            pred = _predictions(logits)
            if pred is not None:
                predicted[done : done + a.shape[0]] = pred.cpu().numpy()
            done += a.shape[0]
            if progress is not None:
                progress(done, n)
    return out, predicted


@dataclass
class Projection:
    """Images placed by their activations in one layer (Rauber et al. 2017, observation projection).

    Attributes
    ----------
    points : ndarray, (N, 2) float64
    labels : ndarray, (N,) int64
        True class of each image.
    index : ndarray, (N,) int64
        Dataset index of each image.
    predicted : ndarray, (N,) int64
        The model's prediction (-1 if unknown); ``predicted != labels`` marks misclassified.
    neighborhood_hit : float
        :func:`aomcore.embedding.neighborhood_hit` of the points with the true labels (k=6).
    neighborhood_hit_per_class : ndarray, (C,) float64
    layer, tap, mode : str
    """

    points: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    predicted: np.ndarray
    neighborhood_hit: float
    neighborhood_hit_per_class: np.ndarray
    layer: str
    tap: str
    mode: str

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.export`)."""
        return {"points": self.points, "labels": self.labels, "index": self.index, "predicted": self.predicted,
                "neighborhood_hit": np.float64(self.neighborhood_hit),
                "neighborhood_hit_per_class": self.neighborhood_hit_per_class}


def activation_projection(model: nn.Module, dataset: ImageDataset, layer: str, n: int = 5000, seed: int = 0,
                          indices=None, mode: str = "flatten", method: str = "tsne", perplexity: float = 30.0,
                          n_iter: int = 500, pca_dims: int | None = 50, k: int = 6, batch_size: int = 256,
                          device: str | torch.device = "auto",
                          progress: Callable[[int, int], None] | None = None,
                          cancel: _Event | None = None) -> Projection:
    """Rauber et al. 2017's observation projection of one layer.

    Parameters
    ----------
    n, seed : int
        The images: :func:`stratified_sample` of ``n`` (also seeds the embedding), unless
        ``indices`` are given.
    indices : array (N,) int, optional
    mode : {"flatten", "mean"}, default "flatten"
        See :func:`activation_vectors`.
    method, perplexity, n_iter : see :func:`aomcore.embedding.embed`
    pca_dims : int or None, default 50
        Vectors with more values are reduced to 50 principal components first (standard
        t-SNE practice; turns a 9,216-value conv map into something t-SNE handles fast).
    k : int, default 6
        Neighbours for the neighbourhood hit.
    progress : callable(done, total), optional
        Images of the forward pass, then embedding iterations, on one counter.

    Returns
    -------
    Projection
    """
    labels_all = dataset.labels.numpy()
    idx = stratified_sample(labels_all, n, seed) if indices is None else np.asarray(indices, dtype=np.int64)
    stages = _Stages(progress, [len(idx), 250 + n_iter if method == "tsne" else 1])
    acts, predicted = activation_vectors(model, dataset, layer, idx, mode, batch_size, device,
                                         stages.stage(0), cancel)
    info = _layer_info(model, dataset, layer)
    points = embed(acts, method=method, perplexity=perplexity, seed=seed, n_iter=n_iter, pca_dims=pca_dims,
                   progress=stages.stage(1), cancel=cancel)
    labels = labels_all[idx]
    return Projection(points=points, labels=labels, index=idx, predicted=predicted,
                      neighborhood_hit=neighborhood_hit(points, labels, k),
                      neighborhood_hit_per_class=neighborhood_hit_per_class(points, labels, k, dataset.num_classes),
                      layer=layer, tap=info.tap, mode=mode)


def neuron_distances(acts: np.ndarray) -> np.ndarray:
    """Distance 1 − |r| between neurons, r = Pearson correlation over the images.

    Rauber et al. 2017 project neurons by the similarity (Pearson correlation) of their
    activations; the exact distance is not stated in the material at hand, and 1 − |r| is
    the usual reading: strongly anti-correlated neurons are close (one is nearly redundant
    given the other). A constant neuron (e.g. a dead ReLU) has no correlation: r is
    defined as 0, so it is at distance 1 from every other neuron (and 0 from itself).

    Parameters
    ----------
    acts : ndarray, (N, K) float
        Per-image activation of each neuron (for a conv layer, the spatial mean of each
        kernel's map: :func:`activation_vectors` with ``mode="mean"``).

    Returns
    -------
    ndarray, (K, K) float64, symmetric, zero diagonal, values in [0, 1].
    """
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise InputError("neuron distances need per-image activations", expected="(N >= 2, K)",
                         found=f"shape {a.shape}")
    centred = a - a.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))  # (K,)
    scale = np.abs(a).max(axis=0) * np.sqrt(a.shape[0])
    constant = norms <= 1e-12 * np.maximum(scale, 1e-300)
    z = np.where(constant, 0.0, centred / np.where(constant, 1.0, norms))  # (N, K) unit columns
    r = np.clip(z.T @ z, -1.0, 1.0)  # (K, K)
    d = 1.0 - np.abs(r)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return d


@dataclass
class NeuronProjection:
    """Neurons (kernels) placed by :func:`neuron_distances` (Rauber et al. 2017, neuron projection).

    Attributes
    ----------
    points : ndarray, (K, 2) float64
    labels : ndarray, (K,) int64
        Colour: the class with the highest mean activation of each neuron.
    index : ndarray, (K,) int64
        Neuron / kernel index.
    class_means : ndarray, (K, C) float64
        Mean activation of each neuron over the images of each class (NaN for a class
        with no images).
    distances : ndarray, (K, K) float64
    """

    points: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    class_means: np.ndarray
    distances: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.export`)."""
        return {"points": self.points, "labels": self.labels, "index": self.index,
                "class_means": self.class_means, "distances": self.distances}


def neuron_projection(acts: np.ndarray, labels, num_classes: int | None = None, method: str = "tsne",
                      perplexity: float = 30.0, seed: int = 0, n_iter: int = 500,
                      progress: Callable[[int, int], None] | None = None,
                      cancel: _Event | None = None) -> NeuronProjection:
    """Embed neurons with precomputed distances 1 − |r| (t-SNE by default).

    Parameters
    ----------
    acts : ndarray, (N, K) float
        Per-image activations (spatial means for a conv layer).
    labels : array, (N,) int
        Class of each image (for the colour).
    num_classes : int, optional
        Default max(label) + 1.
    method, perplexity, seed, n_iter, progress, cancel : see :func:`aomcore.embedding.embed`
        The perplexity is clamped to (K − 1)/3 for small layers.
    """
    a = np.asarray(acts, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if y.shape != (a.shape[0],):
        raise InputError("one label per image", expected=f"labels of shape ({a.shape[0]},)", found=f"{y.shape}")
    c = int(num_classes) if num_classes is not None else int(y.max()) + 1
    d = neuron_distances(a)
    points = embed(d, method=method, metric="precomputed", perplexity=perplexity, seed=seed, n_iter=n_iter,
                   progress=progress, cancel=cancel)
    onehot = np.zeros((c, a.shape[0]))
    onehot[y, np.arange(a.shape[0])] = 1.0
    counts = onehot.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (onehot @ a / counts[:, None]).T  # (K, C)
    means[:, counts == 0] = np.nan
    colour = np.argmax(np.where(np.isnan(means), -np.inf, means), axis=1).astype(np.int64)
    return NeuronProjection(points=points, labels=colour, index=np.arange(a.shape[1], dtype=np.int64),
                            class_means=means, distances=d)


# --------------------------------------------------------------------------------------
# DeepEyes: input map and filter map
# --------------------------------------------------------------------------------------


def sample_perplexity(acts: np.ndarray | torch.Tensor) -> np.ndarray:
    """DeepEyes' perplexity of each sample's activations (Pezzotti et al., TVCG 2018).

    p = max(v, 0) / Σ max(v, 0); perplexity 2^H with H = −Σ p log₂ p, in [1, K]; an
    all-zero (or all-negative) vector counts as uniform, perplexity K.

    Parameters
    ----------
    acts : (M, K) float

    Returns
    -------
    ndarray, (M,) float64.
    """
    v = torch.as_tensor(acts).to(torch.float64).clamp_min(0)
    total = v.sum(1, keepdim=True)  # (M, 1)
    p = v / torch.where(total > 0, total, torch.ones_like(total))
    h = -(torch.where(p > 0, p * torch.log2(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p))).sum(1)
    perp = torch.pow(2.0, h)
    perp = torch.where(total[:, 0] > 0, perp, torch.full_like(perp, float(v.shape[1])))
    return perp.cpu().numpy()


@dataclass
class InputMapSamples:
    """Sampled receptive fields of one layer (DeepEyes' input map data).

    Attributes
    ----------
    vectors : ndarray, (M, D) float32
        ``use="patch"``: the layer's input that the kernel sees at the sample's position,
        C_in·kh·kw values in :func:`torch.nn.functional.unfold` order (channel, row,
        column); for an FC layer the whole input vector. ``use="activations"``: the K
        activations at the position (the same array as ``activations``).
    activations : ndarray, (M, K) float32
        The layer's activation (at its tap) of every kernel at the sample's position.
    index : ndarray, (M,) int64
        Dataset index of the image.
    position : ndarray, (M,) int64
        Flat position ``row · W + col`` in the layer's (H, W) map (0 for an FC layer).
    labels : ndarray, (M,) int64
    perplexity : ndarray, (M,) float64
        :func:`sample_perplexity` of ``activations``, in [1, K].
    max_activation : ndarray, (M,) float32
        Largest activation over the kernels.
    map_shape : (H, W)
    layer, tap, use : str
    """

    vectors: np.ndarray
    activations: np.ndarray
    index: np.ndarray
    position: np.ndarray
    labels: np.ndarray
    perplexity: np.ndarray
    max_activation: np.ndarray
    map_shape: tuple[int, int]
    layer: str
    tap: str
    use: str


def _conv_geometry(conv: nn.Conv2d) -> tuple[tuple[int, int, int, int], str]:
    """(left, right, top, bottom) padding and its mode, as Conv2d applies it."""
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return (0, 0, 0, 0), conv.padding_mode
        th, tw = dh * (kh - 1), dw * (kw - 1)  # "same": the extra pixel goes right/bottom
        return (tw // 2, tw - tw // 2, th // 2, th - th // 2), conv.padding_mode
    ph, pw = conv.padding
    return (pw, pw, ph, ph), conv.padding_mode


def _patches(conv: nn.Conv2d, x: torch.Tensor, pos: torch.Tensor, out_w: int) -> torch.Tensor:
    """Input patches of ``conv`` at output positions ``pos`` (B, P) → (B, P, C_in·kh·kw).

    Equal to ``F.unfold(x, kernel_size, dilation, padding, stride)[b, :, pos[b, j]]`` for
    zero padding, but gathers only the P windows (memory O(B·P·D), not O(B·D·L)).
    """
    (left, right, top, bottom), mode = _conv_geometry(conv)
    if left or right or top or bottom:
        x = F.pad(x, (left, right, top, bottom), mode="constant" if mode == "zeros" else mode)
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    b = x.shape[0]
    row, col = pos // out_w, pos % out_w  # (B, P)
    rows = row[..., None, None] * sh + dh * torch.arange(kh, device=x.device)[:, None]  # (B, P, kh, 1)
    cols = col[..., None, None] * sw + dw * torch.arange(kw, device=x.device)[None, :]  # (B, P, 1, kw)
    bidx = torch.arange(b, device=x.device)[:, None, None, None]  # (B, 1, 1, 1)
    win = x[bidx, :, rows, cols]  # (B, P, kh, kw, C_in)
    return win.permute(0, 1, 4, 2, 3).reshape(b, pos.shape[1], -1)  # (B, P, C_in·kh·kw)


def _positions_for(index: np.ndarray, n_positions: int, count: int, seed: int) -> np.ndarray:
    """Per image, ``count`` distinct positions drawn by an RNG seeded with (seed, image index)."""
    if count >= n_positions:
        return np.tile(np.arange(n_positions), (len(index), 1))
    return np.stack([np.sort(np.random.default_rng([int(seed), int(i)]).choice(n_positions, count, replace=False))
                     for i in index])


def input_map_vectors(model: nn.Module, dataset: ImageDataset, layer: str, indices, positions: int = 10,
                      seed: int = 0, use: str = "patch", batch_size: int = 128,
                      device: str | torch.device = "auto",
                      progress: Callable[[int, int], None] | None = None,
                      cancel: _Event | None = None) -> InputMapSamples:
    """Sample receptive fields of ``layer``: DeepEyes' input map vectors (Pezzotti et al. 2018).

    Per image, ``positions`` distinct spatial positions of the layer's map (all of them
    when the map is smaller; one for an FC layer), drawn by an RNG seeded with
    (``seed``, image index) — so a sample does not depend on batch order or on which other
    images were sampled. DeepEyes uses 10 positions per image.

    Parameters
    ----------
    model : nn.Module
        Not modified (a private copy is evaluated).
    layer : str
        A ``Conv2d`` or ``Linear`` layer (``use="activations"`` takes any conv/FC layer).
    indices : array, (N,) int
        Dataset indices.
    positions : int, default 10
    seed : int, default 0
    use : {"patch", "activations"}, default "patch"
        What :attr:`InputMapSamples.vectors` holds (see there).
    batch_size : int, default 128
        Memory is O(batch·positions·D) for the gathered patches, plus the result.
    progress : callable(done_images, total_images), optional
    cancel : object with ``is_set()``, optional

    Returns
    -------
    InputMapSamples, M = N · min(positions, H·W) samples, grouped by image in ``indices`` order.

    Raises
    ------
    InputError
        Unknown layer or ``use``; a patch of a layer that is neither Conv2d nor Linear.
    """
    if use not in INPUT_MAP_USES:
        raise InputError("unknown input-map vector", expected=" or ".join(INPUT_MAP_USES), found=repr(use))
    if positions < 1:
        raise InputError("positions must be >= 1", expected=">= 1", found=str(positions))
    idx = _as_indices(indices, len(dataset))
    private, info = _private_model(model, dataset, layer, device)
    if info.kind not in ("conv", "fc"):
        raise InputError("the input map needs a conv or FC layer", expected="a Conv2d or Linear layer",
                         found=f"{layer} ({info.type})")
    module = get_module(private, layer)
    if use == "patch" and not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise InputError("input patches are read from Conv2d and Linear layers", expected="a Conv2d or Linear layer",
                         found=f"{layer} ({info.type}); use 'activations' instead")
    dev = next(private.parameters()).device
    h, w = info.positions
    per_image = min(int(positions), h * w)
    index_np = idx.numpy()
    pos_all = _positions_for(index_np, h * w, per_image, seed)  # (N, P)
    labels_all = dataset.labels.numpy()
    current: dict = {}
    acts_out, vec_out = [], []
    n, done = int(idx.numel()), 0
    hooks_in = {layer: lambda x: current.__setitem__("x", x)} if use == "patch" else {}
    with forward_input_hooks(private, hooks_in), \
            forward_hooks(private, {info.tap: lambda out: current.__setitem__("a", out)}), torch.inference_mode():
        for x, _y in dataset.batches(batch_size, dev, idx):
            _check_cancel(cancel)
            private(x)
            b = x.shape[0]
            pos = torch.as_tensor(pos_all[done : done + b], device=dev)  # (B, P)
            a = current.pop("a")
            a = a.reshape(b, a.shape[1], -1)  # (B, K, H·W)
            bidx = torch.arange(b, device=dev)[:, None]
            sampled = a[bidx, :, pos].float()  # (B, P, K)
            acts_out.append(sampled.reshape(b * per_image, -1).cpu())
            if use == "patch":
                inp = current.pop("x")
                if isinstance(module, nn.Linear):
                    if inp.ndim != 2:
                        raise InputError("FC input patches need a (batch, features) input", expected="2-D input",
                                         found=f"shape {tuple(inp.shape)}")
                    vec_out.append(inp.float().cpu())
                else:
                    vec_out.append(_patches(module, inp, pos, w).float().reshape(b * per_image, -1).cpu())
            done += b
            if progress is not None:
                progress(done, n)
    acts = torch.cat(acts_out).numpy()  # (M, K)
    vectors = torch.cat(vec_out).numpy() if use == "patch" else acts
    return InputMapSamples(vectors=vectors, activations=acts, index=np.repeat(index_np, per_image),
                           position=pos_all.reshape(-1).astype(np.int64),
                           labels=np.repeat(labels_all[index_np], per_image).astype(np.int64),
                           perplexity=sample_perplexity(acts), max_activation=acts.max(axis=1),
                           map_shape=(int(h), int(w)), layer=layer, tap=info.tap, use=use)


@dataclass
class InputMap:
    """DeepEyes' input map: :class:`InputMapSamples` and their 2-D positions.

    Attributes
    ----------
    points : ndarray, (M, 2) float64
    samples : InputMapSamples
    neighborhood_hit : float
        Of the points with the images' labels (k=6).
    neighborhood_hit_per_class : ndarray, (C,) float64
    """

    points: np.ndarray
    samples: InputMapSamples
    neighborhood_hit: float
    neighborhood_hit_per_class: np.ndarray = field(repr=False)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.export`)."""
        sm = self.samples
        return {"points": self.points, "labels": sm.labels, "index": sm.index, "position": sm.position,
                "perplexity": sm.perplexity, "max_activation": sm.max_activation,
                "neighborhood_hit": np.float64(self.neighborhood_hit),
                "neighborhood_hit_per_class": self.neighborhood_hit_per_class}


def input_map(model: nn.Module, dataset: ImageDataset, layer: str, n: int = 5000, positions: int = 10,
              seed: int = 0, indices=None, use: str = "patch", method: str = "tsne", perplexity: float = 30.0,
              n_iter: int = 500, pca_dims: int | None = 50, k: int = 6, batch_size: int = 128,
              device: str | torch.device = "auto",
              progress: Callable[[int, int], None] | None = None,
              cancel: _Event | None = None) -> InputMap:
    """Sample receptive fields and embed them (DeepEyes' input map; t-SNE in place of HSNE).

    Parameters
    ----------
    n : int, default 5000
        About how many points: ``ceil(n / per_image)`` stratified images (unless
        ``indices`` are given), ``per_image = min(positions, H·W)`` samples each.
    Other parameters as in :func:`input_map_vectors` and :func:`activation_projection`.
    """
    labels_all = dataset.labels.numpy()
    if indices is None:
        info = _layer_info(model, dataset, layer)
        per_image = min(int(positions), info.positions[0] * info.positions[1])
        indices = stratified_sample(labels_all, -(-int(n) // per_image), seed)
    indices = np.asarray(indices, dtype=np.int64)
    stages = _Stages(progress, [len(indices), 250 + n_iter if method == "tsne" else 1])
    samples = input_map_vectors(model, dataset, layer, indices, positions, seed, use, batch_size, device,
                                stages.stage(0), cancel)
    points = embed(samples.vectors, method=method, perplexity=perplexity, seed=seed, n_iter=n_iter,
                   pca_dims=pca_dims, progress=stages.stage(1), cancel=cancel)
    return InputMap(points=points, samples=samples, neighborhood_hit=neighborhood_hit(points, samples.labels, k),
                    neighborhood_hit_per_class=neighborhood_hit_per_class(points, samples.labels, k,
                                                                          dataset.num_classes))


def filter_map(similarity: np.ndarray, perplexity: float = 30.0, seed: int = 0, method: str = "tsne",
               n_iter: int = 500, progress: Callable[[int, int], None] | None = None,
               cancel: _Event | None = None) -> np.ndarray:
    """DeepEyes' filter map (Pezzotti et al., TVCG 2018): kernels placed by similarity.

    Distance (1 − sim)², embedded by t-SNE with perplexity min(K/3, ``perplexity``)
    (further clamped to (K − 1)/3, which openTSNE's neighbour graph needs; fewer than 4
    kernels are laid out exactly by classical MDS).

    Parameters
    ----------
    similarity : ndarray, (K, K) float in [0, 1]
        E.g. the weighted Jaccard similarity Σ min(a_i, a_j) / Σ max(a_i, a_j) of
        :mod:`aomcore.deepeyes`. Symmetrised; values are clipped to [0, 1].

    Returns
    -------
    ndarray, (K, 2) float64.
    """
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InputError("a similarity matrix must be square", expected="(K, K)", found=f"shape {s.shape}")
    d = (1.0 - np.clip((s + s.T) / 2, 0.0, 1.0)) ** 2
    np.fill_diagonal(d, 0.0)
    k = s.shape[0]
    return embed(d, method=method, metric="precomputed", perplexity=min(k / 3.0, float(perplexity)), seed=seed,
                 n_iter=n_iter, progress=progress, cancel=cancel)
