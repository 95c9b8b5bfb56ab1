"""A layer's activations for a fixed sample of images: the input of every projection view.

* :func:`stratified_sample` — the fixed, seeded, class-stratified sample every view embeds.
* :func:`activation_vectors` — one vector per sampled image from one layer, streamed in
  batches (memory: the (N, D) result plus one batch).

Which activation is read: the layer's default *tap* (:func:`aomcore.base.layers.list_layers`) —
the output of the conv/FC layer after the BatchNorm/activation modules that directly follow
it, i.e. the activation the next layer sees, taken as is (no extra clamping).

Every model is evaluated on a private copy (eval mode, ``torch.inference_mode``), so hooks
and mode changes never reach a model others share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .data import ImageDataset
from .devices import resolve_device
from .embedding import _check_cancel, _Event
from .errors import InputError
from .hooks import forward_hooks
from .layers import LayerInfo, list_layers, resolve_layers

__all__ = ["VECTOR_MODES", "activation_vectors", "stratified_sample"]


VECTOR_MODES = ("flatten", "mean")


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
        A layer of :func:`aomcore.base.layers.list_layers`; read at its tap (the activation the
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
