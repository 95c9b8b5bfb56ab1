"""Edit & retrain: apply one edit to the current version, retrain in the background, compare."""

import pandas as pd
import streamlit as st
import torch

import aomcore
from aomcore.base import limits
from ui import cached, tables, views
from ui.aom import overview as views_overview
from ui.jobs import job_outcome, job_panel
from ui.state import layer_in_focus, reported, require_model, submit, view

v = view()
st.title("Edit & retrain")
st.caption("The paper's loop (Fig. 1): edit a layer — drop redundant or dead kernels (Task 1), widen a too-small "
           "layer (Task 2), add a layer to a too-shallow model (Task 3) — retrain, compare, undo if accuracy drops. "
           "Retraining runs in the background: you can leave this page or reload it.")
require_model(v)

current = v.version
running = bool(v.active_jobs(("retrain",)))
shape = v.split("train").input_shape
st.caption(f"Editing **v{current['id']}** ({current['note']}) · test accuracy {current['metrics']['accuracy']:.2%}")

kernels = current["metrics"]["kernels"]
layers = list(kernels)[:-1]  # the output layer has one neuron per class: not editable
proposed = st.session_state.pop("proposed_edit", None)  # from Layer overview, for this version only
if proposed and proposed["digest"] == current["digest"] and proposed["layer"] in layers:
    label = views_overview.EDIT_LABELS[proposed["kind"]]
    st.session_state.update({"edit_layer": proposed["layer"], "edit_kind": label})
    if proposed.get("kernels"):
        st.session_state[f"kernels_{current['digest'][:12]}_{proposed['layer']}_{label}"] = proposed["kernels"]
    if proposed.get("n"):
        st.session_state[f"widen_{proposed['layer']}"] = int(proposed["n"])
    summary = views_overview.edit_summary(proposed, v.kernel_names(proposed["layer"], kernels[proposed["layer"]]))
    st.info(f"Pre-filled from **Layer overview**: {summary}. Check it, then apply.",
            icon=":material/lightbulb:")
c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", layers, format_func=lambda n: f"{n} ({kernels[n]} kernels)", key="edit_layer",
                     index=0 if "edit_layer" in st.session_state else layer_in_focus(layers))  # as last looked at
kind = c2.radio("Edit", list(views_overview.EDIT_LABELS.values()), horizontal=True, key="edit_kind")
selection = v.selection
edit = None
if kind in ("Remove kernels", "Re-initialise kernels"):
    key = f"kernels_{current['digest'][:12]}_{layer}_{kind}"
    default = [k for k in range(kernels[layer]) if k not in selection[layer]] if layer in selection else []
    if key in st.session_state:
        default = None  # the widget's own value (or the pre-filled one) wins
    elif layer in selection:
        st.caption(f"Pre-filled from your selection on **Select kernels**: drop {len(default)}, "
                   f"keep {kernels[layer] - len(default)}.")
    else:
        st.caption("Tip: compute maps and choose the kernels to keep on **Select kernels**; they pre-fill here.")
    label = "Kernels to remove" if kind == "Remove kernels" else "Kernels to re-initialise"
    names = v.kernel_names(layer, kernels[layer])  # the first version's names (k16+: added by an edit)
    chosen = st.multiselect(label, list(range(kernels[layer])), default=default, format_func=names.__getitem__,
                            key=key)
    if chosen:
        edit = aomcore.Edit("remove" if kind == "Remove kernels" else "reinit", layer, tuple(chosen))
elif kind == "Widen":
    key = f"widen_{layer}"
    n = st.number_input("Kernels to add", 1, 4096, None if key in st.session_state else max(1, kernels[layer] // 4),
                        key=key)
    edit = aomcore.Edit("widen", layer, n=int(n or 1))
else:
    edit = aomcore.Edit("insert", layer)

st.markdown("**Retraining**")
with st.container(border=True):
    freeze = st.radio("Freeze (layers whose weights stay fixed while retraining)", aomcore.FREEZE_MODES,
                      horizontal=True, captions=["remove → upto, other edits → before", "the edited layer and all "
                                                 "before it (the paper's protocol)", "the layers before the edited "
                                                 "one", "only the edited layer", "nothing: every layer trains"])
    r2, r3, r4, r5 = st.columns(4)
    recipe = aomcore.default_train_config(v.dataset)  # MNIST: 1 epoch as the paper; digits: 30 short epochs
    epochs = r2.number_input("Epochs", limits.EPOCHS_MIN, limits.EPOCHS_MAX, recipe.epochs)
    lr = r3.number_input("Learning rate", 1e-5, 1.0, recipe.lr, format="%.4f")
    batch = r4.number_input("Batch size", limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX, recipe.batch_size)
    device = r5.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))

if edit is not None:
    with reported():
        p = cached.edit_preview(current["digest"], edit.to_dict(), shape, v.model.model)
        b, a = p["before"], p["after"]
        m1, m2, m3 = st.columns(3)
        m1.metric(f"Kernels in {layer}", f"{b['kernels'][layer]} → {a['kernels'].get(layer, '—')}")
        m2.metric("Parameters", f"{b['params']:,} → {a['params']:,}", delta=f"{a['params'] - b['params']:+,}",
                  delta_color="off")
        m3.metric("FLOPs / image", f"{views.count(b['flops'])} → {views.count(a['flops'])}",
                  delta=f"{a['flops'] - b['flops']:+,}",
                  delta_color="off")
        if st.button("Apply and retrain", type="primary", disabled=running, key="apply"):
            config = aomcore.TrainConfig(epochs=int(epochs), lr=float(lr), batch_size=int(batch))
            if submit(v.ws, "retrain", {"parent": current["id"], "edit": edit.to_dict(), "freeze": freeze,
                                        "config": config.__dict__, "device": device}):
                st.rerun()

job_panel(v, ("retrain",), chart=True)
job_outcome(v, "retrain")

parent = v.versions.get(current["parent"]) if current["parent"] is not None else None
if parent is not None:
    st.subheader(f"v{parent['id']} → v{current['id']}")
    st.caption(f"{current['note']} · retrained in {current['retrain_seconds']:.1f} s")
    m1, m2, m3 = st.columns(3)
    m1.metric("Test accuracy", f"{current['metrics']['accuracy']:.2%}",
              delta=f"{100 * (current['metrics']['accuracy'] - parent['metrics']['accuracy']):+.2f} pt")
    m2.metric("Parameters", f"{current['metrics']['params']:,}",
              delta=f"{current['metrics']['params'] - parent['metrics']['params']:+,}", delta_color="inverse")
    flops = parent["metrics"]["flops"], current["metrics"]["flops"]
    m3.metric("FLOPs / image", f"{views.count(flops[0])} → {views.count(flops[1])}",
              delta=f"{current['metrics']['flops'] - parent['metrics']['flops']:+,}", delta_color="inverse")
    classes = v.split("test").classes
    st.caption("Per-class test accuracy change (percentage points; hover for both values).")
    st.vega_lite_chart(cached.chart_spec(views_overview.accuracy_difference_chart, classes,
                                         parent["metrics"]["per_class"], current["metrics"]["per_class"],
                                         f"v{parent['id']}", f"v{current['id']}"), width="stretch")
    curve = views.run_curve(v.ws, current.get("run"))
    if curve is not None:
        st.altair_chart(curve, width="stretch")
    tables.table(pd.DataFrame([views.version_row(r, v.version_id) for r in (parent, current)]),
                 {"test accuracy": None}, hide_index=True, width="stretch",
                 column_config={"params": st.column_config.NumberColumn(format="localized"),
                                "FLOPs": st.column_config.NumberColumn(format="localized")})
    st.page_link("app_pages/aom/versions.py", label="All versions: compare, revert, download",
                 icon=":material/history:")
