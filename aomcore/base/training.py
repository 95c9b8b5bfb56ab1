"""Training and evaluation of classifiers on an :class:`~aomcore.base.data.ImageDataset`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageDataset
from .devices import resolve_device
from .errors import Cancelled, InputError
from .layers import _describe_output, forward_errors

__all__ = ["Cancelled", "Evaluation", "TrainConfig", "check_model_fits", "default_train_config", "evaluate",
           "train"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Parameters
    ----------
    epochs : int, default 1
    lr : float, default 1e-3
    batch_size : int, default 128
    optimizer : {"adam", "sgd", "adamw"}, default "adam"
    seed : int, default 0
        Seeds parameter init order effects and the shuffling.
    """

    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    optimizer: str = "adam"
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in _OPTIMIZERS:
            raise InputError("unknown optimizer", expected=", ".join(_OPTIMIZERS), found=repr(self.optimizer))
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.epochs, self.batch_size))
        if not ints or self.epochs < 1 or self.batch_size < 1 or not 0 < self.lr < float("inf"):
            raise InputError("epochs, batch size and learning rate must be positive",
                             expected="epochs >= 1, batch_size >= 1, lr > 0",
                             found=f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")


def default_train_config(dataset: str) -> TrainConfig:
    """The training recipe for a zoo model on a built-in dataset.

    One epoch of Adam (lr 1e-3, batch 128) as in the paper, except for the 1,347-image
    ``digits`` split, which needs 30 epochs (batch 64, lr 3e-3) to pass 95% test accuracy.
    """
    if dataset == "digits":
        return TrainConfig(epochs=30, lr=3e-3, batch_size=64)
    return TrainConfig()


@dataclass
class Evaluation:
    """Test accuracy overall and per class.

    Attributes
    ----------
    accuracy : float
        Fraction of correct predictions, in [0, 1].
    per_class : ndarray, (C,) float64
        Accuracy on the images of each class (NaN for a class with no images).
    class_sizes : ndarray, (C,) int64
    """

    accuracy: float
    per_class: np.ndarray
    class_sizes: np.ndarray = field(repr=False)


def _check_output(logits: torch.Tensor, num_classes: int) -> None:
    if not isinstance(logits, torch.Tensor):
        raise InputError("the model's forward must return one tensor of logits",
                         expected=f"a tensor (batch, {num_classes})", found=_describe_output(logits))
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise InputError("the model's output does not match the classes",
                         expected=f"(batch, {num_classes}) logits for {num_classes} classes",
                         found=f"output of shape {tuple(logits.shape)}")


def check_model_fits(model: nn.Module, dataset: ImageDataset) -> None:
    """Run two of the dataset's images through ``model`` (eval, inference mode).

    Raises
    ------
    InputError
        If the model cannot take the images (size, channels) or its output is not
        (batch, number of classes).
    """
    x, _ = next(dataset.batches(2))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), forward_errors(model, "the model cannot take this dataset's images",
                                                    f"a model accepting inputs of shape {dataset.input_shape}"):
            logits = model(x.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
    _check_output(logits, dataset.num_classes)
    if not torch.isfinite(logits).all():
        raise InputError("the model's output holds NaN or Inf", expected="finite logits",
                         found=f"{int((~torch.isfinite(logits)).sum())} non-finite values on 2 images")


def evaluate(model: nn.Module, dataset: ImageDataset, batch_size: int = 512,
             device: str | torch.device = "auto", indices: torch.Tensor | None = None) -> Evaluation:
    """Accuracy of ``model`` on ``dataset`` (argmax of the logits), overall and per class.

    The model is evaluated in eval mode under inference mode; its mode is restored.
    """
    device = resolve_device(device)
    c = dataset.num_classes
    correct = torch.zeros(c, dtype=torch.int64, device=device)
    seen = torch.zeros(c, dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for x, y in dataset.batches(batch_size, device, indices):
                logits = model(x)
                _check_output(logits, c)
                seen += torch.bincount(y, minlength=c)
                correct += torch.bincount(y[logits.argmax(1) == y], minlength=c)
    finally:
        model.train(was_training)
    seen_np, correct_np = seen.cpu().numpy(), correct.cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(seen_np > 0, correct_np / np.maximum(seen_np, 1), np.nan)
    return Evaluation(accuracy=float(correct_np.sum() / max(seen_np.sum(), 1)), per_class=per_class,
                      class_sizes=seen_np)


def train(model: nn.Module, dataset: ImageDataset, config: TrainConfig = TrainConfig(),
          device: str | torch.device = "auto", trainable: Callable[[str], bool] | None = None,
          progress: Callable[[dict], None] | None = None,
          cancel: threading.Event | None = None, monitor=None,
          on_step: Callable[[int, nn.Module], None] | None = None) -> list[dict]:
    """Train ``model`` in place with cross-entropy; returns the per-step metrics.

    Parameters
    ----------
    model : nn.Module
        Trained on ``device`` and moved back to its original device at the end.
    dataset : ImageDataset
        The training split.
    config : TrainConfig
    trainable : callable(parameter_name) -> bool, optional
        Which parameters to update (the others are frozen: no gradient, and BatchNorm
        statistics of modules whose parameters are all frozen stay fixed). Default: all.
    progress : callable(dict), optional
        Called every step with ``{"epoch", "step", "steps", "loss", "accuracy", "seconds"}``.
    cancel : threading.Event, optional
        Anything with ``is_set()``. When set, training stops at the next step, the
        model's weights are restored to what they were, and :class:`Cancelled` is raised.
    monitor : aomcore.deepeyes.statistics.TrainingMonitor, optional
        Built on this ``model``: entered for the whole training (its hooks are removed
        at the end, also on an exception) and given each mini-batch's labels before the
        forward, so it gathers DeepEyes statistics from the training batches themselves
        (no extra forward pass). Read it with ``monitor.snapshot()``, e.g. from
        ``on_step``. Without it, training is unchanged.
    on_step : callable(step, model), optional
        Called with step 0 before the first update and after every update (e.g. to keep
        snapshots of a run, :class:`aomcore.store.runs.RunWriter`). The model is on ``device``
        in train mode; the callback must not change it.

    Raises
    ------
    Cancelled, InputError
        On cancel, if the model's output does not match the classes, or if training
        diverged (a non-finite loss, or NaN/Inf weights at the end: "training diverged").
        In every case (and on any other exception) the weights are restored.
    """
    device = resolve_device(device)
    original_device = next(model.parameters()).device
    backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(config.seed)
    names = [n for n, _ in model.named_parameters()]
    train_names = {n for n in names if trainable is None or trainable(n)}
    if not train_names:
        raise InputError("nothing to train", expected="at least one trainable parameter", found="all frozen")
    if monitor is not None and monitor.model is not model:
        raise InputError("the monitor watches another model", expected="TrainingMonitor(model, ...) of this model",
                         found="a monitor built on a different module")
    was_training = model.training
    requires = {n: p.requires_grad for n, p in model.named_parameters()}
    history: list[dict] = []
    watching = monitor if monitor is not None else contextlib.nullcontext()
    try:
        model.to(device).train()
        frozen_modules = []
        for mod_name, module in model.named_modules():
            own = [f"{mod_name}.{n}" if mod_name else n for n, _ in module.named_parameters(recurse=False)]
            if own and not any(n in train_names for n in own):
                frozen_modules.append(module)
        for n, p in model.named_parameters():
            p.requires_grad_(n in train_names)
        params = [p for n, p in model.named_parameters() if n in train_names]
        opt_kwargs = {"lr": config.lr} | ({"momentum": 0.9} if config.optimizer == "sgd" else {})
        optimizer = _OPTIMIZERS[config.optimizer](params, **opt_kwargs)
        steps = config.epochs * -(-len(dataset) // config.batch_size)
        step, start = 0, time.perf_counter()
        with watching:
            if on_step is not None:
                on_step(0, model)
            for epoch in range(config.epochs):
                order = torch.randperm(len(dataset), generator=generator)
                for x, y in dataset.batches(config.batch_size, device, order):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("training cancelled")
                    for module in frozen_modules:  # keep frozen BatchNorm statistics fixed
                        module.eval()
                    if monitor is not None:
                        monitor.set_labels(y)
                    logits = model(x)
                    _check_output(logits, dataset.num_classes)
                    loss = F.cross_entropy(logits, y)
                    if not torch.isfinite(loss):
                        raise InputError("training diverged", expected="a finite loss (try a smaller learning rate)",
                                         found=f"loss {float(loss.detach())} at epoch {epoch + 1}, step {step + 1} "
                                               f"(lr={config.lr:g})")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    metrics = {"epoch": epoch + 1, "step": step, "steps": steps, "loss": float(loss.detach()),
                               "accuracy": float((logits.detach().argmax(1) == y).float().mean()),
                               "seconds": time.perf_counter() - start}
                    history.append(metrics)
                    if progress is not None:
                        progress(metrics)
                    if on_step is not None:
                        on_step(step, model)
        bad = [n for n, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:  # the last step's update can overflow after a finite loss
            raise InputError("training diverged", expected="finite weights (try a smaller learning rate)",
                             found=f"NaN/Inf in {', '.join(bad[:3])} after {step} steps (lr={config.lr:g})")
    except BaseException:
        model.load_state_dict(backup)
        raise
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(requires[n])
        model.to(original_device)
        model.train(was_training)
    return history
