"""Charts of the Training monitor (DeepEyes, Pezzotti et al. 2018): Altair specs, no Streamlit calls."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from aomcore.deepeyes.learning import histogram_change, learning_histogram, normalised_histograms
from ui.views import accuracy_floor

#: Charts as wide as their column with a plot of the height asked for; the axes, titles and legend
#: are added around it (Streamlit's default fits them into the height, squeezing the plot).
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def run_curves(metrics: list[dict], snapshots: list[dict]) -> tuple[alt.Chart | None, alt.LayerChart]:
    """Loss, and accuracy per step: the mini-batch's and the test accuracy at each snapshot
    (the loss chart is None without metrics, e.g. for an imported run)."""
    df = pd.DataFrame(metrics, columns=["step", "loss", "accuracy"])
    width = "container"
    loss = alt.Chart(df).mark_line(color="#d62728").encode(
        x=alt.X("step:Q", title="iteration"), y=alt.Y("loss:Q", title="loss (mini-batch)"),
        tooltip=["step:Q", alt.Tooltip("loss:Q", format=".3f")]).properties(height=200, width=width, autosize=FIT_WIDTH)
    tests = pd.DataFrame([{"step": s["iteration"], "accuracy": s["test_accuracy"], "what": "test (snapshot)"}
                          for s in snapshots if "test_accuracy" in s], columns=["step", "accuracy", "what"])
    # the axis starts under the lowest accuracy after the first tenth of the run, so the late 90s are
    # not a flat line at the top; the early, lower values are clipped at its floor
    late = pd.concat([df["accuracy"][len(df) // 10:], tests["accuracy"]]).dropna()
    floor = accuracy_floor(late.to_numpy()) if len(late) else 0.0
    y = alt.Y("accuracy:Q", title=f"accuracy (from {floor:.0%})", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=[floor, 1], nice=False))
    batch = alt.Chart(df.assign(what="mini-batch")).mark_line(opacity=0.5, clip=True).encode(
        x=alt.X("step:Q", title="iteration"), y=y,
        color=alt.Color("what:N", title=None, scale=alt.Scale(domain=["mini-batch", "test (snapshot)"],
                                                                range=["#1f77b4", "#ff7f0e"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["step:Q", alt.Tooltip("accuracy:Q", format=".2%")])  # typed: a run with no steps yet is empty
    test = alt.Chart(tests).mark_line(point=True, clip=True).encode(
        x="step:Q", y=y, color="what:N",
        tooltip=[alt.Tooltip("step:Q", title="iteration"), alt.Tooltip("accuracy:Q", format=".2%", title="test")])
    accuracy = ((batch + test) if metrics else test).properties(height=200, width=width, autosize=FIT_WIDTH)
    return (loss if metrics else None), accuracy


def _bins_frame(values: np.ndarray, windows: np.ndarray, edges: np.ndarray, name: str) -> pd.DataFrame:
    s, b = values.shape
    return pd.DataFrame({"iteration": np.repeat(windows, b), "window": np.repeat(np.arange(s), b),
                         "from": np.tile(edges[:-1], s), "to": np.tile(edges[1:], s), name: values.reshape(-1)})


def perplexity_heatmap(hist: np.ndarray, windows: np.ndarray, edges: np.ndarray) -> alt.Chart:
    """Snapshot window (rows, first at the top) × perplexity bin, coloured by the share of samples.

    ``hist`` (S, B) counts, ``windows`` (S,) closing iterations, ``edges`` (B+1,) bin edges.
    """
    df = _bins_frame(normalised_histograms(hist), windows, edges, "share")
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("from:Q", title="perplexity (1 = one filter active … K = all alike)",
                scale=alt.Scale(domain=[float(edges[0]), float(edges[-1])], nice=False)), x2="to:Q",
        y=alt.Y("iteration:O", title="window up to iteration", sort="ascending"),
        color=alt.Color("share:Q", scale=alt.Scale(scheme="viridis"), title="share of samples"),
        tooltip=[alt.Tooltip("iteration:O", title="up to iteration"), alt.Tooltip("from:Q", format=".1f"),
                 alt.Tooltip("to:Q", format=".1f"), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=min(400, max(200, 16 * len(windows))), width="container")


def learning_heatmap(hist: np.ndarray, windows: np.ndarray, edges: np.ndarray) -> alt.Chart:
    """DeepEyes' learning histogram: change of each window's histogram from the previous one.

    Diverging colours, centred on 0: blue where a perplexity bin gained a share of the
    samples, red where it lost; blue moving to the left = filters specialise. The first
    window (nothing before it) is left out.
    """
    diff = learning_histogram(hist)[1:]
    df = _bins_frame(diff, windows[1:], edges, "change")
    top = float(max(np.abs(diff).max(initial=0.0), 1e-6))
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("from:Q", title="perplexity", scale=alt.Scale(domain=[float(edges[0]), float(edges[-1])], nice=False)),
        x2="to:Q",
        y=alt.Y("iteration:O", title="window up to iteration"),
        color=alt.Color("change:Q", scale=alt.Scale(scheme="redblue", domain=[-top, top], domainMid=0),
                        title="change of share"),
        tooltip=[alt.Tooltip("iteration:O", title="up to iteration"), alt.Tooltip("from:Q", format=".1f"),
                 alt.Tooltip("to:Q", format=".1f"), alt.Tooltip("change:Q", format="+.1%")],
    ).properties(height=min(400, max(200, 16 * len(windows))), width="container")


def change_chart(layers: dict[str, dict[str, np.ndarray]], windows: np.ndarray, threshold: float) -> alt.LayerChart:
    """Per layer, the L1 change of the normalised perplexity histogram per window, with the threshold."""
    rows = [{"layer": name, "iteration": int(it), "change": float(c)}
            for name, arrays in layers.items()
            for it, c in zip(windows[1:], histogram_change(arrays["perplexity_histogram"])[1:], strict=True)]
    df = pd.DataFrame(rows, columns=["layer", "iteration", "change"])
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("iteration:Q", title="window up to iteration"),
        y=alt.Y("change:Q", title="change (L1)", scale=alt.Scale(type="symlog")),
        color=alt.Color("layer:N", sort=list(layers)),
        tooltip=["layer:N", "iteration:Q", alt.Tooltip("change:Q", format=".3f")])
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(strokeDash=[4, 4], color="gray").encode(
        y="threshold:Q")
    return (lines + rule).properties(height=200, width="container", autosize=FIT_WIDTH)


def activation_heatmap(max_activation: np.ndarray, frequency: np.ndarray, flags: dict[str, np.ndarray],
                       sort_by: str) -> alt.HConcatChart:
    """DeepEyes' activation heatmap: one cell per filter, in two grids with the same layout —
    coloured by maximum activation and by activation frequency — sorted (row by row, highest
    first) by ``sort_by`` ("max activation" or "frequency"). Dead filters carry a ✕,
    always-on ones a ●; hover shows the values."""
    k = len(max_activation)
    key = np.asarray(max_activation if sort_by == "max activation" else frequency, dtype=np.float64)
    order = np.lexsort((np.arange(k), -key))  # highest first, ties by filter index
    cols = max(1, math.ceil(math.sqrt(k * 2)))
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    flag = np.where(flags["dead"], "dead", np.where(flags["always_on"], "always on", ""))
    df = pd.DataFrame({"filter": np.arange(k), "label": [f"k{i}" for i in range(k)], "col": rank % cols,
                       "row": rank // cols, "max activation": np.asarray(max_activation, dtype=np.float64),
                       "frequency": np.asarray(frequency, dtype=np.float64), "flag": flag,
                       "mark": np.where(flags["dead"], "✕", np.where(flags["always_on"], "●", ""))})
    cell = max(10, min(28, 420 // cols))
    rows = int(rank.max()) // cols + 1 if k else 1
    tooltip = ["label", alt.Tooltip("max activation:Q", format=".3f"), alt.Tooltip("frequency:Q", format=".1%"),
               "flag"]
    panels = []
    for field, scheme in (("max activation", "viridis"), ("frequency", "magma")):
        base = alt.Chart(df).encode(x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None))
        rect = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
            color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme=scheme), title=field,
                            legend=alt.Legend(orient="bottom", format=".0%" if field == "frequency" else ".2f")),
            tooltip=tooltip)
        marks = base.mark_text(color="#ff3030", fontWeight="bold", fontSize=max(8, cell * 0.6)).encode(
            text="mark:N", tooltip=tooltip)
        panels.append((rect + marks).properties(width=cell * cols, height=cell * rows, title=field))
    return alt.hconcat(*panels).resolve_scale(color="independent")
