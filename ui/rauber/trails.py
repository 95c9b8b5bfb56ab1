"""Chart, table and legend builders of the Training trails page (no Streamlit calls)."""

from __future__ import annotations

import base64
import html
import io

import altair as alt
import numpy as np
import pandas as pd

from aomcore.rauber import class_palette, lagging_classes, render_trails


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def trail_subset(arrays: dict, misclassified: bool) -> np.ndarray | None:
    """Observation indices to draw: those the last snapshot gets wrong, or None for all."""
    if not misclassified:
        return None
    return np.flatnonzero(arrays["predicted"][-1] != arrays["labels"])


def trails_png(arrays: dict, bundled: bool, highlight: int | None, misclassified: bool, size: int = 800) -> bytes:
    """The rendered trails (black background, colour by class, dark = early → bright = late) as PNG bytes."""
    from PIL import Image

    image = render_trails(arrays["points"], arrays["labels"], bundled=bundled,
                          subset=trail_subset(arrays, misclassified), highlight=highlight, width=size, height=size)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def legend_html(classes: list[str], snapshots, highlight: int | None = None) -> str:
    """Class swatches and the time ramp (dark = first snapshot, bright = last) as HTML."""
    palette = class_palette(len(classes))
    swatches = " ".join(
        f'<span style="white-space:nowrap;margin-right:10px;opacity:{1 if highlight in (None, c) else 0.35}">'
        f'<span style="display:inline-block;width:12px;height:12px;background:{_hex(palette[c])};'
        f'border-radius:2px;vertical-align:middle"></span> {html.escape(str(name))}</span>'
        for c, name in enumerate(classes))
    ramp = ('<div style="display:flex;align-items:center;gap:8px;margin-top:6px;font-size:0.85em">'
            f'<span>iteration {int(snapshots[0]):,}</span><span style="flex:1;height:10px;border-radius:3px;'
            'background:linear-gradient(to right, #404040, #ffffff);border:1px solid #888"></span>'
            f'<span>iteration {int(snapshots[-1]):,}</span></div>')
    return f'<div style="font-size:0.9em">{swatches}</div>{ramp}'


def nh_curve(snapshots, nh) -> alt.Chart:
    """Neighbourhood hit (k = 6) of each snapshot's projection against the training iteration."""
    df = pd.DataFrame({"iteration": np.asarray(snapshots), "neighbourhood hit": np.asarray(nh)})
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("iteration:Q", title="training iteration"),
        y=alt.Y("neighbourhood hit:Q", scale=alt.Scale(domain=[0, 1])),
        tooltip=["iteration", alt.Tooltip("neighbourhood hit:Q", format=".3f")],
    ).properties(height=180)


def class_table(arrays: dict, classes: list[str], margin: float = 0.05) -> pd.DataFrame:
    """Per class: final neighbourhood hit, test accuracy of the last snapshot, and whether it lags."""
    lag = set(lagging_classes(arrays["class_neighborhood_hit"], margin).tolist())
    return pd.DataFrame({"class": [str(c) for c in classes],
                         "final neighbourhood hit": arrays["class_neighborhood_hit"],
                         "test accuracy": arrays["class_accuracy"],
                         "lags": [c in lag for c in range(len(classes))]})


def lag_message(arrays: dict, classes: list[str], margin: float = 0.05) -> str | None:
    """The paper's reading of the lagging classes, or None when no class lags."""
    lag = lagging_classes(arrays["class_neighborhood_hit"], margin)
    if lag.size == 0:
        return None
    nh = arrays["class_neighborhood_hit"]
    names = ", ".join(f"{classes[c]} ({nh[c]:.3f})" for c in lag)
    return (f"Separation lags for class {names}: final neighbourhood hit more than {margin:.2f} below the median "
            f"class ({np.nanmedian(nh):.3f}). Rauber et al. 2017 read such classes as candidates for more training "
            f"data or more capacity.")


def _thumbnails(images: np.ndarray) -> list[str]:
    """(N, C, H, W) images in [0, 1] → PNG data URLs (for tooltips)."""
    from PIL import Image

    out = []
    for img in images:
        a = np.clip(img.mean(0) if img.shape[0] != 3 else img.transpose(1, 2, 0), 0, 1)
        buffer = io.BytesIO()
        Image.fromarray((a * 255).astype(np.uint8)).resize((56, 56), Image.NEAREST).save(buffer, format="PNG")
        out.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return out


def snapshot_scatter(arrays: dict, s: int, classes: list[str], images: np.ndarray | None = None,
                     highlight: int | None = None, misclassified: bool = False) -> alt.Chart:
    """Snapshot ``s``'s projection alone: one point per image, coloured by class; hover shows class, index,
    the prediction at that snapshot (and the digit, given ``images`` (N, C, H, W) in [0, 1])."""
    labels = arrays["labels"]
    keep = trail_subset(arrays, misclassified)
    keep = np.arange(labels.size) if keep is None else keep
    df = pd.DataFrame({"x": arrays["points"][s, keep, 0], "y": arrays["points"][s, keep, 1],
                       "class": [str(classes[c]) for c in labels[keep]],
                       "predicted": [str(classes[c]) if c >= 0 else "?" for c in arrays["predicted"][s, keep]],
                       "index": arrays["index"][keep], "row": keep})
    tooltip = ["class", "predicted", "index"]
    if images is not None:
        df["image"] = _thumbnails(images[keep])
        tooltip.append("image")
    palette = [_hex(c) for c in class_palette(len(classes))]
    color = alt.Color("class:N", scale=alt.Scale(domain=[str(c) for c in classes], range=palette), legend=None)
    if highlight is not None:
        color = alt.condition(alt.datum["class"] == str(classes[highlight]), color, alt.value("#777777"))
    pick = alt.selection_point(name="pick", fields=["row"], on="click")
    return alt.Chart(df).mark_circle(size=18, opacity=0.85).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None), color=color, tooltip=tooltip,
    ).add_params(pick).properties(height=620)
