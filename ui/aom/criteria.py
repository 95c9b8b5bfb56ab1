"""Select kernels' "Does looking help?": the user's selection against the automated pruning criteria.

Scores of the cheap criteria (maps and weights) are computed through :func:`ui.cached.criteria_scores`;
the ablation (every criterion's top N silenced on the test split, optionally removed and retrained) is
the ``criteria`` job.
"""

from __future__ import annotations

import json
import math

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import aomcore
from aomcore.base import limits
from ui import cached, tables
from ui.jobs import job_outcome, job_panel
from ui.state import View, submit

#: Criteria shown in the score table (cheap ones: no pass over data; Taylor and random are in the ablation
#: only), with their column headers.
NAMES = {"user": "your selection", "keep_rule": "the keep rule", "taylor": "Taylor", "random": "random"}
TABLE = {"selectivity": "s(k)", "mean_occurrence": "mean occurrence", "apoz": "1 − APoZ", "l1": "L1",
         "l2": "L2²", "bn_scale": "BN |γ|", "group_magnitude": "group L2 (TP default)", "fpgm": "FPGM"}


def _name(criterion: str) -> str:
    return NAMES.get(criterion) or TABLE.get(criterion) or criterion


def accuracy_chart(result: dict) -> alt.Chart:
    """Test accuracy of each selection with the other kernels silenced (and, when the comparison was
    retrained, after removing them and retraining), the user's selection in red."""
    retrained = bool(result.get("retrain_epochs"))
    rows = []
    for n, r in result["criteria"].items():
        rows.append({"selection": _name(n), "measure": "silenced", "accuracy": r["accuracy"], "you": n == "user"})
        if retrained:
            rows.append({"selection": _name(n), "measure": f"retrained {result['retrain_epochs']} epoch(s)",
                         "accuracy": r["retrained"]["accuracy"], "you": n == "user"})
    df = pd.DataFrame(rows)
    key = df[df["measure"] != "silenced"] if retrained else df
    order = list(key.sort_values("accuracy", ascending=False)["selection"])
    low = max(0.0, float(df["accuracy"].min()) - 0.05)
    chart = alt.Chart(df).mark_bar(clip=True).encode(
        y=alt.Y("selection:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
        x=alt.X("accuracy:Q", scale=alt.Scale(domain=[low, 1], zero=False), axis=alt.Axis(format="%"),
                title=f"test accuracy with {result['keep']} kernels of {result['layer']} kept"),
        color=alt.condition("datum.you", alt.value("#d62728"), alt.value("#7f7f7f")),
        tooltip=["selection", "measure", alt.Tooltip("accuracy:Q", format=".2%")],
    )
    if retrained:  # two bars a selection: silenced (light), retrained (dark)
        chart = chart.encode(yOffset=alt.YOffset("measure:N", sort="descending"),
                             opacity=alt.Opacity("measure:N", sort="descending", scale=alt.Scale(range=[1, 0.45]),
                                                 legend=alt.Legend(title=None, orient="bottom")))
    return chart.properties(height=(48 if retrained else 28) * len(order) + 40)


def score_table(scores: dict[str, list[float]], keep_n: int, kept: list[int], names: list[str]):
    """One row per kernel (``names``), one column per criterion; each criterion's top ``keep_n``
    highlighted (a Styler)."""
    df = pd.DataFrame(scores).rename(columns=TABLE)
    scores = [TABLE.get(c, c) for c in scores]
    df.insert(0, "kernel", names)
    df.insert(1, "yours", [i in set(kept) for i in range(len(df))])
    top = {c: set(aomcore.top_kernels(df[c].to_numpy(), keep_n)) for c in scores}

    def shade(column: pd.Series) -> list[str]:
        if column.name not in top:
            return [""] * len(column)
        return ["background-color: rgba(214, 39, 40, 0.25)" if i in top[column.name] else ""
                for i in range(len(column))]
    return df.style.apply(shade).format({c: f"{{:.{_decimals(df[c].to_numpy())}f}}" for c in scores})


def _decimals(values: np.ndarray) -> int:
    """Decimals giving a column's largest magnitude four significant digits, the same for every row
    (a column of ``.4g`` numbers switches between 2.716, 0.1272 and 0.0002241)."""
    finite = np.abs(values[np.isfinite(values)])
    if not finite.size or finite.max() == 0:
        return 3
    return int(min(8, max(0, 3 - math.floor(math.log10(finite.max())))))


def section(v: View, layer: str, kept: list[int], n_kernels: int) -> None:
    """Scores beside s(k), and the ablation of the user's selection against each criterion at the same N."""
    st.subheader("Does looking help?")
    st.caption("Your selection against the automated pruning criteria at the same number of kernels: weight "
               "magnitude (L1/L2, Li et al. 2017), BatchNorm scale (Liu et al. 2017), first-order Taylor "
               "(Molchanov et al. 2019), APoZ (Hu et al. 2016) from the same maps, s(k) and the keep rule, and "
               "random. Each keeps its top N; the other kernels are silenced on the test split (weights "
               "untouched: seconds) and, if you ask for retraining epochs, also removed and the network "
               "retrained with the paper's freezing (each selection from the same weights and seed).")
    digest = v.version["digest"]
    scores = cached.criteria_scores(digest, v.maps_info["key"], layer, tuple(TABLE), v.model, v.maps[layer],
                                    v.split("test").input_shape)
    n = len(kept)
    if 0 < n < n_kernels:
        st.dataframe(score_table(scores, n, kept, v.kernel_names(layer, n_kernels)), hide_index=True, width="stretch",
                     height=min(36 + 35 * n_kernels, 600))
        st.caption(f"Shaded: each criterion's top {n} (your N). `yours`: your keep column above.")
    running = bool(v.active_jobs(("criteria",)))
    a, b = st.columns([1, 2], vertical_alignment="bottom")
    epochs = a.number_input("Retraining epochs", limits.RETRAIN_EPOCHS_MIN, limits.RETRAIN_EPOCHS_MAX, 0,
                            key="criteria_epochs", help="0: silencing only (seconds). N: each selection is also "
                            "removed and retrained N epochs (minutes per selection).")
    if b.button(f"Compare your {n} kernels with the criteria", key="compare_criteria", type="primary",
                disabled=running or not 0 < n < n_kernels, help="A background job: maps of the train split "
                "(cached), Taylor on a train batch, accuracies on the test split."):
        if submit(v.ws, "criteria", {"version": v.version_id, "layer": layer, "keep": n, "user_keep": kept,
                                     "retrain_epochs": int(epochs)}):
            st.rerun()
    job_panel(v, ("criteria",))
    job_outcome(v, "criteria")
    found = [r for r in v.ws.results("criteria", digest) if r["layer"] == layer]
    if not found:
        return
    result = found[-1]["result"]
    if sorted(result["criteria"].get("user", {}).get("kept", [])) != kept:
        st.caption("The comparison below is of an earlier selection: press **Compare** to compare this one.")
    st.info(aomcore.summarize_criteria(result))
    st.vega_lite_chart(cached.chart_spec(accuracy_chart, result), width="stretch")
    table = pd.DataFrame([{"selection": _name(name), "silenced": r["accuracy"],
                           **({"retrained": r["retrained"]["accuracy"], "params": r["retrained"]["params"],
                               "MFLOPs": r["retrained"]["flops"] / 1e6} if "retrained" in r else {}),
                           "kept kernels": v.kernel_list(layer, n_kernels, r["kept"])}
                          for name, r in result["criteria"].items()])
    tables.table(table, {"silenced": "test accuracy, silenced",
                         "retrained": f"after removal + {result.get('retrain_epochs')} epoch(s)"},
                 hide_index=True, width="stretch",
                 column_config={"MFLOPs": st.column_config.NumberColumn(format="%.2f")})
    st.download_button("Comparison (JSON)", json.dumps(result, indent=2), f"criteria_{layer}.json",
                       "application/json", key="criteria_json")
