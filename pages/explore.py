"""Explore: the AOM grid, the ODM and the CSM grid of one layer, in cluster order."""

import streamlit as st

import aomcore
from ui import cached, views
from ui.state import require_maps, view

ws = view()
st.title("Explore")
require_maps(ws)

c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", list(ws.maps))
m = ws.maps[layer]
k = m.num_kernels
saved = min(k, ws.ws.n_groups(layer, aomcore.default_n_groups(k)))
n_groups = c2.slider("Kernel groups (cut of the clustering tree)", 1, k, saved, key=f"groups_{layer}_{saved}",
                     help="Rows are ordered by agglomerative clustering of the AOM rows (average linkage on the "
                          "ODM, optimal leaf ordering); red boxes outline the groups. The cut is shared with "
                          "Select kernels and kept in the workspace.")
if n_groups != saved:
    ws.ws.set_n_groups(layer, n_groups)
v = cached.views(ws.maps_info["key"], layer, n_groups, m)
dead, always = int(v["flags"]["dead"].sum()), int(v["flags"]["always_on"].sum())
st.caption(f"{k} kernels × {len(m.classes)} classes × {m.counts.shape[2]}×{m.counts.shape[3]} positions, read at "
           f"`{m.tap}` · {dead} dead (black mark) · {always} always on (orange mark) · {v['groups'].max() + 1} groups")
small = m.aom.size <= views.MAX_CHART_CELLS

aom_tab, odm_tab, csm_tab, inspect_tab = st.tabs(["AOM", "ODM", "CSM", "Inspect a kernel"])
GRIDS = [
    (aom_tab, "aom", "occurrence", "Fraction of each class's images whose activation at each position is > threshold "
     "(eq. 1). Colour: 0 (dark purple) → 1 (yellow)."),
    (csm_tab, "csm", "selectivity", "Class selectivity (eq. 3): cyan → purple where the position fires more for this "
     "class than for the others (0 → 1), yellow → red where it fires less (0 → −1)."),
]
for tab, which, colormap, caption in GRIDS:
    with tab:
        st.caption(caption)
        st.image(v[f"{which}_image"], width="content")
        if small and st.toggle("Hover values (interactive grid)", key=f"{which}_hover"):
            st.altair_chart(views.grid_chart(getattr(m, which), v["order"], m.classes, colormap))
with odm_tab:
    st.caption("Mean absolute difference between two kernels' AOMs (eq. 2), same order as the grid: "
               "blue = similar kernels (candidates for redundancy), red = different.")
    if k <= 300:
        st.altair_chart(views.odm_heatmap(m.odm, v["order"]))
    else:
        st.image(v["odm_image"], width="content")
with inspect_tab:
    measure = st.radio("Cell value", ["mean occurrence", "mean selectivity"], horizontal=True)
    values, name = ((v["mean_occurrence"], "occurrence") if measure == "mean occurrence"
                    else (v["class_selectivity"], "selectivity"))
    event = st.altair_chart(views.kernel_class_heatmap(values, v["order"], m.classes, v["groups"], measure, name),
                            on_select="rerun", key=f"cells_{layer}")
    picked = (event.selection.get("cell") or [{}])[0] if event and event.selection else {}
    c1, c2 = st.columns(2)
    order = [int(i) for i in v["order"]]
    kernel = c1.selectbox("Kernel", order, index=order.index(int(picked.get("kernel", order[0]))),
                          format_func=lambda i: f"k{i}")
    cls = c2.selectbox("Class", list(range(len(m.classes))), format_func=m.classes.__getitem__,
                       index=m.classes.index(picked["class"]) if "class" in picked else 0)
    st.caption(f"k{kernel}: group {v['groups'][kernel] + 1}, selectivity s(k) = {v['selectivity'][kernel]:.3f}")
    a, b = st.columns(2)
    a.altair_chart(views.position_heatmap(m.aom[kernel, cls], "AOM", "occurrence"))
    b.altair_chart(views.position_heatmap(m.csm[kernel, cls], "CSM", "selectivity"))
