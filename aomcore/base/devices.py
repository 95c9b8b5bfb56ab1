"""Devices: one ``device`` argument everywhere (auto, cpu, cuda, cuda:N, mps) and autocast."""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device", "valid_devices"]


def _autocast(name: str | None, device: torch.device):
    """An autocast context for ``"bf16"``/``"fp16"``, or a no-op for None."""
    import contextlib

    if name is None:
        return contextlib.nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in dtypes:
        raise InputError("unknown autocast dtype", expected="bf16 or fp16", found=repr(name))
    return torch.autocast(device_type=device.type, dtype=dtypes[name])


def valid_devices() -> list[str]:
    """The device names this machine accepts: auto, cpu, cuda and cuda:N per GPU, mps on Apple GPUs."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; any device this machine lacks is an error.

    Raises
    ------
    InputError
        An unknown device name, or one this machine does not have (``cuda`` without a GPU,
        ``cuda:3`` on a one-GPU machine, ``mps`` off Apple silicon), naming the valid ones.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    valid = valid_devices()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps") or \
            (resolved.type != "cpu" and str(resolved) not in valid):
        raise InputError("no such device here", expected=f"--device {' | '.join(valid)}", found=repr(str(device)))
    return resolved
