"""Edit & retrain: apply one edit to the current version, retrain in the background, compare."""

import pandas as pd
import streamlit as st
import torch

import aomcore
from ui import cached, views
from ui.jobs import job_outcome, job_panel
from ui.state import reported, require_model, submit, view

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
c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", layers, format_func=lambda n: f"{n} ({kernels[n]} kernels)")
kind = c2.radio("Edit", ["Remove kernels", "Re-initialise kernels", "Widen", "Insert a layer after"],
                horizontal=True)
selection = v.selection
edit = None
if kind in ("Remove kernels", "Re-initialise kernels"):
    default = [k for k in range(kernels[layer]) if k not in selection[layer]] if layer in selection else []
    if layer in selection:
        st.caption(f"Pre-filled from your selection on **Select kernels**: drop {len(default)}, "
                   f"keep {kernels[layer] - len(default)}.")
    else:
        st.caption("Tip: compute maps and choose the kernels to keep on **Select kernels**; they pre-fill here.")
    label = "Kernels to remove" if kind == "Remove kernels" else "Kernels to re-initialise"
    chosen = st.multiselect(label, list(range(kernels[layer])), default=default, format_func=lambda k: f"k{k}",
                            key=f"kernels_{current['digest'][:12]}_{layer}_{kind}")
    if chosen:
        edit = aomcore.Edit("remove" if kind == "Remove kernels" else "reinit", layer, tuple(chosen))
elif kind == "Widen":
    n = st.number_input("Kernels to add", 1, 4096, max(1, kernels[layer] // 4))
    edit = aomcore.Edit("widen", layer, n=int(n))
else:
    edit = aomcore.Edit("insert", layer)

with st.expander("Retraining", expanded=False):
    r1, r2, r3, r4, r5 = st.columns(5)
    freeze = r1.selectbox("Freeze", aomcore.FREEZE_MODES, help="auto: remove → upto (the paper's protocol: the "
                          "edited layer and all before it stay fixed); other edits → before (the edited layer trains)")
    recipe = aomcore.default_train_config(v.dataset)  # MNIST: 1 epoch as the paper; digits: 30 short epochs
    epochs = r2.number_input("Epochs", 1, 100, recipe.epochs)
    lr = r3.number_input("Learning rate", 1e-5, 1.0, recipe.lr, format="%.4f")
    batch = r4.number_input("Batch size", 1, 4096, recipe.batch_size)
    device = r5.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))

if edit is not None:
    with reported():
        p = cached.edit_preview(current["digest"], edit.to_dict(), shape, v.model.model)
        b, a = p["before"], p["after"]
        m1, m2, m3 = st.columns(3)
        m1.metric(f"Kernels in {layer}", f"{b['kernels'][layer]} → {a['kernels'].get(layer, '—')}")
        m2.metric("Parameters", f"{a['params']:,}", delta=f"{a['params'] - b['params']:+,}", delta_color="off")
        m3.metric("FLOPs / image", f"{a['flops']:,}", delta=f"{a['flops'] - b['flops']:+,}", delta_color="off")
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
    st.caption(current["note"])
    m1, m2, m3 = st.columns(3)
    m1.metric("Test accuracy", f"{current['metrics']['accuracy']:.2%}",
              delta=f"{100 * (current['metrics']['accuracy'] - parent['metrics']['accuracy']):+.2f} pt")
    m2.metric("Parameters", f"{current['metrics']['params']:,}",
              delta=f"{current['metrics']['params'] - parent['metrics']['params']:+,}", delta_color="inverse")
    m3.metric("Retrained in", f"{current['retrain_seconds']:.1f} s")
    classes = v.split("test").classes
    st.altair_chart(views.before_after_chart(classes, parent["metrics"]["per_class"], current["metrics"]["per_class"],
                                             f"v{parent['id']}", f"v{current['id']}"), width="stretch")
    curve = views.run_curve(v.ws, current.get("run"))
    if curve is not None:
        st.altair_chart(curve, width="stretch")
    st.dataframe(pd.DataFrame([views.version_row(r, v.version_id) for r in (parent, current)]), hide_index=True)
    st.page_link("pages/versions.py", label="All versions: compare, revert, download", icon=":material/history:")
