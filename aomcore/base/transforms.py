"""Deterministic image preprocessing named as text: torchvision ``transforms.v2`` from an allow-list.

A *transform spec* is either

``"Resize(256), CenterCrop(224)"``
    a comma-separated list of calls to :mod:`torchvision.transforms.v2` classes on the
    allow-list (:data:`ALLOWED`), with literal arguments only (numbers, strings, lists,
    tuples, ``None``, booleans; each parsed with :func:`ast.literal_eval`, so text never
    runs code); or
``"torchvision:ResNet50_Weights.IMAGENET1K_V2"``
    the preset of a torchvision weights enum (its ``transforms()``: ``Resize`` and
    ``CenterCrop`` with the preset's interpolation and antialiasing, then its mean and std).
    Only the enum's metadata is read; nothing is downloaded.

The steps run on one decoded image, (C, H, W) uint8 (or float32 in [0, 1] for 16-bit
sources), before scaling to [0, 1] and the per-channel normalisation — the order of
torchvision's ImageNet recipe (``Resize``, ``CenterCrop`` on the image, then ``ToTensor``
and ``Normalize``). :func:`output_shape` predicts a step list's output size from an input
size without decoding anything, so a folder of mixed sizes is checked before a pass.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass

from .errors import InputError

__all__ = ["ALLOWED", "Step", "build", "canonical", "output_shape", "parse_transform", "preset"]

#: The torchvision.transforms.v2 classes a spec may name: deterministic, geometric or
#: colour-model steps that keep one image one image.
ALLOWED = ("Resize", "CenterCrop", "Pad", "Grayscale")
_PRESET = "torchvision:"


@dataclass(frozen=True)
class Step:
    """One call: ``name`` on :data:`ALLOWED` and its arguments bound by name (defaults left out)."""

    name: str
    kwargs: tuple[tuple[str, object], ...]

    def __str__(self) -> str:
        first = next(iter(inspect.signature(_cls(self.name)).parameters))
        args = [repr(v) if k == first else f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(args)})"


def _cls(name: str):
    from torchvision.transforms import v2

    return getattr(v2, name)


def canonical(steps: tuple[Step, ...]) -> str:
    """The spec text of ``steps`` in one spelling (recorded in a dataset's identity)."""
    return ", ".join(str(s) for s in steps)


def parse_transform(text: str) -> tuple[Step, ...]:
    """Parse ``"Resize(256), CenterCrop(224)"`` into checked :class:`Step` s.

    Raises
    ------
    InputError
        Text that is not a list of calls, a name off the allow-list, a non-literal
        argument, arguments the class does not take, or values it refuses (torchvision's
        own check, run once on construction).
    """
    text = text.strip()
    if not text:
        return ()
    try:
        tree = ast.parse(f"[{text}]", mode="eval").body
    except SyntaxError:
        raise InputError("the transform is not a list of calls", expected='e.g. "Resize(256), CenterCrop(224)"',
                         found=f"{text!r} (not valid call syntax)") from None
    steps = []
    for node in tree.elts:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            raise InputError("each transform step is a call",
                             expected=f"Name(args) with Name one of {', '.join(ALLOWED)}",
                             found=repr(ast.unparse(node)))
        name = node.func.id
        if name not in ALLOWED:
            hint = " (normalise with --mean/--std)" if name == "Normalize" else ""
            raise InputError(f"transform {name!r} is not allowed{hint}", expected=", ".join(ALLOWED), found=name)
        values = []
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            try:
                values.append(ast.literal_eval(arg))
            except (ValueError, SyntaxError, TypeError):
                raise InputError(f"{name}: arguments must be literal values", expected="numbers, strings, lists, "
                                 "tuples, True/False/None", found=repr(ast.unparse(arg))) from None
        if any(k.arg is None for k in node.keywords):
            raise InputError(f"{name}: arguments must be literal values", expected="name=value", found="**kwargs")
        args, kwargs = values[:len(node.args)], dict(zip((k.arg for k in node.keywords), values[len(node.args):],
                                                          strict=True))
        steps.append(_step(name, args, kwargs))
    return tuple(steps)


def _step(name: str, args: list, kwargs: dict) -> Step:
    cls = _cls(name)
    signature = inspect.signature(cls)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InputError(f"{name}: wrong arguments", expected=f"{name}({', '.join(signature.parameters)})",
                         found=str(exc)) from None
    _check_numbers(name, bound.arguments)
    if name == "Resize" and bound.arguments.get("size") is None:
        raise InputError("Resize needs a size", expected="Resize(N) (shorter side) or Resize([H, W])", found="None")
    try:
        cls(*bound.args, **bound.kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: {exc}", expected=f"{name}({', '.join(signature.parameters)})",
                         found=f"{args} {kwargs}") from None
    defaults = {k: p.default for k, p in signature.parameters.items()}
    kept = tuple((k, _plain(v)) for k, v in bound.arguments.items() if _plain(v) != _plain(defaults[k]))
    return Step(name, kept)


#: Integer arguments and their ranges (pixels, channels): torchvision checks types, not these.
_RANGES = {"size": (1, 4096), "max_size": (1, 4096), "padding": (0, 4096), "num_output_channels": (1, 3)}


def _check_numbers(name: str, arguments: dict) -> None:
    for key, (lo, hi) in _RANGES.items():
        value = arguments.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in values):
            raise InputError(f"{name}: {key} out of range", expected=f"integers in [{lo}, {hi}]", found=repr(value))
    if name == "Grayscale" and arguments.get("num_output_channels", 1) not in (1, 3):
        raise InputError("Grayscale makes 1 or 3 channels", expected="num_output_channels 1 or 3",
                         found=repr(arguments["num_output_channels"]))


def _plain(value):
    """Lists and tuples compare and print alike; an InterpolationMode as its string."""
    if isinstance(value, tuple | list):
        return tuple(_plain(v) for v in value)
    return getattr(value, "value", value)


def preset(text: str) -> tuple[tuple[Step, ...], tuple[float, ...], tuple[float, ...]]:
    """Steps, mean and std of ``torchvision:<Weights>.<ENUM>`` (e.g. ResNet50_Weights.IMAGENET1K_V2).

    Raises
    ------
    InputError
        A name torchvision does not know, or weights whose preset is not an
        ImageClassification resize-and-crop.
    """
    from torchvision.models import get_weight

    name = text.removeprefix(_PRESET)
    try:
        weights = get_weight(name)
    except (ValueError, KeyError, AttributeError) as exc:
        raise InputError("unknown torchvision weights", expected="e.g. torchvision:ResNet50_Weights.IMAGENET1K_V2",
                         found=f"{name!r}: {exc}") from None
    t = weights.transforms()
    if not all(hasattr(t, a) for a in ("resize_size", "crop_size", "mean", "std")):
        raise InputError("this preset is not resize-and-crop", expected="an image-classification weights enum",
                         found=f"{name}: {type(t).__name__}")
    interpolation = _plain(t.interpolation)
    resize = {"interpolation": interpolation} if interpolation != "bilinear" else {}
    if t.antialias is not True:
        resize["antialias"] = t.antialias
    steps = (_step("Resize", [list(t.resize_size)], resize), _step("CenterCrop", [list(t.crop_size)], {}))
    return steps, tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)


def build(steps: tuple[Step, ...]):
    """A callable ``(C, H, W) or (B, C, H, W) tensor → tensor`` applying ``steps`` with torchvision v2."""
    from torchvision.transforms import v2

    return v2.Compose([_cls(s.name)(**dict(s.kwargs)) for s in steps])


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def output_shape(steps: tuple[Step, ...], shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, H, W) of an image of ``shape`` after ``steps``, computed without running them.

    Follows torchvision's size rules (``Resize(N)``: the shorter side becomes N, the longer
    ``int(N * long / short)``, then capped by ``max_size``). A test checks it against the
    transforms themselves.

    Raises
    ------
    InputError
        A ``CenterCrop`` larger than the image it gets (torchvision would pad it with
        zeros, which no one asks a crop for).
    """
    c, h, w = shape
    for step in steps:
        k = dict(step.kwargs)
        if step.name == "Resize":
            size, max_size = k["size"], k.get("max_size")
            if isinstance(size, int) or len(size) == 1:
                requested = size if isinstance(size, int) else size[0]
                short, long = min(h, w), max(h, w)
                new_short, new_long = requested, int(requested * long / short)
                if max_size is not None and new_long > max_size:
                    new_short, new_long = int(max_size * new_short / new_long), max_size
                h, w = (new_long, new_short) if w <= h else (new_short, new_long)
            else:
                h, w = size
        elif step.name == "CenterCrop":
            ch, cw = _size_pair(k["size"])
            if ch > h or cw > w:
                raise InputError(f"the crop is larger than the image: {step}", expected=f"a crop within {h}×{w} "
                                 "(the image's size at that step)", found=f"{ch}×{cw}")
            h, w = ch, cw
        elif step.name == "Pad":
            p = k["padding"]
            p = (p,) if isinstance(p, int) else tuple(p)
            left, top, right, bottom = (p * 4)[:4] if len(p) == 1 else (p[0], p[1], p[0], p[1]) if len(p) == 2 else p
            h, w = h + top + bottom, w + left + right
        elif step.name == "Grayscale":
            c = k.get("num_output_channels", 1)
    return c, h, w
