"""Selectivity experiment (Sec. V-C, Fig. 8): per-class accuracy with only the selective kernels, and without."""

import pandas as pd
import streamlit as st
import torch

import aomcore
from ui import cached, tables, views
from ui.jobs import job_outcome, job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Selectivity experiment")
st.caption("Does kernel selectivity capture what matters? For each class c, kernels with mean CSM s[k,c] > 0 "
           "are *selective*. On the test images of c we silence (zero the activation of) the non-selective "
           "kernels — **selective kept** — or the selective ones — **selective removed** — and compare with "
           "**all kernels**. Maps come from the train split, accuracies from the test split (as the paper).")
require_model(v)

train_set = v.split("train")
rows = cached.layer_table(v.model.digest, train_set.input_shape, False, v.model)
names = [r["name"] for r in rows]
convs = [r["name"] for r in rows if r["kind"] == "conv"]
c1, c2 = st.columns(2)
layer = c1.selectbox("Layer", names, index=names.index(convs[-1]) if convs else 0,
                     help="Default: the last conv layer (the paper uses the 6th conv layer of its CIFAR-10 model).")
device = c2.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []))

running = bool(v.active_jobs(("experiment",)))
if st.button("Run", type="primary", disabled=running):
    if submit(v.ws, "experiment", {"version": v.version_id, "layer": layer, "device": device}):
        st.rerun()
job_panel(v, ("experiment",))
job_outcome(v, "experiment")

found = [r for r in v.ws.results("experiment", v.version["digest"]) if r["layer"] == layer]
if not found:
    if not running:
        st.info(f"Choose a layer and press **Run** (v{v.version_id}). Results are kept in the workspace.")
    st.stop()

result = found[-1]["rows"]
st.success(aomcore.summarize_experiment(result))
top, bottom = views.experiment_charts(result)
st.altair_chart(top, width="stretch")
st.altair_chart(bottom, width="stretch")
table = pd.DataFrame(result)  # the CSV keeps the stored rows' names and fractions
tables.table(table, {"acc_all": "accuracy, all kernels", "acc_selective_kept": "accuracy, selective kept",
                     "acc_selective_removed": "accuracy, selective removed"}, hide_index=True, width="stretch",
             column_config={"n_selective": st.column_config.NumberColumn("selective kernels"),
                            "n_not_selective": st.column_config.NumberColumn("other kernels"),
                            "n_images": st.column_config.NumberColumn("test images", format="localized")})
st.download_button("Table (CSV)", table.to_csv(index=False), f"selectivity_experiment_{layer}.csv", "text/csv")
