"""Arrays → images: the colormaps of Garcia et al. 2019 and labelled map grids.

* ``occurrence``: ordinal (viridis anchors) for AOM values in [0, 1] (Fig. 2).
* ``difference``: ordinal blue-to-red for ODM values (Fig. 3).
* ``selectivity``: the two-segment CSM colormap (Fig. 4): cyan (0) → purple (1) for
  positive values and yellow (0) → red (−1) for negative ones.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["COLORMAPS", "apply_colormap", "map_grid_image", "matrix_image", "colorbar_image"]

_ANCHORS = {
    "occurrence": [(0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725")],
    "difference": [(0.0, "#08306b"), (0.25, "#4292c6"), (0.5, "#f7f7f7"), (0.75, "#ef6548"), (1.0, "#7f0000")],
}
COLORMAPS = ("occurrence", "difference", "selectivity")


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def _interp(t: np.ndarray, anchors) -> np.ndarray:
    pos = np.array([a for a, _ in anchors])
    rgb = np.stack([_hex(c) for _, c in anchors])  # (A, 3)
    return np.stack([np.interp(t, pos, rgb[:, ch]) for ch in range(3)], axis=-1)


def apply_colormap(values: np.ndarray, name: str, vmax: float | None = None) -> np.ndarray:
    """Colour an array: (...,) float → (..., 3) uint8.

    ``occurrence`` expects [0, 1]; ``difference`` maps [0, vmax] (default: the array's
    maximum); ``selectivity`` expects [−1, 1]. NaN becomes mid grey.
    """
    v = np.asarray(values, dtype=np.float64)
    if name == "occurrence":
        out = _interp(np.clip(v, 0, 1), _ANCHORS["occurrence"])
    elif name == "difference":
        top = vmax if vmax is not None else (np.nanmax(v) if v.size and np.nanmax(v) > 0 else 1.0)
        out = _interp(np.clip(v / top, 0, 1), _ANCHORS["difference"])
    elif name == "selectivity":
        pos = _interp(np.clip(v, 0, 1), [(0.0, "#00ffff"), (1.0, "#5b0080")])
        neg = _interp(np.clip(-v, 0, 1), [(0.0, "#ffff00"), (1.0, "#cc0000")])
        out = np.where((v >= 0)[..., None], pos, neg)
    else:
        raise ValueError(f"colormap must be one of {COLORMAPS}, got {name!r}")
    out = np.where(np.isnan(v)[..., None], 128.0, out)
    return np.round(out).astype(np.uint8)


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def map_grid_image(maps: np.ndarray, name: str, order: np.ndarray | None = None,
                   groups: np.ndarray | None = None, classes: list[str] | None = None,
                   flags: dict[str, np.ndarray] | None = None, cell: int = 56, gap: int = 2) -> Image.Image:
    """A grid of per-(kernel, class) maps: rows = kernels in ``order``, columns = classes.

    Parameters
    ----------
    maps : ndarray, (K, C, H, W) float
        AOMs (``name="occurrence"``) or CSMs (``name="selectivity"``).
    order : ndarray, (K,) int, optional
        Display order of the kernels (default 0..K-1).
    groups : ndarray, (K,) int, optional
        Group of each kernel; each contiguous run of one group in ``order`` is outlined
        in red, as the paper's kernel groups.
    classes : list of str, optional
        Column headers.
    flags : dict with "dead" and "always_on" (K,) bool, optional
        Flagged rows get a black (dead) or orange (always-on) marker beside their label.
    cell : int, default 56
        Target pixel size of one map's longer side (nearest-neighbour upscaling).

    Returns
    -------
    PIL.Image.Image, RGB.
    """
    k, c, h, w = maps.shape
    order = np.arange(k) if order is None else np.asarray(order)
    scale = max(1, cell // max(h, w))
    ch, cw = h * scale, w * scale
    left, top = 64, 22
    width = left + c * (cw + gap) + gap
    height = top + k * (ch + gap) + gap
    canvas = Image.new("RGB", (width, height), "white")
    colored = apply_colormap(maps[order], name)  # (K, C, H, W, 3)
    colored = colored.repeat(scale, axis=2).repeat(scale, axis=3)
    arr = np.asarray(canvas).copy()
    for r in range(k):
        y0 = top + gap + r * (ch + gap)
        for col in range(c):
            x0 = left + gap + col * (cw + gap)
            arr[y0 : y0 + ch, x0 : x0 + cw] = colored[r, col]
    canvas = Image.fromarray(arr)
    draw = ImageDraw.Draw(canvas)
    font = _font(11)
    for col in range(c):
        label = (classes[col] if classes else str(col))[:max(3, cw // 7)]
        draw.text((left + gap + col * (cw + gap) + 2, 4), label, fill="black", font=font)
    for r, kernel in enumerate(order):
        y0 = top + gap + r * (ch + gap)
        draw.text((4, y0 + max(0, ch // 2 - 6)), f"k{kernel}", fill="black", font=font)
        if flags is not None:
            colour = "black" if flags["dead"][kernel] else "orange" if flags["always_on"][kernel] else None
            if colour:
                draw.rectangle((50, y0 + ch // 2 - 5, 59, y0 + ch // 2 + 4), fill=colour)
    if groups is not None:
        g = np.asarray(groups)[order]
        start = 0
        for r in range(1, k + 1):
            if r == k or g[r] != g[start]:
                y0 = top + start * (ch + gap)
                y1 = top + r * (ch + gap) + gap - 1
                draw.rectangle((left, y0, width - 1, y1), outline=(220, 0, 0), width=2)
                start = r
    return canvas


def matrix_image(matrix: np.ndarray, name: str = "difference", order: np.ndarray | None = None,
                 cell: int = 12, vmax: float | None = None) -> Image.Image:
    """A (K, K) matrix (the ODM) as an image, rows and columns in ``order``."""
    m = np.asarray(matrix)
    if order is not None:
        m = m[np.ix_(order, order)]
    scale = max(1, cell)
    rgb = apply_colormap(m, name, vmax=vmax).repeat(scale, axis=0).repeat(scale, axis=1)
    return Image.fromarray(rgb)


def colorbar_image(name: str, lo: float, hi: float, width: int = 256, height: int = 14) -> Image.Image:
    """A horizontal colour bar from ``lo`` to ``hi``."""
    values = np.linspace(lo, hi, width)[None, :].repeat(height, axis=0)
    return Image.fromarray(apply_colormap(values, name, vmax=hi if name == "difference" else None))
