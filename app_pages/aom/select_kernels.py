"""Select kernels: rank by selectivity s(k), keep one representative per group, export."""

import json

import streamlit as st

import aomcore
from ui import cached, views
from ui.aom import criteria, selection
from ui.state import focus_on, layer_in_focus, require_maps, view

v = view()
st.title("Select kernels")
st.caption("The paper's Task 1 (Sec. V-A): one representative per group — the kernel with the highest selectivity "
           "s(k) (eq. 4); dead, always-on and non-selective kernels (s(k) below "
           f"{aomcore.MIN_SELECTIVITY:.0%} of the layer's highest) dropped. Change the keep column to "
           "decide; your choice pre-fills Edit & retrain.")
require_maps(v)

c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", list(v.maps), index=layer_in_focus(list(v.maps)))
focus_on(layer)
m = v.maps[layer]
k, digest = m.num_kernels, v.version["digest"]
default = aomcore.default_n_groups(m.odm, m.aom)
saved = min(k, v.ws.n_groups(layer, default))
n_groups = c2.slider("Kernel groups (shared with Explore)", 1, k, saved, key=f"groups_{layer}_{saved}",
                     help=f"Default {default}: the clustering tree cut where kernels' AOMs differ by "
                          f"{aomcore.default_cut_distance(m.aom):.3g} on average (ODM, eq. 2): a tenth of what two "
                          "kernels of the layer's mean occurrence that never fire together differ by. A layer of "
                          "dissimilar kernels keeps them all.")
if default == k:
    c2.caption(f"At the default cut no two kernels of {layer} have similar AOMs: little redundancy here.")
if n_groups != saved:
    v.ws.set_n_groups(layer, n_groups)
lv = cached.views(v.maps_info["key"], layer, n_groups, m)
kept, edited_by_user = selection.sync(v.ws, digest, layer, n_groups, lv)
suggested = selection.suggestion(lv)
if edited_by_user and kept != suggested:
    if not st.checkbox("Keep my edits", value=True, key=f"keep_edits_{layer}",
                       help=f"Off: follow the suggestion at {n_groups} groups ({len(suggested)} kernels kept)."):
        selection.store(v.ws, digest, layer, suggested, {"n_groups": n_groups})
        st.session_state.pop(f"keep_edits_{layer}", None)
        st.rerun()
if st.button("Reset to the suggestion", key="reset", disabled=kept == suggested):
    selection.store(v.ws, digest, layer, suggested, {"n_groups": n_groups})
    st.rerun()

names = v.kernel_names(layer, k)  # after an edit, the first version's names (k16+: added by an edit)
table = views.ranking_table(lv["selectivity"], lv["groups"], lv["flags"], set(kept), names)
table.insert(0, "name", [names[i] for i in table["kernel"]])
edited = st.data_editor(
    table.drop(columns="kernel"), hide_index=True, width="stretch", height=36 + 35 * len(table),
    key=f"editor_{layer}_{n_groups}_{','.join(map(str, kept))}",
    disabled=[c for c in table.columns if c != "keep"],
    column_config={"name": st.column_config.TextColumn("kernel"),
                   "selectivity s(k)": st.column_config.ProgressColumn(
                       format="%.3f", min_value=0.0, max_value=float(max(lv["selectivity"].max(), 1e-9))),
                   "mean occurrence": st.column_config.NumberColumn(format="%.3f"),
                   "keep": st.column_config.CheckboxColumn(help="keep this kernel when the layer is edited"),
                   "why": st.column_config.TextColumn(width="large", help="why the paper's rule keeps or drops it")})
chosen = sorted(int(i) for i in table.loc[edited["keep"].to_numpy(), "kernel"])  # rows stay in table order
if chosen != kept:
    selection.store(v.ws, digest, layer, chosen, "user")
    st.rerun()
st.metric(f"Kernels kept in {layer}", f"{len(kept)} of {k}",
          delta=f"{k - len(kept)} dropped" if len(kept) < k else None, delta_color="off", delta_arrow="off")
if not kept:
    st.warning("Every kernel is dropped: an edit needs at least one kernel to keep.")

meta = {"model_digest": v.model.digest, "arch": v.model.arch, "dataset": v.maps_info["dataset"],
        "split": v.maps_info["split"], "threshold": v.maps_info["threshold"]}
export = {"layer": layer, "keep": kept, "drop": [i for i in range(k) if i not in kept], "n_groups": n_groups, **meta}
d1, d2, d3 = st.columns(3)
d1.download_button("Selection (JSON)", json.dumps(export, indent=2), f"selection_{layer}.json", "application/json")
d2.download_button("Ranking (CSV)", edited.to_csv(index=False), f"ranking_{layer}.csv", "text/csv")
lineage = v.model.lineage  # kernel_origin in the file's meta
npz = cached.maps_npz(v.maps_info["key"], json.dumps(meta), v.maps, lineage,
                      json.dumps(lineage.to_json()) if lineage else "")
d3.download_button("Maps (npz, as the CLI writes)", npz, "maps.npz", "application/octet-stream")

criteria.section(v, layer, kept, k)
