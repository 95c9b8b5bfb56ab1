"""Selectivity experiment (Sec. V-C, Fig. 8): per-class accuracy with only the selective kernels, and without."""

import pandas as pd
import streamlit as st
import torch

import aomcore
from ui import cached, views
from ui.state import reported, require_model, workspace

ws = workspace()
st.title("Selectivity experiment")
st.caption("Does kernel selectivity capture what matters? For each class c, kernels with mean CSM s[k,c] > 0 "
           "are *selective*. On the test images of c we silence (zero the activation of) the non-selective "
           "kernels — **selective kept** — or the selective ones — **selective removed** — and compare with "
           "**all kernels**. Maps come from the train split, accuracies from the test split (as the paper).")
require_model(ws)

train_set, test_set = ws.split("train"), ws.split("test")
rows = cached.layer_table(ws.model.digest, train_set.input_shape, False, ws.model)
names = [r["name"] for r in rows]
convs = [r["name"] for r in rows if r["kind"] == "conv"]
c1, c2 = st.columns(2)
layer = c1.selectbox("Layer", names, index=names.index(convs[-1]) if convs else 0,
                     help="Default: the last conv layer (the paper uses the 6th conv layer of its CIFAR-10 model).")
device = c2.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))
key = f"experiment|{ws.model.digest}|{train_set.digest}|{test_set.digest}|{layer}"

if st.button("Run", type="primary"):
    bar = st.progress(0.0, text="Maps of the train split…")
    with reported():
        maps, _ = aomcore.cached_maps(
            ws.model, train_set, [layer], 0.0, device=device,
            progress=lambda d, t: bar.progress(0.5 * d / t, text=f"maps: {d:,}/{t:,} images"))
        result, _ = aomcore.cached_experiment(
            ws.model, maps[layer], test_set, device=device,
            progress=lambda d, t: bar.progress(0.5 + 0.5 * d / t, text=f"evaluating: pass {d} of {t}"))
        st.session_state[key] = result
    bar.empty()

result = st.session_state.get(key)
if result is None:
    st.info("Choose a layer and press **Run**. Results are cached on the weights' digest.")
    st.stop()

st.success(aomcore.summarize_experiment(result))
top, bottom = views.experiment_charts(result)
st.altair_chart(top, width="stretch")
st.altair_chart(bottom, width="stretch")
table = pd.DataFrame(result)
percent = {c: st.column_config.NumberColumn(format="percent") for c in table.columns if c.startswith("acc")}
st.dataframe(table, hide_index=True, width="stretch", column_config=percent)
st.download_button("Table (CSV)", table.to_csv(index=False), f"selectivity_experiment_{layer}.csv", "text/csv")
