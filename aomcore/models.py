"""Model architectures and weights: the zoo, user architectures, safe weight loading.

An architecture is named by a spec string:

``zoo:paper_mnist``
    Garcia et al. 2019, Fig. 5 (top): conv 3×3×16, ReLU, conv 3×3×16, ReLU, max pool
    2×2, FC 128, ReLU, FC C. Expects 1×28×28 inputs (paper: 96.96% MNIST test accuracy).
``zoo:paper_cifar10``
    Garcia et al. 2019, Fig. 5 (bottom): three groups of (conv, ReLU, conv, ReLU, max
    pool, dropout 0.25), FC 256, ReLU, dropout 0.5, FC C; 64 kernels in every conv layer
    (the paper gives 64 for the 1st and 6th; the others are not stated). 3×32×32 inputs.
``zoo:digits_net``
    A small net for the 8×8 ``digits`` data: conv 3×3×8 (pad 1), ReLU, conv 3×3×16 (pad
    1), ReLU, max pool 2×2, FC 64, ReLU, FC C. Trains in seconds on a CPU.
``torchvision:NAME``
    ``torchvision.models.get_model(NAME, weights=None, num_classes=C)``; no download.
``FILE.py:CLASS``
    A class from a Python file, built with no arguments (or ``num_classes=C`` when its
    ``__init__`` takes it). This runs the file's code: only for files you trust.

Weights are a state_dict in ``.pt`` (read with ``torch.load(weights_only=True)``) or
``.safetensors``. A pickled whole model, or anything that is not a mapping of names to
tensors, is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import io
import os
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .errors import InputError

__all__ = [
    "ZOO",
    "build_model",
    "check_finite",
    "load_state_dict",
    "apply_state_dict",
    "save_state_dict",
    "weights_digest",
]


def paper_mnist(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Sequential:
    """The paper's MNIST architecture (Garcia et al. 2019, Fig. 5 top)."""
    side = (image_size - 4) // 2
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 16, 3)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 16, 3)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * side * side, 128)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(128, num_classes)),
    ]))


def paper_cifar10(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Sequential:
    """The paper's CIFAR-10 architecture (Garcia et al. 2019, Fig. 5 bottom)."""
    layers: list[tuple[str, nn.Module]] = []
    c_in, n = in_channels, 0
    for group in range(1, 4):
        for _ in range(2):
            n += 1
            layers += [(f"conv{n}", nn.Conv2d(c_in, 64, 3, padding=1)), (f"relu{n}", nn.ReLU())]
            c_in = 64
        layers += [(f"pool{group}", nn.MaxPool2d(2)), (f"drop{group}", nn.Dropout(0.25))]
    side = image_size // 8
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(64 * side * side, 256)),
               ("relu7", nn.ReLU()), ("drop4", nn.Dropout(0.5)), ("fc2", nn.Linear(256, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def digits_net(num_classes: int = 10, in_channels: int = 1, image_size: int = 8) -> nn.Sequential:
    """A small CNN for scikit-learn's 8×8 digits."""
    side = image_size // 2
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 8, 3, padding=1)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * side * side, 64)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, num_classes)),
    ]))


ZOO = {"paper_mnist": paper_mnist, "paper_cifar10": paper_cifar10, "digits_net": digits_net}
#: The zoo model that fits each built-in dataset.
ZOO_FOR_DATASET = {"digits": "digits_net", "mnist": "paper_mnist", "fashion-mnist": "paper_mnist",
                   "cifar10": "paper_cifar10"}


def build_model(arch: str, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """Build an untrained model from an architecture spec (see the module docstring).

    Parameters
    ----------
    arch : str
        ``zoo:NAME``, ``torchvision:NAME`` or ``FILE.py:CLASS``.
    num_classes : int
        Size of the output layer.
    input_shape : (C, H, W)
        One input image's shape; zoo models size their FC layer from it.

    Raises
    ------
    InputError
        Unknown zoo or torchvision name, missing file or class, a class that cannot be
        built without arguments.
    """
    kind, sep, name = arch.partition(":")
    if kind == "zoo" and sep:
        if name not in ZOO:
            raise InputError("unknown zoo model", expected=", ".join(f"zoo:{k}" for k in ZOO), found=repr(arch))
        c, h, _ = input_shape
        return ZOO[name](num_classes=num_classes, in_channels=c, image_size=h)
    if kind == "torchvision" and sep:
        import torchvision

        available = torchvision.models.list_models()
        if name not in available:
            raise InputError("unknown torchvision model", expected="a name from torchvision.models.list_models()",
                             found=repr(name))
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    file, sep, cls_name = arch.rpartition(":")
    if sep and file.endswith(".py"):
        return _build_from_file(Path(file), cls_name, num_classes)
    raise InputError("unknown architecture spec", expected="zoo:NAME, torchvision:NAME or FILE.py:CLASS",
                     found=repr(arch))


def _build_from_file(path: Path, cls_name: str, num_classes: int) -> nn.Module:
    if not path.is_file():
        raise InputError("architecture file does not exist", expected="an existing .py file", found=str(path))
    mod_name = f"aomcore_user_arch_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise InputError("architecture file failed to import", expected="a Python file defining an nn.Module",
                         found=f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        found = [k for k, v in vars(module).items() if inspect.isclass(v) and issubclass(v, nn.Module)]
        raise InputError(f"no nn.Module class {cls_name!r} in {path.name}",
                         expected="FILE.py:CLASS naming an nn.Module subclass",
                         found=f"classes {found}")
    takes_classes = "num_classes" in inspect.signature(cls).parameters
    try:
        return cls(num_classes=num_classes) if takes_classes else cls()
    except TypeError as exc:
        raise InputError(f"cannot build {cls_name}", expected="a constructor with no required arguments",
                         found=str(exc)) from None


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------


def load_state_dict(source: str | os.PathLike | bytes, name: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state_dict from a ``.pt``/``.pth`` or ``.safetensors`` file or its bytes.

    ``.pt`` files are read with ``torch.load(..., weights_only=True, map_location="cpu")``
    so no code in the file runs. A checkpoint dict with a ``"state_dict"`` or
    ``"model_state_dict"`` entry is unwrapped.

    Parameters
    ----------
    source : path or bytes
    name : str, optional
        File name (for bytes: decides the format by its suffix, and names it in errors).

    Returns
    -------
    dict of str to torch.Tensor, all on the CPU.

    Raises
    ------
    InputError
        Empty, truncated or unreadable file, a pickle that is not plain weights, or a
        mapping that holds non-tensors.
    """
    if isinstance(source, bytes):
        data, name = source, name or "upload"
    else:
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError("weights file does not exist", expected="an existing file", found=str(path)) from None
    if not data:
        raise InputError("weights file is empty", expected="a state_dict (.pt or .safetensors)",
                         found=f"{name}: 0 bytes")
    if name.endswith(".safetensors"):
        obj = _load_safetensors(data, name)
    else:
        _check_zip_crc(data, name)
        try:
            obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ... all mean "not plain weights"
            first = _torch_load_reason(exc)
            raise InputError("could not read weights", expected="a state_dict saved with torch.save "
                             "(loaded with weights_only=True) or a .safetensors file",
                             found=f"{name}: {first[:300]}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise InputError("weights file holds no state_dict", expected="a mapping of parameter names to tensors",
                         found=f"{name}: {type(obj).__name__}")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError("state_dict holds non-tensors", expected="only tensors",
                         found=f"{len(not_tensors)} entries, e.g. {not_tensors[:3]}")
    return dict(obj)


def _check_zip_crc(data: bytes, name: str) -> None:
    """Refuse a ``torch.save`` zip archive whose members fail their CRC-32 (torch.load does not check)."""
    if not data.startswith(b"PK"):
        return  # the legacy (non-zip) format, or not a checkpoint: torch.load says which
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError):
        return  # an archive torch.load reports better (truncated, not a checkpoint)
    except zlib.error:
        bad = "a compressed member"
    if bad is not None:
        raise InputError("corrupted checkpoint", expected="an intact torch.save archive (every member's CRC-32 "
                         "matching)", found=f"{name}: member {bad} fails its checksum")


def _torch_load_reason(exc: Exception) -> str:
    """A one-line reason from torch.load's (long) error text."""
    text = str(exc)
    if "Unsupported global" in text or "Unsupported class" in text:
        what = text.split("GLOBAL ", 1)[-1].split(" was not", 1)[0].split("\n")[0][:80]
        return f"it holds a Python object ({what}), not only tensors; loading it would run code, so it is refused"
    if "Unsupported operand" in text or "invalid load key" in text or "could not find MARK" in text:
        return "not a PyTorch checkpoint (unrecognised bytes)"
    if any(t in text for t in ("central directory", "EOF", "seek", "truncated", "failed reading zip")):
        return "truncated or corrupted checkpoint (the archive is incomplete)"
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Weights only load failed", "(1)", "(2)", "In PyTorch", "Please file")):
            return line[:200]
    return type(exc).__name__


def _load_safetensors(data: bytes, name: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InputError("could not read safetensors", expected="a valid .safetensors file",
                         found=f"{name}: {exc}") from None


def check_finite(state_dict: dict[str, torch.Tensor]) -> None:
    """Raise :class:`InputError` naming every floating tensor that holds NaN or Inf."""
    bad = [f"{k} ({int((~torch.isfinite(v)).sum())} values)" for k, v in state_dict.items()
           if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError("weights contain NaN or Inf", expected="finite weights", found="; ".join(bad[:5]))


def apply_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Load ``state_dict`` into ``model`` strictly, after checking names and shapes.

    Raises
    ------
    InputError
        Listing the missing, unexpected and mis-shaped keys when the weights do not fit
        the architecture; or naming tensors with NaN/Inf.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
                 for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    wrong_type = [f"{k} ({state_dict[k].dtype})" for k in own
                  if k in state_dict and own[k].is_floating_point() and not state_dict[k].is_floating_point()]
    if wrong_type:
        raise InputError("the weights are not floating-point numbers", expected="float tensors where the model has "
                         "float parameters (bool/int/complex would be cast silently)",
                         found=", ".join(wrong_type[:5]) + (f" and {len(wrong_type) - 5} more" if len(wrong_type) > 5
                                                            else ""))
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("mis-shaped (file vs model)", misshaped)):
            if keys:
                more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
                parts.append(f"{label}: {', '.join(keys[:8])}{more}")
        raise InputError("the weights do not fit the architecture", expected="the architecture's own keys and shapes",
                         found="; ".join(parts))
    check_finite(state_dict)
    model.load_state_dict(state_dict, strict=True)
    return model


def save_state_dict(model_or_sd: nn.Module | dict, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write a state_dict with safetensors or ``torch.save``.

    ``fmt`` is ``"safetensors"`` or ``"pt"``; by default the suffix decides
    (``.safetensors`` → safetensors, anything else → ``torch.save``).
    """
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else model_or_sd
    sd = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if (fmt or ("safetensors" if path.suffix == ".safetensors" else "pt")) == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return path


def weights_digest(model_or_sd: nn.Module | dict) -> str:
    """sha256 (hex) over every state_dict entry's name, dtype, shape and bytes.

    Two models share a digest only when their weights (and buffers) are identical.
    """
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else model_or_sd
    h = hashlib.sha256()
    for k in sorted(sd):
        v = sd[k].detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()
