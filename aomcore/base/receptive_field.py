"""Receptive fields: which input pixels a conv layer's map position sees.

A position (row, col) of a conv layer's output map sees, in the layer's own input, the
window ``[row·s − p, row·s − p + d·(k − 1)]`` (kernel k, stride s, padding p, dilation
d; likewise for columns). Composing that rule back through every conv and pooling layer
before it gives the *theoretical* receptive field in the image — the box the position's
value can depend on at all. (The *effective* receptive field, where the gradient is
large, is smaller and centred in it; Luo et al. 2016.) Parts of the box outside the
image are padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from .errors import InputError
from .hooks import get_module

__all__ = ["SpatialOp", "layer_chain", "receptive_box", "receptive_boxes"]

# Leaf modules that keep every spatial position where it is (they may change values).
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
              nn.Hardtanh, nn.PReLU, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity, nn.GroupNorm,
              nn.LocalResponseNorm, nn.InstanceNorm2d)


@dataclass(frozen=True)
class SpatialOp:
    """One spatial operation: output position i sees input [i·stride − pad, i·stride − pad + dilation·(kernel−1)].

    Every field is (rows, columns) in pixels of the operation's input.
    """

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _op(name: str, module: nn.Module) -> SpatialOp | None:
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            if module.padding == "valid":
                pad = (0, 0)
            else:  # "same": PyTorch pads (total // 2) on the top/left
                pad = tuple(d * (k - 1) // 2 for k, d in zip(module.kernel_size, module.dilation, strict=True))
        else:
            pad = _pair(module.padding)
        return SpatialOp(name, _pair(module.kernel_size), _pair(module.stride), pad, _pair(module.dilation))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return SpatialOp(name, _pair(module.kernel_size), _pair(stride), _pair(module.padding), _pair(dilation))
    return None


def layer_chain(model: nn.Module, layer: str) -> list[SpatialOp] | None:
    """The spatial operations from the image to ``layer``'s output, in forward order.

    Leaf modules are taken in registration order (the forward order of ``nn.Sequential``
    models and of most CNNs). Returns ``None`` when the layer sees the whole image or
    when an operation on the way is not known to keep positions (e.g. ``Linear``,
    ``Flatten``, adaptive pooling, a custom module): then the whole image is shown.

    Raises
    ------
    InputError
        Unknown layer.
    """
    get_module(model, layer)  # raises InputError for an unknown name
    chain: list[SpatialOp] = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        op = _op(name, module)
        if op is not None:
            chain.append(op)
        elif not isinstance(module, _POINTWISE):
            return None
        if name == layer:
            return chain
    raise InputError("the layer is not a leaf module", expected="a Conv2d layer", found=layer)


def receptive_box(chain: list[SpatialOp], row: int, col: int) -> tuple[int, int, int, int]:
    """The input box ``(top, left, bottom, right)`` (bottom/right exclusive) that output (row, col) sees.

    Not clipped to the image: negative or too large coordinates are padding.
    """
    lo_r = hi_r = int(row)
    lo_c = hi_c = int(col)
    for op in reversed(chain):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel, op.stride, op.padding, op.dilation
        lo_r, hi_r = lo_r * sh - ph, hi_r * sh - ph + dh * (kh - 1)
        lo_c, hi_c = lo_c * sw - pw, hi_c * sw - pw + dw * (kw - 1)
    return lo_r, lo_c, hi_r + 1, hi_c + 1


def receptive_boxes(model: nn.Module, layer: str, position: np.ndarray, map_shape: tuple[int, int],
                    image_hw: tuple[int, int]) -> tuple[list[tuple[int, int, int, int]], str]:
    """Boxes (top, left, bottom, right) in the image for flat map positions, and what they are.

    Parameters
    ----------
    position : ndarray, (M,) int
        Flat positions ``row · W + col`` in the layer's (H, W) map.
    map_shape : (H, W)
    image_hw : (H, W) of the input image

    Returns
    -------
    boxes : list of M tuples (not clipped: outside the image is padding)
    description : str
        "theoretical receptive field" with its size, or "whole image" when the layer sees
        all of it (an FC layer, or an operation on the way that does not keep positions).
    """
    chain = layer_chain(model, layer)
    h, w = image_hw
    if chain is None:
        return [(0, 0, h, w)] * len(position), "the whole image (the layer sees all of it)"
    pos = np.asarray(position, dtype=np.int64)
    boxes = [receptive_box(chain, int(p) // map_shape[1], int(p) % map_shape[1]) for p in pos]
    t, left, b, r = receptive_box(chain, 0, 0)
    ops = " → ".join(f"{op.name} {op.kernel[0]}×{op.kernel[1]}/{op.stride[0]}" for op in chain)
    return boxes, (f"the theoretical receptive field, {b - t}×{r - left} pixels ({ops}; kernel/stride); "
                   "the part outside the image is padding")
