"""The edit → retrain → compare → undo loop of Garcia et al. 2019 (Fig. 1), as versions.

v0 is the loaded model. Each edit + retrain makes a new :class:`Version` holding the
cumulative edit list, the weights, test accuracy overall and per class, parameters,
FLOPs per image, kernels per layer and the retraining time. The workspace
(:mod:`aomcore.store.workspace`) keeps them and reverts to any of them.

Freezing (which parameters stay fixed while retraining), in forward order of the layers:

========  =====================================================================
upto      the edited layer (with its BatchNorm) and every layer before it — the
          paper's protocol ("we freeze the weights of this layer and retrain the
          model from the second layer onward"); default for ``remove``
before    every layer before the edited one; the edited layer trains (default for
          ``reinit``, ``widen`` and ``insert``, whose new weights must learn)
edited    only the edited layer
none      nothing
========  =====================================================================
"""

from __future__ import annotations

import copy
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..base.data import ImageDataset
from ..base.editing import Edit, apply_edit, kernels_per_layer
from ..base.errors import InputError
from ..base.models import weights_digest
from ..base.training import TrainConfig, evaluate, train

__all__ = ["FREEZE_MODES", "Version", "edit_and_retrain", "export_program", "flops_per_image",
           "frozen_modules", "initial_version", "measure", "preview_edit"]

FREEZE_MODES = ("auto", "upto", "before", "edited", "none")
_LAYER_TYPES = (nn.modules.conv._ConvNd, nn.Linear)


def _forward_order(model: nn.Module, input_shape) -> list[str]:
    """Names of the modules that own parameters, in the order of their first call."""
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if name and any(True for _ in module.parameters(recurse=False)):
            handles.append(module.register_forward_hook(
                lambda _m, _i, _o, name=name: order.append(name) if name not in order else None))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        with torch.inference_mode():
            model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order


def frozen_modules(model: nn.Module, input_shape, layer: str, mode: str) -> list[str]:
    """Module names whose parameters stay fixed when retraining after editing ``layer``.

    Raises
    ------
    InputError
        Unknown mode, or a layer that owns no parameters.
    """
    if mode not in FREEZE_MODES[1:]:
        raise InputError("unknown freeze mode", expected=", ".join(FREEZE_MODES), found=repr(mode))
    order = _forward_order(model, input_shape)
    if layer not in order:
        raise InputError(f"no trainable layer named {layer!r}", expected=f"one of {order[:12]}", found=repr(layer))
    start = order.index(layer)
    end = start + 1
    modules = dict(model.named_modules())
    while end < len(order) and not isinstance(modules[order[end]], _LAYER_TYPES):
        end += 1  # the layer's BatchNorm (and other parameterised non-layers) belong to its span
    return {"upto": order[:end], "before": order[:start], "edited": order[start:end], "none": []}[mode]


def default_freeze(edit: Edit) -> str:
    return "upto" if edit.kind == "remove" else "before"


def flops_per_image(model: nn.Module, input_shape) -> int:
    """FLOPs of one forward pass on one image (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure(model: nn.Module, test_set: ImageDataset, device: str | torch.device = "auto") -> dict:
    """Accuracy (overall, per class), parameters, FLOPs per image and kernels per layer."""
    result = evaluate(model, test_set, device=device)
    return {"accuracy": result.accuracy, "per_class": [float(v) for v in result.per_class],
            "params": sum(p.numel() for p in model.parameters()),
            "flops": flops_per_image(model, test_set.input_shape),
            "kernels": kernels_per_layer(model, test_set.input_shape)}


@dataclass
class Version:
    """One state of the model in the tuning loop.

    Attributes
    ----------
    id, parent : int, int or None
    edits : list of Edit
        Cumulative, from v0 (rebuild with :func:`aomcore.base.editing.build_edited`).
    model : nn.Module
        On the CPU, eval mode; treat as read-only.
    digest : str
        sha256 of the weights.
    metrics : dict
        From :func:`measure`: accuracy, per_class, params, flops, kernels.
    retrain_seconds : float
    note : str
        What this version did, in words.
    curve : list of dict
        The retraining steps (loss, accuracy).
    """

    id: int
    parent: int | None
    edits: list[Edit]
    model: nn.Module
    digest: str
    metrics: dict
    retrain_seconds: float = 0.0
    note: str = ""
    curve: list[dict] = field(default_factory=list, repr=False)

    def row(self) -> dict:
        m = self.metrics
        return {"version": f"v{self.id}", "parent": "" if self.parent is None else f"v{self.parent}",
                "note": self.note, "test accuracy": m["accuracy"], "params": m["params"], "FLOPs": m["flops"],
                "kernels": ", ".join(f"{k}:{v}" for k, v in m["kernels"].items()),
                "retrain s": round(self.retrain_seconds, 1)}


def initial_version(model: nn.Module, test_set: ImageDataset, device="auto", note: str = "loaded model",
                    edits: list[Edit] | None = None) -> Version:
    """The loop's first version: a copy of ``model`` measured on ``test_set``.

    ``edits`` is the edit list ``model`` already carries (from its architecture's spec), so the
    cumulative edit lists of the versions that follow rebuild their models.
    """
    model = copy.deepcopy(model).cpu().eval()
    return Version(id=0, parent=None, edits=list(edits or []), model=model, digest=weights_digest(model),
                   metrics=measure(model, test_set, device), note=note)


def edit_and_retrain(parent: Version, edit: Edit, new_id: int, train_set: ImageDataset, test_set: ImageDataset,
                     freeze: str = "auto", config: TrainConfig | None = None, device: str | torch.device = "auto",
                     progress: Callable[[dict], None] | None = None,
                     cancel: threading.Event | None = None,
                     on_step: Callable[[int, nn.Module], None] | None = None,
                     monitor: Callable[[nn.Module], object] | None = None) -> Version:
    """Apply ``edit`` to ``parent``'s model, retrain, measure; returns the new version.

    ``parent`` is never modified: on a bad edit (:class:`InputError`), a cancel
    (:class:`aomcore.base.training.Cancelled`) or any failure, nothing changes.
    ``config.epochs == 0`` is not allowed; retraining is part of the loop.
    ``monitor(edited_model)``, when given, returns a
    :class:`~aomcore.deepeyes.statistics.TrainingMonitor` for the edited model (see :func:`train`).
    """
    config = config or TrainConfig()
    start = time.perf_counter()
    model, mode, curve = retrain_edited(parent.model, edit, train_set, freeze, config, device, progress=progress,
                                        cancel=cancel, on_step=on_step, monitor=monitor)
    seconds = time.perf_counter() - start
    note = f"{edit.describe()}; retrained {config.epochs} epoch(s), frozen: {mode}"
    return Version(id=new_id, parent=parent.id, edits=[*parent.edits, edit], model=model,
                   digest=weights_digest(model), metrics=measure(model, test_set, device), retrain_seconds=seconds,
                   note=note, curve=curve)


def retrain_edited(model: nn.Module, edit: Edit, train_set: ImageDataset, freeze: str = "auto",
                   config: TrainConfig | None = None, device: str | torch.device = "auto", *,
                   progress: Callable[[dict], None] | None = None, cancel: threading.Event | None = None,
                   on_step: Callable[[int, nn.Module], None] | None = None,
                   monitor: Callable[[nn.Module], object] | None = None) -> tuple[nn.Module, str, list[dict]]:
    """The paper's step 6 (Sec. III): ``edit`` applied to a copy of ``model``, retrained with the
    layers given by ``freeze`` frozen (``"auto"``: :func:`default_freeze`).

    Returns
    -------
    (model, mode, curve)
        The retrained copy (CPU, eval mode), the freezing mode used and the training steps.

    Raises
    ------
    InputError
        The edit cannot apply.
    """
    config = config or TrainConfig()
    shape = train_set.input_shape
    edited = apply_edit(model, edit, shape)
    mode = default_freeze(edit) if freeze == "auto" else freeze
    frozen = set(frozen_modules(edited, shape, edit.layer, mode))
    curve = train(edited, train_set, config, device=device, progress=progress, cancel=cancel, on_step=on_step,
                  monitor=monitor(edited) if monitor is not None else None,
                  trainable=lambda name: name.rpartition(".")[0] not in frozen)
    return edited.cpu().eval(), mode, curve


def preview_edit(model: nn.Module, edit: Edit, input_shape) -> dict:
    """Kernels per layer, parameters and FLOPs per image before and after ``edit`` (no training).

    Raises
    ------
    InputError
        If the edit cannot apply.
    """
    edited = apply_edit(model, edit, input_shape)

    def facts(m):
        return {"params": sum(p.numel() for p in m.parameters()), "flops": flops_per_image(m, input_shape),
                "kernels": kernels_per_layer(m, input_shape)}

    return {"before": facts(model), "after": facts(edited)}


def export_program(model: nn.Module, input_shape) -> bytes:
    """A ``torch.export`` program of the model (eval mode, batch of 1), as ``.pt2`` bytes."""
    model = copy.deepcopy(model).cpu().eval()
    program = torch.export.export(model, (torch.zeros((1, *input_shape)),))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()
