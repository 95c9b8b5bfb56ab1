"""Select kernels: rank by selectivity s(k), keep one representative per group, export."""

import json

import streamlit as st

import aomcore
from ui import cached, views
from ui.state import require_maps, view

ws = view()
st.title("Select kernels")
st.caption("The paper's Task 1 (Sec. V-A): drop dead and redundant kernels, keeping from each group of similar "
           "kernels the one with the highest selectivity s(k) (eq. 4). Your keep/drop choice is kept for the "
           "editing step.")
require_maps(ws)

c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", list(ws.maps))
m = ws.maps[layer]
k = m.num_kernels
saved = min(k, ws.ws.n_groups(layer, aomcore.default_n_groups(k)))
n_groups = c2.slider("Kernel groups (shared with Explore)", 1, k, saved, key=f"groups_{layer}_{saved}")
if n_groups != saved:
    ws.ws.set_n_groups(layer, n_groups)
v = cached.views(ws.maps_info["key"], layer, n_groups, m)
suggested = views.suggested_keep(v["selectivity"], v["groups"], v["flags"])
selection = ws.selection
if st.button("Reset to the suggestion (one representative per group, no dead kernel)") or layer not in selection:
    ws.ws.set_selection(ws.version["digest"], layer, suggested)
    selection = {**selection, layer: suggested}
    st.session_state.pop(f"editor_{layer}_{n_groups}", None)

table = views.ranking_table(v["selectivity"], v["groups"], v["flags"], set(selection[layer]))
edited = st.data_editor(
    table, hide_index=True, width="stretch", key=f"editor_{layer}_{n_groups}",
    disabled=[c for c in table.columns if c != "keep"],
    column_config={"selectivity s(k)": st.column_config.ProgressColumn(
                       format="%.3f", min_value=0.0, max_value=float(max(v["selectivity"].max(), 1e-9))),
                   "mean occurrence": st.column_config.NumberColumn(format="%.3f"),
                   "keep": st.column_config.CheckboxColumn(help="keep this kernel when the layer is edited")})
kept = sorted(int(k) for k in edited.loc[edited["keep"], "kernel"])
if kept != selection[layer]:
    ws.ws.set_selection(ws.version["digest"], layer, kept)
st.metric(f"Kernels kept in {layer}", f"{len(kept)} of {m.num_kernels}",
          delta=f"-{m.num_kernels - len(kept)} dropped" if len(kept) < m.num_kernels else None, delta_color="off")
if not kept:
    st.warning("Every kernel is dropped: an edit needs at least one kernel to keep.")

meta = {"model_digest": ws.model.digest, "arch": ws.model.arch, "dataset": ws.maps_info["dataset"],
        "split": ws.maps_info["split"], "threshold": ws.maps_info["threshold"]}
selection = {"layer": layer, "keep": kept, "drop": [k for k in range(m.num_kernels) if k not in kept],
             "n_groups": n_groups, **meta}
d1, d2, d3 = st.columns(3)
d1.download_button("Selection (JSON)", json.dumps(selection, indent=2), f"selection_{layer}.json", "application/json")
d2.download_button("Ranking (CSV)", edited.to_csv(index=False), f"ranking_{layer}.csv", "text/csv")
d3.download_button("Maps (npz, as the CLI writes)", cached.maps_npz(ws.maps_info["key"], json.dumps(meta), ws.maps),
                   "maps.npz", "application/octet-stream")
