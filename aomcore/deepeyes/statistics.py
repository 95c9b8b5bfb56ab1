"""DeepEyes' per-layer statistics: perplexity histogram, activation heatmap, filter map.

Implements the quantities of Pezzotti, Höllt, van Gemert, Lelieveldt, Eisemann, Vilanova,
"DeepEyes: Progressive Visual Analytics for Designing Deep Neural Networks", IEEE TVCG
24(1):98–108, 2018 (doi 10.1109/TVCG.2017.2744358) — its perplexity histogram, activation
heatmap and filter map views — as released in the authors' code (repository
``Nicola17/High-Dimensional-Inspector``, branch ``deepeyes``,
``hdi/deep_learning/model_layer.cpp``: 30 perplexity buckets, per-filter maximum
activation and frequency, weighted-Jaccard numerator/denominator matrices, per-label
activation sums).

Notation: K kernels (conv output channels; an FC neuron is a kernel with one position),
C classes, P = H·W positions of a kernel's map, S samples.

*Samples.* A layer is read at the same tap as the AOMs (:func:`aomcore.base.layers.list_layers`,
``tap``: after its BatchNorm/activation) and its activations are clamped at 0. From each
image, ``positions`` spatial positions (default 10, as in DeepEyes) are drawn uniformly
*without replacement* (distinct positions) from a seeded ``torch.Generator``; when
``positions >= P``, or ``positions="all"``, every position is used (exact and
deterministic). An FC layer's output (B, K) has one position per image. Each sample is the
depth column ``v = a[:, i, j]`` of K activations.

*Quantities* (β = 0.5):

* perplexity of a sample: ``p = v / Σv``, ``H = -Σ p·log2 p`` (0·log 0 = 0),
  perplexity ``2**H`` clipped to [1, K]; an all-zero sample has perplexity K;
* perplexity histogram: counts over ``bins`` (30) equal-width bins of [1, K], the last
  bin closed;
* maximum activation ``μ_k = max_s a_k(s)``; activation frequency
  ``f_k = |{s : a_k(s) > β·μ_k}| / S`` (the paper's definition; the released code's
  Σv / Σ running-max variant is not used);
* filter similarity, the weighted Jaccard ``Σ_s min(a_k1, a_k2) / Σ_s max(a_k1, a_k2)``
  (1 on the diagonal, 0 for two filters that are never active);
* filter label and confidence: ``q[k, c]`` = mean over class-c images of the sum over
  that image's samples of ``a_k``, L1-normalised over classes (uniform when all zero);
  label ``argmax_c q[k, c]`` (ties: the lowest class index), confidence
  ``1 - perplexity(q[k]) / C``.

*Exact frequency, in memory independent of the number of images.* ``f_k`` needs the final
``μ_k`` before any sample can be counted. :func:`compute_deepeyes` therefore makes two
streaming passes with the same seeded samples: the first accumulates everything else and
``μ``; the second (:meth:`DeepEyesStats.update_frequency`) counts the samples above
``β·μ``. A single pass (:class:`TrainingMonitor`, whose weights change between
mini-batches anyway) counts against the running maximum up to and including the current
batch — DeepEyes' progressive approximation, exact when there is one batch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..base.atomic import atomic_path
from ..base.data import ImageDataset
from ..base.devices import resolve_device
from ..base.errors import InputError
from ..base.hooks import forward_hooks
from ..base.layers import LayerInfo, list_layers, resolve_layers
from ..base.limits import BINS_MAX, BINS_MIN, POSITIONS_MAX, POSITIONS_MIN, check_int
from ..base.models import apply_state_dict, load_state_dict
from ..base.npzfile import library_versions, read_result_npz

__all__ = [
    "DeepEyesSeries",
    "DeepEyesStats",
    "LayerDeepEyes",
    "TrainingMonitor",
    "compute_deepeyes",
    "deepeyes_over_snapshots",
    "load_deepeyes_npz",
    "perplexity",
    "perplexity_bin_edges",
    "save_deepeyes_npz",
    "stack_deepeyes",
]

#: DeepEyes' activation-frequency factor: a sample is "active" for filter k above β·μ_k.
BETA = 0.5
_LN2 = math.log(2.0)
#: Elements of the reused (chunk, K, K) block of pairwise minima for the weighted Jaccard:
#: cache-sized on a CPU (1 MiB in float32: about 10× faster than a 32 MiB block), large on a GPU.
_JACCARD_BLOCK = {"cpu": 1 << 18, "cuda": 1 << 24}
#: The arrays of one layer in ``deepeyes.npz`` and in :meth:`DeepEyesStats.result`.
ARRAY_NAMES = ("max_activation", "activation_frequency", "perplexity_histogram", "perplexity_bin_edges",
               "filter_similarity", "filter_label", "filter_confidence")


# --------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------


def _perplexity(v: torch.Tensor) -> torch.Tensor:
    """Perplexity of each row of ``v`` (..., K) float64 ≥ 0 → (...) float64 in [1, K]."""
    k = v.shape[-1]
    total = v.sum(-1, keepdim=True)  # (..., 1)
    p = v / total  # NaN in all-zero rows, replaced below
    # Natural log (5x faster than log2 in float64 on a CPU), then bits: ln(2^-m) = -m·ln 2
    # exactly, so one active entry gives 1 and 2^m equal entries give 2^m, exactly.
    plogp = torch.log(torch.where(p > 0, p, 1.0)).mul_(p)  # 0·ln 0 = 0 (ln of 1 where p = 0: no -inf)
    perp = torch.exp2(plogp.sum(-1).div_(-_LN2)).clamp_(1.0, float(k))  # (...)
    return torch.where(total[..., 0] > 0, perp, float(k))


def perplexity(v) -> np.ndarray:
    """Perplexity of activation vectors (DeepEyes' perplexity histogram, Pezzotti et al. 2018).

    ``p = v / Σv``, ``H = -Σ_k p_k log2 p_k`` with 0·log 0 = 0, perplexity ``2**H`` clipped
    to [1, K]. One active entry gives 1, K equal entries give K; an all-zero vector is
    treated as uniform and gives K. Negative entries are clamped at 0 first.

    Parameters
    ----------
    v : array-like or torch.Tensor, (..., K)
        Activations, any real dtype, any device.

    Returns
    -------
    ndarray, (...) float64 in [1, K].
    """
    t = torch.as_tensor(v).detach().to(torch.float64).clamp(min=0)
    if t.ndim == 0 or t.shape[-1] == 0:
        raise InputError("perplexity needs vectors", expected="an array (..., K) with K >= 1",
                         found=f"shape {tuple(t.shape)}")
    return _perplexity(t).cpu().numpy()


def perplexity_bin_edges(k: int, bins: int = 30) -> np.ndarray:
    """Edges of the perplexity histogram: ``bins`` equal-width bins of [1, K].

    Returns
    -------
    ndarray, (bins + 1,) float64, from 1 to K (all 1 when K = 1: every sample then falls
    in the last bin).
    """
    return np.linspace(1.0, float(k), int(bins) + 1)


# --------------------------------------------------------------------------------------
# The streaming statistics of one layer
# --------------------------------------------------------------------------------------


def _check_positions(positions) -> int | str:
    if isinstance(positions, str) and positions == "all":
        return positions
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        return check_int("positions per image", positions, POSITIONS_MIN, POSITIONS_MAX)
    raise InputError("unknown positions option", expected=f"an integer in [{POSITIONS_MIN}, {POSITIONS_MAX}] or "
                     "'all'", found=repr(positions)[:80])


class DeepEyesStats:
    """Streaming DeepEyes statistics of one layer (Pezzotti et al. 2018).

    Memory is O(K·(bins + C) + K²) (the K² only with ``similarity=True``), independent of
    the number of images; accumulation runs on the activations' device in float64 with
    vectorised ops (one gather, one bincount, one one-hot matmul and a few chunked
    broadcasts per batch).

    Parameters
    ----------
    num_classes : int
        C; labels must lie in ``[0, C)``.
    positions : int or "all", default 10
        Positions drawn per image, without replacement (DeepEyes samples 10 receptive
        fields per image); all of them when ``positions >= H·W`` or ``"all"``.
    bins : int, default 30
        Buckets of the perplexity histogram (DeepEyes: 30).
    seed : int, default 0
        Seeds the private CPU ``torch.Generator`` of the position sampler. The same seed
        and image order draw the same samples, on any device and with any batch sizes
        (tested: ``tests/core/test_deepeyes.py``).
    similarity : bool, default False
        Also accumulate the (K, K) weighted-Jaccard sums for the filter map.

    Attributes
    ----------
    n_samples_ : int
        S, samples seen by :meth:`update`.
    max_activation_ : ndarray, (K,) float64
        μ_k, the maximum activation of each kernel over the samples (≥ 0).
    activation_frequency_ : ndarray, (K,) float64 in [0, 1]
        f_k, the fraction of samples with ``a_k > 0.5·μ_k``; exact after a frequency pass
        (or with one batch), else against the running maximum (see the module docstring).
    frequency_exact_ : bool
        Whether ``activation_frequency_`` used the final μ.
    perplexity_histogram_ : ndarray, (bins,) int64
    bin_edges_ : ndarray, (bins + 1,) float64
    filter_similarity_ : ndarray, (K, K) float64 in [0, 1], or None without similarity
    filter_label_ : ndarray, (K,) int64
    filter_confidence_ : ndarray, (K,) float64 in [0, 1 - 1/C]

    Raises
    ------
    InputError
        A bad option (the message names the valid ones); an output that is not (B, K),
        (B, K, L) or (B, K, H, W); a K that changes between batches; labels that do not
        match the batch.

    Examples
    --------
    >>> stats = DeepEyesStats(num_classes=2, positions="all")
    >>> _ = stats.update(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([0, 1]))
    >>> stats.perplexity_histogram_[[0, -1]].tolist()
    [1, 1]
    """

    def __init__(self, num_classes: int, positions: int | str = 10, bins: int = 30, seed: int = 0,
                 similarity: bool = False):
        self.num_classes = num_classes
        self.positions = positions
        self.bins = bins
        self.seed = seed
        self.similarity = similarity
        self._positions = _check_positions(positions)
        check_int("number of perplexity bins", bins, BINS_MIN, BINS_MAX)  # before anything is allocated
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise InputError("num_classes must be a positive integer", expected="an integer >= 1",
                             found=repr(num_classes))
        self._generator = torch.Generator().manual_seed(int(seed))
        self._k: int | None = None
        self._batches = 0
        self._phase = "stats"  # "stats" (update) → "frequency" (update_frequency)
        self._frequency_batches = 0
        self._frequency_samples = 0
        self.n_samples_ = 0

    # --- sampling ---------------------------------------------------------------------
    def _picked(self, activations: torch.Tensor) -> torch.Tensor:
        """The sampled depth columns, (B, K, n), not yet clamped, in the activations' dtype."""
        if not isinstance(activations, torch.Tensor):
            raise InputError("layer output is not a tensor", expected="a tensor (B, K, ...)",
                             found=type(activations).__name__)
        if activations.ndim not in (2, 3, 4):
            raise InputError("cannot sample this layer's output", expected="(B, K), (B, K, L) or (B, K, H, W)",
                             found=f"shape {tuple(activations.shape)}")
        a = activations.detach()
        b, k = a.shape[:2]
        if self._k is None:
            self._allocate(k, a.device)
        elif k != self._k:
            raise InputError("layer output changed its number of kernels between batches",
                             expected=str(self._k), found=str(k))
        flat = a.reshape(b, k, -1)  # (B, K, P)
        p = flat.shape[2]
        if self._positions == "all" or self._positions >= p:
            return flat
        n = self._positions
        # CPU draws (the same on every device); torch's CPU uniform sampler is serial, so
        # the draws depend on the image order only, not on how the images are batched.
        keys = torch.rand((b, p), generator=self._generator, dtype=torch.float32)
        idx = keys.topk(n, dim=1).indices.to(flat.device)  # (B, n): n distinct positions per image
        return flat.gather(2, idx[:, None, :].expand(b, k, n))  # (B, K, n)

    def _samples(self, activations: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Clamped samples (B·n, K) and n, the samples per image.

        float32 (float64 for float64 activations): converting float16/bfloat16/float32 to
        float32 is exact, and every sum below accumulates in float64.
        """
        picked = self._picked(activations)  # (B, K, n)
        b, k, n = picked.shape
        dtype = torch.float64 if picked.dtype == torch.float64 else torch.float32
        samples = picked.transpose(1, 2).to(dtype).clamp(min=0)  # (B, n, K), a copy
        return samples.reshape(b * n, k), n

    def _allocate(self, k: int, device: torch.device) -> None:
        self._k = k
        f64 = {"dtype": torch.float64, "device": device}
        self._edges = torch.as_tensor(perplexity_bin_edges(k, self.bins), **f64)
        self._hist = torch.zeros(self.bins, dtype=torch.int64, device=device)
        self._max = torch.zeros(k, **f64)
        self._above = torch.zeros(k, dtype=torch.int64, device=device)
        self._class_sums = torch.zeros((self.num_classes, k), **f64)  # Σ over images of Σ over samples of a_k
        self._class_sizes = torch.zeros(self.num_classes, **f64)
        if self.similarity:
            self._sum_min = torch.zeros((k, k), **f64)
            self._sum = torch.zeros(k, **f64)
            self._chunk = max(1, _JACCARD_BLOCK.get(device.type, 1 << 22) // (k * k))
            self._scratch: torch.Tensor | None = None

    # --- accumulation -----------------------------------------------------------------
    def update(self, activations: torch.Tensor, labels: torch.Tensor) -> DeepEyesStats:
        """Add one batch (first pass).

        Parameters
        ----------
        activations : torch.Tensor
            (B, K), (B, K, L) or (B, K, H, W), any float dtype, any device; may require
            grad (it is detached, never modified).
        labels : torch.Tensor
            (B,) int64 class indices, on the same device.

        Returns
        -------
        self
        """
        if self._phase != "stats":
            raise InputError("update() after the frequency pass began",
                             expected="all update() calls before update_frequency()", found="update()")
        s, n = self._samples(activations)  # (S_b, K)
        b = activations.shape[0]
        if labels.shape != (b,):
            raise InputError("one label per image", expected=f"labels of shape ({b},)",
                             found=f"shape {tuple(labels.shape)}")
        s64 = s.to(torch.float64)  # exact; float64 reductions are also faster than mixed-dtype ones
        # Perplexity histogram.
        perp = _perplexity(s64)  # (S_b,)
        self._hist += torch.bincount(torch.bucketize(perp, self._edges[1:-1], right=True), minlength=self.bins)
        # Maximum activation; frequency against the running maximum (exact with one batch).
        torch.maximum(self._max, s64.amax(0), out=self._max)
        self._above += (s64 > BETA * self._max).sum(0)
        # Per-class activation sums (filter label): one-hot (C, B) @ per-image sums (B, K).
        per_image = s64.view(b, n, -1).sum(1)  # (B, K)
        onehot = torch.zeros((self.num_classes, b), dtype=torch.float64, device=s.device)
        onehot.scatter_(0, labels.to(s.device).view(1, b), 1.0)
        self._class_sums += onehot @ per_image
        self._class_sizes += onehot.sum(1)
        # Weighted Jaccard sums: Σ min over chunks of (chunk, K, K); Σ max = Σa_i + Σa_j - Σ min.
        if self.similarity:
            k, chunk = s.shape[1], self._chunk
            if self._scratch is None or self._scratch.dtype != s.dtype:
                self._scratch = torch.empty((chunk, k, k), dtype=s.dtype, device=s.device)
            for start in range(0, s.shape[0], chunk):
                x = s[start : start + chunk]  # (c, K)
                pair_min = torch.minimum(x[:, :, None], x[:, None, :], out=self._scratch[: x.shape[0]])  # (c, K, K)
                self._sum_min += pair_min.sum(0, dtype=torch.float64)  # min is exact; the sum is float64
            self._sum += s64.sum(0)
        self.n_samples_ += s.shape[0]
        self._batches += 1
        return self

    def start_frequency_pass(self) -> DeepEyesStats:
        """Freeze μ, rewind the sampler to ``seed`` and zero the frequency counts.

        Then feed the same images, in the same order and batch sizes, to
        :meth:`update_frequency`; :attr:`activation_frequency_` becomes exact.
        """
        if self._k is None:
            raise InputError("no activations were seen", expected="a first pass of update()", found="none")
        self._phase = "frequency"
        self._generator.manual_seed(int(self.seed))
        self._above.zero_()
        self._frequency_samples = 0
        self._frequency_batches = 0
        return self

    def update_frequency(self, activations: torch.Tensor) -> DeepEyesStats:
        """Add one batch to the second pass: count samples with ``a_k > 0.5·μ_k``.

        Parameters
        ----------
        activations : torch.Tensor
            The same batch as in the first pass (same images, order and size).
        """
        if self._phase != "frequency":
            self.start_frequency_pass()
        picked = self._picked(activations)  # (B, K, n); no clamp needed: 0.5·μ >= 0
        # μ is a maximum of these values and 0.5·μ is exact in their dtype: the comparison is exact.
        self._above += (picked > (BETA * self._max).to(picked.dtype)[None, :, None]).sum((0, 2))
        self._frequency_samples += picked.shape[0] * picked.shape[2]
        self._frequency_batches += 1
        return self

    # --- results ----------------------------------------------------------------------
    def _require(self) -> None:
        if self._k is None or self.n_samples_ == 0:
            raise InputError("no activations were seen", expected="at least one batch", found="none")

    @property
    def frequency_exact_(self) -> bool:
        self._require()
        if self._phase == "frequency":
            return self._frequency_samples == self.n_samples_
        return self._batches == 1

    @property
    def max_activation_(self) -> np.ndarray:
        self._require()
        return self._max.cpu().numpy().copy()  # never a view of the running state

    @property
    def activation_frequency_(self) -> np.ndarray:
        self._require()
        if self._phase == "frequency" and self._frequency_samples != self.n_samples_:
            raise InputError("the frequency pass saw other samples than the first pass",
                             expected=f"{self.n_samples_} samples", found=f"{self._frequency_samples}")
        return self._above.cpu().numpy().astype(np.float64) / self.n_samples_

    @property
    def perplexity_histogram_(self) -> np.ndarray:
        self._require()
        return self._hist.cpu().numpy().copy()  # never a view of the running state

    @property
    def bin_edges_(self) -> np.ndarray:
        self._require()
        return self._edges.cpu().numpy().copy()  # never a view of the running state

    @property
    def filter_similarity_(self) -> np.ndarray | None:
        self._require()
        if not self.similarity:
            return None
        sum_min = self._sum_min.cpu().numpy()
        total = self._sum.cpu().numpy()
        sum_max = total[:, None] + total[None, :] - sum_min
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(sum_max > 0, sum_min / np.where(sum_max > 0, sum_max, 1.0), 0.0)
        sim = np.clip((sim + sim.T) / 2, 0.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        return sim

    def _label_distribution(self) -> np.ndarray:
        """q (K, C) float64: per-class mean activation sums, L1-normalised over classes."""
        sums, sizes = self._class_sums.cpu().numpy(), self._class_sizes.cpu().numpy()
        means = np.where(sizes[:, None] > 0, sums / np.maximum(sizes, 1)[:, None], 0.0).T  # (K, C)
        norm = means.sum(1, keepdims=True)
        return np.where(norm > 0, means / np.where(norm > 0, norm, 1.0), 1.0 / self.num_classes)

    @property
    def filter_label_(self) -> np.ndarray:
        self._require()
        return self._label_distribution().argmax(1).astype(np.int64)  # first maximum: the lowest class

    @property
    def filter_confidence_(self) -> np.ndarray:
        self._require()
        return 1.0 - perplexity(self._label_distribution()) / self.num_classes

    def result(self) -> dict[str, np.ndarray]:
        """Every result as the arrays of ``deepeyes.npz`` (names in ``ARRAY_NAMES``).

        ``filter_similarity`` is left out without ``similarity=True``.
        """
        out = {"max_activation": self.max_activation_, "activation_frequency": self.activation_frequency_,
               "perplexity_histogram": self.perplexity_histogram_, "perplexity_bin_edges": self.bin_edges_,
               "filter_label": self.filter_label_, "filter_confidence": self.filter_confidence_}
        if self.similarity:
            out["filter_similarity"] = self.filter_similarity_
        return {name: out[name] for name in ARRAY_NAMES if name in out}


# --------------------------------------------------------------------------------------
# Offline: a forward pass over a dataset
# --------------------------------------------------------------------------------------


@dataclass
class LayerDeepEyes:
    """DeepEyes statistics of one layer over a dataset.

    Attributes
    ----------
    layer : str
        The layer the user chose (e.g. ``"conv1"``).
    tap : str
        The module whose output was read (e.g. ``"relu1"``).
    arrays : dict of str to ndarray
        ``max_activation`` (K,) float64, ``activation_frequency`` (K,) float64,
        ``perplexity_histogram`` (B,) int64, ``perplexity_bin_edges`` (B+1,) float64,
        ``filter_label`` (K,) int64, ``filter_confidence`` (K,) float64 and, when
        computed, ``filter_similarity`` (K, K) float64 (see :class:`DeepEyesStats`).
    n_samples : int
        S, the samples the statistics are over.
    frequency_exact : bool
        Whether the activation frequency used the final maximum (two passes).
    """

    layer: str
    tap: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    n_samples: int = 0
    frequency_exact: bool = True

    @property
    def max_activation(self) -> np.ndarray:
        """(K,) float64: μ_k."""
        return self.arrays["max_activation"]

    @property
    def activation_frequency(self) -> np.ndarray:
        """(K,) float64: share of samples with ``a_k > 0.5·μ_k``."""
        return self.arrays["activation_frequency"]

    @property
    def perplexity_histogram(self) -> np.ndarray:
        """(B,) int64: samples per perplexity bin."""
        return self.arrays["perplexity_histogram"]

    @property
    def perplexity_bin_edges(self) -> np.ndarray:
        """(B+1,) float64: bin edges over [1, K]."""
        return self.arrays["perplexity_bin_edges"]

    @property
    def filter_similarity(self) -> np.ndarray | None:
        """(K, K) float64 weighted Jaccard, or None when not computed."""
        return self.arrays.get("filter_similarity")

    @property
    def filter_label(self) -> np.ndarray:
        """(K,) int64: the class each kernel responds to most."""
        return self.arrays["filter_label"]

    @property
    def filter_confidence(self) -> np.ndarray:
        """(K,) float64: ``1 - perplexity(q_k) / C``."""
        return self.arrays["filter_confidence"]

    @property
    def num_kernels(self) -> int:
        return int(self.arrays["max_activation"].shape[0])


def _deepeyes_layers(model: nn.Module, dataset: ImageDataset, layers: list[str] | None,
                     device: torch.device) -> list[LayerInfo]:
    """The requested layers; by default every conv and FC layer, in forward order."""
    available = list_layers(model, dataset.input_shape, device, include_all=True)
    if not layers:
        chosen = [la for la in available if la.kind in ("conv", "fc")]
        if not chosen:
            raise InputError("the model has no conv or FC layer", expected="a CNN", found="none")
        return chosen
    return resolve_layers(available, layers)


def compute_deepeyes(model: nn.Module, dataset: ImageDataset, layers: list[str] | None = None,
                     positions: int | str = 10, seed: int = 0, bins: int = 30, batch_size: int = 256,
                     device: str | torch.device = "auto", progress: Callable[[int, int], None] | None = None,
                     similarity: bool = True, exact_frequency: bool = True) -> dict[str, LayerDeepEyes]:
    """DeepEyes statistics of several layers over a dataset (Pezzotti et al. 2018).

    One streaming forward pass fills a :class:`DeepEyesStats` per layer; a second pass
    over the same images with the same seeded samples counts the activation frequency
    against the final maximum (skipped when the dataset fits in one batch, where the
    first pass is already exact). Memory is independent of the number of images.

    Parameters
    ----------
    model : nn.Module
        Never modified: a private copy is evaluated on ``device`` in eval mode under
        ``torch.inference_mode``.
    dataset : ImageDataset
        Images in dataset order, ``batch_size`` at a time.
    layers : list of str, optional
        Layer names (see :func:`aomcore.base.layers.list_layers`); default every conv and FC
        layer. A conv/FC layer is read at its tap (after its BatchNorm/activation).
    positions : int or "all", default 10
    seed : int, default 0
    bins : int, default 30
    batch_size : int, default 256
    device : "auto", "cpu", "cuda" or torch.device
    progress : callable(done, total), optional
        Images processed so far, over all passes (total = 2·N with the frequency pass).
    similarity : bool, default True
        Also compute the (K, K) filter similarity (O(S·K²) time, O(K²) memory).
    exact_frequency : bool, default True
        Make the second pass; False counts against the running maximum (one pass).

    Returns
    -------
    dict of layer name to :class:`LayerDeepEyes`, in the order requested.

    Raises
    ------
    InputError
        Unknown layer or option, a model that does not take the dataset's images, an
        empty dataset.
    """
    _check_positions(positions)
    if len(dataset) == 0:
        raise InputError("the dataset has no images", expected="at least one image", found="0")
    if batch_size < 1:
        raise InputError("batch size must be >= 1", expected=">= 1", found=str(batch_size))
    device = resolve_device(device)
    model = copy.deepcopy(model).to(device)
    chosen = _deepeyes_layers(model, dataset, layers, device)
    stats = {la.name: DeepEyesStats(dataset.num_classes, positions, bins, seed, similarity) for la in chosen}
    by_tap: dict[str, list[DeepEyesStats]] = {}
    for la in chosen:
        by_tap.setdefault(la.tap, []).append(stats[la.name])
    n = len(dataset)
    two_passes = exact_frequency and n > batch_size
    total, done = n * (2 if two_passes else 1), 0
    current: dict = {}

    def observer(tap, second):
        def observe(out):
            for st in by_tap[tap]:
                if second:
                    st.update_frequency(out)
                else:
                    st.update(out, current["labels"])
        return observe

    model.eval()
    with torch.inference_mode():  # the statistics' tensors are inference tensors: update them only in here
        for second in (False, True)[: 2 if two_passes else 1]:
            if second:
                for st in stats.values():
                    st.start_frequency_pass()
            with forward_hooks(model, {tap: observer(tap, second) for tap in by_tap}):
                for x, y in dataset.batches(batch_size, device):
                    current["labels"] = y
                    model(x)
                    done += int(y.shape[0])
                    if progress is not None:
                        progress(done, total)
    return {la.name: LayerDeepEyes(layer=la.name, tap=la.tap, arrays=stats[la.name].result(),
                                   n_samples=stats[la.name].n_samples_,
                                   frequency_exact=stats[la.name].frequency_exact_)
            for la in chosen}


@dataclass
class DeepEyesSeries:
    """DeepEyes statistics at several training snapshots.

    Attributes
    ----------
    iterations : ndarray, (S,) int64
        The training iteration of each snapshot.
    layers : dict of str to dict of str to ndarray
        Per layer, the arrays of :class:`LayerDeepEyes` stacked on a leading snapshot
        axis: e.g. ``max_activation`` (S, K) float64, ``perplexity_histogram`` (S, B) int64.
    taps : dict of str to str
        The module each layer was read at.
    """

    iterations: np.ndarray
    layers: dict[str, dict[str, np.ndarray]]
    taps: dict[str, str] = field(default_factory=dict)


def stack_deepeyes(per_snapshot: list[Mapping[str, LayerDeepEyes | Mapping[str, np.ndarray]]]
                   ) -> dict[str, dict[str, np.ndarray]]:
    """Stack per-snapshot results (layer → :class:`LayerDeepEyes` or dict of arrays, e.g.
    from :meth:`TrainingMonitor.snapshot`) on a leading snapshot axis.

    Raises
    ------
    InputError
        No snapshots, or snapshots with different layers, arrays or shapes.
    """
    if not per_snapshot:
        raise InputError("no snapshots to stack", expected="at least one", found="none")
    layers = list(per_snapshot[0])
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        items = []
        for snap in per_snapshot:
            if layer not in snap:
                raise InputError(f"layer {layer!r} missing from a snapshot", expected=str(layers),
                                 found=str(list(snap)))
            item = snap[layer]
            items.append(item.arrays if isinstance(item, LayerDeepEyes) else item)
        names = list(items[0])
        if any(list(it) != names for it in items):
            raise InputError(f"snapshots of layer {layer!r} hold different arrays", expected=str(names),
                             found="another set")
        try:
            out[layer] = {name: np.stack([np.asarray(it[name]) for it in items]) for name in names}
        except ValueError as exc:
            raise InputError(f"snapshots of layer {layer!r} differ in shape", expected="one architecture",
                             found=str(exc)) from None
    return out


def deepeyes_over_snapshots(build_model: Callable[[], nn.Module], snapshots: Iterable[tuple[int, str | os.PathLike]],
                            dataset: ImageDataset, layers: list[str] | None = None, positions: int | str = 10,
                            seed: int = 0, bins: int = 30, batch_size: int = 256,
                            device: str | torch.device = "auto", similarity: bool = True,
                            progress: Callable[[int, int], None] | None = None) -> DeepEyesSeries:
    """:func:`compute_deepeyes` at each saved training snapshot, stacked.

    Every snapshot sees the same images and, with the same seed, the same sampled
    positions, so changes between snapshots come from the weights alone.

    Parameters
    ----------
    build_model : callable() -> nn.Module
        Builds the (untrained) architecture that the snapshots' state_dicts fit.
    snapshots : iterable of (iteration, path)
        Training iteration and state_dict file (``.safetensors`` or ``.pt``), e.g. the
        ``snapshots/*.safetensors`` of a run folder.
    progress : callable(done_snapshots, total_snapshots), optional
    Other parameters
        As in :func:`compute_deepeyes`.

    Returns
    -------
    DeepEyesSeries, snapshots in the order given.
    """
    snapshots = list(snapshots)
    if not snapshots:
        raise InputError("no snapshots", expected="at least one (iteration, weights file)", found="none")
    results, iterations, taps = [], [], {}
    for i, (iteration, path) in enumerate(snapshots):
        model = build_model()
        apply_state_dict(model, load_state_dict(path))
        result = compute_deepeyes(model, dataset, layers, positions, seed, bins, batch_size, device,
                                  similarity=similarity)
        taps = {name: r.tap for name, r in result.items()}
        results.append(result)
        iterations.append(int(iteration))
        if progress is not None:
            progress(i + 1, len(snapshots))
    return DeepEyesSeries(iterations=np.asarray(iterations, dtype=np.int64), layers=stack_deepeyes(results),
                          taps=taps)


# --------------------------------------------------------------------------------------
# Online: during training, from the training mini-batches themselves
# --------------------------------------------------------------------------------------


class TrainingMonitor:
    """DeepEyes statistics of the training mini-batches, gathered while training.

    A context manager: on entry it registers forward hooks on the monitored taps (removed
    on exit, also on an exception); each hook detaches the output (autograd is untouched,
    the output is never modified) and feeds one :class:`DeepEyesStats` per layer. No extra
    forward pass is made. Before each training forward, :meth:`set_labels` gives the
    batch's labels; a forward without fresh labels (e.g. an evaluation in between) is
    ignored. :func:`aomcore.base.training.train` does both when given ``monitor=``.

    The activation frequency is DeepEyes' progressive one: against the running maximum of
    the current window up to and including the current batch (the weights change between
    mini-batches, so there is no final μ to wait for).

    Parameters
    ----------
    model : nn.Module
        The model being trained (hooks go on its modules, found by name).
    layers : list of str, optional
        Layer names; default every conv and FC layer.
    num_classes : int
    input_shape : (C, H, W)
        One input's shape, for the dry pass of :func:`~aomcore.base.layers.list_layers` that
        finds the taps.
    positions, seed, bins, similarity
        As in :class:`DeepEyesStats` (``similarity`` default False: O(S·K²) per step).

    Attributes
    ----------
    taps_ : dict of str to str
        The module each layer is read at.
    batches_ : int
        Training batches seen since the last snapshot.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None, num_classes: int,
                 input_shape: tuple[int, int, int], positions: int | str = 10, seed: int = 0, bins: int = 30,
                 similarity: bool = False):
        self.model = model
        self.layers = layers
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.positions = positions
        self.seed = seed
        self.bins = bins
        self.similarity = similarity
        _check_positions(positions)
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        available = list_layers(model, self.input_shape, device, include_all=True)
        if layers:
            chosen = resolve_layers(available, list(layers))
        else:
            chosen = [la for la in available if la.kind in ("conv", "fc")]
            if not chosen:
                raise InputError("the model has no conv or FC layer", expected="a CNN", found="none")
        self.taps_ = {la.name: la.tap for la in chosen}
        self._depth = 0
        self._stack: contextlib.ExitStack | None = None
        self._labels: torch.Tensor | None = None
        self._batch_id = 0
        self._seen: dict[str, int] = {}
        self._fresh_stats()

    def _fresh_stats(self) -> None:
        # One generator stream across windows: the next window continues the draws.
        previous = getattr(self, "_stats", None)
        self._stats = {name: DeepEyesStats(self.num_classes, self.positions, self.bins, self.seed, self.similarity)
                       for name in self.taps_}
        if previous is not None:
            for name, st in self._stats.items():
                st._generator = previous[name]._generator
        self.batches_ = 0

    def set_labels(self, labels: torch.Tensor) -> None:
        """Labels (B,) int64 of the next training forward; arms each hook for one call."""
        self._labels = labels.detach()
        self._batch_id += 1
        self.batches_ += 1

    def _observer(self, tap: str):
        names = [name for name, t in self.taps_.items() if t == tap]

        def observe(out):
            if self._labels is None or self._seen.get(tap) == self._batch_id:
                return None  # no fresh labels: not a training forward
            self._seen[tap] = self._batch_id
            for name in names:
                self._stats[name].update(out.detach(), self._labels)
            return None
        return observe

    def __enter__(self) -> TrainingMonitor:
        if self._depth == 0:
            stack = contextlib.ExitStack()
            stack.enter_context(forward_hooks(self.model, {tap: self._observer(tap)
                                                           for tap in dict.fromkeys(self.taps_.values())}))
            self._stack = stack
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._stack is not None:
            stack, self._stack = self._stack, None
            self._labels = None
            stack.close()

    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """What was accumulated since the last snapshot, then reset.

        Returns
        -------
        dict of layer name to the arrays of :meth:`DeepEyesStats.result`
        (``max_activation`` (K,) float64, ``activation_frequency`` (K,) float64,
        ``perplexity_histogram`` (B,) int64, ``perplexity_bin_edges`` (B+1,) float64,
        ``filter_label`` (K,) int64, ``filter_confidence`` (K,) float64, and
        ``filter_similarity`` (K, K) float64 with ``similarity=True``).

        Raises
        ------
        InputError
            If no training batch was seen since the last snapshot.
        """
        if any(st.n_samples_ == 0 for st in self._stats.values()):
            raise InputError("no training batch since the last snapshot", expected="at least one training step",
                             found="none")
        out = {name: st.result() for name, st in self._stats.items()}
        self._fresh_stats()
        return out


# --------------------------------------------------------------------------------------
# deepeyes.npz
# --------------------------------------------------------------------------------------


def save_deepeyes_npz(path: str | os.PathLike, results: Mapping[str, LayerDeepEyes] | DeepEyesSeries,
                      meta: dict | None = None, filter_maps: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write DeepEyes statistics to ``deepeyes.npz`` atomically.

    Layout, for each layer ``L`` (with a :class:`DeepEyesSeries`, every array gets a
    leading snapshot axis S and the file holds ``snapshots`` (S,) int64 iterations):

    ============================  ============  =======  ==============================
    key                           shape         dtype    meaning (Pezzotti et al. 2018)
    ============================  ============  =======  ==============================
    ``L/max_activation``          (K,)          float64  μ_k, activation heatmap
    ``L/activation_frequency``    (K,)          float64  share of samples > 0.5·μ_k
    ``L/perplexity_histogram``    (B,)          int64    samples per perplexity bin
    ``L/perplexity_bin_edges``    (B+1,)        float64  bin edges over [1, K]
    ``L/filter_similarity``       (K, K)        float64  weighted Jaccard (if computed)
    ``L/filter_label``            (K,)          int64    class of largest activation
    ``L/filter_confidence``       (K,)          float64  1 − perplexity(q_k)/C
    ``L/filter_map``              (K, 2)        float64  filter map points (if given)
    ============================  ============  =======  ==============================

    plus ``meta``, a JSON string (layers, taps, samples, versions, and what the caller
    passes: model digest, dataset identity, positions, seed, ...). Everything loads with
    ``np.load(path, allow_pickle=False)``. The file is written to a temporary file in the
    same folder, fsynced, and renamed over ``path``: a reader never sees half a file.
    """
    path = Path(path)
    series = isinstance(results, DeepEyesSeries)
    layers = results.layers if series else {name: r.arrays for name, r in results.items()}
    if not layers:
        raise InputError("no layers to write", expected="at least one layer", found="none")
    arrays: dict[str, np.ndarray] = {}
    for name, layer_arrays in layers.items():
        for key, value in layer_arrays.items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    for name, points in (filter_maps or {}).items():
        if name not in layers or np.shape(points) != (np.shape(layers[name]["max_activation"])[-1], 2):
            raise InputError("a filter map must be one (K, 2) array per layer written",
                             expected=f"layers {list(layers)}", found=f"{name}: shape {np.shape(points)}")
        arrays[f"{name}/filter_map"] = np.asarray(points, dtype=np.float64)
    taps = results.taps if series else {name: r.tap for name, r in results.items()}
    full_meta = {"format": "aomscope-deepeyes", "layers": list(layers), "taps": taps, "beta": BETA,
                 "versions": library_versions()}
    if not series:
        full_meta["n_samples"] = {name: r.n_samples for name, r in results.items()}
        full_meta["frequency_exact"] = {name: r.frequency_exact for name, r in results.items()}
    else:
        arrays["snapshots"] = np.asarray(results.iterations, dtype=np.int64)
    full_meta |= meta or {}
    arrays["meta"] = np.array(json.dumps(full_meta, default=str))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_deepeyes_npz(path: str | os.PathLike) -> tuple[dict[str, dict[str, np.ndarray]], dict, np.ndarray | None]:
    """Read ``deepeyes.npz``: (layer → dict of arrays, meta, snapshot iterations or None).

    Raises
    ------
    InputError
        If the file cannot be read or is not a DeepEyes file.
    """
    arrays, meta = read_result_npz(path, "DeepEyes file", "python -m aomcore deepeyes")
    if not isinstance(meta.get("layers", []), list):
        raise InputError(f"cannot read the DeepEyes file {Path(path).name}", expected="meta['layers'] a list",
                         found=type(meta["layers"]).__name__)
    layers: dict[str, dict[str, np.ndarray]] = {str(name): {} for name in meta.get("layers", [])}
    for key, value in arrays.items():
        name, sep, array = key.rpartition("/")
        if sep and name in layers:
            layers[name][array] = value
    snapshots = arrays.get("snapshots")
    return layers, meta, snapshots
