"""A model with what identifies it: loading weights into an architecture, and trained zoo weights."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .cache import DiskCache
from .data import ImageDataset
from .editing import build_traced
from .errors import InputError
from .lineage import Lineage
from .models import (
    apply_state_dict,
    build_model,
    load_checkpoint,
    load_state_dict,
    match_state_dict,
    save_state_dict,
    weights_digest,
)
from .training import TrainConfig, train

__all__ = ["LoadedModel", "load_model", "pretrained_zoo_model"]


@dataclass
class LoadedModel:
    """A model with what identifies it.

    Attributes
    ----------
    arch : str
        Architecture spec (``zoo:NAME``, ``torchvision:NAME``, ``FILE.py:CLASS``).
    model : nn.Module
        On the CPU, in eval mode.
    digest : str
        sha256 of its weights (:func:`~aomcore.base.models.weights_digest`).
    source : str
        Where the weights came from (file name, "trained here: …").
    edits : list of Edit
        Edits applied to ``arch`` before the weights were loaded (empty: none).
    note : str
        How the weights file was read, when it needed unwrapping (e.g. "unwrapped the
        checkpoint's 'state_dict' entry; stripped the 'module.' prefix"); empty otherwise.
    lineage : Lineage or None
        Each kernel's identity in ``arch`` before the edits (:mod:`~aomcore.base.lineage`);
        None when unknown or unedited (kernel i is then ``k{i}``).
    """

    arch: str
    model: nn.Module
    digest: str
    source: str
    edits: list = field(default_factory=list)
    note: str = ""
    lineage: Lineage | None = None

    def key_parts(self) -> dict:
        """What identifies the computation a model does beyond its weights (for cache keys).

        The architecture spec (and, for ``FILE.py:CLASS``, the file's sha256: the same
        weights in other code compute other things), the edits, and a digest of the
        module tree (activation types and layer options are not in the state_dict).
        """
        return {"arch": self.arch, "edits": [e.to_dict() if hasattr(e, "to_dict") else e for e in self.edits],
                "structure": _structure_digest(self.model)}

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_model(arch: str, weights, num_classes: int, input_shape: tuple[int, int, int],
               weights_name: str | None = None, edits: list | None = None) -> LoadedModel:
    """Build ``arch`` (with ``edits`` applied, if any) and load weights from a path or bytes.

    ``edits`` (a list of :class:`aomcore.base.editing.Edit`) rebuilds an edited architecture, so
    weights saved from an edited version load back (see :mod:`aomcore.base.models`).

    A training checkpoint is unwrapped (``{"state_dict": ...}``, ``{"model": ...}``, a
    ``module.``/``model.`` prefix); ``note`` (and ``source``, in brackets) says which.

    Raises
    ------
    InputError
        Unknown architecture, unreadable weights, weights that do not fit (missing,
        unexpected and mis-shaped keys listed), NaN/Inf in the weights.
    """
    if edits:
        model, lineage = build_traced(arch, num_classes, input_shape, edits)
    else:
        model, lineage = build_model(arch, num_classes, input_shape), None
    state_dict, notes = load_checkpoint(weights, name=weights_name)
    state_dict, renamed = match_state_dict(model, state_dict)
    notes += [renamed] if renamed else []
    apply_state_dict(model, state_dict)
    model.eval()
    name = weights_name or str(weights)
    note = "; ".join(notes)
    return LoadedModel(arch=arch, model=model, digest=weights_digest(model),
                       source=name + (f" ({note})" if note else ""), edits=list(edits or []), note=note,
                       lineage=lineage)


def pretrained_zoo_model(arch: str, train_set: ImageDataset, config: TrainConfig | None = None,
                         device: str | torch.device = "auto", cache: DiskCache | None = None,
                         progress: Callable[[dict], None] | None = None,
                         cancel: threading.Event | None = None) -> LoadedModel:
    """A zoo model trained on ``train_set``, from the disk cache when trained before.

    The cache key holds the architecture, the dataset's identity and the training config,
    so a restart reuses the weights instead of retraining.
    """
    cache = cache or DiskCache()
    config = config or TrainConfig()
    key = DiskCache.key(arch=arch, dataset=train_set.identity(), config=config.__dict__, seed=config.seed)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the process's RNG (shared servers)
        torch.manual_seed(config.seed)
        model = build_model(arch, train_set.num_classes, train_set.input_shape)
    source = f"trained here: {config.epochs} epoch(s) on {train_set.name} {train_set.split}"
    path = cache.lookup("models", key, ".safetensors")
    if path is not None:
        try:
            apply_state_dict(model, load_state_dict(path))
            model.eval()
            return LoadedModel(arch=arch, model=model, digest=weights_digest(model), source=source + " (cached)")
        except InputError:
            path.unlink(missing_ok=True)
    train(model, train_set, config, device=device, progress=progress, cancel=cancel)
    model.eval()
    cache.commit("models", key, ".safetensors", lambda tmp: save_state_dict(model, tmp, fmt="safetensors"))
    return LoadedModel(arch=arch, model=model, digest=weights_digest(model), source=source)


#: Bumped when the conversion of raw images into model inputs changes, so results cached
#: from the old inputs are not served: "torchvision" = bit-identical to ToTensor/Normalize
#: (before it, uint8 was multiplied by 1/255, a last-bit difference for ~13% of pixels).
INPUTS_VERSION = "torchvision"


def _structure_digest(model: nn.Module) -> str:
    return hashlib.sha256(repr(model).encode()).hexdigest()


def arch_identity(arch: str | None) -> dict:
    """The spec, and for ``FILE.py:CLASS`` the file's content digest (edited code = another model)."""
    if arch is None:
        return {}
    file, sep, _ = arch.rpartition(":")
    identity = {"arch": arch}
    if sep and file.endswith(".py"):
        try:
            identity["arch_file"] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        except OSError:
            identity["arch_file"] = None
    return identity
