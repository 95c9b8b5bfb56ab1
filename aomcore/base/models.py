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
``zoo:deepeyes_mnist``
    DeepEyes' MNIST network (Pezzotti et al. 2018): conv 5×5×20, ReLU, max pool 2, conv
    5×5×50, ReLU, max pool 2, FC 500, ReLU, FC C. 1×28×28 inputs (DeepEyes: 98.2%).
``zoo:resnet8``
    A small ResNet (He et al. 2016, the CIFAR variant): conv 3×3×16 + BN + ReLU, then three
    stages of one torchvision ``BasicBlock`` each (16, 32, 64 kernels; stride 1, 2, 2, a
    1×1 conv + BN shortcut where the shape changes), global average pool, FC C. Any input
    size; module names as in torchvision's ResNets (``layer2.0.conv1``, ``layer2.0`` ...).
``torchvision:NAME`` or ``torchvision:NAME(option=value, ...)``
    ``torchvision.models.get_model(NAME, weights=None, num_classes=C, **options)``; the
    options are Python literals (read with ``ast.literal_eval``, never ``eval``), e.g.
    ``torchvision:googlenet(aux_logits=False)``. Never a download: builders that default to
    a pretrained backbone (detection, segmentation) get ``weights_backbone=None``, and a
    ``weights``/``pretrained`` option is refused.
``FILE.py:CLASS``
    A class from a Python file, built with no arguments (or ``num_classes=C`` when its
    ``__init__`` takes it). This runs the file's code: only for files you trust.

Weights are a state_dict in ``.pt`` (read with ``torch.load(weights_only=True)``) or
``.safetensors``. Training checkpoints are unwrapped (a ``state_dict``, ``model``, ...
entry; a ``module.``/``model.`` prefix on every key) and :class:`~aomcore.aom.results.LoadedModel`
notes which. A pickled whole model, or anything that is not a mapping of names to dense,
non-quantized tensors, is refused.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import io
import os
import sys
import warnings
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path
from .errors import InputError
from .files import read_regular_file
from .policy import current_policy

__all__ = [
    "ZOO",
    "build_model",
    "check_finite",
    "load_checkpoint",
    "load_state_dict",
    "apply_state_dict",
    "match_state_dict",
    "save_state_dict",
    "weights_digest",
]


def _pair(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``image_size`` as (height, width): zoo models take square ``N`` or non-square ``(H, W)`` images."""
    return (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))


def paper_mnist(num_classes: int = 10, in_channels: int = 1, image_size: int | tuple[int, int] = 28) -> nn.Sequential:
    """The paper's MNIST architecture (Garcia et al. 2019, Fig. 5 top)."""
    h, w = ((s - 4) // 2 for s in _pair(image_size))
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 16, 3)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 16, 3)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * h * w, 128)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(128, num_classes)),
    ]))


def paper_cifar10(num_classes: int = 10, in_channels: int = 3,
                  image_size: int | tuple[int, int] = 32) -> nn.Sequential:
    """The paper's CIFAR-10 architecture (Garcia et al. 2019, Fig. 5 bottom)."""
    layers: list[tuple[str, nn.Module]] = []
    c_in, n = in_channels, 0
    for group in range(1, 4):
        for _ in range(2):
            n += 1
            layers += [(f"conv{n}", nn.Conv2d(c_in, 64, 3, padding=1)), (f"relu{n}", nn.ReLU())]
            c_in = 64
        layers += [(f"pool{group}", nn.MaxPool2d(2)), (f"drop{group}", nn.Dropout(0.25))]
    h, w = (s // 8 for s in _pair(image_size))
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(64 * h * w, 256)),
               ("relu7", nn.ReLU()), ("drop4", nn.Dropout(0.5)), ("fc2", nn.Linear(256, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def deepeyes_mnist(num_classes: int = 10, in_channels: int = 1,
                   image_size: int | tuple[int, int] = 28) -> nn.Sequential:
    """DeepEyes' MNIST network (Pezzotti et al. 2018, the MNIST use case; LeNet-style).

    conv 5×5 ×20 → max pool 2 → conv 5×5 ×50 → max pool 2 → FC 500 → FC classes, ReLU after
    conv1, conv2 and fc1. The layers are read at their taps: ``conv1``/``conv2`` after
    their ReLU (before the pool), ``fc1`` after its ReLU, ``fc2`` the logits.
    """
    h, w = (((s - 4) // 2 - 4) // 2 for s in _pair(image_size))
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 20, 5)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(20, 50, 5)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(50 * h * w, 500)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(500, num_classes)),
    ]))


def digits_net(num_classes: int = 10, in_channels: int = 1, image_size: int | tuple[int, int] = 8) -> nn.Sequential:
    """A small CNN for scikit-learn's 8×8 digits."""
    h, w = (s // 2 for s in _pair(image_size))
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 8, 3, padding=1)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * h * w, 64)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, num_classes)),
    ]))


class ResNet8(nn.Module):
    """The small ResNet ``zoo:resnet8``: (N, C_in, H, W) → (N, num_classes) logits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        stages, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            down = None if stride == 1 and c_in == c_out else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, stride, down)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet8(num_classes: int = 10, in_channels: int = 3, image_size: int | tuple[int, int] = 32) -> nn.Module:
    """``zoo:resnet8`` (any ``image_size``: the pool is global)."""
    return ResNet8(num_classes, in_channels)


ZOO = {"paper_mnist": paper_mnist, "paper_cifar10": paper_cifar10, "digits_net": digits_net,
       "deepeyes_mnist": deepeyes_mnist, "resnet8": resnet8}
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
        built without arguments; in shared mode, an architecture file not on the allow-list.
    """
    kind, sep, name = arch.partition(":")
    if kind == "zoo" and sep:
        if name not in ZOO:
            raise InputError("unknown zoo model", expected=", ".join(f"zoo:{k}" for k in ZOO), found=repr(arch))
        c, h, w = input_shape
        size = h if h == w else (h, w)
        return _sized_build(lambda: ZOO[name](num_classes=num_classes, in_channels=c, image_size=size), arch)
    if kind == "torchvision" and sep:
        return _build_torchvision(name, num_classes)
    file, sep, cls_name = arch.rpartition(":")
    if sep and file.endswith(".py"):
        current_policy().check_architecture(arch)  # every way to build a model passes here
        return _build_from_file(Path(file), cls_name, num_classes)
    raise InputError("unknown architecture spec", expected="zoo:NAME, torchvision:NAME or FILE.py:CLASS",
                     found=repr(arch))


def _parse_builder(text: str) -> tuple[str, dict]:
    """``NAME`` or ``NAME(key=literal, ...)`` → (NAME, options); literals only (ast.literal_eval, never eval)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    if isinstance(tree, ast.Name):
        return tree.id, {}
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and not tree.args
            and all(k.arg is not None for k in tree.keywords)):
        raise InputError("bad torchvision architecture spec", expected="torchvision:NAME or "
                         "torchvision:NAME(option=value, ...) with literal values, e.g. googlenet(aux_logits=False)",
                         found=repr(text))
    options = {}
    for keyword in tree.keywords:
        try:
            options[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise InputError(f"option {keyword.arg!r} of {tree.func.id} is not a literal",
                             expected="a number, string, bool, None, tuple or list", found=ast.unparse(keyword.value)
                             [:80]) from None
    return tree.func.id, options


def _build_torchvision(spec: str, num_classes: int) -> nn.Module:
    """A torchvision model with random weights: never a download, not even a backbone's."""
    import torchvision

    name, options = _parse_builder(spec)
    if name not in torchvision.models.list_models():
        raise InputError("unknown torchvision model", expected="a name from torchvision.models.list_models()",
                         found=repr(name))
    task = torchvision.models.get_model_builder(name).__module__.split(".")[2]  # resnet, detection, optical_flow
    if task in ("optical_flow", "video"):  # inputs are image pairs or clips, outputs are not class scores
        raise InputError(f"torchvision:{name} is not an image classifier", expected="a model over single images "
                         "(torchvision.models.list_models(module=torchvision.models), e.g. resnet18)",
                         found=f"{name} ({task.replace('_', ' ')})")
    params = inspect.signature(torchvision.models.get_model_builder(name)).parameters
    for key in ("weights", "weights_backbone", "pretrained", "pretrained_backbone"):
        if options.get(key) not in (None, False):
            raise InputError(f"torchvision:{name} would download weights", expected=f"no {key} option (AOMscope "
                             "builds architectures with random weights; load yours with --weights)",
                             found=f"{key}={options[key]!r}")
    if "num_classes" in options:
        raise InputError("num_classes comes from the dataset", expected="no num_classes option",
                         found=f"num_classes={options['num_classes']!r}")
    options = {k: v for k, v in options.items() if k not in ("weights", "weights_backbone", "pretrained",
                                                              "pretrained_backbone")}
    if "weights_backbone" in params:  # detection/segmentation builders default to an ImageNet backbone
        options["weights_backbone"] = None
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return _sized_build(lambda: torchvision.models.get_model(name, weights=None, num_classes=num_classes,
                                                                     **options), f"torchvision:{name}")
    except InputError:
        raise
    except (TypeError, ValueError, AssertionError) as exc:
        known = [p for p in params if p not in ("weights", "progress", "kwargs")]
        raise InputError(f"cannot build torchvision:{spec}", expected="options the builder takes"
                         + ("" if takes_any else f" ({', '.join(known)})"),
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


def _sized_build(build, what: str) -> nn.Module:
    """``build()``, after building it once on the meta device to refuse a model too large to allocate.

    The meta build allocates no memory; a builder that cannot run on meta is simply built
    (its own error, if any, is the one reported).
    """
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = build()
    except InputError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - the real build below reports the builder's own error (sys.exit() too)
        probe = None
    if isinstance(probe, nn.Module):
        tensors = [*probe.parameters(), *probe.buffers()]
        current_policy().check_allocation(sum(t.numel() * t.element_size() for t in tensors),
                                          f"{what} ({sum(t.numel() for t in tensors):,} values)",
                                          "an architecture that fits in memory")
    return build()


def architecture_classes(source: str | bytes) -> list[str]:
    """The classes a Python architecture file defines at its top level, read without running it.

    Parameters
    ----------
    source : str or bytes
        The file's text (bytes are decoded as UTF-8).

    Returns
    -------
    list of str
        Class names, those with a base whose name ends in ``Module`` (``nn.Module``,
        ``torch.nn.Module``) first, each group in file order. The file is parsed
        (:mod:`ast`), never imported: naming its classes runs none of its code.

    Raises
    ------
    InputError
        Not UTF-8, not valid Python, or no class at the top level.
    """
    try:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        tree = ast.parse(text)
    except (UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise InputError("not a Python file", expected="UTF-8 Python source defining an nn.Module class",
                         found=f"{type(exc).__name__}: {exc}") from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if not classes:
        raise InputError("no class in the architecture file", expected="a top-level class deriving from nn.Module",
                         found="no class definitions")

    def module_like(node: ast.ClassDef) -> bool:
        return any(ast.unparse(base).endswith("Module") for base in node.bases)

    return [c.name for c in classes if module_like(c)] + [c.name for c in classes if not module_like(c)]


def _build_from_file(path: Path, cls_name: str, num_classes: int) -> nn.Module:
    if not path.is_file():
        raise InputError("architecture file does not exist", expected="an existing .py file", found=str(path))
    mod_name = f"aomcore_user_arch_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        sys.modules.pop(mod_name, None)
        raise
    except BaseException as exc:  # noqa: BLE001 - the file's own code, sys.exit() included, is an input error
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
        return _sized_build(lambda: cls(num_classes=num_classes) if takes_classes else cls(), cls_name)
    except InputError:
        raise
    except TypeError as exc:
        raise InputError(f"cannot build {cls_name}", expected="a constructor with no required arguments",
                         found=str(exc)) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's own code failed (even by sys.exit()): one line
        raise InputError(f"{cls_name}.__init__ raised an exception", expected="an architecture that builds",
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------


def load_state_dict(source: str | os.PathLike | bytes, name: str | None = None) -> dict[str, torch.Tensor]:
    """The state_dict of :func:`load_checkpoint`, without its notes."""
    return load_checkpoint(source, name)[0]


def load_checkpoint(source: str | os.PathLike | bytes,
                    name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read a state_dict from a ``.pt``/``.pth`` or ``.safetensors`` file or its bytes.

    ``.pt`` files are read with ``torch.load(..., weights_only=True, map_location="cpu")``
    so no code in the file runs, after checking the archive's CRC-32s. A checkpoint dict
    with a ``"state_dict"``, ``"model_state_dict"``, ``"model"``, ``"net"``, ``"module"``
    or ``"network"`` entry is unwrapped (repeatedly).

    Parameters
    ----------
    source : path or bytes
    name : str, optional
        File name (for bytes: decides the format by its suffix, and names it in errors).

    Returns
    -------
    (state_dict, notes) : dict of str to torch.Tensor (all on the CPU), and list of str
        saying which wrapper entries were unwrapped (empty for a plain state_dict).

    Raises
    ------
    InputError
        A path that is not a regular file (a folder, FIFO, device or socket: refused without
        blocking), a file too large to hold in memory twice (checked before reading), an
        empty, truncated, corrupted (CRC) or unreadable file, a pickle that is not plain
        weights, non-string keys, entries that are not dense tensors with data (sparse,
        meta, quantized, non-tensors), or of a dtype the analyses cannot compute with
        (float8, uint16/32/64, ...: named in the message).
    """
    if isinstance(source, bytes):
        data, name = source, name or "upload"
    else:
        path = Path(source)
        name = name or path.name
        # a regular file that fits in memory twice over (its bytes and the tensors decoded from them)
        data = read_regular_file(path, "weights file", "a state_dict (.pt or .safetensors)", copies=2)
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
    return _unwrap_checkpoint(obj, name)


#: Checkpoint entries that hold the model's state_dict (training scripts, Lightning, timm, ...).
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "network")


#: dtypes a state_dict entry may have: float weights, and the int/bool/complex buffers models keep
#: (BatchNorm's num_batches_tracked, masks). float8, the new unsigned ints and bit types have
#: no arithmetic on the CPU (``isfinite``, matmul), so they are refused by name.
_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
                     torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})


def _unwrap_checkpoint(obj, name: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state_dict inside ``obj`` and notes saying how it was found; validates every entry."""
    notes: list[str] = []
    while isinstance(obj, dict) and not (obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        key = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None:
            break
        notes.append(f"unwrapped the checkpoint's {key!r} entry")
        obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise InputError("weights file holds no state_dict", expected="a mapping of parameter names to tensors",
                         found=f"{name}: {type(obj).__name__}" + (" (empty)" if isinstance(obj, dict) else ""))
    bad_keys = [k for k in obj if not isinstance(k, str)]
    if bad_keys:
        raise InputError("state_dict keys must be parameter names", expected="string keys such as 'conv1.weight'",
                         found=f"{len(bad_keys)} keys of type {type(bad_keys[0]).__name__}, e.g. {bad_keys[0]!r}")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError("state_dict holds non-tensors", expected="only tensors",
                         found=f"{len(not_tensors)} entries, e.g. {not_tensors[:3]}")
    for label, test in (("sparse", lambda v: v.layout != torch.strided), ("meta (no data)", lambda v: v.is_meta),
                        ("quantized", lambda v: v.is_quantized)):
        odd = [k for k, v in obj.items() if test(v)]
        if odd:
            raise InputError(f"state_dict holds {label} tensors", expected="dense float tensors with data "
                             "(save model.state_dict() of a float, non-quantized model)",
                             found=f"{len(odd)} entries, e.g. {odd[:3]}")
    odd = [f"{k} ({str(v.dtype).removeprefix('torch.')})" for k, v in obj.items() if v.dtype not in _DTYPES]
    if odd:
        raise InputError("state_dict holds tensors of an unsupported dtype", expected="float16, bfloat16, float32 or "
                         "float64 weights (convert float8 and other low-precision formats with .float() before "
                         "saving)", found=f"{len(odd)} entries, e.g. {', '.join(odd[:3])}")
    return dict(obj), notes


def match_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Strip a ``module.`` (DataParallel) or ``model.`` (Lightning) prefix when that makes the keys fit.

    Returns the (possibly renamed) state_dict and a note saying what was done ("" if nothing).
    """
    own = set(model.state_dict())
    if set(state_dict) <= own:
        return state_dict, ""
    for prefix in ("module.", "model.", "_orig_mod.", "module.model."):
        if all(k.startswith(prefix) for k in state_dict):
            stripped = {k[len(prefix):]: v for k, v in state_dict.items()}
            if set(stripped) <= own or len(set(stripped) & own) > len(set(state_dict) & own):
                return stripped, f"stripped the {prefix!r} prefix from every key"
    return state_dict, ""


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
    def finite(v: torch.Tensor) -> torch.Tensor:  # float8 has no isfinite: widen it first
        return torch.isfinite(v if v.dtype in _DTYPES else v.float())

    bad = [f"{k} ({int((~finite(v)).sum())} values)" for k, v in state_dict.items()
           if v.is_floating_point() and not finite(v).all()]
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
    """Write a state_dict with safetensors or ``torch.save``, atomically (:mod:`aomcore.base.atomic`).

    ``fmt`` is ``"safetensors"`` or ``"pt"``; by default the suffix decides
    (``.safetensors`` → safetensors, anything else → ``torch.save``).
    """
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else model_or_sd
    sd = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
    path = Path(path)
    with atomic_path(path) as tmp:  # a full disk is an InputError; a reader never sees half a file
        if (fmt or ("safetensors" if path.suffix == ".safetensors" else "pt")) == "safetensors":
            from safetensors.torch import save_file

            save_file(sd, str(tmp))
        else:
            torch.save(sd, tmp)
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
