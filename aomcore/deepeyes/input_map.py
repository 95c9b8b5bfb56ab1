"""DeepEyes' input map and filter map (Pezzotti et al., TVCG 2018, Sec. 5).

* :func:`input_map_vectors`, :func:`input_map` — one point per sampled receptive field,
  placed by the layer's *input* patch (or its K activations), coloured by class, by one
  filter's activation or by perplexity (activations clamped at 0, as DeepEyes does).
* :func:`filter_map` — kernels placed by a similarity matrix (the weighted Jaccard of
  :mod:`aomcore.deepeyes.statistics`), distance (1 − sim)².
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base.activations import _as_indices, _layer_info, _private_model, _Stages, stratified_sample
from ..base.data import ImageDataset
from ..base.embedding import _check_cancel, _Event, embed, neighborhood_hit, neighborhood_hit_per_class
from ..base.errors import InputError
from ..base.hooks import forward_hooks, forward_input_hooks, get_module
from ..base.limits import POSITIONS_MAX, POSITIONS_MIN, check_int

__all__ = ["INPUT_MAP_USES", "InputMap", "InputMapSamples", "filter_map", "input_map", "input_map_vectors",
           "sample_perplexity"]


INPUT_MAP_USES = ("patch", "activations")


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
    positions = check_int("positions per image", positions, POSITIONS_MIN, POSITIONS_MAX)
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
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.aom.maps_npz`)."""
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
        :mod:`aomcore.deepeyes.statistics`. Symmetrised; values are clipped to [0, 1].

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
