"""Compute maps: one forward pass over a split fills the AOM counters of every chosen layer."""

import time

import streamlit as st
import torch

import aomcore
from ui import cached, views
from ui.state import reported, require_model, workspace

ws = workspace()
st.title("Compute maps")
st.caption("Activation occurrence maps (eq. 1), ODM (eq. 2), CSM (eq. 3) and kernel selectivity (eq. 4) of "
           "Garcia et al. 2019, from one pass over the data. Results are cached on disk by the weights' digest.")
require_model(ws)

train_set = ws.split("train")
every = cached.layer_table(ws.model.digest, train_set.input_shape, True, ws.model)
defaults = [r["name"] for r in every if r["kind"] == "conv"] or [r["name"] for r in every if r["kind"] == "fc"]
kinds = {r["name"]: f"{r['name']}  ·  {r['type']} {r['output_shape']}" for r in every}
layers = st.multiselect("Layers", list(kinds), default=list(ws.maps) or defaults, format_func=kinds.get,
                        help="A conv or FC layer is read after its BatchNorm/activation (the activation the next "
                             "layer sees); any other module is read at its own output.")
c1, c2, c3, c4 = st.columns(4)
split = c1.radio("Split", ["train", "test"], horizontal=True, help="The paper uses the training images.")
threshold = c2.number_input("Threshold", value=0.0, step=0.01, format="%.4f",
                            help="An activation occurs when it is strictly greater than this.")
devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
device = c3.selectbox("Device", devices)
batch_size = c4.number_input("Batch size", 1, 8192, 256)

if st.button("Compute", type="primary", disabled=not layers, key="compute"):
    bar = st.progress(0.0, text="Counting activations…")
    with reported():
        data = ws.split(split)
        start = time.perf_counter()
        maps, hit = aomcore.cached_maps(
            ws.model, data, layers, threshold, int(batch_size), device,
            progress=lambda done, total: bar.progress(done / total, text=f"{done:,} / {total:,} images"))
        ws.maps, ws.selection = maps, {}
        ws.maps_info = {"key": aomcore.maps_key(ws.model.digest, data, layers, threshold), "split": split,
                        "digest": ws.model.digest,
                        "threshold": threshold, "seconds": time.perf_counter() - start, "from_cache": hit,
                        "n_images": len(data), "dataset": data.identity()}
    bar.empty()

if not ws.maps:
    st.info("Choose layers and press **Compute**.")
    st.stop()

info = ws.maps_info
st.success(f"Maps of {len(ws.maps)} layer(s) over {info['n_images']:,} {info['split']} images in "
           f"{info['seconds']:.1f} s{' (from the disk cache)' if info['from_cache'] else ''}.")
st.dataframe(views.maps_summary(ws.maps), hide_index=True, width="stretch")
st.page_link("pages/explore.py", label="Explore the maps", icon=":material/arrow_forward:")
