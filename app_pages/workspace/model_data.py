"""Model & data: the workspace's dataset; train a zoo model or load weights (with their edit list)."""

import json

import pandas as pd
import streamlit as st

import aomcore
from aomcore.base import limits
from aomcore.base.policy import current_policy
from ui import cached, views
from ui.jobs import job_outcome, job_panel
from ui.state import flash, new_workspace, reported, submit, switch_to, view

v = view()


def opened(target, arch: str) -> None:
    """Show ``target`` in this tab; a new workspace (another architecture) is announced there."""
    if target is not v.ws:
        flash(f"Created the workspace **{views.plain(target.name)}** for {views.plain(arch)}; "
              f"**{views.plain(v.state['name'])}** is kept under Workspaces.")
    switch_to(target)


st.title("Model & data")
st.caption("A workspace holds one dataset and the versions of one model trained on it. The maps of the paper are "
           "computed on this pair in **Compute maps**.")

# --- dataset ----------------------------------------------------------------------------
train_set, test_set = v.split("train"), v.split("test")
prep = v.state["dataset"]["prep"]
prep_text = ", ".join(f"{k.replace('_', ' ')} {val}" for k, val in prep.items() if val) or "scaled to [0, 1]"
st.subheader("Dataset")
st.caption(f"**{views.plain(v.dataset)}** · {len(train_set):,} train / {len(test_set):,} test images · "
           f"{train_set.num_classes} classes · input {train_set.input_shape} · {prep_text}")
for split, notes in (("train", train_set.notes), ("test", test_set.notes)):
    if notes:
        st.caption(f"How the {split} images were read: " + " · ".join(views.plain(n) for n in notes))
st.page_link("app_pages/workspace/workspaces.py", icon=":material/add_circle:",
             label="Another dataset? Create a workspace for it on Workspaces (this one is kept)")

# --- model ------------------------------------------------------------------------------
st.subheader("Model")
job_panel(v, ("train",), chart=True)
job_outcome(v, "train")
training = bool(v.active_jobs(("train",)))
zoo_default = aomcore.ZOO_FOR_DATASET.get(v.dataset, "paper_mnist")
source = st.radio("Source", ["Train a zoo model here", "Load weights"], horizontal=True, key="model_source")
if source == "Train a zoo model here":
    c1, c2, c3, c4 = st.columns(4)
    names = list(aomcore.ZOO)
    arch = c1.selectbox("Architecture", names, index=names.index(zoo_default), format_func=lambda n: f"zoo:{n}")
    recipe = aomcore.default_train_config(v.dataset)
    epochs = c2.number_input("Epochs", limits.EPOCHS_MIN, limits.EPOCHS_MAX, recipe.epochs)
    lr = c3.number_input("Learning rate", 1e-5, 1.0, recipe.lr, format="%.4f")
    snapshots = c4.number_input("Snapshots", limits.SNAPSHOTS_MIN, limits.SNAPSHOTS_MAX,
                                aomcore.store.runs.DEFAULT_SNAPSHOTS,
                                help="Weights kept over the run (first and last included) for the training views.")
    st.caption(views.expected_training_time(f"zoo:{arch}", v.dataset, len(train_set), int(epochs)))
    other_arch = v.state.get("arch") not in (None, f"zoo:{arch}")
    if other_arch:
        st.caption(f"This workspace holds {views.plain(v.state['arch'])}: training zoo:{arch} starts a new workspace "
                   "for it.")
    if st.button("Train", type="primary", key="train", disabled=training):
        config = aomcore.TrainConfig(epochs=int(epochs), lr=float(lr), batch_size=recipe.batch_size)
        target = v.ws if not other_arch else new_workspace(
            v.dataset, v.state["dataset"].get("data_root"), v.ws.preprocessing(), name=f"{v.dataset} · zoo:{arch}")
        if submit(target, "train", {"arch": f"zoo:{arch}", "config": config.__dict__,
                                    "snapshots": int(snapshots), "device": "auto"}):
            opened(target, f"zoo:{arch}")
            st.rerun()
else:
    c1, c2 = st.columns([1, 2])
    uploaded_code = st.session_state.get("arch_upload") is not None  # the .py uploader below, as last drawn
    arch = c1.text_input("Architecture", v.state.get("arch") or f"zoo:{zoo_default}", key="arch",
                         disabled=uploaded_code,
                         help="Not used: the uploaded .py file below gives the architecture" if uploaded_code else
                         "zoo:NAME, torchvision:NAME (e.g. torchvision:resnet18) or FILE.py:CLASS")
    weights = c2.file_uploader("Weights: a state_dict (.pt, loaded with weights_only=True) or .safetensors",
                               type=["pt", "pth", "safetensors"], key="weights_upload")
    code = code_class = None
    if not current_policy().shared:  # a shared server never runs a user's file (only allow-listed paths)
        a1, a2 = st.columns([2, 1])
        code = a1.file_uploader("…or upload the architecture's .py file (instead of typing a path)", type=["py"],
                                key="arch_upload", help="The file defines an nn.Module class whose constructor "
                                "takes no required argument (num_classes is passed if it has one).")
        if code is not None:
            with reported():
                classes = aomcore.architecture_classes(views.check_upload(code.getvalue(), code.name, "a .py file"))
                code_class = a2.selectbox("Class", classes, key="arch_class",
                                          help="Read from the file without running it; nn.Module subclasses first.")
                st.warning(f"Loading runs **{views.plain(code.name)}** on this machine to build the model, and again "
                           "whenever this workspace opens. Load it only if you trust it.", icon=":material/code:")
    trusted = code is None or st.checkbox(f"I trust {views.plain(code.name)}: run it", key="arch_trust")
    edits_file = st.file_uploader("Edit list (optional): the JSON from **Versions** or `edit --log`, for weights of "
                                  "an edited version", type=["json"], key="edits_upload")
    ready = weights is not None and (code is None or bool(code_class and trusted))
    if st.button("Load", type="primary", disabled=not ready, key="load_weights"):
        with reported():
            edits, arch_spec = [], arch.strip()
            if code is not None:  # stored by content under the cache, named by the user's file
                arch_spec = f"{views.save_upload(code.getvalue(), code.name, '.py')}:{code_class}"
            if edits_file is not None:
                text = views.check_upload(edits_file.getvalue(), edits_file.name, "an edit list").decode("utf-8",
                                                                                                         "replace")
                edits = aomcore.load_edits(text)
                meta = json.loads(text)
                if code is None and isinstance(meta, dict):  # an uploaded file beats the path the list names
                    arch_spec = meta.get("arch", arch_spec)
            current_policy().check_architecture(arch_spec)
            shown = f"{code.name}:{code_class}" if code is not None else arch_spec  # not the cache's path
            data = views.check_upload(weights.getvalue(), weights.name, "a state_dict file")
            loaded = aomcore.load_model(arch_spec, data, train_set.num_classes, train_set.input_shape,
                                        weights_name=weights.name, edits=edits)
            aomcore.check_model_fits(loaded.model, train_set)
            target = v.ws
            if v.state.get("arch") not in (None, arch_spec):
                target = new_workspace(v.dataset, v.state["dataset"].get("data_root"), v.ws.preprocessing(),
                                       name=f"{v.dataset} · {shown}")
            with st.spinner("Measuring accuracy, parameters and FLOPs…"):
                target.record_weights(loaded, note=f"loaded: {weights.name}"
                                      + (f" + {edits_file.name}" if edits_file else ""), test_set=test_set)
            opened(target, shown)
            st.rerun()

if v.model is None and v.model_problem:
    st.error(v.model_problem, icon=":material/error:")
    st.stop()
if v.model is None:
    if not training:
        st.info("No model yet: train a zoo model (press **Train**) or load weights above.")
    st.stop()

# --- what the model is ------------------------------------------------------------------
st.subheader("Layers")
rows = cached.layer_table(v.model.digest, train_set.input_shape, False, v.model)
st.dataframe(pd.DataFrame(rows)[["name", "type", "kind", "output_shape", "kernels", "params", "tap"]],
             hide_index=True, width="stretch",
             column_config={"output_shape": st.column_config.TextColumn("output shape"),
                            "tap": st.column_config.TextColumn("maps read at",
                                                               help="the activation the next layer sees")})
noted = [r for r in rows if r["tap_note"]]  # e.g. a read stopped before a residual add (ResNet blocks)
if noted:
    with st.expander(f"What the maps count at {len(noted)} read point(s) of this model"):
        st.markdown("\n".join(f"- **{views.plain(r['name'])}**: {views.plain(r['tap_note'])}" for r in noted))

metrics = v.version["metrics"]
st.subheader(f"Test accuracy of v{v.version_id}: {metrics['accuracy']:.2%}")
st.vega_lite_chart(cached.chart_spec(views.per_class_accuracy_chart, test_set.classes, metrics["per_class"],
                                     metrics["accuracy"]), width="stretch")

st.subheader("Examples per class")
images, labels = cached.examples(test_set.digest, tuple(sorted(prep.items())), 4, test_set)
st.image(views.examples_strip(images, labels, test_set.classes, 4), clamp=True,
         caption="columns, left to right: " + " · ".join(map(views.plain, test_set.classes)),
         width=min(900, 90 * len(test_set.classes)))
