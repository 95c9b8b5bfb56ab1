"""How much reduced precision changes the occurrences (the sign test of eq. 1)."""

from __future__ import annotations

import copy

import torch

from ..base.data import ImageDataset
from ..base.devices import _autocast, resolve_device
from ..base.hooks import forward_hooks
from ..base.layers import list_layers, resolve_layers

__all__ = ["occurrence_flips"]


def occurrence_flips(model, dataset: ImageDataset, layers: list[str] | None = None, autocast: str = "bf16",
                     threshold: float = 0.0, batch_size: int = 256, device="auto", limit: int | None = 5000) -> dict:
    """Fraction of (image, kernel, position) occurrences that differ from float32 under ``autocast``.

    Each batch runs twice, in float32 and under autocast; for every layer the test
    ``a > threshold`` is compared element by element.

    Returns
    -------
    dict of layer name to {"flipped": int, "total": int, "fraction": float}.
    """
    device = resolve_device(device)
    model = copy.deepcopy(model).to(device).eval()
    chosen = resolve_layers(list_layers(model, dataset.input_shape, device, include_all=True), layers)
    seen: dict[str, torch.Tensor] = {}
    stats = {la.name: {"flipped": 0, "total": 0} for la in chosen}

    def keep(tap):
        def hook(out):
            seen[tap] = (out > threshold)
        return hook

    indices = torch.arange(min(len(dataset), limit or len(dataset)))
    with forward_hooks(model, {la.tap: keep(la.tap) for la in chosen}), torch.inference_mode():
        for x, _ in dataset.batches(batch_size, device, indices):
            model(x)
            reference = dict(seen)
            with _autocast(autocast, device):
                model(x)
            for la in chosen:
                stats[la.name]["flipped"] += int((reference[la.tap] != seen[la.tap]).sum())
                stats[la.name]["total"] += reference[la.tap].numel()
    return {name: v | {"fraction": v["flipped"] / max(1, v["total"])} for name, v in stats.items()}
