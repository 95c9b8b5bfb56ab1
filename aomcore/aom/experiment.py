"""The kernel selectivity experiment of Garcia et al. 2019, Sec. V-C (Fig. 8).

For a layer, ``s[k, c]`` is the mean over positions of the CSM ``S[k, c]`` (eq. 3). For
each class c, on the test images of class c:

* **all kernels** — the unedited model;
* **selective kept** — every kernel with ``s[k, c] <= 0`` silenced;
* **selective removed** — every kernel with ``s[k, c] > 0`` silenced.

"Silenced" means the kernel's activation at the module the maps were read at is set to
zero at every position, by a forward hook; the weights are not changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..base.data import ImageDataset
from ..base.devices import resolve_device
from ..base.editing import Edit, apply_edit
from ..base.errors import InputError
from ..base.hooks import forward_hooks
from ..base.layers import LayerInfo, list_layers
from ..base.training import evaluate
from .maps import LayerMaps

__all__ = ["silenced", "silencing_vs_removal", "selectivity_experiment", "summarize_experiment"]


@contextmanager
def silenced(model: nn.Module, module_name: str, kernels: np.ndarray | list[int],
             channel_dim: int = 1) -> Iterator[None]:
    """Zero the outputs of ``kernels`` (indices along ``channel_dim``) of module ``module_name``.

    The hook multiplies the output by a 0/1 mask of shape (1, K, 1, …) — or (1, …, 1, K)
    for ``channel_dim=-1`` (a Linear on a channels-last tensor) — so every position of a
    silenced kernel becomes 0; it is removed on exit.
    """
    kernels = np.asarray(kernels, dtype=np.int64)

    def silence(out: torch.Tensor) -> torch.Tensor:
        dim = channel_dim % out.ndim
        mask = torch.ones(out.shape[dim], dtype=out.dtype, device=out.device)
        if kernels.size:
            mask[torch.as_tensor(kernels, device=out.device)] = 0
        shape = [1] * out.ndim
        shape[dim] = -1
        return out * mask.view(shape)

    with forward_hooks(model, {module_name: silence}):
        yield


#: Outputs closer than this, relative to the largest output, count as one function (float32 sums in
#: another order after the removal differ by about 1e-6).
SAME_FUNCTION_RTOL = 1e-4


def silencing_vs_removal(model: nn.Module, layer: LayerInfo, kernels: np.ndarray | list[int], x: torch.Tensor,
                         input_shape: tuple[int, ...]) -> dict:
    """Whether silencing ``kernels`` of ``layer`` computes the network with them removed.

    Silencing (:func:`silenced`, at the layer's read point) zeroes what the next layers see
    of those kernels; removing them (``Edit("remove", layer, kernels)``, Torch-Pruning) also
    removes every channel coupled to them. The two agree on a chain of conv, BatchNorm and
    activations, and differ where a residual add shares the channels with the shortcut (the
    shortcut's channels go too), where a depthwise conv's BatchNorm turns the zeroed input
    into a constant, or where the next layer normalises a concatenation. Checked here by
    running both on ``x`` rather than by reading the graph, so it holds for any architecture.

    Parameters
    ----------
    model : nn.Module
        Not modified (the removal is applied to a copy); evaluated in eval mode on ``x``'s device.
    layer : LayerInfo
        The layer, as :func:`~aomcore.base.layers.list_layers` gives it for ``model`` (its tap is
        the read point, its ``channel_dim`` the kernels' axis).
    kernels : array-like of int
        The silenced (removed) kernels, a strict subset of the layer's.
    x : torch.Tensor
        float32 (B, *input_shape): real inputs (e.g. the first test batch), on the model's device.
    input_shape : tuple of int
        (C, H, W) of one input.

    Returns
    -------
    dict
        ``{"equal": bool or None, "difference": float or None, "why": str}``: ``difference`` is
        max |silenced − removed| over the logits of ``x`` divided by max |removed| (``equal`` when
        ≤ :data:`SAME_FUNCTION_RTOL`); ``equal`` None when the removal is refused (``why`` says why).
    """
    dropped = [int(i) for i in np.asarray(kernels, dtype=np.int64)]
    try:
        removed = apply_edit(model, Edit("remove", layer.name, dropped), input_shape)
    except InputError as exc:
        return {"equal": None, "difference": None, "why": f"the removal is refused: {exc}"}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            with silenced(model, layer.tap, dropped, layer.channel_dim):
                quiet = model(x).float()
            gone = removed.to(x.device).eval()(x).float()
    finally:
        model.train(was_training)
    difference = float((quiet - gone).abs().max() / gone.abs().max().clamp_min(1e-12))
    equal = difference <= SAME_FUNCTION_RTOL
    why = ("silencing computes the removal" if equal else
           "removing these kernels also removes what is coupled to them (a residual add, a depthwise conv's "
           "BatchNorm, a normalised concatenation), which silencing leaves in place")
    return {"equal": equal, "difference": difference, "why": why}


def _layer_of_maps(model: nn.Module, maps: LayerMaps, test_set: ImageDataset) -> LayerInfo:
    """The layer ``maps`` were counted on, checked against ``model`` and the test split's classes.

    Raises
    ------
    InputError
        If the test classes differ from the maps' classes, or the model has no such layer
        read at the same tap with the same number of kernels.
    """
    if list(test_set.classes) != list(maps.classes):
        raise InputError("the test split's classes differ from the maps' classes",
                         expected=str(maps.classes[:10]), found=str(test_set.classes[:10]))
    info = {la.name: la for la in list_layers(model, test_set.input_shape, include_all=True)}.get(maps.layer)
    if info is None or info.tap != maps.tap or info.kernels != maps.num_kernels:
        found = "no such layer" if info is None else f"{info.kernels} kernels read at {info.tap}"
        raise InputError(f"the maps of {maps.layer} do not belong to this model",
                         expected=f"{maps.num_kernels} kernels read at {maps.tap}", found=found)
    return info


def selectivity_experiment(model: nn.Module, maps: LayerMaps, test_set: ImageDataset, batch_size: int = 512,
                           device: str | torch.device = "auto",
                           progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Per-class accuracy with all kernels, only the selective ones, and without them.

    Parameters
    ----------
    model : nn.Module
        Not modified (a private copy carries the hooks).
    maps : LayerMaps
        Maps of the layer, normally from the train split (as the paper).
    test_set : ImageDataset
        Must have the same classes as the maps.
    progress : callable(done_passes, total_passes), optional
        One pass = one class under one condition.

    Returns
    -------
    list of dict, one per class: ``class``, ``n_selective``, ``n_not_selective``,
    ``n_images``, ``acc_all``, ``acc_selective_kept``, ``acc_selective_removed``
    (accuracies in [0, 1]; NaN for a class with no test images).

    Raises
    ------
    InputError
        If the test classes differ from the maps' classes.
    """
    info = _layer_of_maps(model, maps, test_set)
    device = resolve_device(device)
    model = copy.deepcopy(model).to(device).eval()
    s = maps.class_selectivity  # (K, C)
    labels = test_set.labels.numpy()
    overall = evaluate(model, test_set, batch_size, device)
    rows, total, done = [], 2 * len(maps.classes), 0
    for c, name in enumerate(maps.classes):
        selective = np.flatnonzero(s[:, c] > 0)
        not_selective = np.flatnonzero(s[:, c] <= 0)
        idx = torch.as_tensor(np.flatnonzero(labels == c), dtype=torch.int64)
        row = {"class": name, "n_selective": int(selective.size), "n_not_selective": int(not_selective.size),
               "n_images": int(idx.numel()), "acc_all": float(overall.per_class[c])}
        for key, silence in (("acc_selective_kept", not_selective), ("acc_selective_removed", selective)):
            if idx.numel():
                with silenced(model, maps.tap, silence, info.channel_dim):
                    row[key] = float(evaluate(model, test_set, batch_size, device, indices=idx).per_class[c])
            else:
                row[key] = float("nan")
            done += 1
            if progress is not None:
                progress(done, total)
        rows.append(row)
    return rows


def summarize_experiment(rows: list[dict]) -> str:
    """One sentence reading the result, e.g. "removing the selective kernels costs more accuracy
    than keeping only them for 9 of 10 classes"."""
    valid = [r for r in rows if r["n_images"]]
    worse = sum(r["acc_selective_removed"] < r["acc_selective_kept"] for r in valid)
    drop_removed = np.mean([r["acc_all"] - r["acc_selective_removed"] for r in valid]) if valid else float("nan")
    drop_kept = np.mean([r["acc_all"] - r["acc_selective_kept"] for r in valid]) if valid else float("nan")
    return (f"Removing the selective kernels costs more accuracy than keeping only them for {worse} of "
            f"{len(valid)} classes (mean drop {drop_removed:.1%} when removed vs {drop_kept:.1%} when only "
            f"they are kept).")
