"""Charts and tables of the "look and decide" views: layer overview, class difference, multi-class
kernels, two versions side by side (Altair specs and DataFrames; no Streamlit calls)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from aomcore.base.editing import kernel_ranges
from aomcore.base.lineage import Lineage, kernel_list, kernel_names, renamed, shared_names
from ui.views import OWN_SIZE, scale

#: The paper's three tasks (Garcia et al. 2019, Sec. III), in its words.
TASKS = {1: "Find redundant or ineffective kernels", 2: "Find too small layers", 3: "Find too shallow models"}
#: The edit each task's finding proposes, as Edit & retrain names it.
EDIT_LABELS = {"remove": "Remove kernels", "reinit": "Re-initialise kernels", "widen": "Widen",
               "insert": "Insert a layer after"}


def overview_table(rows: list[dict]) -> pd.DataFrame:
    """One row per layer of :func:`aomcore.layer_overview`, as the page shows it."""
    out = []
    for r in rows:
        tasks = sorted({f["task"] for f in r["findings"]})
        out.append({
            "layer": r["layer"], "kernels": r["kernels"], "dead": r["dead"], "always on": r["always_on"],
            "redundant groups": f"{r['redundant_groups']} of {r['groups']} ({r['redundant_kernels']} kernels)",
            "mean s(k)": r["mean_selectivity"],
            "least separated classes": " / ".join(r["least_separated"]), "E": r["least_separated_e"],
            "multi-class share": r["multi_class_share"],
            "neighbourhood hit": r["neighborhood_hit"],
            "points to": ", ".join(f"Task {t}" for t in tasks) or "nothing listed",
        })
    return pd.DataFrame(out)


def edit_summary(edit: dict | None, names: list[str] | None = None) -> str:
    """'Remove kernels k1, k4–k9 (7) in conv1' — the pre-filled edit a finding proposes; with the
    layer's kernel ``names`` after an edit (:meth:`ui.state.View.kernel_names`), 'k1, k4, k17+'."""
    if edit is None:
        return "no edit applies here"
    label = EDIT_LABELS[edit["kind"]]
    if edit.get("kernels") and names is not None and renamed(names):
        return f"{label} {kernel_list(names, edit['kernels'])} ({len(edit['kernels'])}) in {edit['layer']}"
    if edit.get("kernels"):
        parts = kernel_ranges(edit["kernels"]).split(",")
        names = ", ".join("–".join(f"k{i}" for i in part.split("-")) for part in parts)
        return f"{label} {names} ({len(edit['kernels'])}) in {edit['layer']}"
    if edit["kind"] == "widen":
        return f"Widen {edit['layer']} by {edit['n']} kernels"
    return f"{label} {edit['layer']}"


def class_difference_chart(difference: np.ndarray, order: np.ndarray, classes: list[str]) -> alt.Chart:
    """The C×C class difference matrix E (the ODM's dual, Task 2), square, rows/columns in ``order``."""
    c = difference.shape[0]
    names = [classes[i] for i in order]
    m = difference[np.ix_(order, order)]
    df = pd.DataFrame({"class 1": np.repeat(names, c), "class 2": np.tile(names, c), "E": m.reshape(-1)})
    side = min(560, max(260, 44 * c))
    axis = alt.Axis(labelOverlap=False, labelLimit=0, labelAngle=0)
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("class 2:N", sort=names, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=0, labelAngle=-40)),
        y=alt.Y("class 1:N", sort=names, title=None, axis=axis),
        color=alt.Color("E:Q", scale=scale("difference", float(m.max() or 1.0)), title="E"),
        tooltip=["class 1", "class 2", alt.Tooltip("E:Q", format=".4f")],
    ).properties(width=side, height=side, autosize=OWN_SIZE)


def pairs_table(pairs: list[tuple[int, int, float]], classes: list[str], median: float) -> pd.DataFrame:
    return pd.DataFrame({"class": [classes[a] for a, _, _ in pairs], "and class": [classes[b] for _, b, _ in pairs],
                         "E": [e for _, _, e in pairs], "E / median": [e / median if median else np.nan
                                                                      for _, _, e in pairs]})


def classes_per_kernel_chart(per_kernel: np.ndarray, order: np.ndarray, strong: np.ndarray,
                             classes: list[str]) -> alt.Chart:
    """Classes with strong occurrence per kernel (Task 3): a bar per kernel in cluster order,
    the classes listed in the tooltip; kernels with two or more classes in orange."""
    labels = [f"k{i}" for i in order]
    df = pd.DataFrame({"kernel": labels, "classes": per_kernel[order],
                       "which": [", ".join(classes[c] for c in np.flatnonzero(strong[i])) or "—" for i in order]})
    df["multi-class"] = df["classes"] >= 2
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("kernel:N", sort=labels, title="kernel (cluster order)",
                axis=alt.Axis(labelOverlap=False, labelAngle=-90 if len(labels) > 24 else 0)),
        y=alt.Y("classes:Q", title="strong classes", axis=alt.Axis(tickMinStep=1, format="d"),
                scale=alt.Scale(domain=[0, len(classes)])),
        color=alt.Color("multi-class:N", scale=alt.Scale(domain=[False, True], range=["#1f77b4", "#ff7f0e"]),
                        title="2+ classes"),
        tooltip=["kernel", "classes", alt.Tooltip("which", title="strong for")],
    ).properties(height=240)


def accuracy_difference_chart(classes: list[str], a: list[float], b: list[float], name_a: str,
                              name_b: str) -> alt.Chart:
    """Per-class test accuracy of ``b`` minus ``a`` in percentage points: a 1-point change is a visible bar."""
    diff = 100 * (np.asarray(b) - np.asarray(a))
    df = pd.DataFrame({"class": list(classes), "difference": diff, "a": np.asarray(a) * 100,
                       "b": np.asarray(b) * 100})
    top = max(1.0, float(np.abs(diff).max()) * 1.15)
    bars = alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(classes), title=None,
                axis=alt.Axis(labelAngle=-40, labelLimit=0, labelOverlap=False)),
        y=alt.Y("difference:Q", title=f"{name_b} − {name_a} (points)", scale=alt.Scale(domain=[-top, top])),
        color=alt.condition("datum.difference >= 0", alt.value("#2ca02c"), alt.value("#d62728")),
        tooltip=["class", alt.Tooltip("a:Q", format=".2f", title=f"{name_a} %"),
                 alt.Tooltip("b:Q", format=".2f", title=f"{name_b} %"),
                 alt.Tooltip("difference:Q", format="+.2f", title="points")],
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="black").encode(y="y:Q")
    return (bars + zero).properties(height=240)


def _ids(lineage: Lineage | None, layer: str, k: int) -> dict[str, int]:
    """The layer's kernels by name → position (identity: ``k0…`` when the lineage does not know it)."""
    return {name: i for i, name in enumerate(kernel_names(lineage, layer, k))}


def _identity_change(a: dict[str, int], b: dict[str, int], relation: str = "line") -> str:
    """`` (gone: k1, k3; new: k16+)`` between two versions' kernel names, or ``""``; with ``relation``
    ``"branches"`` an added kernel (``k16+``) of one branch is never the other's."""
    if relation == "unrelated":
        return " (trained apart: no kernel in common)"
    shared = shared_names(a, b, relation)
    gone, new = [n for n in a if n not in shared], [n for n in b if n not in shared]
    parts = [f"gone: {_few(gone)}"] * bool(gone) + [f"new: {_few(new)}"] * bool(new)
    return f" ({'; '.join(parts)})" if parts else ""


def _few(names: list[str], most: int = 12) -> str:
    """Kernel names for a table cell, runs of original kernels as ranges (``k0, k2, k4–k10, k16+``)."""
    parts: list[list[str]] = []
    for name in names:
        prev = parts[-1][-1] if parts else ""
        if _index(name) is not None and _index(prev) is not None and _index(name) == _index(prev) + 1:
            parts[-1].append(name)
        else:
            parts.append([name])
    shown = [run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in parts]
    return ", ".join(shown[:most]) + (f" and {len(shown) - most} more" if len(shown) > most else "")


def _index(name: str) -> int | None:
    """The index of an original kernel's name (``k5`` → 5); None for an added one (``k16+``)."""
    return int(name[1:]) if name[:1] == "k" and name[1:].isdigit() else None


def compare_table(a: dict, b: dict, lineage_a: Lineage | None = None,
                  lineage_b: Lineage | None = None, relation: str = "line") -> pd.DataFrame:
    """Two version records side by side (A, B, change B − A): accuracy, parameters, FLOPs, kernels per
    layer, retrain time. With the versions' lineages (:mod:`aomcore.base.lineage`), each layer's change
    names the kernels aligned by identity: which of A's are gone in B, which of B's are new
    (``relation``: :func:`aomcore.kinship` of the two versions)."""
    ma, mb = a["metrics"], b["metrics"]
    rows = [("test accuracy", f"{ma['accuracy']:.2%}", f"{mb['accuracy']:.2%}",
             f"{100 * (mb['accuracy'] - ma['accuracy']):+.2f} pt"),
            ("parameters", f"{ma['params']:,}", f"{mb['params']:,}", f"{mb['params'] - ma['params']:+,}"),
            ("FLOPs / image", f"{ma['flops']:,}", f"{mb['flops']:,}", f"{mb['flops'] - ma['flops']:+,}")]
    for layer in dict.fromkeys([*ma["kernels"], *mb["kernels"]]):
        ka, kb = ma["kernels"].get(layer), mb["kernels"].get(layer)
        change = "" if ka is None or kb is None else f"{kb - ka:+d}"
        if ka is not None and kb is not None and (lineage_a or lineage_b):
            change += _identity_change(_ids(lineage_a, layer, ka), _ids(lineage_b, layer, kb), relation)
        rows.append((f"kernels in {layer}", "—" if ka is None else str(ka), "—" if kb is None else str(kb), change))
    ra, rb = a.get("retrain_seconds"), b.get("retrain_seconds")
    rows.append(("retrain time", "—" if ra is None else f"{ra:.1f} s", "—" if rb is None else f"{rb:.1f} s", ""))
    names = [f"A: v{a['id']}", f"B: v{b['id']}"]
    return pd.DataFrame(rows, columns=["", *names, "change"])
