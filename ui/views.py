"""Charts and tables the pages draw (Altair specs and DataFrames; no Streamlit calls)."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from aomcore import DiskCache, InputError, keep_reasons
from aomcore.base.policy import current_policy

MAX_CHART_CELLS = 100_000  # Altair rect charts stay responsive up to about this many cells
_PUNCTUATION = set("\\`*_{}[]()#+-.!|<>~$:\"'&%=,;?@^/")


def plain(text: object) -> str:
    """A user-provided string (class, workspace, file name…) made safe to put in Markdown.

    Every ASCII punctuation character is backslash-escaped (CommonMark), so links, images,
    emphasis, LaTeX (``$``), colour and icon directives (``:red[…]``, ``:material/…:``)
    in the string show as the characters they are.
    """
    return "".join(f"\\{c}" if c in _PUNCTUATION else c for c in str(text)).replace("\n", " ")


#: Colormaps the AOM and CSM views offer (label → :mod:`aomcore.base.render` name); first is the default.
AOM_COLORMAPS = {"viridis (ordinal, as Fig. 2)": "occurrence", "magma": "magma", "gray": "gray"}
CSM_COLORMAPS = {"two-segment (the paper's, Fig. 4)": "selectivity",
                 "cool-warm (perceptually uniform diverging)": "coolwarm"}
_RANGES = {"occurrence": ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],
           "magma": ["#000004", "#51127c", "#b73779", "#fc8961", "#fcfdbf"], "gray": ["#000000", "#ffffff"],
           "coolwarm": ["#3b4cc0", "#7b9ff9", "#dddddd", "#f49a7b", "#b40426"],
           "difference": ["#08306b", "#4292c6", "#f7f7f7", "#ef6548", "#7f0000"]}


def scale(name: str, vmax: float | None = None) -> alt.Scale:
    """The colormaps of :mod:`aomcore.base.render` as Altair scales (same colours as the images)."""
    if name == "selectivity":  # yellow (0) → red (−1) and cyan (0) → purple (1), as in Fig. 4
        return alt.Scale(domain=[-1, -1e-9, 0, 1], range=["#cc0000", "#ffff00", "#00ffff", "#5b0080"])
    colours = _RANGES.get(name, _RANGES["difference"])
    lo, hi = (-1.0, 1.0) if name == "coolwarm" else (0.0, 1.0 if vmax is None else vmax)
    domain = list(np.linspace(lo, hi, len(colours)))
    return alt.Scale(domain=domain, range=colours, interpolate="rgb")


#: Text drawn as marks (row and column labels): Vega's default is black, unreadable on the
#: dark theme; this grey (Streamlit's axis-label grey) reads on both.
LABEL = "#808495"

#: Vega-Lite sizing for charts drawn at their own size (``width="content"``): the plot keeps its
#: width and height and the labels, padding and colour bar are added around it. Streamlit's
#: default fits the whole chart, colour bar included, into the plot's size: the ODM shrank to
#: half and its colour bar was cut off.
OWN_SIZE = alt.AutoSizeParams(type="pad")


def maps_summary(maps: dict) -> pd.DataFrame:
    """One row per layer: tap, kernels, map size, mean occurrence, dead/always-on counts, top kernel."""
    from aomcore import kernel_flags

    rows = []
    for name, m in maps.items():
        flags = kernel_flags(m.aom)
        rows.append({"layer": name, "read at": m.tap, "kernels": m.num_kernels,
                     "map size": f"{m.counts.shape[2]}×{m.counts.shape[3]}",
                     "mean occurrence": float(flags["mean_occurrence"].mean()), "dead": int(flags["dead"].sum()),
                     "always on": int(flags["always_on"].sum()),
                     "most selective": f"k{int(m.selectivity.argmax())} (s = {m.selectivity.max():.2f})"})
    return pd.DataFrame(rows)


def grid_chart(maps: np.ndarray, order: np.ndarray, classes: list[str], name: str,
               max_cells: int = MAX_CHART_CELLS // 2, names: list[str] | None = None) -> tuple[alt.Chart, int]:
    """The (K, C, H, W) grid as one chart with a tooltip per cell, labelled and separated per map.

    ``names``: the K kernels' names (default ``k<index>``; :meth:`ui.state.View.kernel_names`).

    Grids over ``max_cells`` are averaged over f×f blocks of positions first (f the
    smallest factor that fits), so a conv1 grid stays responsive. Returns the chart and f.
    """
    k, c, h, w = maps.shape
    f = 1
    while k * c * -(-h // f) * -(-w // f) > max_cells:
        f += 1
    if f > 1:  # pad to a multiple of f with NaN, then average each block
        hp, wp = -(-h // f) * f, -(-w // f) * f
        padded = np.full((k, c, hp, wp), np.nan)
        padded[:, :, :h, :w] = maps
        maps = np.nanmean(padded.reshape(k, c, hp // f, f, wp // f, f), axis=(3, 5))
    h2, w2 = maps.shape[2:]
    kk, cc, ii, jj = np.meshgrid(np.arange(k), np.arange(c), np.arange(h2), np.arange(w2), indexing="ij")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    gap = max(1, h2 // 4)
    names = _names(names, k)
    df = pd.DataFrame({"kernel": np.array(names, dtype=object)[kk.ravel()],
                       "class": np.array(classes, dtype=object)[cc.ravel()],
                       "i": ii.ravel() * f, "j": jj.ravel() * f, "value": maps.ravel(),
                       "x": cc.ravel() * (w2 + gap) + jj.ravel(), "y": rank[kk.ravel()] * (h2 + gap) + ii.ravel()})
    px = max(2, min(10, 900 // (c * (w2 + gap))))
    width, height = px * c * (w2 + gap), px * k * (h2 + gap)
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, c * (w2 + gap)], nice=False))
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[0, k * (h2 + gap)], nice=False, reverse=True))
    where = [alt.Tooltip("i:Q", title="row i" + (f" (block of {f}×{f})" if f > 1 else "")),
             alt.Tooltip("j:Q", title="column j")]
    cells = alt.Chart(df).mark_rect().encode(
        x=x, x2="x2:Q", y=y, y2="y2:Q", color=alt.Color("value:Q", scale=scale(name), title=name),
        tooltip=["kernel", "class", *where, alt.Tooltip("value:Q", format=".3f")],
    ).transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
    heads = pd.DataFrame({"class": list(classes), "x": np.arange(c) * (w2 + gap) + w2 / 2, "y": -1.0})
    rows = pd.DataFrame({"kernel": [names[i] for i in order], "x": -1.0, "y": np.arange(k) * (h2 + gap) + h2 / 2})
    top = alt.Chart(heads).mark_text(baseline="bottom", fontSize=11, angle=0, limit=px * w2 * 2, color=LABEL).encode(
        x=x, y=y, text="class")
    side = alt.Chart(rows).mark_text(align="right", baseline="middle", fontSize=11, color=LABEL).encode(
        x=x, y=y, text="kernel")
    chart = (cells + top + side).properties(width=width, height=height, padding={"left": 40, "top": 30},
                                            autosize=OWN_SIZE)
    return chart, f


def accuracy_floor(values) -> float:
    """The lower end of an accuracy axis: a little under the lowest value, on a whole 5% step (0 at most),
    so differences between 93% and 100% are visible; the axis title says where it starts."""
    low = float(np.nanmin(np.asarray(values, dtype=np.float64))) if len(values) else 0.0
    return max(0.0, math.floor((low - 0.01) * 20) / 20)


def per_class_accuracy_chart(classes: list[str], per_class: list[float], overall: float | None = None) -> alt.Chart:
    """Test accuracy per class as a dot plot on an axis from :func:`accuracy_floor` to 100%, with the
    overall accuracy as a dashed rule."""
    df = pd.DataFrame({"class": classes, "accuracy": per_class})
    floor = accuracy_floor(per_class)
    y = alt.Y("accuracy:Q", scale=alt.Scale(domain=[floor, 1], clamp=True), axis=alt.Axis(format="%"),
              title=f"test accuracy (from {floor:.0%})")
    dots = alt.Chart(df).mark_circle(size=110, opacity=1, color="#1f77b4").encode(
        x=alt.X("class:N", sort=None, title="class", axis=alt.Axis(labelAngle=0 if len(classes) <= 12 else -40)),
        y=y, tooltip=["class", alt.Tooltip("accuracy:Q", format=".2%")])
    stems = alt.Chart(df).mark_rule(color="#1f77b4", opacity=0.35).encode(x=alt.X("class:N", sort=None), y=y,
                                                                          y2=alt.datum(floor))
    layers = [stems, dots]
    if overall is not None:
        rule = pd.DataFrame({"accuracy": [overall], "what": [f"overall {overall:.2%}"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="#888888").encode(
            y="accuracy:Q", tooltip=["what"]))
    return alt.layer(*layers).properties(height=220)


def examples_strip(images: np.ndarray, labels: np.ndarray, classes: list[str], per_class: int) -> np.ndarray:
    """Tile examples into one image: a column per class, ``per_class`` rows. Returns (H, W, 3) float."""
    n, h, w, c = images.shape
    pad = 2
    grid = np.ones((per_class * (h + pad), len(classes) * (w + pad), 3), dtype=np.float32)
    rows = dict.fromkeys(range(len(classes)), 0)
    for img, label in zip(images, labels, strict=True):
        r = rows[int(label)]
        rows[int(label)] += 1
        tile = img if c == 3 else np.repeat(img, 3, axis=-1)
        grid[r * (h + pad): r * (h + pad) + h, int(label) * (w + pad): int(label) * (w + pad) + w] = tile
    return grid


def _names(names: list[str] | None, k: int) -> list[str]:
    return list(names) if names is not None else [f"k{i}" for i in range(k)]


def kernel_class_heatmap(values: np.ndarray, order: np.ndarray, classes: list[str], groups: np.ndarray,
                         title: str, name: str, names: list[str] | None = None) -> alt.Chart:
    """Kernels (rows, in ``order``) × classes heatmap of one value per cell, with tooltips and click
    (the selection's ``kernel`` is the kernel's index; ``names`` label the rows, default ``k<index>``)."""
    k, c = values.shape
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    df = pd.DataFrame({
        "kernel": np.repeat(np.arange(k), c), "class": np.tile(np.array(classes, dtype=object), k),
        "value": values.reshape(-1), "row": np.repeat(rank, c), "group": np.repeat(groups, c) + 1,
    })
    df["label"] = np.array(_names(names, k), dtype=object)[df["kernel"].to_numpy()]
    select = alt.selection_point(name="cell", fields=["kernel", "class"], on="click")
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("class:N", sort=list(classes), title="class", axis=alt.Axis(labelAngle=-40, labelLimit=0)),
        y=alt.Y("label:N", sort=alt.EncodingSortField("row"), title="kernel (cluster order)",
                axis=alt.Axis(labelOverlap=False, labelFontSize=11 if k <= 64 else 8)),
        color=alt.Color("value:Q", scale=scale(name), title=title),
        opacity=alt.condition(select, alt.value(1.0), alt.value(0.55)),
        tooltip=["label", "class", "group", alt.Tooltip("value:Q", format=".3f", title=title)],
    ).add_params(select).properties(height=alt.Step(26 if k <= 24 else 18 if k <= 64 else 10))


def position_heatmap(values: np.ndarray, title: str, name: str) -> alt.Chart:
    """One kernel-class map (H, W) with a tooltip per position."""
    h, w = values.shape
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    df = pd.DataFrame({"i": ii.ravel(), "j": jj.ravel(), "value": values.ravel()})
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("j:O", title="j (column)"), y=alt.Y("i:O", title="i (row)"),
        color=alt.Color("value:Q", scale=scale(name), title=title),
        tooltip=["i", "j", alt.Tooltip("value:Q", format=".3f", title=title)],
    ).properties(width=alt.Step(max(2, 320 // max(h, w))), height=alt.Step(max(2, 320 // max(h, w))),  # square
                 autosize=OWN_SIZE)


def odm_heatmap(odm: np.ndarray, order: np.ndarray, groups: np.ndarray | None = None,
                names: list[str] | None = None) -> alt.Chart:
    """The ODM (eq. 2), square, in ``order``, with the AOM grid's groups outlined in red."""
    k = odm.shape[0]
    m = odm[np.ix_(order, order)]
    names = _names(names, k)
    labels = [names[i] for i in order]
    df = pd.DataFrame({"k1": np.repeat(labels, k), "k2": np.tile(labels, k), "D": m.reshape(-1),
                       "r": np.repeat(np.arange(k), k), "c": np.tile(np.arange(k), k)})
    side = min(720, max(320, 26 * k))
    x = alt.X("c:Q", scale=alt.Scale(domain=[0, k], nice=False), axis=None)
    y = alt.Y("r:Q", scale=alt.Scale(domain=[0, k], nice=False, reverse=True), axis=None)
    cells = alt.Chart(df).mark_rect().encode(
        x=x, x2="c2:Q", y=y, y2="r2:Q", color=alt.Color("D:Q", scale=scale("difference", float(m.max() or 1.0)),
                                                        title="ODM D", legend=alt.Legend(gradientLength=side // 2)),
        tooltip=[alt.Tooltip("k1", title="kernel"), alt.Tooltip("k2", title="kernel"),
                 alt.Tooltip("D:Q", format=".3f")],
    ).transform_calculate(c2="datum.c + 1", r2="datum.r + 1")
    layers = [cells]
    if k <= 80:  # every kernel labelled, left and top
        size = 11 if k <= 40 else 7
        left = pd.DataFrame({"label": labels, "c": -0.2, "r": np.arange(k) + 0.5})
        top = pd.DataFrame({"label": labels, "c": np.arange(k) + 0.5, "r": -0.2})
        layers.append(alt.Chart(left).mark_text(align="right", baseline="middle", fontSize=size, color=LABEL).encode(
            x=x, y=y, text="label"))
        layers.append(alt.Chart(top).mark_text(align="left", baseline="middle", angle=270, fontSize=size,
                                               color=LABEL).encode(
            x=x, y=y, text="label"))
    if groups is not None:
        g = np.asarray(groups)[order]
        starts = [0] + [r for r in range(1, k) if g[r] != g[r - 1]]
        ends = starts[1:] + [k]
        boxes = pd.DataFrame({"a": starts, "b": ends})
        layers.append(alt.Chart(boxes).mark_rect(fill=None, stroke="#dc0000", strokeWidth=2).encode(
            x=alt.X("a:Q", scale=alt.Scale(domain=[0, k], nice=False), axis=None), x2="b:Q",
            y=alt.Y("a:Q", scale=alt.Scale(domain=[0, k], nice=False, reverse=True), axis=None), y2="b:Q"))
    return alt.layer(*layers).properties(width=side, height=side, padding={"left": 40, "top": 40}, autosize=OWN_SIZE)


def ranking_table(selectivity: np.ndarray, groups: np.ndarray, flags: dict, keep: set[int],
                  names: list[str] | None = None) -> pd.DataFrame:
    """Kernels ranked by s(k) with group, mean occurrence, flags, keep and why (:func:`aomcore.keep_reasons`,
    naming kernels by ``names``)."""
    k = len(selectivity)
    df = pd.DataFrame({
        "kernel": np.arange(k), "group": groups + 1, "selectivity s(k)": selectivity,
        "mean occurrence": flags["mean_occurrence"], "dead": flags["dead"], "always on": flags["always_on"],
        "keep": [i in keep for i in range(k)],
        "why": keep_reasons(selectivity, groups, flags, sorted(keep), names=names),
    })
    return df.sort_values("selectivity s(k)", ascending=False).reset_index(drop=True)


# Seconds per 1,000 training images per epoch, measured on this project's 2-core CPU machines.
_TRAIN_SECONDS_PER_1K = {"zoo:digits_net": 0.07, "zoo:paper_mnist": 0.17}


def expected_training_time(arch: str, dataset: str, n_images: int, epochs: int) -> str:
    """A line saying about how long training will take on a 2-core CPU (unknown for other models)."""
    rate = _TRAIN_SECONDS_PER_1K.get(arch)
    if rate is None:
        return f"Training {arch} on {n_images:,} images × {epochs} epoch(s): time unknown for this model."
    seconds = max(1.0, rate * n_images / 1000 * epochs)
    when = f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"
    return (f"Training {arch} on {n_images:,} images × {epochs} epoch(s) takes {when} on a 2-core CPU "
            "(less on a GPU). It runs in the background: you can leave this page.")


def numbers(text: str, what: str) -> tuple[float, ...] | None:
    """Parse "0.5, 0.25" into floats (None for an empty field)."""
    if not text.strip():
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{what} must be numbers", expected="comma-separated numbers such as 0.1307",
                         found=repr(text)) from None


def check_upload(data: bytes, name: str, what: str) -> bytes:
    """Refuse empty or oversize uploads with a clear message (the limit is the policy's); returns ``data``."""
    return current_policy().check_upload(data, name, what)


def save_upload(data: bytes, name: str, suffix: str) -> str:
    """Store an uploaded file (a dataset ``.npz``, an architecture ``.py``) under the cache, in a folder
    named by its content hash and under the user's own file name (``uploads/<sha256>/<name><suffix>``),
    so the dataset or architecture spec (and the sidebar) name the file the user chose; returns its path."""
    check_upload(data, name, f"a {suffix} file")
    cache = DiskCache()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name.removesuffix(suffix)).strip("._")[:64] or "upload"
    key = f"{hashlib.sha256(data).hexdigest()}/{stem}"
    path = cache.lookup("uploads", key, suffix)
    if path is None:
        path = cache.commit("uploads", key, suffix, lambda tmp: tmp.write_bytes(data))
    return str(path)


def experiment_charts(rows: list[dict]) -> tuple[alt.Chart, alt.Chart]:
    """Fig. 8 of the paper: kernels selective / not per class (top), accuracy per condition (bottom)."""
    df = pd.DataFrame(rows)
    order = list(df["class"])
    counts = df.melt(id_vars="class", value_vars=["n_selective", "n_not_selective"], var_name="kind",
                     value_name="kernels")
    counts["kind"] = counts["kind"].map({"n_selective": "selective", "n_not_selective": "not selective"})
    top = alt.Chart(counts).mark_bar().encode(
        x=alt.X("class:N", sort=order, title="class"), y=alt.Y("kernels:Q", title="kernels"),
        color=alt.Color("kind:N", scale=alt.Scale(domain=["selective", "not selective"],
                                                  range=["#2ca02c", "#d62728"]), title=None),
        tooltip=["class", "kind", "kernels"],
    ).properties(height=200)
    acc = df.melt(id_vars="class", value_vars=["acc_all", "acc_selective_kept", "acc_selective_removed"],
                  var_name="condition", value_name="accuracy")
    names = {"acc_all": "all kernels", "acc_selective_kept": "selective kept", "acc_selective_removed":
             "selective removed"}
    acc["condition"] = acc["condition"].map(names)
    bottom = alt.Chart(acc).mark_bar().encode(
        x=alt.X("class:N", sort=order, title="class"),
        xOffset=alt.XOffset("condition:N", sort=list(names.values())),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="test accuracy"),
        color=alt.Color("condition:N", sort=list(names.values()),
                        scale=alt.Scale(range=["#7f7f7f", "#2ca02c", "#d62728"]), title=None),
        tooltip=["class", "condition", alt.Tooltip("accuracy:Q", format=".2%")],
    ).properties(height=260)
    return top, bottom


def training_curve(metrics: list[dict]) -> alt.Chart:
    """Live loss and batch accuracy per step."""
    df = pd.DataFrame(metrics)[["step", "loss", "accuracy"]].melt("step", var_name="metric")
    return alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q", axis=alt.Axis(format="d", tickMinStep=1)), y=alt.Y("value:Q", title=None),
        color=alt.Color("metric:N", title=None),
        tooltip=["step:Q", "metric:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=180)


def run_curve(ws, run_id: str | None) -> alt.Chart | None:
    """The loss/accuracy curve of a workspace run, or None without one."""
    from aomcore.store.runs import read_metrics

    if not run_id or not (ws.runs_dir / run_id).is_dir():
        return None
    metrics = read_metrics(ws.runs_dir / run_id)
    return training_curve(metrics) if metrics else None


def count(n: int) -> str:
    """A count short enough for a metric: 1,126,552 → '1.13 M', 298,810 → '298,810'."""
    return f"{n / 1e9:.2f} G" if n >= 1e9 else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n:,}"


def version_row(record: dict, current_id: int | None) -> dict:
    """One version as a table row (accuracy, size, kernels, retraining)."""
    m = record["metrics"]
    return {"version": f"v{record['id']}", "parent": "" if record["parent"] is None else f"v{record['parent']}",
            "note": record["note"], "test accuracy": m["accuracy"], "params": m["params"], "FLOPs": m["flops"],
            "kernels": ", ".join(f"{k}:{n}" for k, n in m["kernels"].items()),
            "retrain s": round(record.get("retrain_seconds") or 0.0, 1), "current": record["id"] == current_id}


def before_after_chart(classes: list[str], before: list[float], after: list[float], a: str, b: str) -> alt.Chart:
    """Per-class test accuracy of two versions, grouped bars."""
    df = pd.DataFrame({"class": list(classes) * 2, "version": [a] * len(classes) + [b] * len(classes),
                       "accuracy": list(before) + list(after)})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(classes)), xOffset="version:N",
        y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format="%"), title="test accuracy"),
        color=alt.Color("version:N", title=None),
        tooltip=["class", "version", alt.Tooltip("accuracy:Q", format=".2%")],
    ).properties(height=220)


def versions_chart(rows: pd.DataFrame) -> alt.HConcatChart:
    """Accuracy against parameters and against FLOPs, one point per version (the current one red),
    a grey line from each version to its parent; labels take their point's colour, legible in light
    and dark themes."""
    colour = alt.condition("datum.current", alt.value("#d62728"), alt.value("#1f77b4"))
    base = alt.Chart(rows).encode(
        y=alt.Y("test accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
        tooltip=["version", "note", alt.Tooltip("test accuracy:Q", format=".2%"), "params", "FLOPs"],
    )
    by_version = rows.set_index("version")
    children = rows[rows["parent"].isin(by_version.index)]
    panels = []
    for x in ("params", "FLOPs"):
        edges = pd.DataFrame({"x": children[x].to_numpy(), "y": children["test accuracy"].to_numpy(),
                              "x2": by_version.loc[children["parent"], x].to_numpy(),
                              "y2": by_version.loc[children["parent"], "test accuracy"].to_numpy()})
        lines = alt.Chart(edges).mark_rule(color="#999999", strokeWidth=1.5).encode(
            x=alt.X("x:Q", scale=alt.Scale(zero=False), title=x), x2="x2:Q",
            y=alt.Y("y:Q", scale=alt.Scale(zero=False), title="test accuracy"), y2="y2:Q")
        points = base.mark_circle(size=120, opacity=1).encode(x=alt.X(f"{x}:Q", scale=alt.Scale(zero=False)),
                                                              color=colour)
        labels = base.mark_text(dx=10, align="left", fontWeight="bold").encode(x=f"{x}:Q", text="version",
                                                                                color=colour)
        panels.append((lines + points + labels).properties(width=320, height=240))
    return alt.hconcat(*panels)


def state_dict_bytes(model, fmt: str) -> bytes:
    """A model's state_dict as ``.pt`` (torch.save) or ``.safetensors`` bytes."""
    import io

    import torch
    from safetensors.torch import save

    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        return save(sd)
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()
