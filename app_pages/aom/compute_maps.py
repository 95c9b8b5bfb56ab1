"""Compute maps: one forward pass over a split fills the AOM counters of every chosen layer (a job)."""

import streamlit as st
import torch

from aomcore.base import limits
from ui import cached, views
from ui.jobs import job_outcome, job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Compute maps")
st.caption("Activation occurrence maps (eq. 1), ODM (eq. 2), CSM (eq. 3) and kernel selectivity (eq. 4) of "
           "Garcia et al. 2019, from one pass over the data, in the background. Results are kept in the workspace "
           "by content, so asking again is instant.")
require_model(v)

train_set = v.split("train")
every = cached.layer_table(v.model.digest, train_set.input_shape, True, v.model)
defaults = [r["name"] for r in every if r["kind"] == "conv"] or [r["name"] for r in every if r["kind"] == "fc"]
kinds = {r["name"]: f"{r['name']}  ·  {r['type']} {r['output_shape']}" for r in every}
chosen = set(v.maps_info.get("layers", [])) | set(defaults)  # every conv layer, and whatever was computed
layers = st.multiselect("Layers", list(kinds), default=[n for n in kinds if n in chosen], format_func=kinds.get,
                        help="A conv or FC layer is read after its BatchNorm/activation (the activation the next "
                             "layer sees); any other module is read at its own output.")
left_out = cached.unanalysable(v.model.digest, train_set.input_shape, v.model)
if left_out:
    st.caption("Not analysable, so not listed: " + "; ".join(f"**{views.plain(n)}**, {why}" for n, why in left_out)
               + ".")
c1, c2, c3, c4 = st.columns(4)
split = c1.radio("Split", ["train", "test"], horizontal=True, help="The paper uses the training images.")
threshold = c2.number_input("Threshold", value=0.0, step=0.01, format="%.4f",
                            help="An activation occurs when it is strictly greater than this.")
device = c3.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))
batch_size = c4.number_input("Batch size", limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX, 256)

running = bool(v.active_jobs(("maps",)))
if st.button("Compute", type="primary", disabled=not layers or running, key="compute"):
    if submit(v.ws, "maps", {"version": v.version_id, "layers": layers, "split": split, "threshold": threshold,
                             "batch_size": int(batch_size), "device": device}):
        st.rerun()
job_panel(v, ("maps",))
job_outcome(v, "maps")

if not v.maps:
    if not running:
        st.info(f"Choose layers and press **Compute** (maps of v{v.version_id}).")
    st.stop()

info = v.maps_info
st.success(f"Maps of {len(v.maps)} layer(s) of v{info['version']} over {info['n_images']:,} {info['split']} images "
           f"in {info['seconds']:.1f} s{' (already in the workspace)' if info['from_cache'] else ''}.")
st.dataframe(views.maps_summary(v.maps), hide_index=True, width="stretch",
             column_config={"mean occurrence": st.column_config.NumberColumn(format="%.3f")})
# the next step: the loop's link below
