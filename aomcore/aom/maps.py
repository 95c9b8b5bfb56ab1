"""Activation occurrence statistics: Garcia et al., IJCNN 2019, equations 1–4.

Notation: K kernels (conv output channels; an FC neuron is a kernel with one position),
C classes, (H, W) positions of a kernel's map.

* :class:`OccurrenceCounter` streams over batches and keeps, per (kernel, class,
  position), the integer number of images whose activation is above the threshold, and
  the number of images per class. Memory is O(K·C·H·W), independent of the number of
  images; counting runs on the activations' device with one matmul per batch.
* :func:`aom` (eq. 1), :func:`odm` (eq. 2), :func:`csm` (eq. 3), :func:`class_selectivity`
  (the per-class mean of the CSM, Sec. V-C) and :func:`selectivity` (eq. 4) turn counts
  into the published quantities.
* :func:`class_difference` (the dual of the ODM: classes compared over every kernel,
  Task 2) and :func:`classes_per_kernel` (classes with strong occurrence per kernel,
  Task 3) summarise a layer for the tasks of Sec. III.
* :func:`compute_maps` runs one forward pass over a dataset and fills counters for all
  requested layers at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..base.data import ImageDataset
from ..base.devices import _autocast, resolve_device
from ..base.errors import InputError
from ..base.hooks import forward_hooks
from ..base.layers import LayerInfo, list_layers, resolve_layers

__all__ = [
    "LayerMaps",
    "check_maps_options",
    "OccurrenceCounter",
    "MULTI_CLASS_LEVEL",
    "aom",
    "class_difference",
    "class_selectivity",
    "classes_per_kernel",
    "compute_maps",
    "csm",
    "kernel_flags",
    "least_separated_pairs",
    "multi_class_share",
    "odm",
    "resolve_device",
    "selectivity",
]


#: Rows compared and summed at a time by :meth:`OccurrenceCounter._count`: a uint8 sum of at most
#: 255 ones is exact.
_BLOCK = 255


class OccurrenceCounter:
    """Streaming per-class counts of positive activations (the numerator of eq. 1).

    Parameters
    ----------
    num_classes : int
        C, the number of classes; labels must lie in ``[0, C)``.
    threshold : float, default 0.0
        An activation counts as occurring when it is strictly greater than this.
    max_resolution : int, optional
        Pool maps larger than this many positions per side into at most
        ``max_resolution × max_resolution`` cells as they are counted, so a huge layer
        (e.g. 56×56 maps of 1000 classes) never needs its full-resolution counts. A cell's
        count is the number of (image, position in the cell) pairs that occur — still an
        integer — and :attr:`cell_area_` says how many positions each cell holds, so the
        AOM of a cell is the mean occurrence over its positions.

    Attributes
    ----------
    counts_ : torch.Tensor
        (C, K, P) int64 on the activations' device, P = H·W: images of class c whose
        activation of kernel k at position p exceeds the threshold.
    class_sizes_ : torch.Tensor
        (C,) int64: images seen per class.
    map_shape_ : (K, H, W)
        Shape of the counted maps (after pooling).
    cell_area_ : ndarray, (H, W) int64 or None
        Positions per cell when pooled, else None.
    """

    def __init__(self, num_classes: int, threshold: float = 0.0, max_resolution: int | None = None):
        self.num_classes = num_classes
        self.threshold = threshold
        self.max_resolution = max_resolution
        self.cell_area_: np.ndarray | None = None
        self._pool: tuple | None = None
        self._raw_shape: tuple[int, int, int] | None = None
        self._scratch: torch.Tensor | None = None
        self.counts_: torch.Tensor | None = None
        self.class_sizes_: torch.Tensor | None = None
        self.map_shape_: tuple[int, int, int] | None = None

    def _prepare(self, activations: torch.Tensor) -> torch.Tensor:
        if not isinstance(activations, torch.Tensor):
            raise InputError("layer output is not a tensor", expected="a tensor (B, K, ...)",
                             found=type(activations).__name__)
        if activations.ndim == 2:
            shape = (activations.shape[1], 1, 1)
        elif activations.ndim == 3:
            shape = (activations.shape[1], 1, activations.shape[2])
        elif activations.ndim == 4:
            shape = tuple(activations.shape[1:])
        else:
            raise InputError("cannot map this layer's output", expected="(B, K), (B, K, L) or (B, K, H, W)",
                             found=f"shape {tuple(activations.shape)}")
        if self.counts_ is None:
            k, h, w = shape
            self._raw_shape = shape
            s = self.max_resolution
            if s is not None and (h > s or w > s):
                sh, sw = min(h, s), min(w, s)
                rows = torch.arange(h, device=activations.device) * sh // h  # cell of each row
                cols = torch.arange(w, device=activations.device) * sw // w
                self._pool = (sh, sw, rows, cols)
                self.cell_area_ = np.outer(np.bincount(rows.cpu().numpy()), np.bincount(cols.cpu().numpy()))
                h, w = sh, sw
            self.map_shape_ = (k, h, w)
            self.counts_ = torch.zeros((self.num_classes, k * h * w), dtype=torch.int64, device=activations.device)
            self.class_sizes_ = torch.zeros(self.num_classes, dtype=torch.int64, device=activations.device)
        elif shape != self._raw_shape:
            raise InputError("layer output changed shape between batches", expected=str(self._raw_shape),
                             found=str(shape))
        return activations.reshape(activations.shape[0], -1)  # (B, K·P)

    def _count(self, flat: torch.Tensor) -> torch.Tensor:
        """Occurrences summed over the rows of ``flat`` (n, K·P) → (K·P,) int64.

        One read of the activations: blocks of :data:`_BLOCK` rows are compared into a reused
        bool buffer (for MNIST-sized layers small enough to stay in cache; at most 255 rows,
        never more than the batch) and summed as uint8 (at most 255 ones: exact), then added
        up in int64. On a CPU this is about half the time of comparing
        into float32 and summing, and 6–10× faster than summing a bool tensor into int64.
        NaN compares False: it never occurs.
        """
        n, width = flat.shape
        rows = min(n, _BLOCK)  # never more scratch than the rows at hand: a small batch of a wide layer
        if self._scratch is None or self._scratch.shape[1] != width or self._scratch.shape[0] < rows or \
                self._scratch.device != flat.device:
            self._scratch = torch.empty((rows, width), dtype=torch.bool, device=flat.device)
        total = torch.zeros(width, dtype=torch.int64, device=flat.device)
        for start in range(0, n, _BLOCK):
            block = flat[start : start + _BLOCK]
            occurs = torch.gt(block, self.threshold, out=self._scratch[: block.shape[0]])
            total += occurs.view(torch.uint8).sum(0, dtype=torch.uint8)
        return total

    def _pooled(self, counts: torch.Tensor) -> torch.Tensor:
        """Sum counts (..., K·H·W) over each cell → (..., K·h·w); identity without pooling."""
        if self._pool is None:
            return counts
        sh, sw, rows, cols = self._pool
        k, h, w = self._raw_shape
        x = counts.reshape(*counts.shape[:-1], k, h, w)
        x = torch.zeros((*x.shape[:-2], sh, w), dtype=x.dtype, device=x.device).index_add_(x.ndim - 2, rows, x)
        x = torch.zeros((*x.shape[:-1], sw), dtype=x.dtype, device=x.device).index_add_(x.ndim - 1, cols, x)
        return x.reshape(*counts.shape[:-1], -1)

    def update(self, activations: torch.Tensor, labels: torch.Tensor,
               segments: list[tuple[int, int, int]] | None = None) -> OccurrenceCounter:
        """Add one batch.

        Parameters
        ----------
        activations : torch.Tensor
            (B, K), (B, K, L) or (B, K, H, W), any float dtype, any device.
        labels : torch.Tensor
            (B,) int64 class indices, on the same device.
        segments : list of (class, start, stop), optional
            Known on the host: rows ``start:stop`` of the batch all belong to ``class``
            (a batch drawn in class-sorted order has one or two). Each segment is then one
            reduction, with no one-hot product and no device-to-host transfer.
        """
        flat = self._prepare(activations)
        if segments is not None:
            for c, start, stop in segments:
                self.counts_[c] += self._pooled(self._count(flat[start:stop]))
                self.class_sizes_[c] += stop - start
            return self
        b = flat.shape[0]
        occurs = (flat > self.threshold).to(torch.float32)  # (B, K·P)
        onehot = torch.zeros((self.num_classes, b), dtype=torch.float32, device=flat.device)
        onehot.scatter_(0, labels.view(1, b), 1.0)  # (C, B)
        # Each entry of the product is at most B < 2**24, so float32 holds it exactly.
        self.counts_ += self._pooled((onehot @ occurs).to(torch.int64))  # (C, K·P)
        self.class_sizes_ += onehot.sum(dim=1).to(torch.int64)
        return self

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts (K, C, H, W) int64 and class sizes (C,) int64, as NumPy arrays."""
        if self.counts_ is None:
            raise InputError("no activations were counted", expected="at least one batch", found="none")
        k, h, w = self.map_shape_
        counts = self.counts_.view(self.num_classes, k, h, w).permute(1, 0, 2, 3).contiguous()
        return counts.cpu().numpy(), self.class_sizes_.cpu().numpy()


# --------------------------------------------------------------------------------------
# Equations 1–4
# --------------------------------------------------------------------------------------


def _check_classes(class_sizes: np.ndarray, classes: list[str] | None = None) -> None:
    if class_sizes.shape[0] < 2:
        raise InputError("maps need at least two classes", expected=">= 2 classes",
                         found=f"{class_sizes.shape[0]} class")
    empty = np.flatnonzero(class_sizes == 0)
    if empty.size:
        names = [classes[i] if classes else str(i) for i in empty]
        raise InputError("a class has no images", expected="at least one image of every class",
                         found=f"no images of class {', '.join(map(repr, names))}")


def _check_counts(maps) -> None:
    """Counts that could have come from counting: (K, C, H, W) integers in [0, class size × cell area].

    Catches a damaged or hand-edited ``maps.npz`` (negative counts, counts above the
    number of images of a class) before it feeds the AOM and the experiment.
    """
    counts, sizes = np.asarray(maps.counts), np.asarray(maps.class_sizes)
    where = f"layer {maps.layer}"
    if counts.ndim != 4 or counts.shape[1] != sizes.shape[0] or sizes.shape[0] != len(maps.classes):
        raise InputError(f"bad counts for {where}", expected=f"shape (K, {len(maps.classes)}, H, W)",
                         found=f"counts {counts.shape}, {sizes.shape[0]} class sizes")
    if not (np.issubdtype(counts.dtype, np.integer) and np.issubdtype(sizes.dtype, np.integer)):
        raise InputError(f"bad counts for {where}", expected="integer counts and class sizes",
                         found=f"{counts.dtype} and {sizes.dtype}")
    if counts.size and counts.min() < 0:
        raise InputError(f"negative counts for {where}", expected="counts >= 0", found=str(int(counts.min())))
    area = np.ones(counts.shape[2:], np.int64) if maps.cell_area is None else np.asarray(maps.cell_area)
    if area.shape != counts.shape[2:]:
        raise InputError(f"bad cell areas for {where}", expected=str(counts.shape[2:]), found=str(area.shape))
    limit = sizes.astype(np.int64)[None, :, None, None] * area[None, None]  # (1, C, H, W)
    over = np.argwhere(counts > limit)
    if over.size:
        k, c, _, _ = over[0]
        raise InputError(f"counts above the class size for {where}",
                         expected=f"at most {int(limit[0, c].max())} for class {maps.classes[c]!r}",
                         found=f"{int(counts[tuple(over[0])])} at kernel {k}")


def aom(counts: np.ndarray, class_sizes: np.ndarray, cell_area: np.ndarray | None = None,
        dtype=np.float64) -> np.ndarray:
    """Activation occurrence maps, eq. 1 of Garcia et al. 2019.

    ``M[k, c, i, j] = counts[k, c, i, j] / |D^c|``: the fraction of class-c images whose
    activation of kernel k at position (i, j) is above the threshold. For pooled maps,
    also divided by the cell's area: the mean of eq. 1 over the cell's positions.

    Parameters
    ----------
    counts : ndarray, (K, C, H, W) int64
    class_sizes : ndarray, (C,) int64
    cell_area : ndarray, (H, W) int64, optional
        Positions per cell of pooled counts (see :class:`OccurrenceCounter`).
    dtype : numpy dtype, default float64
        float32 halves the memory of large AOMs; counts below 2**24 per cell divide
        to within 6e-8 relative.

    Returns
    -------
    ndarray, (K, C, H, W) float64 in [0, 1].

    Raises
    ------
    InputError
        If fewer than two classes, or a class has no images.
    """
    class_sizes = np.asarray(class_sizes)
    _check_classes(class_sizes)
    denominator = class_sizes[None, :, None, None].astype(dtype)
    if cell_area is not None:
        denominator = denominator * np.asarray(cell_area, dtype=dtype)[None, None]
    return np.asarray(counts, dtype=dtype) / denominator


def odm(aom_: np.ndarray, chunk: int = 256, device: str | torch.device = "cpu") -> np.ndarray:
    """Occurrence difference matrix, eq. 2 of Garcia et al. 2019.

    ``D[k1, k2] = mean over (c, i, j) of |M[k1, c, i, j] - M[k2, c, i, j]|``.

    Small layers (K²·C·H·W up to 2·10⁸) use ``torch.cdist(p=1)`` in float64 (exact to
    rounding). Larger ones run on ``device``: on a GPU, ``torch.cdist`` in float32 blocks
    of ``chunk`` rows; on the CPU, a cache-tiled, vectorised float32 kernel
    (:mod:`aomcore.aom._l1`; 2048 kernels × 10·32·32 values in about a second on 2 cores),
    whose results differ from float64 by about 1e-7.

    Parameters
    ----------
    aom_ : ndarray, (K, C, H, W) float
    chunk : int, default 256
        Rows per block on the GPU and in the float64 path.
    device : str or torch.device, default "cpu"

    Returns
    -------
    ndarray, (K, K) float64, symmetric, zero diagonal, values in [0, 1].
    """
    k = aom_.shape[0]
    flat = np.ascontiguousarray(aom_).reshape(k, -1)
    n = flat.shape[1]
    device = torch.device(device)
    if k * k * n <= 2e8 or device.type == "cuda":
        dtype = torch.float64 if device.type != "cuda" else torch.float32
        x = torch.as_tensor(flat, device=device).to(dtype)
        out = torch.empty((k, k), dtype=dtype, device=device)
        for start in range(0, k, chunk):
            out[start : start + chunk] = torch.cdist(x[start : start + chunk], x, p=1.0) / n
        out = ((out + out.T) / 2).to(torch.float64)  # exact symmetry despite per-block rounding
        out.fill_diagonal_(0.0)
        return out.cpu().numpy()
    from ._l1 import pairwise_l1  # deferred: imports numba (about 1 s)

    return pairwise_l1(flat).astype(np.float64) / n


def csm(aom_: np.ndarray) -> np.ndarray:
    """Class selectivity maps, eq. 3 of Garcia et al. 2019.

    ``S[k, c, i, j] = 1/(|C|-1) · Σ_{d≠c} (M[k, c, i, j] - M[k, d, i, j])``, computed as
    ``(|C|·M[k, c] - Σ_d M[k, d]) / (|C| - 1)``.

    Parameters
    ----------
    aom_ : ndarray, (K, C, H, W) float, C >= 2

    Returns
    -------
    ndarray, (K, C, H, W) float64 in [-1, 1].
    """
    c = aom_.shape[1]
    if c < 2:
        raise InputError("the CSM needs at least two classes", expected=">= 2 classes", found=f"{c}")
    m = np.asarray(aom_, dtype=np.float64)
    return (c * m - m.sum(axis=1, keepdims=True)) / (c - 1)


def class_selectivity(csm_: np.ndarray) -> np.ndarray:
    """Mean CSM per kernel and class, ``s[k, c] = avg(S^{k,c})`` (Sec. IV-D and V-C).

    Returns
    -------
    ndarray, (K, C) float64 in [-1, 1].
    """
    return np.asarray(csm_, dtype=np.float64).mean(axis=(2, 3))


def selectivity(csm_: np.ndarray) -> np.ndarray:
    """Kernel selectivity s(k), eq. 4 of Garcia et al. 2019.

    ``s(k) = Σ_{c0≠c1} |avg(S^{k,c0}) - avg(S^{k,c1})|`` over *ordered* class pairs (each
    unordered pair counts twice). Computed in O(C log C) per kernel: for the per-class
    means sorted ascending, x_(0) ≤ … ≤ x_(C-1), the unordered sum is
    ``Σ_j x_(j)·(2j - C + 1)``.

    Parameters
    ----------
    csm_ : ndarray, (K, C, H, W) float

    Returns
    -------
    ndarray, (K,) float64, >= 0.
    """
    s = np.sort(class_selectivity(csm_), axis=1)  # (K, C)
    c = s.shape[1]
    weights = 2 * np.arange(c) - c + 1
    return 2.0 * (s * weights).sum(axis=1)


def kernel_flags(aom_: np.ndarray, dead_level: float = 0.01, always_level: float = 0.99) -> dict[str, np.ndarray]:
    """Dead and always-on kernels, as in DeepEyes' activation heatmap (Pezzotti et al. 2018).

    A kernel is *dead* when, for every class, its mean occurrence over positions is at
    most ``dead_level``; *always-on* when, for every class, it is at least ``always_level``.

    Returns
    -------
    dict with ``"mean_occurrence"`` (K,) float64 (mean over classes and positions),
    ``"dead"`` (K,) bool and ``"always_on"`` (K,) bool.
    """
    per_class = np.asarray(aom_, dtype=np.float64).mean(axis=(2, 3))  # (K, C)
    return {"mean_occurrence": per_class.mean(axis=1),
            "dead": (per_class <= dead_level).all(axis=1),
            "always_on": (per_class >= always_level).all(axis=1)}


#: Default ``level`` of :func:`classes_per_kernel`: a class occurs *strongly* in a kernel
#: when, on average over the kernel's positions, more than half of the class's images
#: activate it (mean of eq. 1 over (i, j) > 0.5). The paper names no number ("strong
#: occurrence for multiple classes", Sec. IV-A); a majority of the class is the least
#: arbitrary reading. Recorded in ``maps.npz`` as ``meta["classes_per_kernel_level"]``.
MULTI_CLASS_LEVEL = 0.5


def class_difference(aom_: np.ndarray, chunk_elements: int = 1 << 22) -> np.ndarray:
    """Class difference matrix: the ODM's dual, comparing classes instead of kernels.

    ``E[c1, c2] = 1/(|K|·W·H) · Σ_k Σ_(i,j) |M[k, c1, i, j] - M[k, c2, i, j]|``: eq. 2
    with the roles of kernels and classes swapped. A pair of classes with a small E
    produces similar AOMs in every kernel of the layer, which Garcia et al. 2019 read as
    a too small layer (Sec. III Task 2, Sec. IV-A). For pooled maps the mean runs over
    cells.

    Parameters
    ----------
    aom_ : ndarray, (K, C, H, W) float
    chunk_elements : int, default 2**22
        Values of the AOM converted to float64 at a time: kernels are processed in blocks
        of about ``chunk_elements / (C·H·W)``, so memory stays O(C² + chunk_elements)
        however large K·H·W is.

    Returns
    -------
    ndarray, (C, C) float64, symmetric, zero diagonal, values in [0, 1].
    """
    m = np.asarray(aom_)
    if m.ndim != 4:
        raise InputError("the class difference needs AOMs", expected="(K, C, H, W)", found=f"shape {m.shape}")
    k, c, h, w = m.shape
    step = max(1, chunk_elements // max(1, c * h * w))
    total = torch.zeros((c, c), dtype=torch.float64)
    for start in range(0, k, step):
        block = np.ascontiguousarray(m[start : start + step].swapaxes(0, 1), dtype=np.float64)  # (C, k', H, W)
        x = torch.from_numpy(block.reshape(c, -1))  # (C, k'·H·W)
        total += torch.cdist(x, x, p=1.0)
    out = (total + total.T) / 2 / (k * h * w)  # exact symmetry despite per-pair rounding
    out.fill_diagonal_(0.0)
    return out.numpy()


def least_separated_pairs(difference: np.ndarray, n: int | None = None) -> list[tuple[int, int, float]]:
    """Class pairs ``(c1, c2, E)`` with ``c1 < c2``, least separated (smallest E) first.

    Parameters
    ----------
    difference : ndarray, (C, C) float
        From :func:`class_difference`.
    n : int, optional
        Return only the first ``n`` pairs; default all C·(C-1)/2.

    Returns
    -------
    list of (int, int, float), sorted by E ascending, ties by (c1, c2).
    """
    e = np.asarray(difference, dtype=np.float64)
    c1, c2 = np.triu_indices(e.shape[0], k=1)
    values = e[c1, c2]
    order = np.lexsort((c2, c1, values))[: n if n is not None else None]
    return [(int(c1[i]), int(c2[i]), float(values[i])) for i in order]


def classes_per_kernel(aom_: np.ndarray, level: float = MULTI_CLASS_LEVEL) -> np.ndarray:
    """Number of classes with strong occurrence in each kernel (Sec. III Task 3).

    A class counts for kernel k when its mean occurrence over positions,
    ``avg_(i,j) M[k, c, i, j]``, exceeds ``level`` (strictly). Kernels with two or more
    such classes respond to "multiple classes", a signal that the model needs more
    layers to tell those classes apart (Garcia et al. 2019, Sec. IV-A). For pooled maps
    the mean runs over cells, as in :func:`kernel_flags`.

    Parameters
    ----------
    aom_ : ndarray, (K, C, H, W) float
    level : float, default :data:`MULTI_CLASS_LEVEL` (0.5)

    Returns
    -------
    ndarray, (K,) int64 in [0, C].
    """
    per_class = np.asarray(aom_, dtype=np.float64).mean(axis=(2, 3))  # (K, C)
    return (per_class > level).sum(axis=1).astype(np.int64)


def multi_class_share(classes_per_kernel_: np.ndarray) -> float:
    """Fraction of a layer's kernels with strong occurrence for two or more classes.

    Parameters
    ----------
    classes_per_kernel_ : ndarray, (K,) int
        From :func:`classes_per_kernel`.

    Returns
    -------
    float in [0, 1].
    """
    n = np.asarray(classes_per_kernel_)
    return float((n >= 2).mean()) if n.size else 0.0


# --------------------------------------------------------------------------------------
# One layer's results, and the forward pass that fills them
# --------------------------------------------------------------------------------------


@dataclass
class LayerMaps:
    """Counts for one layer and the quantities derived from them (computed on demand).

    Attributes
    ----------
    layer : str
        The layer the user chose (e.g. ``"conv1"``).
    tap : str
        The module whose output was counted (e.g. ``"relu1"``).
    counts : ndarray, (K, C, H, W) int64
    class_sizes : ndarray, (C,) int64
    classes : list of str
    threshold : float
    cell_area : ndarray, (H, W) int64 or None
        Positions per cell when the maps were pooled while counting.
    """

    layer: str
    tap: str
    counts: np.ndarray
    class_sizes: np.ndarray
    classes: list[str]
    threshold: float = 0.0
    cell_area: np.ndarray | None = None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        _check_classes(np.asarray(self.class_sizes), self.classes)
        _check_counts(self)

    def _get(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    @property
    def aom(self) -> np.ndarray:
        """(K, C, H, W) float64, eq. 1."""
        return self._get("aom", lambda: aom(self.counts, self.class_sizes, self.cell_area))

    @property
    def odm(self) -> np.ndarray:
        """(K, K) float64, eq. 2."""
        return self._get("odm", lambda: odm(self.aom))

    @property
    def csm(self) -> np.ndarray:
        """(K, C, H, W) float64, eq. 3."""
        return self._get("csm", lambda: csm(self.aom))

    @property
    def class_selectivity(self) -> np.ndarray:
        """(K, C) float64: mean of the CSM over positions."""
        return self._get("cs", lambda: class_selectivity(self.csm))

    @property
    def selectivity(self) -> np.ndarray:
        """(K,) float64, eq. 4."""
        return self._get("sel", lambda: selectivity(self.csm))

    @property
    def class_difference(self) -> np.ndarray:
        """(C, C) float64: the ODM's dual over classes (Task 2)."""
        return self._get("cd", lambda: class_difference(self.aom))

    @property
    def classes_per_kernel(self) -> np.ndarray:
        """(K,) int64: classes with mean occurrence above :data:`MULTI_CLASS_LEVEL` (Task 3)."""
        return self._get("cpk", lambda: classes_per_kernel(self.aom))

    @property
    def multi_class_share(self) -> float:
        """Fraction of kernels with two or more classes in :attr:`classes_per_kernel`."""
        return multi_class_share(self.classes_per_kernel)

    @property
    def num_kernels(self) -> int:
        return int(self.counts.shape[0])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_maps_options(layers: list[str] | None, threshold: float, batch_size: int, autocast: str | None = None,
                       max_resolution: int | None = None, channels_last: bool = False) -> float:
    """Validate the options of :func:`compute_maps`; returns the threshold as a float.

    Raises
    ------
    InputError
        A threshold that is not a finite number, a batch size or ``max_resolution`` that
        is not an integer >= 1, an unknown autocast dtype, layer names that are not strings.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError("threshold must be a number", expected="a float such as 0", found=repr(threshold)) from None
    if not np.isfinite(value):
        raise InputError("threshold must be finite", expected="a finite float", found=repr(threshold))
    if not _is_int(batch_size) or batch_size < 1:
        raise InputError("bad batch size", expected="an integer >= 1", found=repr(batch_size))
    if max_resolution is not None and (not _is_int(max_resolution) or max_resolution < 1):
        raise InputError("bad max_resolution", expected="an integer >= 1 (cells per side), or none",
                         found=repr(max_resolution))
    if autocast not in (None, "bf16", "fp16"):
        raise InputError("unknown autocast dtype", expected="bf16 or fp16", found=repr(autocast))
    if layers is not None and (isinstance(layers, str) or not all(isinstance(n, str) and n for n in layers)):
        raise InputError("bad layer list", expected="a list of layer names", found=repr(layers)[:100])
    if not isinstance(channels_last, (bool, np.bool_)):
        raise InputError("bad channels_last", expected="True or False", found=repr(channels_last))
    return value


class _TapsDone(BaseException):
    """Raised by the last tap's hook to skip the layers after it (a BaseException, so a model's own
    ``except Exception`` cannot swallow it)."""


def compute_maps(model: nn.Module, dataset: ImageDataset, layers: list[str] | None = None,
                 threshold: float = 0.0, batch_size: int = 256, device: str | torch.device = "auto",
                 progress: Callable[[int, int], None] | None = None,
                 indices: torch.Tensor | None = None,
                 reduce: Callable[[OccurrenceCounter], None] | None = None,
                 autocast: str | None = None, channels_last: bool = False,
                 max_resolution: int | None = None) -> dict[str, LayerMaps]:
    """Count activation occurrences of several layers in one forward pass (eq. 1 inputs).

    The pass stops at the last tap of each batch: layers after it (e.g. the classifier
    when only conv layers are mapped) are not run.

    Parameters
    ----------
    model : nn.Module
        Never modified: a private copy is put on ``device`` and evaluated in eval mode
        under ``torch.inference_mode``, so no hook or mode change ever reaches a model
        that other threads or sessions share.
    dataset : ImageDataset
    layers : list of str, optional
        Layer names (see :func:`aomcore.base.layers.list_layers`); default every conv layer.
        A conv/FC layer is read at its default tap (after its BatchNorm/activation).
    threshold : float, default 0.0
        Strict: an activation occurs when ``a > threshold``.
    batch_size : int, default 256
    device : "auto", "cpu", "cuda" or torch.device
    progress : callable(done_images, total_images), optional
    indices : torch.Tensor, optional
        (M,) int64 subset of the dataset (e.g. one distributed shard).
    reduce : callable(counter), optional
        Called on each counter before results are read (e.g. an all-reduce).
    autocast : {"bf16", "fp16"}, optional
        Run the forward pass under ``torch.autocast`` in this dtype (GPU speed). Signs of
        near-zero activations can flip: :func:`aomcore.aom.precision.occurrence_flips`
        measures how many; the counts stay integers.
    channels_last : bool, default False
        Use the channels-last memory format for the model and the inputs (faster convs on
        tensor cores).
    max_resolution : int, optional
        Pool larger maps into at most this many cells per side while counting (see
        :class:`OccurrenceCounter`); memory then stays O(K·C·max_resolution²).

    Returns
    -------
    dict of layer name to :class:`LayerMaps`, in the order requested.

    Raises
    ------
    InputError
        Unknown layer, a model that does not take the dataset's images, a threshold that
        is not a finite number, a class with no images, fewer than two classes.
    """
    threshold = check_maps_options(layers, threshold, batch_size, autocast, max_resolution, channels_last)
    device = resolve_device(device)
    # A private copy: hooks and mode changes never touch a model other sessions may share.
    model = copy.deepcopy(model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    amp = _autocast(autocast, device)
    chosen: list[LayerInfo] = resolve_layers(list_layers(model, dataset.input_shape, device, include_all=True), layers)
    counters = {layer.tap: OccurrenceCounter(dataset.num_classes, threshold, max_resolution=max_resolution)
                for layer in chosen}
    current: dict = {}
    # A Linear on a channels-last tensor (N, ..., K) has its kernels on the last axis.
    last_axis = {layer.tap for layer in chosen if layer.channel_dim == -1}

    def observer(tap):
        def observe(out):
            if tap in last_axis and isinstance(out, torch.Tensor):
                out = out.movedim(-1, 1)  # (N, ..., K) -> (N, K, ...)
            counters[tap].update(out, current["labels"], current["segments"])
            current["pending"].discard(tap)
            if not current["pending"]:  # every tap counted: the rest of the network changes no count
                raise _TapsDone
        return observe

    if indices is None:  # fail before the pass, not after it (a shard may lack a class: checked after reduce)
        _check_classes(dataset.class_sizes(), list(dataset.classes))
    # Class-sorted order: each batch holds one or two classes, counted as contiguous segments
    # whose bounds come from the host-side labels (no one-hot product, no device sync).
    all_labels = dataset.labels
    indices = torch.arange(len(dataset)) if indices is None else indices
    order = indices[torch.argsort(all_labels[indices], stable=True)]
    total, done = int(order.numel()), 0
    was_training = model.training
    model.eval()
    try:
        with forward_hooks(model, {tap: observer(tap) for tap in counters}), torch.inference_mode():
            for start, (x, y) in zip(range(0, total, batch_size), dataset.batches(batch_size, device, order),
                                     strict=True):
                host = all_labels[order[start : start + batch_size]]
                classes, sizes = torch.unique_consecutive(host, return_counts=True)
                bounds = [0, *torch.cumsum(sizes, 0).tolist()]
                current["labels"], current["segments"] = y, [
                    (int(c), bounds[i], bounds[i + 1]) for i, c in enumerate(classes.tolist())]
                if channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                current["pending"] = set(counters)
                try:
                    with amp:
                        model(x)
                except _TapsDone:
                    pass
                done += int(y.shape[0])
                if progress is not None:
                    progress(done, total)
    finally:
        model.train(was_training)
    if reduce is not None:
        for counter in counters.values():
            reduce(counter)
    results = {}
    for layer in chosen:
        counts, sizes = counters[layer.tap].result()
        results[layer.name] = LayerMaps(layer=layer.name, tap=layer.tap, counts=counts, class_sizes=sizes,
                                        classes=list(dataset.classes), threshold=threshold,
                                        cell_area=counters[layer.tap].cell_area_)
    return results
