"""Edit & retrain: apply one edit to the current version, retrain in the background, compare."""

import pandas as pd
import streamlit as st
import torch

import aomcore
from ui import cached, views
from ui.jobs import RetrainJob
from ui.state import reported, require_model, workspace

ws = workspace()
st.title("Edit & retrain")
st.caption("The paper's loop (Fig. 1): edit a layer — drop redundant or dead kernels (Task 1), widen a too-small "
           "layer (Task 2), add a layer to a too-shallow model (Task 3) — retrain, compare, undo if accuracy drops.")
require_model(ws)

history = ws.versions()
job: RetrainJob | None = ws.job
running = job is not None and job.status == "running"
current = history.current
shape = ws.split("train").input_shape
st.caption(f"Editing **v{current.id}** ({current.note}) · test accuracy {current.metrics['accuracy']:.2%}")

kernels = current.metrics["kernels"]
layers = list(kernels)[:-1]  # the output layer has one neuron per class: not editable
c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", layers, format_func=lambda n: f"{n} ({kernels[n]} kernels)")
kind = c2.radio("Edit", ["Remove kernels", "Re-initialise kernels", "Widen", "Insert a layer after"],
                horizontal=True)
selection_ok = ws.maps_info.get("digest") == current.digest and layer in ws.selection
edit = None
if kind in ("Remove kernels", "Re-initialise kernels"):
    default = [k for k in range(kernels[layer]) if k not in ws.selection[layer]] if selection_ok else []
    if selection_ok:
        st.caption(f"Pre-filled from your selection on **Select kernels**: drop {len(default)}, "
                   f"keep {kernels[layer] - len(default)}.")
    else:
        st.caption("Tip: compute maps and choose the kernels to keep on **Select kernels**; they pre-fill here.")
    label = "Kernels to remove" if kind == "Remove kernels" else "Kernels to re-initialise"
    chosen = st.multiselect(label, list(range(kernels[layer])), default=default, format_func=lambda k: f"k{k}")
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
    recipe = aomcore.default_train_config(ws.dataset)  # MNIST: 1 epoch as the paper; digits: 30 short epochs
    epochs = r2.number_input("Epochs", 1, 100, recipe.epochs)
    lr = r3.number_input("Learning rate", 1e-5, 1.0, recipe.lr, format="%.4f")
    batch = r4.number_input("Batch size", 1, 4096, recipe.batch_size)
    device = r5.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))

if edit is not None:
    with reported():
        p = cached.edit_preview(current.digest, edit.to_dict(), shape, current.model)
        b, a = p["before"], p["after"]
        m1, m2, m3 = st.columns(3)
        m1.metric(f"Kernels in {layer}", f"{b['kernels'][layer]} → {a['kernels'].get(layer, '—')}")
        m2.metric("Parameters", f"{a['params']:,}", delta=f"{a['params'] - b['params']:+,}", delta_color="off")
        m3.metric("FLOPs / image", f"{a['flops']:,}", delta=f"{a['flops'] - b['flops']:+,}", delta_color="off")
        if st.button("Apply and retrain", type="primary", disabled=running):
            config = aomcore.TrainConfig(epochs=int(epochs), lr=float(lr), batch_size=int(batch))
            ws.job = RetrainJob(edit, current, history.next_id(), freeze, config, device).start(
                ws.split("train"), ws.split("test"))
            st.rerun()


@st.fragment(run_every=0.5)
def progress_panel():
    job: RetrainJob | None = ws.job
    if job is None:
        return
    status, metrics = job.snapshot()
    if status == "running":
        last = metrics[-1] if metrics else {"step": 0, "steps": 1, "epoch": 1, "loss": float("nan")}
        st.progress(last["step"] / last["steps"], text=f"Retraining after: {job.edit.describe()} — epoch "
                    f"{last['epoch']}, step {last['step']}/{last['steps']}, loss {last['loss']:.3f}")
        if metrics:
            st.altair_chart(views.training_curve(metrics), width="stretch")
        if st.button("Cancel", key="cancel_retrain"):
            job.cancel.set()
    elif not job.collected:
        st.rerun()  # finished during a fragment-only run: a full run collects it and redraws


progress_panel()
if job is not None and job.status == "cancelled":
    st.warning(f"Retraining cancelled: v{current.id} is still current, unchanged.")
elif job is not None and job.status == "failed":
    st.error(f"Retraining failed: {job.error}. v{current.id} is still current, unchanged.")

if current.parent is not None:
    parent = history.versions.get(current.parent)
    st.subheader(f"v{current.parent} → v{current.id}")
    st.caption(current.note)
    if parent is not None:
        m1, m2, m3 = st.columns(3)
        m1.metric("Test accuracy", f"{current.metrics['accuracy']:.2%}",
                  delta=f"{100 * (current.metrics['accuracy'] - parent.metrics['accuracy']):+.2f} pt")
        m2.metric("Parameters", f"{current.metrics['params']:,}",
                  delta=f"{current.metrics['params'] - parent.metrics['params']:+,}", delta_color="inverse")
        m3.metric("Retrained in", f"{current.retrain_seconds:.1f} s")
        classes = ws.split("test").classes
        st.altair_chart(views.before_after_chart(classes, parent.metrics["per_class"], current.metrics["per_class"],
                                                 f"v{parent.id}", f"v{current.id}"), width="stretch")
    if current.curve:
        st.altair_chart(views.training_curve(current.curve), width="stretch")
    st.dataframe(pd.DataFrame([v.row() for v in (parent, current) if v is not None]), hide_index=True)
    st.page_link("pages/versions.py", label="All versions: compare, revert, download", icon=":material/history:")
