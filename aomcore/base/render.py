"""Arrays → images: the colormaps of Garcia et al. 2019 and labelled map grids.

* ``occurrence``: ordinal (viridis anchors) for AOM values in [0, 1] (Fig. 2).
* ``difference``: ordinal blue-to-red for ODM values (Fig. 3).
* ``selectivity``: the two-segment CSM colormap (Fig. 4): cyan (0) → purple (1) for
  positive values and yellow (0) → red (−1) for negative ones.

Alternatives offered beside the paper's: ``magma`` and ``gray`` for AOM values in [0, 1],
and ``coolwarm`` for CSM values in [−1, 1], Moreland's diverging map (blue → light grey →
red), built to vary smoothly in perceived lightness on both sides of 0, unlike the paper's
two-segment map, whose two halves jump at 0.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError

__all__ = ["COLORMAPS", "apply_colormap", "map_grid_image", "matrix_image", "colorbar_image"]

_ANCHORS = {
    "occurrence": [(0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725")],
    "difference": [(0.0, "#08306b"), (0.25, "#4292c6"), (0.5, "#f7f7f7"), (0.75, "#ef6548"), (1.0, "#7f0000")],
    "magma": [(0.0, "#000004"), (0.25, "#51127c"), (0.5, "#b73779"), (0.75, "#fc8961"), (1.0, "#fcfdbf")],
    "gray": [(0.0, "#000000"), (1.0, "#ffffff")],
    # Moreland 2009 "smooth cool warm" over [-1, 1] (t = (v + 1) / 2)
    "coolwarm": [(0.0, "#3b4cc0"), (0.25, "#7b9ff9"), (0.5, "#dddddd"), (0.75, "#f49a7b"), (1.0, "#b40426")],
}
COLORMAPS = ("occurrence", "magma", "gray", "difference", "selectivity", "coolwarm")
#: Value range each colormap shows (``difference`` is scaled to its data's maximum).
VALUE_RANGE = {"occurrence": (0.0, 1.0), "magma": (0.0, 1.0), "gray": (0.0, 1.0), "difference": (0.0, None),
               "selectivity": (-1.0, 1.0), "coolwarm": (-1.0, 1.0)}


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def _interp(t: np.ndarray, anchors) -> np.ndarray:
    pos = np.array([a for a, _ in anchors])
    rgb = np.stack([_hex(c) for _, c in anchors])  # (A, 3)
    return np.stack([np.interp(t, pos, rgb[:, ch]) for ch in range(3)], axis=-1)


def apply_colormap(values: np.ndarray, name: str, vmax: float | None = None) -> np.ndarray:
    """Colour an array: (...,) float → (..., 3) uint8.

    ``occurrence``, ``magma`` and ``gray`` expect [0, 1]; ``difference`` maps [0, vmax]
    (default: the array's maximum); ``selectivity`` and ``coolwarm`` expect [−1, 1]. NaN
    becomes mid grey.
    """
    v = np.asarray(values, dtype=np.float64)
    if name in ("occurrence", "magma", "gray"):
        out = _interp(np.clip(v, 0, 1), _ANCHORS[name])
    elif name == "coolwarm":
        out = _interp((np.clip(v, -1, 1) + 1) / 2, _ANCHORS["coolwarm"])
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


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str] | None:
    """``text`` broken at spaces into lines no wider than ``width``; None if a word is wider."""
    lines: list[str] = []
    for word in text.split():
        if _text_size(draw, word, font)[0] > width:
            return None
        if lines and _text_size(draw, f"{lines[-1]} {word}", font)[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _headers(labels: list[str], width: int, font) -> tuple[list[Image.Image], int]:
    """Each column header as its own image, the whole name: wrapped to ``width`` or, when a
    word does not fit, written vertically (rotated 90°). Returns the images and their height."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = _text_size(probe, "Ag", font)[1] + 3
    wrapped = [_wrap(probe, label, font, width - 2) for label in labels]
    if all(w is not None for w in wrapped):
        height = max(len(w) for w in wrapped) * line_h + 4
        out = []
        for lines in wrapped:
            img = Image.new("RGB", (width, height), "white")
            d = ImageDraw.Draw(img)
            for n, line in enumerate(lines):
                d.text(((width - _text_size(d, line, font)[0]) // 2, 2 + n * line_h), line, fill="black", font=font)
            out.append(img)
        return out, height
    length = max(_text_size(probe, label, font)[0] for label in labels) + 6
    out = []
    for label in labels:
        img = Image.new("RGB", (length, min(width, line_h + 2)), "white")
        ImageDraw.Draw(img).text((2, 0), label, fill="black", font=font)
        out.append(img.rotate(90, expand=True))
    return out, length


def map_grid_image(maps: np.ndarray, name: str, order: np.ndarray | None = None,
                   groups: np.ndarray | None = None, classes: list[str] | None = None,
                   flags: dict[str, np.ndarray] | None = None, cell: int = 56, gap: int = 2,
                   colorbar: bool = True, row_labels: list[str] | None = None) -> Image.Image:
    """A grid of per-(kernel, class) maps: rows = kernels in ``order``, columns = classes.

    Every map is drawn with square pixels; class names are written in full (wrapped, or
    vertical when a word is wider than a map); every row is labelled ``k<index>``.

    Parameters
    ----------
    maps : ndarray, (K, C, H, W) float
        AOMs (``name`` ``"occurrence"``, ``"magma"`` or ``"gray"``) or CSMs (``"selectivity"``
        or ``"coolwarm"``).
    order : ndarray, (R,) int, optional
        The kernels to draw, in display order (default 0..K-1); a subset (R < K) draws
        only those rows, labelled by their own indices.
    groups : ndarray, (K,) int, optional
        Group of each kernel; each contiguous run of one group in ``order`` is outlined
        in red, as the paper's kernel groups.
    classes : list of str, optional
        Column headers.
    flags : dict with "dead" and "always_on" (K,) bool, optional
        Flagged rows get a black (dead) or orange (always-on) marker beside their label.
    cell : int, default 56
        Target pixel size of one map's longer side (nearest-neighbour upscaling).
    colorbar : bool, default True
        Add a colour bar with its values under the grid.
    row_labels : list of str, optional
        One label per drawn row instead of ``k<index>`` (e.g. group means).

    Returns
    -------
    PIL.Image.Image, RGB.

    Raises
    ------
    InputError
        ``order`` empty or naming a kernel outside [0, K).
    """
    k, c, h, w = maps.shape
    order = np.arange(k) if order is None else np.asarray(order, dtype=np.int64).ravel()
    if order.size == 0 or order.min() < 0 or order.max() >= k:
        raise InputError("no such kernels to draw", expected=f"indices in [0, {k - 1}]",
                         found=str(order.tolist())[:200])
    k = len(order)  # rows drawn
    scale = max(1, cell // max(h, w))
    ch, cw = h * scale, w * scale
    font = _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = list(row_labels) if row_labels is not None else [f"k{i}" for i in order]
    if len(labels) != len(order):
        raise InputError("one label per row", expected=f"{len(order)} labels", found=f"{len(labels)}")
    label_w = max(_text_size(probe, text, font)[0] for text in labels) + 8
    left = label_w + (14 if flags is not None else 0)
    headers, top = _headers(list(classes) if classes else [str(i) for i in range(c)], cw, font)
    top += 4
    width = left + c * (cw + gap) + gap
    grid_h = top + k * (ch + gap) + gap
    bar_h = 44 if colorbar else 0
    canvas = Image.new("RGB", (max(width, 300 if colorbar else 0), grid_h + bar_h), "white")
    colored = apply_colormap(maps[order], name)  # (K, C, H, W, 3)
    colored = colored.repeat(scale, axis=2).repeat(scale, axis=3)
    arr = np.asarray(canvas).copy()
    for r in range(k):
        y0 = top + gap + r * (ch + gap)
        for col in range(c):
            x0 = left + gap + col * (cw + gap)
            arr[y0 : y0 + ch, x0 : x0 + cw] = colored[r, col]
    canvas = Image.fromarray(arr)
    for col, header in enumerate(headers):
        canvas.paste(header, (left + gap + col * (cw + gap) + (cw - header.width) // 2, top - 4 - header.height))
    draw = ImageDraw.Draw(canvas)
    for r, kernel in enumerate(order):
        y0 = top + gap + r * (ch + gap)
        draw.text((4, y0 + max(0, ch // 2 - 7)), labels[r], fill="black", font=font)
        if flags is not None:
            colour = "black" if flags["dead"][kernel] else "orange" if flags["always_on"][kernel] else None
            if colour:
                draw.rectangle((label_w, y0 + ch // 2 - 5, label_w + 9, y0 + ch // 2 + 4), fill=colour)
    if groups is not None:
        g = np.asarray(groups)[order]
        start = 0
        for r in range(1, k + 1):
            if r == k or g[r] != g[start]:
                y0 = top + start * (ch + gap)
                y1 = top + r * (ch + gap) + gap - 1
                draw.rectangle((left, y0, width - 1, y1), outline=(220, 0, 0), width=2)
                start = r
    if colorbar:
        lo, hi = VALUE_RANGE[name]
        bar = colorbar_image(name, lo, 1.0 if hi is None else hi, width=min(360, max(200, width - left - 40)))
        canvas.paste(bar, (left, grid_h + 4))
    return canvas


def matrix_image(matrix: np.ndarray, name: str = "difference", order: np.ndarray | None = None,
                 cell: int = 12, vmax: float | None = None, groups: np.ndarray | None = None) -> Image.Image:
    """A (K, K) matrix (the ODM) as an image, rows and columns in ``order``.

    ``groups`` ((K,) int, optional): each contiguous run of one group in ``order`` is
    outlined in red on the diagonal, as in the grids.
    """
    m = np.asarray(matrix)
    order = np.arange(m.shape[0]) if order is None else np.asarray(order)
    m = m[np.ix_(order, order)]
    scale = max(1, cell)
    image = Image.fromarray(apply_colormap(m, name, vmax=vmax).repeat(scale, axis=0).repeat(scale, axis=1))
    if groups is not None:
        g = np.asarray(groups)[order]
        draw = ImageDraw.Draw(image)
        bounds = [0, *(np.flatnonzero(g[1:] != g[:-1]) + 1).tolist(), len(g)]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=False):
            draw.rectangle((start * scale, start * scale, stop * scale - 1, stop * scale - 1), outline="red")
    return image


def colorbar_image(name: str, lo: float, hi: float, width: int = 256, height: int = 14,
                   ticks: int = 5) -> Image.Image:
    """A horizontal colour bar from ``lo`` to ``hi`` with ``ticks`` labelled values under it."""
    font = _font(11)
    values = np.linspace(lo, hi, width)[None, :].repeat(height, axis=0)
    bar = Image.fromarray(apply_colormap(values, name, vmax=hi if name == "difference" else None))
    out = Image.new("RGB", (width + 24, height + 20), "white")
    out.paste(bar, (12, 0))
    draw = ImageDraw.Draw(out)
    for n in range(ticks):
        x = 12 + round(n * (width - 1) / (ticks - 1))
        value = lo + n * (hi - lo) / (ticks - 1)
        text = f"{value:g}" if abs(value) >= 1e-9 else "0"
        draw.line((x, height, x, height + 3), fill="black")
        tw = _text_size(draw, text, font)[0]
        draw.text((min(max(0, x - tw // 2), width + 24 - tw), height + 4), text, fill="black", font=font)
    return out
