"""Chart and table builders of the DeepEyes and Rauber et al. pages (no st calls).

Thousands of points are drawn with deck.gl (``pydeck`` ScatterplotLayer in an
OrthographicView: WebGL, selectable with ``st.pydeck_chart(on_select="rerun")``);
small sets (a layer's filters) with Altair, whose box selection works on them.
"""

from __future__ import annotations

import base64
import io

import altair as alt
import numpy as np
import pandas as pd
import pydeck as pdk
from PIL import Image, ImageDraw

#: Tableau 10: the classes' colours in every view (legend = the same list).
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
LAYER_ID = "points"
SPAN = 300.0  # the points are scaled into a SPAN × SPAN square drawn at zoom 0


def class_colour(c: int) -> list[int]:
    h = PALETTE[int(c) % len(PALETTE)]
    return [int(h[i : i + 2], 16) for i in (1, 3, 5)]


def legend_html(classes: list[str]) -> str:
    """One line of coloured squares naming the classes (the deck.gl chart has no legend of its own)."""
    items = [f"<span style='color:{PALETTE[i % len(PALETTE)]}'>■</span>&nbsp;{c}" for i, c in enumerate(classes)]
    return "&nbsp;&nbsp; ".join(items)


def ramp(values: np.ndarray) -> np.ndarray:
    """Viridis-like colours (N, 3) uint8 for values, min → dark blue, max → yellow."""
    v = np.asarray(values, dtype=np.float64)
    span = np.ptp(v) if len(v) else 0.0
    t = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
    pos = t * (len(stops) - 1)
    i = np.clip(pos.astype(int), 0, len(stops) - 2)
    f = (pos - i)[:, None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def thumbnail_url(image: np.ndarray, size: int = 56, box: tuple[int, int, int, int] | None = None) -> str:
    """A PNG data URL of one image (H, W, C) in [0, 1], with an optional red box (top, left, bottom, right)."""
    arr = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
    scale = size / max(img.size)
    img = img.resize((size, round(img.size[1] * scale)), Image.NEAREST)
    if box is not None:
        t, left, b, r = (round(x * scale) for x in box)
        ImageDraw.Draw(img).rectangle([left, t, r - 1, b - 1], outline=(230, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def scatter_deck(points: np.ndarray, colours: np.ndarray, tooltip: dict[str, list], radius: np.ndarray | float = 3,
                 outline: np.ndarray | None = None, tooltip_html: str = "", span: float = SPAN) -> pdk.Deck:
    """A deck.gl scatter of (N, 2) points in an OrthographicView (no map), selectable by index.

    The points are scaled into a ``span`` × ``span`` pixel square (fit it to the chart's
    height and width). ``colours`` (N, 3) uint8; ``tooltip`` columns shown on hover (``tooltip_html`` uses
    them as ``{name}``); ``outline`` (N,) bool draws a black ring (e.g. misclassified).
    """
    p = np.asarray(points, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    scale = span / max(float((hi - lo).max()), 1e-9)
    xy = (p - (lo + hi) / 2) * scale
    df = pd.DataFrame({"x": xy[:, 0], "y": -xy[:, 1], "color": [list(map(int, c)) for c in colours],
                       "radius": np.broadcast_to(radius, len(p)).astype(float),
                       "line": [[20, 20, 20, 255] if o else [0, 0, 0, 0] for o in
                                (outline if outline is not None else np.zeros(len(p), bool))]})
    for name, values in tooltip.items():
        df[name] = values
    layer = pdk.Layer("ScatterplotLayer", data=df, id=LAYER_ID, get_position=["x", "y"], get_fill_color="color",
                      get_radius="radius", radius_units="pixels", stroked=outline is not None, get_line_color="line",
                      line_width_min_pixels=1.5, pickable=True, auto_highlight=True)
    return pdk.Deck(layers=[layer], views=[pdk.View(type="OrthographicView", controller=True)],
                    initial_view_state=pdk.ViewState(target=[0, 0, 0], zoom=0), map_provider=None,
                    tooltip={"html": tooltip_html} if tooltip_html else True)


def selected_indices(event, key: str = LAYER_ID) -> list[int]:
    """Row indices a ``st.pydeck_chart`` selection event picked (``[]`` when none)."""
    try:
        return sorted(int(i) for i in event.selection.indices.get(key, []))
    except AttributeError:
        return []


def filter_frame(points: np.ndarray, stats: dict[str, np.ndarray], classes: list[str]) -> pd.DataFrame:
    """One row per filter: position, label (class), confidence, max activation, frequency."""
    label = stats["filter_label"].astype(int)
    return pd.DataFrame({"filter": np.arange(len(points)), "x": points[:, 0], "y": points[:, 1],
                         "label": [classes[i] for i in label], "confidence": stats["filter_confidence"],
                         "max activation": stats["max_activation"],
                         "frequency": stats["activation_frequency"]})


def filter_map_chart(df: pd.DataFrame, classes: list[str]) -> alt.Chart:
    """DeepEyes' filter map: colour = filter label (class), size = confidence; box selection."""
    brush = alt.selection_interval(name="box", encodings=["x", "y"])
    return (alt.Chart(df).mark_circle(opacity=0.85, stroke="#222", strokeWidth=0.3).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None),
        color=alt.Color("label:N", scale=alt.Scale(domain=classes, range=PALETTE[: len(classes)]),
                        title="filter label (class)"),
        size=alt.Size("confidence:Q", scale=alt.Scale(zero=False, range=[30, 450]), title="confidence"),
        tooltip=["filter", "label", alt.Tooltip("confidence:Q", format=".2f"),
                 alt.Tooltip("max activation:Q", format=".3f"), alt.Tooltip("frequency:Q", format=".1%")],
    ).add_params(brush).properties(height=460))


def heatmap_chart(df: pd.DataFrame, selected: list[int]) -> alt.Chart:
    """DeepEyes' activation heatmap as two rows of cells per filter: max activation and frequency."""
    long = pd.concat([pd.DataFrame({"filter": df["filter"], "statistic": name, "value": df[name] / max(
        float(df[name].max()), 1e-12), "raw": df[name]}) for name in ("max activation", "frequency")])
    long["selected"] = long["filter"].isin(selected)
    return alt.Chart(long).mark_rect(stroke="white", strokeWidth=0.2).encode(
        x=alt.X("filter:O", axis=alt.Axis(labelOverlap=True, labelAngle=0, title="filter")),
        y=alt.Y("statistic:N", title=None, axis=alt.Axis(labelLimit=120)),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="greys", domain=[0, 1]),
                        title="relative to the layer's max"),
        opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.35)) if selected else alt.value(1.0),
        tooltip=["filter", "statistic", alt.Tooltip("raw:Q", format=".3f", title="value")],
    ).properties(width="container", height=alt.Step(26))


def crops_image(images: np.ndarray, boxes: list[tuple[int, int, int, int]], cell: int = 84,
                per_row: int = 10) -> Image.Image:
    """The images (N, H, W, C) in [0, 1], each with its receptive field outlined in red, and the crop beside it."""
    tiles = []
    for img, (t, left, b, r) in zip(images, boxes, strict=True):
        h, w = img.shape[:2]
        padded = np.zeros((b - t, r - left, img.shape[2]), dtype=img.dtype)  # outside the image: padding (0)
        tt, ll, bb, rr = max(t, 0), max(left, 0), min(b, h), min(r, w)
        if bb > tt and rr > ll:
            padded[tt - t : bb - t, ll - left : rr - left] = img[tt:bb, ll:rr]
        full = Image.open(io.BytesIO(base64.b64decode(thumbnail_url(img, cell, (t, left, b, r)).split(",")[1])))
        crop = Image.open(io.BytesIO(base64.b64decode(thumbnail_url(padded, cell).split(",")[1])))
        tile = Image.new("RGB", (2 * cell + 4, cell), "white")
        tile.paste(full, (0, 0))
        tile.paste(crop, (cell + 4, 0))
        tiles.append(tile)
    cols = min(per_row // 2 or 1, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * (2 * cell + 12), rows * (cell + 8)), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * (2 * cell + 12), (i // cols) * (cell + 8)))
    return sheet


def image_sheet(images: np.ndarray, captions: list[str], wrong: np.ndarray, cell: int = 56,
                per_row: int = 12) -> Image.Image:
    """A grid of images (N, H, W, C) in [0, 1]; a misclassified one gets a red frame."""
    cols = min(per_row, len(images))
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * (cell + 6), rows * (cell + 6)), "white")
    for i, img in enumerate(images):
        arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        tile = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB").resize((cell, cell),
                                                                                                  Image.NEAREST)
        if wrong[i]:
            ImageDraw.Draw(tile).rectangle([0, 0, cell - 1, cell - 1], outline=(230, 30, 30), width=3)
        sheet.paste(tile, ((i % cols) * (cell + 6) + 3, (i // cols) * (cell + 6) + 3))
    return sheet


def top_filters(activations: np.ndarray, rows: list[int], n: int = 10) -> pd.DataFrame:
    """The filters with the highest mean activation over the selected samples."""
    mean = activations[rows].mean(axis=0)
    order = np.argsort(-mean)[:n]
    return pd.DataFrame({"filter": order, "mean activation on the selection": mean[order],
                         "mean activation overall": activations.mean(axis=0)[order]})
